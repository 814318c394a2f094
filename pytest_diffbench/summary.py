"""Short, human summaries of a run: the compute-trace badge, the terminal table and summary.md.

All of them are made from the results rows alone, so they look the same with or without
xdist and can be rebuilt from a run folder's results.csv.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

SUMMARY_FILE = "summary.md"
PASSED = "passed"
#: Columns of the speed table: seconds per image and VRAM, with the baseline's own figure.
SPEED_COLUMNS = ("case", "outcome", "s/img", "baseline s/img", "change", "peak VRAM", "device")


def cell_number(value: Any) -> float | None:
    """A float from a record cell, None for empty/NaN cells (CSV round trips give NaN)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def badge(record: Mapping[str, Any]) -> str:
    """The compute trace of one case, e.g. ``1.26 s/img · 2.7 GB · NVIDIA H200``."""
    parts = []
    seconds = cell_number(record.get("seconds_per_image"))
    if seconds is not None:
        parts.append(f"{seconds:.3g} s/img")
    vram = cell_number(record.get("peak_vram_mb"))
    if vram is not None:
        parts.append(f"{vram / 1024:.2g} GB" if vram >= 1024 else f"{vram:.3g} MB")
    if record.get("device_name"):
        parts.append(str(record["device_name"]))
    return " · ".join(parts)


def outcome_counts(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(outcome, count) pairs, passed first, then the others by name."""
    counts = Counter(str(r["outcome"]) for r in records)
    return sorted(counts.items(), key=lambda item: (item[0] != PASSED, item[0]))


def speed_rows(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """One row per case for the speed table, in the records' order."""
    rows = []
    for record in records:
        seconds = cell_number(record.get("seconds_per_image"))
        reference = cell_number(record.get("baseline_seconds_per_image"))
        vram = cell_number(record.get("peak_vram_mb"))
        change = f"{seconds / reference - 1:+.0%}" if seconds is not None and reference else ""
        rows.append((
            str(record["nodeid"]).split("::", 1)[-1],
            str(record["outcome"]),
            "" if seconds is None else f"{seconds:.3g}",
            "" if reference is None else f"{reference:.3g}",
            change,
            "" if vram is None else f"{vram:.0f} MiB",
            str(record.get("device_name") or ""),
        ))
    return rows


def terminal_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Fixed-width lines of the speed table, for pytest's terminal summary."""
    rows = [SPEED_COLUMNS, *speed_rows(records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SPEED_COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _md_cell(text: Any) -> str:
    """Markdown table cell: pipes escaped, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(records: Sequence[Mapping[str, Any]], run_id: str, bundle_name: str | None = None) -> str:
    """summary.md: counts, failing cases with their numbers, and the speed table."""
    lines = [f"## diffbench run `{run_id}`", ""]
    counts = outcome_counts(records)
    lines.append(" · ".join(f"**{count}** {outcome}" for outcome, count in counts) if counts else "No cases ran.")
    failing = [r for r in records if r["outcome"] != PASSED]
    if failing:
        lines += ["", "### Failing cases", "", "| case | outcome | what failed |", "|---|---|---|"]
        lines += [f"| `{_md_cell(str(r['nodeid']).split('::', 1)[-1])}` | {r['outcome']} | {_md_cell(r.get('message') or '')} |"
                  for r in failing]
    if records:
        lines += ["", "### Speed", "", "| " + " | ".join(SPEED_COLUMNS) + " |", "|" + "---|" * len(SPEED_COLUMNS)]
        lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in speed_rows(records)]
    if bundle_name:
        lines += ["", f"Bundle: `{bundle_name}`"]
    return "\n".join(lines) + "\n"


#: Record fields reported as JUnit XML properties (``diffbench_<field>``) of each case.
JUNIT_FIELDS = ("outcome", "config_hash", "ssim", "psnr", "lpips", "seconds_per_image", "peak_vram_mb", "device_name")


def junit_properties(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The case's outcome and numbers as ``(name, value)`` pairs for pytest's ``user_properties``."""
    return [(f"diffbench_{field}", str(record[field])) for field in JUNIT_FIELDS if record.get(field) not in (None, "")]
