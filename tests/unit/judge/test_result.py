"""CaseResult: its results.csv row round-trips through the CSV, its columns are all derived, and
a row of another schema is refused."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from pytest_diffbench.judge.result import SCHEMA_VERSION, CaseResult, columns
from pytest_diffbench.spec.config import FrozenConfig
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement, StageMeasurement
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome
from pytest_diffbench.store.results import read_results, write_results

CONFIG = FrozenConfig(
    model="diffbench/fake", model_fingerprint="f" * 64, vae="vae-x", loras=("a.safetensors", "b.safetensors"),
    controlnets=("canny",), prompt='caf\u00e9, "quoted"\nsecond line', negative_prompt="blurry", seed=2**63 - 1,
    sampler="DPM++ 2M Karras", steps=20, cfg=5.5, width=64, height=48, workflow="FakePipeline", workflow_version="3",
    dtype="float32", device="cpu", pipeline_kwargs={"eta": 0.5, "nested": {"b": [1, 2.5], "a": "x"}, "clip_skip": 2},
    scheduler={"class": "EulerDiscreteScheduler", "timestep_spacing": "trailing"},
    pipeline_config={"force_zeros_for_empty_prompt": False}, adapters={"active": {"style": 0.6}, "fused": False},
    refiner={"model": "refiner", "handoff": 0.8}, video={"frames": 8}, deterministic=True,
    preset={"name": "sd15-fast", "version": 2}, batch=4,
)


def full_result(**changes) -> CaseResult:
    """A result with every field set, so every results column has a value."""
    result = CaseResult(
        run_id="20261128T000000Z-abcdef", timestamp="2026-11-28T00:00:00+00:00",
        nodeid="tests/test_a.py::test_a[seed9223372036854775807-dpmpp_2m_karras-20steps-cfg5.5]",
        case_id="seed9223372036854775807-dpmpp_2m_karras-20steps-cfg5.5", outcome=Outcome.FAILED_SPEED,
        message="slowdown 0.5 <= 0.1 FAIL", output_warning="the output is nearly one flat colour (0, 0, 0)",
        config_hash=CONFIG.hash, config=CONFIG.to_dict(),
        scores={"ssim": 0.987654321, "psnr": math.inf, "lpips": 0.0123}, metric_status={"lpips": "ok"},
        tolerances={"min_ssim": 0.95, "min_psnr": 25.0, "max_lpips": 0.05, "max_seconds": 10.0, "max_vram_mb": 2048.0,
                    "time_regression": 0.1},
        measurement=Measurement(1.5, 1234.5, 3.25,
                                stages=(StageMeasurement("base", 1.25, 1234.5), StageMeasurement("refiner", 0.25, 900.0))),
        baseline_seconds_per_image=1.0, baseline_device_name="NVIDIA H200", baseline_workers=2,
        slowdown=0.5, time_check="failed",
        tolerance_source="noise floor of the case in baselines/noise-floor.json (pin cpu-float32)",
        ssim_vs_most_steps=0.75,
        machine=MachineInfo(device_name="NVIDIA H200", driver="580.1", cuda="13.0", torch="2.4.1", diffusers="0.31.0",
                            transformers="4.46.0", python="3.11.7"),
        worker="gw1", workers=2, env_diff="torch: 2.3.0 -> 2.4.1", pin="cuda-float16", seed_plan="nightly", seed_index=3,
        baseline_action=BaselineAction.REFRESHED,
        baseline_path="baselines/x.png", output_path=".diffbench/runs/r/images/x.png",
    )
    return result.with_changes(**changes) if changes else result


def through_csv(tmp_path: Path, *results: CaseResult) -> list[CaseResult]:
    return read_results(write_results(tmp_path / "results.csv", [r.to_row() for r in results]))


def test_a_full_result_round_trips_through_results_csv(tmp_path):
    original = full_result()
    (back,) = through_csv(tmp_path, original)
    assert back == original
    assert back.setting("seed") == 2**63 - 1 and isinstance(back.setting("seed"), int)
    assert back.scores["psnr"] == math.inf
    assert back.setting("pipeline_kwargs") == {"clip_skip": 2, "eta": 0.5, "nested": {"a": "x", "b": [1, 2.5]}}


def test_none_values_come_back_as_none(tmp_path):
    sparse = CaseResult(run_id="r", timestamp="t", nodeid="t.py::test_x[seed0-euler-20steps-cfg7.5]", case_id="seed0",
                        outcome=Outcome.ERROR, message="boom", config={"seed": 0, "sampler": "Euler", "steps": 20, "cfg": 7.5},
                        scores={"ssim": None, "psnr": None, "lpips": None}, metric_status={"lpips": ""},
                        tolerances={"min_ssim": 0.95, "min_psnr": 25.0, "max_lpips": None, "max_seconds": None,
                                    "max_vram_mb": None, "time_regression": None})
    (back,) = through_csv(tmp_path, sparse)
    assert back == sparse
    assert back.measurement is None and back.slowdown is None and back.tolerances["max_lpips"] is None


def test_empty_config_values_are_absent_after_the_csv(tmp_path):
    # A CSV cell cannot tell None from "": both are empty, and setting() answers None for both.
    original = full_result(config={**CONFIG.to_dict(), "negative_prompt": None, "vae": ""})
    (back,) = through_csv(tmp_path, original)
    assert back.setting("negative_prompt") is None and back.setting("vae") is None
    assert back.config == {k: v for k, v in original.config.items() if v not in (None, "")}


def test_hook_columns_round_trip_as_text(tmp_path):
    (back,) = through_csv(tmp_path, full_result(extra={"team": "imaging", "gpu_hours": "3"}))
    assert back.extra == {"gpu_hours": "3", "team": "imaging"}


def test_transport_round_trip_keeps_the_failure_text():
    original = full_result(failure_text="diffbench failed-speed: ...\n  slowdown 0.5 <= 0.1 FAIL")
    assert CaseResult.from_transport(original.to_transport()) == original


def test_schema_version_column_is_written(tmp_path):
    path = write_results(tmp_path / "results.csv", [full_result().to_row()])
    with open(path, newline="", encoding="utf-8") as handle:
        (cells,) = list(csv.DictReader(handle))
    assert cells["schema_version"] == str(SCHEMA_VERSION)


@pytest.mark.parametrize("version", ["1", "", "99"])
def test_a_row_of_another_schema_version_is_refused_naming_it(tmp_path, version):
    path = write_results(tmp_path / "results.csv", [{**full_result().to_row(), "schema_version": version}])
    with pytest.raises(ValueError, match=f"schema_version {version!r}; this pytest-diffbench reads version {SCHEMA_VERSION}"):
        read_results(path)


def test_a_row_without_the_column_is_refused():
    row = full_result().to_row()
    del row["schema_version"]
    with pytest.raises(ValueError, match="schema_version None"):
        CaseResult.from_row(row)


def test_an_unknown_outcome_is_refused_naming_the_case():
    with pytest.raises(ValueError, match="tests/test_a.py::test_a.*unknown outcome"):
        CaseResult.from_row({**full_result().to_row(), "outcome": "exploded"})


def test_every_row_key_is_a_column_and_every_column_is_filled():
    row = full_result().to_row()
    assert list(row) == list(columns())
    empty = [key for key, value in row.items() if value is None or value == ""]
    assert empty == [], "columns that a fully populated result leaves empty are derived from nothing"


def test_the_row_of_a_sparse_result_still_has_every_column():
    row = CaseResult(run_id="r", timestamp="t", nodeid="t.py::x", case_id="", outcome=Outcome.PASSED).to_row()
    assert list(row) == list(columns())


@pytest.mark.parametrize("column, text", [("ssim", "high"), ("seconds_per_image", "fast"), ("peak_vram_mb", "1 GiB"),
                                          ("max_seconds", "soon"), ("workers", "two")])
def test_a_cell_that_is_not_a_number_is_refused_naming_its_column(column, text):
    with pytest.raises(ValueError, match=f"column '{column}' holds '{text}', not a number"):
        CaseResult.from_row({**full_result().to_row(), column: text})
