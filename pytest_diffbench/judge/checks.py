"""Checks: each number against its tolerance, baseline identity first, then quality (one check
per registered metric), speed and memory.

Every check is kept, passed or not, so a failure message and results.csv show each number
against the tolerance that was applied, and why a check was skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry, Score, tolerance_name
from pytest_diffbench.judge.metrics.base import Direction, passes
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.judge.tolerances import Tolerances
from pytest_diffbench.spec.config import diff_configs
from pytest_diffbench.spec.config_diff import change_lines, show_value
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import Outcome

#: Name of the relative-timing check (results.csv's ``slowdown`` column).
SLOWDOWN = "slowdown"
#: Name of the absolute speed check (seconds per image against ``max_seconds``).
SECONDS = "seconds/image"
#: Name of the memory check (peak VRAM in MiB against ``max_vram_mb``).
VRAM = "peak VRAM"
#: The status of a check whose tolerance is off, or whose metric is (``diffbench_lpips = off``).
OFF = "off"


@dataclass(frozen=True)
class Check:
    """One number against one tolerance. ``passed`` is None when the check did not apply: its
    tolerance is off (``limit`` None), or ``note`` says why it was skipped.

    ``note`` is what the number means when the check ran (``0.5 s vs baseline 0.4 s``), and
    the bare reason when it was skipped (``baseline timed on A100, this run on H100``): the
    rendering adds the word "skipped" once. ``style`` is how value and limit print (see
    :func:`format_number`): the slowdown, a fraction (0.5 = 50% slower), prints as ``+50%``.

    Every place a check is shown (failure message, results.csv's message, case grids, the "what
    failed" of summary.md and report.html) renders it with :meth:`render` or :meth:`violated`,
    so a number reads alike everywhere.
    """

    name: str
    value: float | None
    op: str
    limit: float | None
    passed: bool | None
    unit: str = ""
    note: str = ""
    outcome: Outcome = Outcome.FAILED_QUALITY
    style: str = "g"

    @property
    def status(self) -> str:
        """``ok``, ``FAIL``, ``off`` (no tolerance, or the metric is switched off: nothing to say
        why) or ``skipped (<reason>)``."""
        if self.passed is not None:
            return "ok" if self.passed else "FAIL"
        if self.limit is None or self.note == OFF:
            return OFF
        return f"skipped ({self.note})" if self.note else "skipped"

    def render(self) -> str:
        """``ssim  0.6123  >= 0.95  FAIL`` (one line, fixed columns): a check that ran ends with
        its note in brackets, a skipped one with why, one whose tolerance is off says ``off``."""
        value = "-" if self.value is None else self._number(self.value, self.limit)
        if self.limit is None:
            return f"{self.name:<16} {value:>12}   {OFF}"
        limit = f"{self.op} {self._number(self.limit, self.value)}"
        line = f"{self.name:<16} {value:>12}   {limit:<14} {self.status}"
        return f"{line}  ({self.note})" if self.note and self.passed is not None else line

    def violated(self) -> str:
        """A failed check as the tolerance it broke, e.g. ``ssim 0.6123 < 0.95`` or
        ``slowdown +300% > +50%``; value and limit print as in :meth:`render`."""
        broken = {">=": "<", "<=": ">"}.get(self.op, f"not {self.op}")
        return f"{self.name} {self._number(self.value, self.limit)} {broken} {self._number(self.limit, self.value)}"

    def _number(self, value: float | None, beside: float | None) -> str:
        if value is None:
            return "-"
        unit = f" {self.unit}" if self.unit else ""
        return format_number(value, beside, style=self.style) + unit


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    checks: tuple[Check, ...] = field(default_factory=tuple)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is False)


#: How :func:`format_number` prints in each style: (the digits it starts with, the format).
_STYLES = {"g": (4, "{:.{}g}"), "%": (0, "{:+.{}%}")}
#: A float has at most this many significant digits worth printing.
_MAX_DIGITS = 17


def format_number(value: float, beside: float | None = None, *, style: str = "g") -> str:
    """``value`` in ``style``: ``g`` 4 significant digits, or as many as its whole part has
    (``0.9876``, ``12346``: never an exponent for a large number), ``%`` a signed percentage
    (``+50%``); ``inf`` / ``-inf`` for infinities.

    ``beside`` is the number printed next to it (a check's limit, a baseline's timing): when the
    two differ but would print alike (``ssim 1 >= 1 FAIL``), digits are added until they do not
    (``0.99999 >= 1``). Format both with each other as ``beside`` so they get the same digits.
    """
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    digits, spec = _STYLES[style]
    if style == "g" and abs(value) >= 1:
        digits = max(digits, len(str(int(abs(value)))))
    if beside is not None and math.isfinite(beside) and beside != value:
        while digits < _MAX_DIGITS and spec.format(value, digits) == spec.format(beside, digits):
            digits += 1
    return spec.format(value, digits)


def judge_identity(config: Mapping[str, Any], config_hash: str, baseline_config: Mapping[str, Any],
                   baseline_hash: str, env_diff: Mapping[str, tuple[str, str]], strict_env: bool) -> Verdict | None:
    """A version-mismatch, stale-baseline or (with ``strict_env``) env-mismatch verdict, or None
    when the baseline is this case's.

    The baseline is stale when the hashes differ or, with equal hashes, when a value compared
    within a tolerance (a float tensor's summary, left out of the hash: see
    :data:`~pytest_diffbench.spec.config.APPROX_KEY`) is outside it. The differences are listed
    key by key, long values cut and the list capped (:func:`~pytest_diffbench.spec.config_diff.change_lines`),
    so the message stays a few KB whatever the configs hold.
    """
    old_version, new_version = baseline_config.get("workflow_version"), config.get("workflow_version")
    if old_version != new_version:
        return Verdict(Outcome.VERSION_MISMATCH, (
            f"baseline was made by workflow_version {show_value(old_version)}, this run is {show_value(new_version)}; "
            "review the change, then refresh with --diffbench-update",))
    changes = diff_configs(baseline_config, config)
    if baseline_hash != config_hash or changes:
        head = (f"baseline config hash {baseline_hash[:12]} != this case's {config_hash[:12]}; fields that differ:"
                if baseline_hash != config_hash else
                f"baseline config hash {baseline_hash[:12]} is this case's, but values compared within a tolerance "
                "differ:")
        return Verdict(Outcome.STALE_BASELINE, (
            head, *change_lines(changes), "if the change is intended, refresh with --diffbench-update"))
    if strict_env and env_diff:
        fields = change_lines([(key, old, new) for key, (old, new) in sorted(env_diff.items())])
        return Verdict(Outcome.ENV_MISMATCH, ("baseline was made in another environment (--diffbench-strict-env):", *fields))
    return None


def judge_gates(scores: Mapping[str, Score], tolerances: Tolerances, baseline: Measurement | None,
                baseline_device: str, baseline_workers: int, measurement: Measurement, device_name: str,
                workers: int, metrics: MetricRegistry = REGISTRY) -> Verdict:
    """Quality (one check per scored metric), speed (absolute and relative) and memory checks.

    ``baseline`` is the baseline's measurement, timed on ``baseline_device`` by
    ``baseline_workers`` pytest processes sharing it; ``workers`` is this run's count.
    """
    checks = [metric_check(metric.name, metric.direction, metric.unit, scores[metric.name].value,
                           scores[metric.name].status, tolerances[tolerance_name(metric)], scores[metric.name].detail)
              for metric in metrics if metric.name in scores]
    checks += [
        seconds_check(measurement.seconds_per_image, tolerances["max_seconds"]),
        _slowdown_check(tolerances["time_regression"], baseline, baseline_device, baseline_workers, measurement,
                        device_name, workers),
        vram_check(measurement.peak_vram_mb, tolerances["max_vram_mb"]),
    ]
    failed = [c for c in checks if c.passed is False]
    return Verdict(failed[0].outcome if failed else Outcome.PASSED, (), tuple(checks))


def metric_check(name: str, direction: Direction, unit: str, value: float | None, status: str,
                 limit: float | None, detail: str = "") -> Check:
    """A metric's check: its ``value`` against ``limit``; ``status`` is the metric's (``ok``,
    ``off``, ``unavailable: ...``), the reason of a check that was skipped. ``detail`` is what
    the value means when the metric ran (a video's ``worst frame 3 of 8, mean 0.9712``, see
    :attr:`~pytest_diffbench.judge.metrics.Score.detail`); "" for a still."""
    note = detail if status == "ok" else status
    passed = None if limit is None or value is None else passes(direction, value, limit)
    return Check(name, value, direction.value, limit, passed, unit, note)


def seconds_check(seconds: float | None, limit: float | None) -> Check:
    """Seconds per image against ``max_seconds`` (both s)."""
    return _limit(SECONDS, seconds, limit, unit="s", outcome=Outcome.FAILED_SPEED)


def vram_check(mib: float | None, limit: float | None) -> Check:
    """Peak VRAM against ``max_vram_mb`` (both MiB); skipped without a CUDA measurement."""
    return _limit(VRAM, mib, limit, unit="MiB", outcome=Outcome.FAILED_MEMORY,
                  note="" if mib is not None else "measured on CUDA only")


def slowdown_check(slowdown: float | None, limit: float | None, passed: bool | None, note: str) -> Check:
    """The relative timing check: ``slowdown`` (a fraction, 0.5 = 50% slower than the baseline)
    against ``time_regression``, printed as percentages (``+300% <= +50%``)."""
    return Check(SLOWDOWN, slowdown, "<=", limit, passed, note=note, outcome=Outcome.FAILED_SPEED, style="%")


def timings_note(seconds: float, reference: float) -> str:
    """``0.2 s vs baseline 0.05 s``: what a slowdown that ran compared (seconds per image)."""
    return f"{format_number(seconds, reference)} s vs baseline {format_number(reference, seconds)} s"


def timing_mismatch(base_device: str, base_workers: int, device_name: str, workers: int) -> str:
    """Why a baseline's timing does not compare with this run's: it was timed on another device
    name, or by another number of pytest processes (xdist workers sharing a device slow each
    other down); "" when it compares. The slowdown check and every "change" column apply this."""
    if base_device != device_name:
        return f"baseline timed on {base_device or 'unknown'}, this run on {device_name}"
    if base_workers != workers:
        return f"baseline timed with {base_workers} pytest worker(s), this run with {workers}"
    return ""


def _limit(name: str, value: float | None, limit: float | None, *, unit: str = "", note: str = "",
           outcome: Outcome) -> Check:
    passed = None if limit is None or value is None else value <= limit
    return Check(name, value, "<=", limit, passed, unit, note, outcome)


def _slowdown_check(limit: float | None, baseline: Measurement | None, base_device: str, base_workers: int,
                    current: Measurement, device_name: str, workers: int) -> Check:
    """Relative timing, applied only when :func:`timing_mismatch` finds none."""
    if baseline is None or not baseline.seconds_per_image:
        return slowdown_check(None, limit, None, "baseline has no timing")
    seconds, reference = current.seconds_per_image, baseline.seconds_per_image
    slowdown = seconds / reference - 1.0
    mismatch = timing_mismatch(base_device, base_workers, device_name, workers)
    if mismatch:
        return slowdown_check(slowdown, limit, None, mismatch)
    return slowdown_check(slowdown, limit, None if limit is None else slowdown <= limit, timings_note(seconds, reference))



# -- the checks of a recorded result (results.csv), as the judge rendered them ----------------


def quality_checks(result: CaseResult, metrics: MetricRegistry = REGISTRY) -> list[tuple[str, Check | None]]:
    """(metric name, its check) for each registered metric, from ``result``'s recorded value,
    status and tolerance: the check the failure message showed (a metric switched off reads
    ``off``, one that could not run ``skipped (<reason>)``); None for a metric the case was
    never scored on (it ended before, e.g. on a stale baseline)."""
    checks: list[tuple[str, Check | None]] = []
    for metric in metrics:
        value, limit = result.scores.get(metric.name), result.tolerances.get(tolerance_name(metric))
        # A metric without a status column was scored ("ok") or, with its tolerance off, not computed ("off").
        status = result.metric_status.get(metric.name) or ("ok" if value is not None else OFF if limit is None else "")
        checks.append((metric.name, None if value is None and not status else metric_check(
            metric.name, metric.direction, metric.unit, value, status, limit)))
    return checks


def budget_checks(result: CaseResult) -> list[Check]:
    """The speed and memory checks of ``result`` whose budget is set (or that failed), from its
    recorded fields, as :func:`judge_gates` made them: seconds per image against ``max_seconds``,
    the slowdown against ``time_regression`` with both timings or why it was skipped, and peak
    VRAM against ``max_vram_mb``; none for a case that was not measured (it ended before generating)."""
    m = result.measurement
    if m is None:
        return []
    reference = result.baseline_seconds_per_image
    ran = {"passed": True, "failed": False}.get(result.time_check)
    if ran is not None or result.time_check in ("", OFF):
        note = timings_note(m.seconds_per_image, reference) if reference else ""
    else:
        note = result.time_check
    checks = [
        seconds_check(m.seconds_per_image, result.tolerances.get("max_seconds")),
        slowdown_check(result.slowdown, result.tolerances.get("time_regression"), ran, note),
        vram_check(m.peak_vram_mb, result.tolerances.get("max_vram_mb")),
    ]
    return [check for check in checks if check.limit is not None or check.passed is False]


def failed_checks(result: CaseResult, metrics: MetricRegistry = REGISTRY) -> list[Check]:
    """Every check of ``result`` that failed, quality first, then speed and memory."""
    quality = [check for _, check in quality_checks(result, metrics) if check is not None]
    return [check for check in (*quality, *budget_checks(result)) if check.passed is False]
