"""Each case's outcome and numbers as JUnit XML properties (``diffbench_<field>``), which CI
systems show next to the test."""

from __future__ import annotations

from typing import Any, MutableSequence

from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry
from pytest_diffbench.judge.result import STAGE_COLUMNS, CaseResult


def junit_fields(metrics: MetricRegistry = REGISTRY) -> tuple[str, ...]:
    """The results columns reported: outcome, config hash, every metric, seconds, VRAM, each
    stage's seconds and VRAM (a two-stage case's; left out for others, as every empty value), the
    device, and the attempts (more than 1 for a case pytest-rerunfailures ran again)."""
    return ("outcome", "config_hash", *(m.name for m in metrics), "seconds_per_image", "peak_vram_mb", *STAGE_COLUMNS,
            "device_name", "attempts")


def junit_properties(result: CaseResult) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for pytest's ``user_properties``; empty values are left out."""
    row: dict[str, Any] = result.to_row()
    return [(f"diffbench_{field}", str(row[field])) for field in junit_fields() if row.get(field) not in (None, "")]


def set_junit_properties(user_properties: MutableSequence[tuple[str, object]], result: CaseResult) -> None:
    """Make a test's ``user_properties`` carry ``result``'s ``diffbench_*`` properties, replacing
    those of an earlier attempt (a rerun, a setup error) rather than adding a second set."""
    user_properties[:] = [(name, value) for name, value in user_properties if not str(name).startswith("diffbench_")]
    user_properties.extend(junit_properties(result))
