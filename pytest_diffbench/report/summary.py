"""Short, human summaries of a run: the compute-trace badge, the terminal table and summary.md.

All of them are made from the results alone, so they look the same with or without xdist and
can be rebuilt from a run folder's results.csv.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.escape import markdown_code, markdown_text, terminal_text
from pytest_diffbench.spec.outcomes import Outcome

#: Columns of the speed table: seconds per image and VRAM, with the baseline's own figure.
SPEED_COLUMNS = ("case", "outcome", "s/img", "baseline s/img", "change", "peak VRAM", "device")


def memory_text(mib: float) -> str:
    """``38.8 MiB`` or ``2.7 GiB`` (binary units, as torch.cuda measures)."""
    return f"{mib / 1024:.2g} GiB" if mib >= 1024 else f"{mib:.3g} MiB"


def badge(result: CaseResult) -> str:
    """The compute trace of one case, e.g. ``1.26 s/img · 2.7 GiB · NVIDIA H200``."""
    parts = []
    m = result.measurement
    if m is not None:
        parts.append(f"{m.seconds_per_image:.3g} s/img")
        if m.peak_vram_mb is not None:
            parts.append(memory_text(m.peak_vram_mb))
    if result.machine.device_name:
        parts.append(result.machine.device_name)
    return " · ".join(parts)


def outcome_counts(results: Iterable[CaseResult]) -> list[tuple[str, int]]:
    """(outcome, count) pairs, passed first, then the others by name."""
    counts = Counter(r.outcome.value for r in results)
    return sorted(counts.items(), key=lambda item: (item[0] != Outcome.PASSED.value, item[0]))


def speed_rows(results: Sequence[CaseResult]) -> list[tuple[str, ...]]:
    """One row per case for the speed table, in the results' order."""
    rows: list[tuple[str, ...]] = []
    for result in results:
        m = result.measurement
        seconds = m.seconds_per_image if m else None
        reference = result.baseline_seconds_per_image
        vram = m.peak_vram_mb if m else None
        change = f"{seconds / reference - 1:+.0%}" if seconds is not None and reference else ""
        rows.append((
            result.short_id,
            result.outcome.value,
            "" if seconds is None else f"{seconds:.3g}",
            "" if reference is None else f"{reference:.3g}",
            change,
            "" if vram is None else f"{vram:.0f} MiB",
            result.machine.device_name,
        ))
    return rows


def terminal_table(results: Sequence[CaseResult]) -> list[str]:
    """Fixed-width lines of the speed table, for pytest's terminal summary (control characters
    in ids and device names shown escaped)."""
    rows = [SPEED_COLUMNS, *(tuple(terminal_text(cell) for cell in row) for row in speed_rows(results))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SPEED_COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def summary_markdown(results: Sequence[CaseResult], run_id: str, bundle_name: str | None = None) -> str:
    """summary.md: counts, failing cases with their numbers, and the speed table.

    Every id, message and machine field is escaped (see report.escape): it is posted as a
    pull-request comment, where raw HTML, images or a broken table row would be injected."""
    lines = [f"## diffbench run {markdown_code(run_id)}", ""]
    counts = outcome_counts(results)
    lines.append(" · ".join(f"**{count}** {outcome}" for outcome, count in counts) if counts else "No cases ran.")
    failing = [r for r in results if not r.passed]
    if failing:
        lines += ["", "### Failing cases", "", "| case | outcome | what failed |", "|---|---|---|"]
        lines += [f"| {markdown_code(r.short_id, table=True)} | {markdown_text(r.outcome.value, table=True)} | "
                  f"{markdown_text(r.message, table=True)} |" for r in failing]
    if results:
        lines += ["", "### Speed", "", "| " + " | ".join(SPEED_COLUMNS) + " |", "|" + "---|" * len(SPEED_COLUMNS)]
        lines += ["| " + " | ".join(markdown_text(cell, table=True) for cell in row) + " |" for row in speed_rows(results)]
    if bundle_name:
        lines += ["", f"Bundle: {markdown_code(bundle_name)}"]
    return "\n".join(lines) + "\n"
