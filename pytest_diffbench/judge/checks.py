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
from pytest_diffbench.judge.tolerances import Tolerances
from pytest_diffbench.spec.config import diff_configs
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import Outcome

#: Name of the relative-timing check (results.csv's ``slowdown`` column).
SLOWDOWN = "slowdown"
#: The status of a check whose tolerance is off, or whose metric is (``diffbench_lpips = off``).
OFF = "off"


@dataclass(frozen=True)
class Check:
    """One number against one tolerance. ``passed`` is None when the check did not apply: its
    tolerance is off (``limit`` None), or ``note`` says why it was skipped.

    ``note`` is what the number means when the check ran (``0.5 s vs baseline 0.4 s``), and
    the bare reason when it was skipped (``baseline timed on A100, this run on H100``): the
    rendering adds the word "skipped" once.
    """

    name: str
    value: float | None
    op: str
    limit: float | None
    passed: bool | None
    unit: str = ""
    note: str = ""
    outcome: Outcome = Outcome.FAILED_QUALITY

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
        unit = f" {self.unit}" if self.unit else ""
        value = "-" if self.value is None else format_number(self.value, self.limit) + unit
        if self.limit is None:
            return f"{self.name:<16} {value:>12}   {OFF}"
        limit = f"{self.op} {format_number(self.limit, self.value)}{unit}"
        line = f"{self.name:<16} {value:>12}   {limit:<14} {self.status}"
        return f"{line}  ({self.note})" if self.note and self.passed is not None else line


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
_STYLES = {"g": (4, "{:.{}g}"), "%": (0, "{:+.{}%}"), "f": (0, "{:.{}f}")}
#: A float has at most this many significant digits worth printing.
_MAX_DIGITS = 17


def format_number(value: float, beside: float | None = None, *, style: str = "g") -> str:
    """``value`` in ``style``: ``g`` 4 significant digits (``0.9876``), ``%`` a signed percentage
    (``+50%``), ``f`` a whole number (``2048``); ``inf`` / ``-inf`` for infinities.

    ``beside`` is the number printed next to it (a check's limit, a baseline's timing): when the
    two differ but would print alike (``ssim 1 >= 1 FAIL``), digits are added until they do not
    (``0.99999 >= 1``). Format both with each other as ``beside`` so they get the same digits.
    """
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    digits, spec = _STYLES[style]
    if beside is not None and math.isfinite(beside) and beside != value:
        while digits < _MAX_DIGITS and spec.format(value, digits) == spec.format(beside, digits):
            digits += 1
    return spec.format(value, digits)


def judge_identity(config: Mapping[str, Any], config_hash: str, baseline_config: Mapping[str, Any],
                   baseline_hash: str, env_diff: Mapping[str, tuple[str, str]], strict_env: bool) -> Verdict | None:
    """A version-mismatch, stale-baseline or (with ``strict_env``) env-mismatch verdict, or None
    when the baseline is this case's."""
    old_version, new_version = baseline_config.get("workflow_version"), config.get("workflow_version")
    if old_version != new_version:
        return Verdict(Outcome.VERSION_MISMATCH, (
            f"baseline was made by workflow_version {old_version!r}, this run is {new_version!r}; "
            "review the change, then refresh with --diffbench-update",))
    if baseline_hash != config_hash:
        fields = [f"  {key}: {old!r} -> {new!r}" for key, old, new in diff_configs(baseline_config, config)]
        return Verdict(Outcome.STALE_BASELINE, (
            f"baseline config hash {baseline_hash[:12]} != this case's {config_hash[:12]}; fields that differ:",
            *fields, "if the change is intended, refresh with --diffbench-update"))
    if strict_env and env_diff:
        fields = [f"  {key}: {old!r} -> {new!r}" for key, (old, new) in sorted(env_diff.items())]
        return Verdict(Outcome.ENV_MISMATCH, ("baseline was made in another environment (--diffbench-strict-env):", *fields))
    return None


def judge_gates(scores: Mapping[str, Score], tolerances: Tolerances, baseline: Measurement | None,
                baseline_device: str, baseline_workers: int, measurement: Measurement, device_name: str,
                workers: int, metrics: MetricRegistry = REGISTRY) -> Verdict:
    """Quality (one check per scored metric), speed (absolute and relative) and memory checks.

    ``baseline`` is the baseline's measurement, timed on ``baseline_device`` by
    ``baseline_workers`` pytest processes sharing it; ``workers`` is this run's count.
    """
    checks = [_metric_check(metric.name, metric.direction, metric.unit, scores[metric.name], tolerances[tolerance_name(metric)])
              for metric in metrics if metric.name in scores]
    checks += [
        _limit("seconds/image", measurement.seconds_per_image, tolerances["max_seconds"], unit="s", outcome=Outcome.FAILED_SPEED),
        _slowdown_check(tolerances["time_regression"], baseline, baseline_device, baseline_workers, measurement,
                        device_name, workers),
        _limit("peak VRAM", measurement.peak_vram_mb, tolerances["max_vram_mb"], unit="MiB", outcome=Outcome.FAILED_MEMORY,
               note="" if measurement.peak_vram_mb is not None else "measured on CUDA only"),
    ]
    failed = [c for c in checks if c.passed is False]
    return Verdict(failed[0].outcome if failed else Outcome.PASSED, (), tuple(checks))


def _metric_check(name: str, direction: Direction, unit: str, score: Score, limit: float | None) -> Check:
    note = "" if score.status == "ok" else score.status
    passed = None if limit is None or score.value is None else passes(direction, score.value, limit)
    return Check(name, score.value, direction.value, limit, passed, unit, note)


def _limit(name: str, value: float | None, limit: float | None, *, unit: str = "", note: str = "",
           outcome: Outcome) -> Check:
    passed = None if limit is None or value is None else value <= limit
    return Check(name, value, "<=", limit, passed, unit, note, outcome)


def _slowdown_check(limit: float | None, baseline: Measurement | None, base_device: str, base_workers: int,
                    current: Measurement, device_name: str, workers: int) -> Check:
    """Relative timing, applied only when the baseline was timed on the same device name by as
    many pytest processes (xdist workers sharing a device slow each other down)."""
    if baseline is None or not baseline.seconds_per_image:
        return Check(SLOWDOWN, None, "<=", limit, None, note="baseline has no timing", outcome=Outcome.FAILED_SPEED)
    seconds, reference = current.seconds_per_image, baseline.seconds_per_image
    slowdown = seconds / reference - 1.0
    if base_device != device_name:
        return Check(SLOWDOWN, slowdown, "<=", limit, None, outcome=Outcome.FAILED_SPEED,
                     note=f"baseline timed on {base_device or 'unknown'}, this run on {device_name}")
    if base_workers != workers:
        return Check(SLOWDOWN, slowdown, "<=", limit, None, outcome=Outcome.FAILED_SPEED,
                     note=f"baseline timed with {base_workers} pytest worker(s), this run with {workers}")
    return _limit(SLOWDOWN, slowdown, limit, outcome=Outcome.FAILED_SPEED,
                  note=f"{format_number(seconds, reference)} s vs baseline {format_number(reference, seconds)} s")
