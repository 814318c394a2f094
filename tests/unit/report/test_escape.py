"""Escaping user text per output format: summary.md (rendered as CommonMark with GitHub's tables,
the way a pull-request comment shows it) and the terminal. Each case's id, message and machine
field is text a test, a sweep or a committed sidecar chose."""

from __future__ import annotations

import re
from html import unescape

import pytest

from pytest_diffbench.report.escape import markdown_code, markdown_text, terminal_text
from pytest_diffbench.report.summary import summary_markdown, terminal_table

markdown_it = pytest.importorskip("markdown_it")

#: Every control character a line may not carry: ANSI escapes, carriage returns, bidi overrides.
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def render(markdown: str) -> str:
    return markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)


def cells(html: str) -> list[list[str]]:
    """The text of each body row's cells (tags stripped, entities left as they are)."""
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return [[re.sub("<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def visible(html: str) -> str:
    """The text a reader sees: tags stripped, entities decoded."""
    return unescape(re.sub("<[^>]+>", "", html))


def outside_code(html: str) -> str:
    """The text GitHub's link, mention and reference filters read: all but code, tags stripped,
    entities decoded (they are decoded before the filters run)."""
    return visible(re.sub(r"<code>.*?</code>", " ", html, flags=re.S))


#: What GitHub makes a link or a notification of in text outside code (its autolink extension
#: and its mention and issue-reference filters).
LINKING = re.compile(r"(?i)[a-z]+://|www\.|@[a-z0-9]|#\d|\bgh-\d|\S@\S")


def one_row(cell: str) -> list[str]:
    rows = cells(render(f"| a | b |\n|---|---|\n| {cell} | end |\n"))
    assert len(rows) == 1, rows
    return rows[0]


HOSTILE = [
    "<img src=http://x/y.png>",                # raw HTML: an external image (the quoted instance)
    "![x](http://x)",                           # a Markdown image (quoted)
    "[click](http://x) and [ref][x]",           # an inline and a reference link
    "<!-- the rest of the comment is hidden",   # an HTML comment
    "<http://x/autolink>",                      # an autolink
    "\\<img src=http://x>",                     # a backslash before the tag
    "\\![x](http://x)",                         # a backslash before the image
    "[![x](http://x)](http://y)",               # a linked image
]


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_renders_as_the_literal_text_without_html_links_or_images(text):
    html = render(f"before {markdown_text(text)} after\n")
    assert "<img" not in html and "<a " not in html and "<!--" not in html
    assert visible(html) == f"before {text} after\n"  # read the same as written


LINKING_TEXT = [
    "@octocat https://evil.example www.evil.example #1",  # the quoted instance
    "ping @org/team, mail a@b.example, see GH-12 and owner/repo#3 or owner/repo@abcdef1",
    "WWW.EVIL.EXAMPLE/x HTTP://x ftp://x (@octocat) [#1](x)",
    "@\u200boctocat #\ufeff1 www\u200d.evil.example htt\u2060ps://x",  # hidden by zero-width characters
]


@pytest.mark.parametrize("text", LINKING_TEXT)
def test_markdown_text_makes_no_link_mention_or_reference_and_reads_the_same(text):
    for table in (False, True):
        html = render(f"| a |\n|---|\n| {markdown_text(text, table=True)} |\n" if table else markdown_text(text))
        assert LINKING.search(outside_code(html)) is None, html
        assert "<a " not in html
        shown = unescape(cells(html)[0][0]) if table else visible(html)
        assert shown.strip() == re.sub("[\u200b-\u200d\u2060\ufeff]", "", text)


def test_plain_words_stay_plain_text():
    assert markdown_text("stale: the prompt changed, C# and @ 2.2 GHz") == "stale: the prompt changed, C# and @ 2.2 GHz"


@pytest.mark.parametrize("text", ["a\ufeffb", "a\u200bb", "a\u200cb", "a\u200db", "a\u2060b"])
def test_zero_width_characters_are_removed_from_markdown_and_shown_on_the_terminal(text):
    assert markdown_text(text) == "ab" and markdown_code(text) == "`ab`"
    assert terminal_text(text) == f"a\\u{ord(text[1]):04x}b"


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_code_renders_as_code_without_html_links_or_images(text):
    html = render(markdown_code(text))
    assert "<img" not in html and "<a " not in html
    code = re.fullmatch(r"<p><code>(.*)</code></p>\n", html)
    assert code is not None and code.group(1) == text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.mark.parametrize("text", ["a`b", "``x``", "` leading", "trailing `", "```", "  both  ", "x ` y `` z ``` w"])
def test_no_run_of_backticks_closes_a_code_span_early(text):
    html = render(markdown_code(text))
    code = re.fullmatch(r"<p><code>(.*)</code></p>\n", html)
    assert code is not None and code.group(1) == text


def test_code_spans_of_plain_text_are_single_backticks():
    assert markdown_code("test_b[seed0-euler]") == "`test_b[seed0-euler]`"
    assert markdown_code("") == ""


@pytest.mark.parametrize("text", [
    "a\rb", "a\nb", "a\r\nb", "a\tb", "a\x00b", "a\x1b[31mb", "a\x7fb",
    "a\u202eb", "a\u2066b", "a\u2028b", "a\x9bb",
])
def test_control_characters_never_reach_markdown(text):
    for escaped in (markdown_text(text, table=True), markdown_code(text, table=True)):
        assert CONTROLS.search(escaped) is None and "\u2028" not in escaped
        assert escaped.replace("`", "") in ("a b", "a  b", "a [31mb")


@pytest.mark.parametrize("text", ["a|b", "a\\|b", "|", "x`|`y", "a\r|b"])
def test_a_pipe_or_a_line_break_stays_in_its_table_cell(text):
    assert len(one_row(markdown_text(text, table=True))) == 2
    assert len(one_row(markdown_code(text, table=True))) == 2


def test_summary_markdown_keeps_hostile_ids_messages_and_devices_in_their_cells(make_result):
    hostile_id = "tests/test_a.py::test_a[a\r|b`c<img src=http://x/y.png>![x](http://x)\u202e]"
    failing = make_result(outcome="failed-quality", nodeid=hostile_id, device_name="<img src=http://x/d.png>|x",
                          message="prompt: '<img src=http://x/y.png>' -> '![x](http://x)' <!-- hidden")
    text = summary_markdown([make_result(), failing], "run`id<b>", bundle_name="diffbench-`x`.zip")
    html = render(text)
    assert "<img" not in html and "<a " not in html and "<!--" not in html and "<b>" not in html
    assert all(CONTROLS.search(line) is None for line in text.split("\n"))
    failure_rows, speed_rows = [cells(part) for part in html.split("<table>")[1:]]
    assert [len(row) for row in failure_rows] == [3]
    assert failure_rows[0][0] == "test_a[a |b`c&lt;img src=http://x/y.png&gt;![x](http://x) ]"
    assert failure_rows[0][2].startswith("prompt: '&lt;img src=http://x/y.png&gt;' -&gt; '![x](http://x)'")
    assert [len(row) for row in speed_rows] == [7, 7]
    assert speed_rows[1][6] == "&lt;img src=http://x/d.png&gt;|x"
    assert "<code>run`id&lt;b&gt;</code>" in html and "<code>diffbench-`x`.zip</code>" in html


@pytest.mark.parametrize("text, shown", [
    ("red\x1b[31mtext\x1b[0m", "red\\x1b[31mtext\\x1b[0m"),
    ("over\rwrite", "over\\rwrite"),
    ("tab\tand\nline", "tab\\tand\\nline"),
    ("abc\u202edef", "abc\\u202edef"),
    ("\x9b2J", "\\x9b2J"),
    ("plain text, C:\\path", "plain text, C:\\path"),
])
def test_terminal_text_shows_control_characters_escaped(text, shown):
    assert terminal_text(text) == shown
    assert terminal_text(shown) == shown  # escaping twice changes nothing


def test_terminal_text_can_keep_line_breaks():
    assert terminal_text("a\x1b[2J\nb\r\n", keep_newlines=True) == "a\\x1b[2J\nb\\r\n"


def test_terminal_table_escapes_ids_and_devices_and_stays_aligned(make_result):
    hostile = make_result(nodeid="t.py::test_b[x\x1b[31m]", device_name="GPU\r\x1b[2J")
    lines = terminal_table([make_result(), hostile])
    assert all(CONTROLS.search(line) is None for line in lines)
    assert lines[2].startswith("test_b[x\\x1b[31m]") and lines[2].endswith("GPU\\r\\x1b[2J")
    assert lines[1].index("passed") == lines[2].index("passed") == lines[0].index("outcome")
