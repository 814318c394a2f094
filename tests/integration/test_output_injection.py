"""Text a test or a committed baseline sidecar chose reaches summary.md, results.csv and the
terminal as text: no HTML or images in summary.md, no formula cells, no terminal escapes."""

from __future__ import annotations

import csv
import re
from html import unescape

import pytest

from pytest_diffbench.cli.main import main

PROMPTS = ['<img src=http://x/y.png>', '=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0"]


def parametrized(prompt: str, case_id: str) -> str:
    return (f"import pytest\n\n@pytest.mark.parametrize('p', [{prompt!r}], ids=[{case_id!r}])\n"
            "@diffbench.sweep(seeds=0, steps=2)\ndef test_case(diffbench, p):\n    diffbench.generate(p)\n")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_a_hostile_prompt_and_id_stay_text_in_summary_md_and_results_csv(project, prompt):
    case_id = "a|b`c<img src=http://x/i.png>![x](http://x)<!--"
    project.write_tests(parametrized("a red cube", case_id))
    project.run(update="missing")
    project.write_tests(parametrized(prompt, case_id))  # a changed prompt: its message names both prompts
    run = project.run()
    run.outcome.assert_outcomes(failed=1)
    summary = run.folder.summary.read_text(encoding="utf-8")
    html = pytest.importorskip("markdown_it").MarkdownIt("commonmark").enable("table").render(summary)
    assert "<img" not in html and "<a " not in html and "<!--" not in html  # as a pull-request comment shows it
    assert html.count("<tr>") == 1 + 1 + 1 + 1  # two tables: a header and one row each
    failing = [line for line in summary.splitlines() if line.startswith("| ``test_case")]
    assert len(failing) == 1 and failing[0].count(" | ") == 2  # three cells: no pipe escaped its cell
    with open(run.folder.results, newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["prompt"] == (prompt if prompt[0] not in "=+-@" else "'" + prompt)
    assert run.result("test_case").setting("prompt") == prompt  # read back exactly


def test_ansi_escapes_of_a_committed_sidecar_are_shown_escaped(project, capsys):
    project.write_tests(project.test())
    project.run(update="missing")
    _, sidecar = project.baseline_pair("test_case")
    project.edit_sidecar(sidecar, environment={"device_name": "\x1b[31mevil\x1b[0m\u202e", "torch": "1.0\r\x1b[2J"})
    run = project.run()
    text = project.text(run.outcome)
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[31mevil\\x1b[0m\\u202e" in text and "1.0\\r\\x1b[2J" in text
    assert "\x1b[31m" in run.results[0].env_diff  # the record keeps the text; only the output escapes it
    capsys.readouterr()
    project.monkeypatch.chdir(project.path)  # the command reads the project's ini from here
    assert main(["show", "latest"]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown
    run.folder.summary.write_text("## run\n\x1b[2J\x1b[31mred\u202e\n", encoding="utf-8")  # a summary.md from elsewhere
    assert main(["show", "latest"]) == 0
    assert capsys.readouterr().out == "## run\n\\x1b[2J\\x1b[31mred\\u202e\n"


#: What GitHub makes a link or a notification of in text outside code (its autolink extension
#: and its mention and issue-reference filters, which read the text with entities decoded).
LINKING = re.compile(r"(?i)[a-z]+://|www\.|@[a-z0-9]|#\d|\bgh-\d|\S@\S")
HIDDEN = "\ufeff\u200b\u200c\u200d\u2060\u200e\u202e\u2066"


def outside_code(summary: str) -> str:
    html = pytest.importorskip("markdown_it").MarkdownIt("commonmark").enable("table").render(summary)
    return unescape(re.sub("<[^>]+>", "", re.sub(r"<code>.*?</code>", " ", html, flags=re.S)))


@pytest.mark.parametrize("body", [
    'raise RuntimeError("@octocat https://evil.example www.evil.example #1")',  # the quoted instance
    'raise RuntimeError("mail a@b.example, see GH-12, owner/repo#3 and WWW.EVIL.EXAMPLE")',
    'raise RuntimeError("@\\u200boctocat #\\ufeff1 htt\\u2060ps://x")',  # hidden by zero-width characters
])
def test_a_message_makes_no_link_mention_or_reference_in_summary_md(project, body):
    project.write_tests(project.test(body=f'diffbench.generate("a red cube")\n{body}'))
    run = project.run(update="missing")
    run.outcome.assert_outcomes(failed=1)
    summary = run.folder.summary.read_text(encoding="utf-8")
    assert "RuntimeError" in summary
    assert LINKING.search(outside_code(summary)) is None, summary
    assert not any(char in summary for char in HIDDEN)


def test_a_prompt_and_an_id_make_no_link_or_mention_in_summary_md(project):
    case_id = "@octocat-#1-www.x"
    project.write_tests(parametrized("a red cube", case_id))
    project.run(update="missing")
    project.write_tests(parametrized("@octocat\ufeff https://evil.example #2", case_id))  # the message names the prompt
    run = project.run()
    run.outcome.assert_outcomes(failed=1)
    summary = run.folder.summary.read_text(encoding="utf-8")
    assert "octocat" in summary.split("### Speed")[0].split("@octocat-#1-www.x")[-1]  # the message names the prompt
    assert LINKING.search(outside_code(summary)) is None, summary
    assert "\ufeff" not in summary
