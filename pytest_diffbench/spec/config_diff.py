"""Differences between two configs as lines a person reads, at any size.

:func:`change_lines` renders :func:`~pytest_diffbench.spec.config.diff_configs`' differences one
per line, key by key (``pipeline_kwargs.strength: 0.6 -> 0.7``). A value longer than
:data:`MAX_VALUE_CHARS` is cut and followed by its length and the start of its SHA-256, so two
long values that differ near their end still read as different; a path longer than
:data:`MAX_PATH_CHARS` is cut in its middle. At most :data:`MAX_FIELDS` lines and about
:data:`MAX_TEXT_CHARS` characters are shown, then ``... and N more fields (in prompt, seed)``,
naming the top-level fields the hidden differences lie in: a stale-baseline message stays a
few KB whatever the configs hold, and still names every field that changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping, Sequence

from pytest_diffbench.spec.config import ABSENT, APPROX_KEY, values_distance, values_tolerance

#: Differences shown before ``... and N more fields``.
MAX_FIELDS = 12
#: Characters of all shown difference lines together (each line is at most about 250).
MAX_TEXT_CHARS = 3000
#: A value's text longer than this is cut (see :func:`show_value`).
MAX_VALUE_CHARS = 72
#: A path longer than this is cut in its middle.
MAX_PATH_CHARS = 90
#: Hex digits of the SHA-256 shown after a cut value.
DIGEST_CHARS = 12


def change_lines(changes: Sequence[tuple[str, Any, Any]], indent: str = "  ") -> list[str]:
    """One line per difference, ``indent`` first, capped as the module docstring says."""
    lines: list[str] = []
    used = 0
    for shown, (path, old, new) in enumerate(changes):
        line = indent + change_line(path, old, new)
        if shown == MAX_FIELDS or used + len(line) > MAX_TEXT_CHARS:
            rest = len(changes) - shown
            tops = list(dict.fromkeys(re.split(r"[.\[]", hidden, maxsplit=1)[0] for hidden, _, _ in changes[shown:]))
            where = ", ".join(show_path(top) for top in tops[:MAX_FIELDS]) + (", ..." if len(tops) > MAX_FIELDS else "")
            lines.append(f"{indent}... and {rest} more field{'s' if rest != 1 else ''} (in {where})")
            break
        lines.append(line)
        used += len(line)
    return lines


def change_line(path: str, old: Any, new: Any) -> str:
    """``path: old -> new``; for an :data:`~pytest_diffbench.spec.config.APPROX_KEY` summary,
    ``path: values differ by 2.1% (tolerance 0.1%)`` naming the field that holds it."""
    suffix = "." + APPROX_KEY
    if path.endswith(suffix) and isinstance(old, Mapping) and isinstance(new, Mapping):
        distance = values_distance(old, new)
        how = ("its value summaries cannot be compared" if distance == float("inf")
               else f"values differ by {distance:.2%} relative (tolerance {values_tolerance(new):.2%})")
        return f"{show_path(path[:-len(suffix)])}: {how}"
    return f"{show_path(path)}: {show_value(old)} -> {show_value(new)}"


def show_value(value: Any) -> str:
    """``repr(value)`` (``<absent>`` for a missing field), cut to :data:`MAX_VALUE_CHARS` with
    ``... (N chars, sha256 0123456789ab)`` when longer."""
    if value == ABSENT:
        return ABSENT
    text = repr(value)
    if len(text) <= MAX_VALUE_CHARS:
        return text
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=True, default=repr).encode("ascii"))
    return f"{text[:MAX_VALUE_CHARS - 16]}... ({len(text)} chars, sha256 {digest.hexdigest()[:DIGEST_CHARS]})"


def show_path(path: str) -> str:
    """``path``, its middle cut when longer than :data:`MAX_PATH_CHARS`."""
    if len(path) <= MAX_PATH_CHARS:
        return path
    half = (MAX_PATH_CHARS - 3) // 2
    return f"{path[:half]}...{path[-half:]}"
