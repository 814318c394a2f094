"""The verdict of one case: baseline identity first, then quality, speed and memory gates.

Every check is kept, passed or not, so a failure message and results.csv show each number
against the tolerance that was applied, and why a check was skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from pytest_diffbench.config import diff_configs
from pytest_diffbench.tolerances import Tolerances


class Outcome(str, Enum):
    PASSED = "passed"
    FAILED_QUALITY = "failed-quality"
    FAILED_SPEED = "failed-speed"
    FAILED_MEMORY = "failed-memory"
    MISSING_BASELINE = "missing-baseline"
    STALE_BASELINE = "stale-baseline"
    VERSION_MISMATCH = "version-mismatch"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    """One number against one tolerance. ``passed`` is None when the check did not apply."""

    name: str
    value: float | None
    op: str
    limit: float | None
    passed: bool | None
    unit: str = ""
    note: str = ""
    outcome: Outcome = Outcome.FAILED_QUALITY

    def render(self) -> str:
        value = "-" if self.value is None else _fmt(self.value) + self.unit
        limit = "off" if self.limit is None else f"{self.op} {_fmt(self.limit)}{self.unit}"
        status = {True: "ok", False: "FAIL", None: "skipped"}[self.passed]
        line = f"{self.name:<16} {value:>12}   {limit:<14} {status}"
        return f"{line}  ({self.note})" if self.note else line


@dataclass
class Verdict:
    outcome: Outcome
    reasons: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.4g}"


def judge_identity(config: Mapping[str, Any], config_hash: str, baseline_config: Mapping[str, Any],
                   baseline_hash: str, env_diff: Mapping[str, tuple[Any, Any]], strict_env: bool) -> Verdict | None:
    """A version-mismatch or stale-baseline verdict, or None when the baseline is this case's."""
    old_version, new_version = baseline_config.get("workflow_version"), config.get("workflow_version")
    if old_version != new_version:
        return Verdict(Outcome.VERSION_MISMATCH, [
            f"baseline was made by workflow_version {old_version!r}, this run is {new_version!r}; "
            "review the change, then refresh with --diffbench-update"])
    if baseline_hash != config_hash:
        fields = [f"  {key}: {old!r} -> {new!r}" for key, old, new in diff_configs(baseline_config, config)]
        return Verdict(Outcome.STALE_BASELINE, [
            f"baseline config hash {baseline_hash[:12]} != this case's {config_hash[:12]}; fields that differ:",
            *fields, "if the change is intended, refresh with --diffbench-update"])
    if strict_env and env_diff:
        fields = [f"  {key}: {old!r} -> {new!r}" for key, (old, new) in sorted(env_diff.items())]
        return Verdict(Outcome.VERSION_MISMATCH, [
            "baseline was made in another environment (--diffbench-strict-env):", *fields])
    return None


def judge_gates(scores: Any, tolerances: Tolerances, baseline_measurement: Mapping[str, Any],
                measurement: Mapping[str, Any]) -> Verdict:
    """Quality (SSIM, PSNR, LPIPS), speed (absolute and relative) and memory checks.

    ``measurement`` (like the baseline's) holds ``seconds_per_image``, ``peak_vram_mb``,
    ``device_name`` and ``workers``, how many pytest processes shared the device while the
    case was timed.
    """
    t = tolerances
    seconds, peak_vram_mb = measurement["seconds_per_image"], measurement["peak_vram_mb"]
    lpips_note = "" if scores.lpips_status == "ok" else scores.lpips_status
    checks = [
        _at_least("ssim", scores.ssim, t.min_ssim),
        _at_least("psnr", scores.psnr, t.min_psnr, unit=" dB"),
        _at_most("lpips", scores.lpips, t.max_lpips, note=lpips_note),
        _at_most("seconds/image", seconds, t.max_seconds, unit=" s", outcome=Outcome.FAILED_SPEED),
        _slowdown_check(t.time_regression, baseline_measurement, measurement),
        _at_most("peak VRAM", peak_vram_mb, t.max_vram_mb, unit=" MiB", outcome=Outcome.FAILED_MEMORY,
                 note="" if peak_vram_mb is not None else "measured on CUDA only"),
    ]
    failed = [c for c in checks if c.passed is False]
    outcome = failed[0].outcome if failed else Outcome.PASSED
    return Verdict(outcome, [], checks)


def _at_least(name: str, value: float | None, limit: float | None, *, unit: str = "", note: str = "",
              outcome: Outcome = Outcome.FAILED_QUALITY) -> Check:
    passed = None if limit is None or value is None else value >= limit
    return Check(name, value, ">=", limit, passed, unit, note, outcome)


def _at_most(name: str, value: float | None, limit: float | None, *, unit: str = "", note: str = "",
             outcome: Outcome = Outcome.FAILED_QUALITY) -> Check:
    passed = None if limit is None or value is None else value <= limit
    return Check(name, value, "<=", limit, passed, unit, note, outcome)


def _slowdown_check(limit: float | None, baseline: Mapping[str, Any], current: Mapping[str, Any]) -> Check:
    """Relative timing, applied only when the baseline was timed on the same device name by as
    many pytest processes (xdist workers sharing a device slow each other down)."""
    seconds, device_name, workers = current["seconds_per_image"], current["device_name"], current["workers"]
    reference = baseline.get("seconds_per_image")
    base_device = baseline.get("device_name", "")
    base_workers = int(baseline.get("workers", 1))
    if not reference:
        return Check("slowdown", None, "<=", limit, None, note="baseline has no timing", outcome=Outcome.FAILED_SPEED)
    slowdown = seconds / float(reference) - 1.0
    if base_device != device_name:
        return Check("slowdown", slowdown, "<=", limit, None, outcome=Outcome.FAILED_SPEED,
                     note=f"skipped: baseline timed on {base_device or 'unknown'}, this run on {device_name}")
    if base_workers != workers:
        return Check("slowdown", slowdown, "<=", limit, None, outcome=Outcome.FAILED_SPEED,
                     note=f"skipped: baseline timed with {base_workers} pytest worker(s), this run with {workers}")
    return _at_most("slowdown", slowdown, limit, outcome=Outcome.FAILED_SPEED,
                    note=f"{seconds:.4g} s vs baseline {float(reference):.4g} s")
