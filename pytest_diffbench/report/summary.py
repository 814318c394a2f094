"""Short, human summaries of a run: the compute-trace badge, the terminal table and summary.md.

All of them are made from the results alone, so they look the same with or without xdist and
can be rebuilt from a run folder's results.csv.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

from pytest_diffbench.judge.checks import failed_checks, format_number, timing_mismatch
from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.escape import markdown_code, markdown_text, terminal_text
from pytest_diffbench.spec.outcomes import Outcome

#: Columns of the speed table: seconds per image and VRAM, with the baseline's own figure.
SPEED_COLUMNS = ("case", "outcome", "s/img", "baseline s/img", "change", "peak VRAM", "device")
#: The "change" cell of a case whose baseline timing does not compare with this run's: timed on
#: another device or by another number of pytest workers (see :func:`change_footnote`).
NOT_COMPARABLE = "—†"


def natural_key(text: str) -> tuple[tuple[int, str | int], ...]:
    """A sort key that orders the numbers in ``text`` by value: ``4steps`` before ``20steps``."""
    return tuple((0, int(part)) if index % 2 else (1, part) for index, part in enumerate(re.split(r"(\d+)", text)))


def case_order(result: CaseResult) -> tuple[str, tuple[tuple[int, str | int], ...]]:
    """The order every listing of cases shares: by test, then by case with numbers by value
    (``seed2`` before ``seed10``, ``2steps`` before ``10steps``)."""
    return result.test, natural_key(result.nodeid)


def case_labels(results: Iterable[CaseResult]) -> dict[str, str]:
    """The case column's label of each node id of ``results``: its :attr:`~CaseResult.short_id`
    (``test_c[seed0]``) when no other case of ``results`` has the same one, else the shortest
    suffix of its node id, in whole path parts, that tells it from those (``a/test_x.py::test_c[seed0]``
    beside ``b/test_x.py::test_c[seed0]``; ``test_x.py::test_c[seed0]`` beside ``x/test_y.py::...``)."""
    by_short: dict[str, set[str]] = {}
    for result in results:
        by_short.setdefault(result.short_id, set()).add(result.nodeid)
    labels: dict[str, str] = {}
    for short, nodeids in by_short.items():
        if len(nodeids) == 1:
            labels.update(dict.fromkeys(nodeids, short))
            continue
        parts = {nodeid: nodeid.split("::", 1)[0].split("/") for nodeid in nodeids}
        for nodeid, path in parts.items():
            for count in range(1, len(path) + 1):
                label = "/".join(path[-count:])
                if not any(other != nodeid and "/".join(other_path[-count:]) == label for other, other_path in parts.items()):
                    break
            labels[nodeid] = f"{label}::{short}"
    return labels


def memory_text(mib: float) -> str:
    """``2765 MiB``, ``38.8 MiB``: peak VRAM in MiB (binary units, as torch.cuda measures), as the
    ``max_vram_mb`` budget and its check in a failure message print it."""
    return f"{format_number(mib)} MiB"


def badge(result: CaseResult) -> str:
    """The compute trace of one case, e.g. ``1.26 s/img · 2765 MiB · NVIDIA H200`` (a two-stage
    case's total: the stages' seconds summed, their peak VRAM's maximum)."""
    m = result.measurement
    return _trace(m.seconds_per_image if m else None, m.peak_vram_mb if m else None, result.machine.device_name)


def badges(result: CaseResult) -> list[str]:
    """The compute-trace badges of one case: one per stage for a two-stage case, each named, e.g.
    ``base 0.9 s/img · 2765 MiB · NVIDIA H200`` and ``refiner 0.36 s/img · 1800 MiB · NVIDIA H200``;
    else the case's one :func:`badge` (none when nothing was measured)."""
    m = result.measurement
    if m is not None and m.stages:
        return [f"{stage.name} " + _trace(stage.seconds_per_image, stage.peak_vram_mb, result.machine.device_name)
                for stage in m.stages]
    trace = badge(result)
    return [trace] if trace else []


def stages_text(result: CaseResult) -> str:
    """The stages of a two-stage case in one cell, e.g. ``base 0.9 s/img · 2765 MiB; refiner 0.36
    s/img · 1800 MiB``; "" for a case of one pipeline call."""
    m = result.measurement
    return "; ".join(f"{stage.name} " + _trace(stage.seconds_per_image, stage.peak_vram_mb, "")
                     for stage in (m.stages if m else ()))


def _trace(seconds: float | None, mib: float | None, device_name: str) -> str:
    parts = []
    if seconds is not None:
        parts.append(f"{seconds:.3g} s/img")
        if mib is not None:
            parts.append(memory_text(mib))
    if device_name:
        parts.append(device_name)
    return " · ".join(parts)


def outcome_counts(results: Iterable[CaseResult]) -> list[tuple[str, int]]:
    """(outcome, count) pairs, passed first, then the others by name."""
    counts = Counter(r.outcome.value for r in results)
    return sorted(counts.items(), key=lambda item: (item[0] != Outcome.PASSED.value, item[0]))


def baseline_device(result: CaseResult) -> str | None:
    """The device name the case's baseline was timed on; None when the case has no baseline timing.

    results.csv's ``baseline_device_name`` column says it. A results.csv written before that
    column existed leaves it empty; then it is read from what the judge recorded: a relative
    timing check that ran (``time_check`` passed or failed) compared this very device; one skipped
    for the device says ``baseline timed on <device>, this run on <this device>``; otherwise an
    ``env_diff`` entry ``device_name: <the baseline's> -> <this run's>`` (see
    :func:`~pytest_diffbench.spec.machine.format_diff`) names it, and without one the baseline was
    timed on this run's device (or made by this very run).
    """
    if result.baseline_seconds_per_image is None:
        return None
    if result.baseline_device_name:
        return result.baseline_device_name
    device = result.machine.device_name
    if result.time_check in ("passed", "failed"):
        return device
    for text, pattern in ((result.time_check, r"baseline timed on (.*), this run on "),
                          (result.env_diff, r"(?:^|; )device_name: (.*?) -> ")):
        found = re.search(pattern + re.escape(device) + r"(?:; |$)", text)
        if found:
            return found.group(1)
    return device


def baseline_workers(result: CaseResult) -> int | None:
    """How many pytest processes shared the device when the case's baseline was timed; None when
    the case has no baseline timing.

    results.csv's ``baseline_workers`` column says it. A results.csv written before that column
    existed leaves it empty; then a relative timing check skipped for the worker count names it
    (``baseline timed with 1 pytest worker(s), this run with 2``), and otherwise the baseline was
    timed by as many workers as this run (a check that ran compared them, or none says otherwise).
    """
    if result.baseline_seconds_per_image is None:
        return None
    if result.baseline_workers is not None:
        return result.baseline_workers
    found = re.search(r"baseline timed with (\d+) pytest worker\(s\), this run with ", result.time_check)
    return int(found.group(1)) if found else result.workers


def timing_mismatch_of(result: CaseResult) -> str:
    """Why the baseline's timing does not compare with the case's, as the slowdown check says it
    (:func:`~pytest_diffbench.judge.checks.timing_mismatch`: another device or another number of
    pytest workers); "" when it compares or there is no baseline timing."""
    device, workers = baseline_device(result), baseline_workers(result)
    if device is None or workers is None:
        return ""
    return timing_mismatch(device, workers, result.machine.device_name, result.workers)


def speed_change(result: CaseResult) -> str:
    """Seconds per image against the baseline's, e.g. ``+26%``; "" when there is nothing to compare,
    :data:`NOT_COMPARABLE` where the slowdown check would not compare the two timings either (the
    baseline was timed on another device, or by another number of pytest workers)."""
    m, reference = result.measurement, result.baseline_seconds_per_image
    if m is None or not reference:
        return ""
    return NOT_COMPARABLE if timing_mismatch_of(result) else f"{m.seconds_per_image / reference - 1:+.0%}"


def change_footnote(results: Iterable[CaseResult]) -> str:
    """The line under a speed table that explains :data:`NOT_COMPARABLE`, naming why for each kind
    of row that shows it; "" when no row shows it."""
    shown = [r for r in results if speed_change(r) == NOT_COMPARABLE]
    devices = sorted({baseline_device(r) or "an unknown device" for r in shown
                      if baseline_device(r) != r.machine.device_name})
    workers = sorted({(baseline_workers(r), r.workers) for r in shown if baseline_device(r) == r.machine.device_name})
    parts = []
    if devices:
        parts.append(f"baseline timed on {', '.join(devices)}, not on this run's device: no change shown "
                     "(timings of two devices do not compare)")
    if workers:
        counts = ", ".join(f"{base} pytest worker(s), this run with {now}" for base, now in workers)
        parts.append(f"baseline timed with {counts}: no change shown (pytest workers sharing a device slow each "
                     "other down)")
    return f"{NOT_COMPARABLE[-1]} " + "; ".join(parts) if parts else ""


def what_failed(result: CaseResult, metrics: MetricRegistry = REGISTRY) -> str:
    """Each failed check with its value and the tolerance it broke, worded as in the failure
    message, e.g. ``ssim 0.6123 < 0.95; slowdown +80% > +50%; peak VRAM 900 MiB > 800 MiB``
    (see :meth:`~pytest_diffbench.judge.checks.Check.violated`); the result's message when it
    failed without a failed check (a missing or stale baseline, an error); "" when it passed."""
    if result.passed:
        return ""
    return "; ".join(check.violated() for check in failed_checks(result, metrics)) or result.message


def speed_columns(results: Sequence[CaseResult]) -> tuple[str, ...]:
    """The speed table's columns: :data:`SPEED_COLUMNS`, and ``stages`` (each stage's badge, see
    :func:`stages_text`) when a case of ``results`` ran in stages."""
    return SPEED_COLUMNS + (("stages",) if any(stages_text(r) for r in results) else ())


def speed_rows(results: Sequence[CaseResult], labels: Mapping[str, str] | None = None) -> list[tuple[str, ...]]:
    """One row per case for the speed table, in the results' order, a cell per :func:`speed_columns`;
    the case cell is the case's label in ``labels`` (by node id), by default :func:`case_labels` of ``results``."""
    labels = case_labels(results) if labels is None else labels
    staged = len(speed_columns(results)) > len(SPEED_COLUMNS)
    rows: list[tuple[str, ...]] = []
    for result in results:
        m = result.measurement
        seconds = m.seconds_per_image if m else None
        reference = result.baseline_seconds_per_image
        vram = m.peak_vram_mb if m else None
        rows.append((
            labels.get(result.nodeid, result.short_id),
            result.outcome.value,
            "" if seconds is None else f"{seconds:.3g}",
            "" if reference is None else f"{reference:.3g}",
            speed_change(result),
            "" if vram is None else memory_text(vram),
            result.machine.device_name,
            *((stages_text(result),) if staged else ()),
        ))
    return rows


def terminal_table(results: Sequence[CaseResult], among: Iterable[CaseResult] | None = None) -> list[str]:
    """Fixed-width lines of the speed table, for pytest's terminal summary (control characters
    in ids and device names shown escaped), and the :func:`change_footnote` when there is one.
    Case labels (:func:`case_labels`) tell apart the cases of ``among`` (the whole run, when
    ``results`` lists only some of it), by default of ``results``."""
    header = speed_columns(results)
    labels = case_labels(results if among is None else among)
    rows = [header, *(tuple(terminal_text(cell) for cell in row) for row in speed_rows(results, labels))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    footnote = change_footnote(results)
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return lines + ([terminal_text(footnote)] if footnote else [])


def summary_markdown(results: Sequence[CaseResult], run_id: str, bundle_name: str | None = None) -> str:
    """summary.md: counts, failing cases with their numbers, and the speed table.

    Every id, message and machine field is escaped (see report.escape): it is posted as a
    pull-request comment, where raw HTML, images or a broken table row would be injected."""
    lines = [f"## diffbench run {markdown_code(run_id)}", ""]
    counts = outcome_counts(results)
    lines.append(" · ".join(f"**{count}** {outcome}" for outcome, count in counts) if counts else "No cases ran.")
    labels = case_labels(results)
    failing = [r for r in results if not r.passed]
    if failing:
        lines += ["", "### Failing cases", "", "| case | outcome | what failed |", "|---|---|---|"]
        lines += [f"| {markdown_code(labels[r.nodeid], table=True)} | {markdown_text(r.outcome.value, table=True)} | "
                  f"{markdown_text(what_failed(r), table=True)} |" for r in failing]
    if results:
        header = speed_columns(results)
        lines += ["", "### Speed", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(markdown_text(cell, table=True) for cell in row) + " |" for row in speed_rows(results, labels)]
        footnote = change_footnote(results)
        lines += ["", markdown_text(footnote)] if footnote else []
    if bundle_name:
        lines += ["", f"Bundle: {markdown_code(bundle_name)}"]
    return "\n".join(lines) + "\n"
