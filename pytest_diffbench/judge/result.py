""":class:`CaseResult`: the record of one finished case, and its results.csv row.

Every artifact (results.csv, summary.md, the terminal table, grids, plot.png, report.html, the
bundle), the JUnit properties and the ``diffbench`` command read this type; none reads a loose
dict. Its columns are derived from the frozen config's fields, the metric registry (a value, its
tolerance and, for metrics that report one, a status per metric), the budgets and the machine
fields, so a renamed field is a changed column, never an empty one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry, reserve, status_column, tolerance_name
from pytest_diffbench.judge.tolerances import BUDGETS
from pytest_diffbench.spec.config import CONFIG_KEYS, OPTIONAL_KEYS
from pytest_diffbench.spec.machine import RESULT_FIELDS, MachineInfo
from pytest_diffbench.spec.measurement import STAGE_FIGURES, STAGE_NAMES, Measurement, StageMeasurement, stage_column
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

#: Bumped when a column changes meaning or goes away (added columns do not bump it).
SCHEMA_VERSION = 2
#: The key of :meth:`CaseResult.to_transport`'s fields that are not results columns.
_TRANSPORT_KEY = "_diffbench_transport"


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome, every number against its tolerance, and where its files lie.

    ``config`` holds the frozen config (:class:`~pytest_diffbench.spec.config.FrozenConfig`'s
    fields) or, for a case that ended before generating, just its seed, sampler, steps and cfg.
    ``scores`` maps a metric name to its value (None: not scored), ``metric_status`` to ``ok``,
    ``off`` or ``unavailable: ...``. Times are seconds, memory MiB.
    """

    run_id: str
    timestamp: str
    nodeid: str
    case_id: str
    outcome: Outcome
    message: str = ""
    config_hash: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    scores: Mapping[str, float | None] = field(default_factory=dict)
    metric_status: Mapping[str, str] = field(default_factory=dict)
    tolerances: Mapping[str, float | None] = field(default_factory=dict)
    measurement: Measurement | None = None
    baseline_seconds_per_image: float | None = None
    #: The device the baseline's timing was measured on (its sidecar's ``device_name``, or this
    #: run's device when the case wrote its own baseline); "" without a baseline timing, or in a
    #: results.csv written before the column existed.
    baseline_device_name: str = ""
    #: How many pytest processes shared the device when the baseline was timed (its sidecar's
    #: ``workers``); None without a baseline timing, or in a results.csv written before the column.
    baseline_workers: int | None = None
    slowdown: float | None = None
    #: passed / failed, ``off`` without a time_regression tolerance, or why the check was skipped.
    time_check: str = ""
    #: Where the gates' tolerances came from (see :class:`~pytest_diffbench.judge.tolerances.AppliedTolerances`):
    #: ``ini``, or the noise floor of the case or its test; "" for a case that ended before judging.
    tolerance_source: str = ""
    #: SSIM against the most-steps image of the case's sweep group (see judge.convergence).
    ssim_vs_most_steps: float | None = None
    #: Why the output looks suspicious without being refused (nearly one flat colour); "" when not.
    output_warning: str = ""
    machine: MachineInfo = field(default_factory=MachineInfo)
    worker: str = "main"
    workers: int = 1
    #: How many times pytest ran the case (more than 1 under pytest-rerunfailures); this is the last.
    attempts: int = 1
    env_diff: str = ""
    pin: str = ""
    #: The seed plan the case's seed came from (its label, ``name`` or ``name@salt``) and the seed's
    #: index in it (see spec/seeds.py); "" and None when the seeds were a list, a range or an int.
    seed_plan: str = ""
    seed_index: int | None = None
    baseline_action: BaselineAction = BaselineAction.NONE
    baseline_path: str = ""
    output_path: str = ""
    #: The full failure message shown by pytest (not a results column); "" when passed.
    failure_text: str = ""
    #: Columns added by ``pytest_diffbench_result_row`` hooks.
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def test(self) -> str:
        """The node id without the parameters: ``examples/test_a.py::test_b``."""
        return self.nodeid.split("[")[0]

    @property
    def short_id(self) -> str:
        """The node id without the file: ``test_b[seed0-euler-20steps-cfg7.5]``."""
        return self.nodeid.split("::", 1)[-1]

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def setting(self, name: str) -> Any:
        """A frozen-config field (``sampler``, ``steps``, ``prompt``, ...), None when absent."""
        return self.config.get(name)

    def with_changes(self, **changes: Any) -> "CaseResult":
        return dataclasses.replace(self, **changes)

    # -- results.csv --------------------------------------------------------------------------

    def to_row(self, metrics: MetricRegistry = REGISTRY) -> dict[str, Any]:
        """The results.csv row: every column of :func:`columns`, plain values (None for empty)."""
        m = self.measurement
        row: dict[str, Any] = {
            "run_id": self.run_id, "timestamp": self.timestamp, "nodeid": self.nodeid, "test": self.test,
            "case_id": self.case_id, "config_hash": self.config_hash,
            "seed_plan": self.seed_plan, "seed_index": self.seed_index,
            **{key: self.config.get(key) for key in CONFIG_KEYS},
            "outcome": self.outcome.value, "message": self.message, "output_warning": self.output_warning,
        }
        for metric in metrics:
            row[metric.name] = self.scores.get(metric.name)
            row[tolerance_name(metric)] = self.tolerances.get(tolerance_name(metric))
            if metric.reports_status:
                row[status_column(metric)] = self.metric_status.get(metric.name, "")
        row.update({
            "seconds_per_image": m.seconds_per_image if m else None,
            "max_seconds": self.tolerances.get("max_seconds"),
            "baseline_seconds_per_image": self.baseline_seconds_per_image,
            "baseline_device_name": self.baseline_device_name,
            "baseline_workers": self.baseline_workers,
            "slowdown": self.slowdown,
            "time_regression": self.tolerances.get("time_regression"),
            "time_check": self.time_check,
            "tolerance_source": self.tolerance_source,
            "peak_vram_mb": m.peak_vram_mb if m else None,
            "max_vram_mb": self.tolerances.get("max_vram_mb"),
            "warmup_seconds": m.warmup_seconds if m else None,
            **_stage_cells(m),
            "ssim_vs_most_steps": self.ssim_vs_most_steps,
            **self.machine.result_fields(),
            "worker": self.worker, "workers": self.workers, "attempts": self.attempts, "env_diff": self.env_diff,
            "pin": self.pin, "baseline_action": self.baseline_action.value,
            "baseline_path": self.baseline_path, "output_path": self.output_path,
            "schema_version": SCHEMA_VERSION,
        })
        row.update({key: value for key, value in self.extra.items() if key not in row})
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any], metrics: MetricRegistry = REGISTRY) -> "CaseResult":
        """A result from a results.csv row (cells as text) or from :meth:`to_row`.

        Raises ValueError naming the column when the row is not of this schema.
        """
        version = _int(row, "schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"results row has schema_version {row.get('schema_version')!r}; this pytest-diffbench "
                             f"reads version {SCHEMA_VERSION} (rerun pytest --diffbench to make the folder anew)")
        try:
            outcome = Outcome(row["outcome"])
            action = BaselineAction(row.get("baseline_action") or "")
        except (KeyError, ValueError) as exc:
            raise ValueError(f"results row of {row.get('nodeid')!r} has an unknown outcome or baseline_action: {exc}") from None
        config = {key: _config_value(key, row.get(key)) for key in CONFIG_KEYS if _cell(row.get(key)) is not None}
        seconds = _float(row, "seconds_per_image")
        known = set(columns(metrics))
        return cls(
            run_id=str(row.get("run_id") or ""), timestamp=str(row.get("timestamp") or ""),
            nodeid=str(row["nodeid"]), case_id=str(row.get("case_id") or ""), outcome=outcome,
            message=str(row.get("message") or ""), output_warning=str(row.get("output_warning") or ""),
            config_hash=str(row.get("config_hash") or ""), config=config,
            seed_plan=str(row.get("seed_plan") or ""), seed_index=_int(row, "seed_index"),
            scores={m.name: _float(row, m.name) for m in metrics},
            metric_status={m.name: str(row.get(status_column(m)) or "") for m in metrics if m.reports_status},
            tolerances={name: _float(row, name) for name in (*(tolerance_name(m) for m in metrics), *(b.name for b in BUDGETS))},
            measurement=None if seconds is None else Measurement(
                seconds, _float(row, "peak_vram_mb"), _float(row, "warmup_seconds"),
                stages=_stages(row)),
            baseline_seconds_per_image=_float(row, "baseline_seconds_per_image"),
            baseline_device_name=str(row.get("baseline_device_name") or ""),
            baseline_workers=_int(row, "baseline_workers"),
            slowdown=_float(row, "slowdown"), time_check=str(row.get("time_check") or ""),
            tolerance_source=str(row.get("tolerance_source") or ""),
            ssim_vs_most_steps=_float(row, "ssim_vs_most_steps"),
            machine=MachineInfo.from_mapping({key: row.get(key) or "" for key in RESULT_FIELDS}),
            worker=str(row.get("worker") or "main"), workers=_int(row, "workers") or 1,
            attempts=_int(row, "attempts") or 1,
            env_diff=str(row.get("env_diff") or ""), pin=str(row.get("pin") or ""), baseline_action=action,
            baseline_path=str(row.get("baseline_path") or ""), output_path=str(row.get("output_path") or ""),
            extra={key: str(value) for key, value in row.items() if key not in known and _cell(value) is not None},
        )

    # -- transport (xdist reports) ---------------------------------------------------------

    def to_transport(self) -> dict[str, Any]:
        """The row plus what results.csv leaves out (the failure text, the whole machine record):
        plain JSON-able values that execnet can send to the xdist controller."""
        return {**self.to_row(), _TRANSPORT_KEY: {"failure_text": self.failure_text, "machine": self.machine.as_dict()}}

    @classmethod
    def from_transport(cls, data: Mapping[str, Any]) -> "CaseResult":
        row = {key: value for key, value in data.items() if key != _TRANSPORT_KEY}
        more = data.get(_TRANSPORT_KEY) or {}
        return cls.from_row(row).with_changes(failure_text=str(more.get("failure_text") or ""),
                                              machine=MachineInfo.from_mapping(more.get("machine") or {}))


def columns(metrics: MetricRegistry = REGISTRY) -> tuple[str, ...]:
    """results.csv's columns in order: identity, frozen config, verdict (each metric by its
    tolerance, then the budgets), the sweep score, the machine, the files, the schema version."""
    metric_columns: list[str] = []
    for metric in metrics:
        metric_columns += [metric.name, tolerance_name(metric)] + ([status_column(metric)] if metric.reports_status else [])
    return (
        ("run_id", "timestamp", "nodeid", "test", "case_id", "config_hash", "seed_plan", "seed_index") + CONFIG_KEYS
        + ("outcome", "message", "output_warning", *metric_columns,
           "seconds_per_image", "max_seconds", "baseline_seconds_per_image", "baseline_device_name", "baseline_workers",
           "slowdown", "time_regression",
           "time_check", "tolerance_source", "peak_vram_mb", "max_vram_mb", "warmup_seconds", *STAGE_COLUMNS,
           "ssim_vs_most_steps")
        + RESULT_FIELDS + ("worker", "workers", "attempts", "env_diff", "pin", "baseline_action", "baseline_path", "output_path",
                           "schema_version")
    )


#: The per-stage columns of a two-stage case (``base_seconds_per_image``, ``base_peak_vram_mb``,
#: ``refiner_...``), empty for a case of one pipeline call.
STAGE_COLUMNS = tuple(stage_column(stage, figure) for stage in STAGE_NAMES for figure in STAGE_FIGURES)


def _stage_cells(measurement: Measurement | None) -> dict[str, float | None]:
    """The :data:`STAGE_COLUMNS` cells of ``measurement`` (None where it has no such stage)."""
    cells: dict[str, float | None] = dict.fromkeys(STAGE_COLUMNS)
    for stage in measurement.stages if measurement else ():
        cells.update({stage_column(stage.name, figure): getattr(stage, figure) for figure in STAGE_FIGURES})
    return cells


def _stages(row: Mapping[str, Any]) -> tuple[StageMeasurement, ...]:
    """The stages a row's :data:`STAGE_COLUMNS` hold, in :data:`STAGE_NAMES` order (one whose
    seconds cell is empty did not run)."""
    found = []
    for name in STAGE_NAMES:
        seconds = _float(row, stage_column(name, "seconds_per_image"))
        if seconds is not None:
            found.append(StageMeasurement(name, seconds, _float(row, stage_column(name, "peak_vram_mb"))))
    return tuple(found)


def _cell(value: Any) -> Any:
    """None for empty cells (CSV gives "" or NaN)."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _float(row: Mapping[str, Any], column: str) -> float | None:
    """The number in ``row[column]``, None when the cell is empty. Raises ValueError naming the
    column and the row's node id when the cell holds something else (``fast``, ``high``)."""
    value = _cell(row.get(column))
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"results row of {row.get('nodeid')!r}: column {column!r} holds {str(value)[:40]!r}, "
                         "not a number") from None


def _int(row: Mapping[str, Any], column: str) -> int | None:
    number = _float(row, column)
    return None if number is None or not math.isfinite(number) else int(number)


_INT_CONFIG = ("seed", "steps", "width", "height", "batch")
#: Config cells that hold a flag (written True or False).
_BOOL_CONFIG = ("deterministic",)
#: Config cells that hold JSON (lists and objects).
_JSON_CONFIG = ("loras", "controlnets", "pipeline_kwargs", *OPTIONAL_KEYS)


def _config_value(key: str, value: Any) -> Any:
    """A config cell back to its value: numbers as numbers, lists and dicts from their JSON."""
    if not isinstance(value, str):
        return value
    try:
        if key in _INT_CONFIG:
            return int(value)
        if key == "cfg":
            return float(value)
        if key in _BOOL_CONFIG and value in ("True", "False"):
            return value == "True"
    except ValueError:
        return value
    if key in _JSON_CONFIG and value[:1] in "[{":
        return json.loads(value)
    return value


# No metric may take a built-in column's name (results.csv could not be read back).
reserve(columns(MetricRegistry(())), "a results.csv column")
