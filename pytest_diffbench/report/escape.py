"""Escaping of user text (prompts, ids, messages, machine fields) for each output format.

Anything a test, a sweep value or a committed baseline sidecar says can reach summary.md (a
pull-request comment), the terminal or results.csv; none of it may act as markup or as a control
sequence there, nor make a link or notify anyone. Markdown: :func:`markdown_text` and
:func:`markdown_code`; terminal: :func:`terminal_text`. (results.csv's formula cells are
neutralised in store/results.py.)
"""

from __future__ import annotations

import re

#: Characters that take no room and hide what is next to them: zero-width space, non-joiner and
#: joiner, the word joiner and the byte-order mark (zero-width no-break space).
INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff]")
#: Characters that move the cursor, split lines or reorder text: C0 and C1 controls, DEL, the
#: Unicode line/paragraph separators and the bidirectional marks, embeddings, overrides and
#: isolates; and the :data:`INVISIBLE` ones, which the terminal shows escaped too.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
#: Text that GitHub turns into a link or a notification anywhere outside code: a URL
#: (``scheme://``, ``www.``), an e-mail address or ``@mention``, an issue or pull-request
#: reference (``#1``, ``owner/repo#1``, ``GH-1``) or a commit one (``owner/repo@sha``).
_LINKING = re.compile(r"://|www\.|[@#][A-Za-z0-9]|\bgh-\d", re.IGNORECASE)

#: Markdown punctuation escaped with a backslash in text: the backslash itself (else it would
#: escape our escapes) and the backtick (else it would open a code span).
_MD_PUNCTUATION = re.compile(r"([\\`])")
#: A ``]`` that would close a link or image text (``[x](url)``, ``![x](url)``, ``[x][ref]``).
_LINK_CLOSE = re.compile(r"\](?=[(\[])")


def plain_line(text: str) -> str:
    """``text`` on one line: the :data:`INVISIBLE` characters removed, every other control
    character (see :data:`CONTROL`) made a space."""
    return CONTROL.sub(" ", INVISIBLE.sub("", str(text)))


def markdown_text(text: str, *, table: bool = False) -> str:
    """``text`` as literal Markdown text: no raw HTML (``<`` and ``&`` as entities), no links or
    images (a ``]`` before ``(`` or ``[`` escaped), no code span opened by a backtick, one line; with ``table``,
    pipes escaped so the text stays in its cell.

    Each word (a run of non-space characters) that GitHub would make a link or a notification
    (see :data:`_LINKING`: ``https://x``, ``www.x``, ``@user``, ``a@b.c``, ``#1``, ``GH-1``) becomes a
    code span (:func:`markdown_code`), where GitHub links and notifies nothing; it reads the same.
    """
    words = re.split(r"( +)", plain_line(text))
    return "".join(markdown_code(word, table=table) if _LINKING.search(word) else _literal(word, table=table)
                   for word in words)


def _literal(text: str, *, table: bool) -> str:
    """One line of ``text`` as literal Markdown text (see :func:`markdown_text`), links not checked."""
    text = _MD_PUNCTUATION.sub(r"\\\1", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    text = _LINK_CLOSE.sub(r"\\]", text)
    return text.replace("|", "\\|") if table else text


def markdown_code(text: str, *, table: bool = False) -> str:
    """``text`` as a Markdown code span that no backtick in it can close: the fence is one
    backtick longer than its longest run of backticks, padded with a space where CommonMark
    strips one (text starting or ending with a backtick, or with a space at both ends). With
    ``table``, pipes escaped (GitHub splits table cells before it reads code spans)."""
    text = plain_line(text)
    if not text:
        return ""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " " and text.strip() != "")
    inner = f" {text} " if pad else text
    span = f"{fence}{inner}{fence}"
    return span.replace("|", "\\|") if table else span


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    """A control character as Python writes it in a string: ``\\r``, ``\\x1b``, ``\\u202e``."""
    if match.group() in _SHORT:
        return _SHORT[match.group()]
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` safe to print: each control character (an ANSI escape's ``\\x1b``, ``\\r``, a
    bidi override) shown as its escape, e.g. the four characters ``\\x1b``. With
    ``keep_newlines``, ``\\n`` still ends a line."""
    if keep_newlines:
        return "\n".join(CONTROL.sub(_escaped, line) for line in str(text).split("\n"))
    return CONTROL.sub(_escaped, str(text))
