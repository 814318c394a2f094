"""The baseline lifecycle as one pure function: judge(inputs, baseline, update) -> (result, action, sidecar, ...).

No pytest run, no torch, no files: each test builds the inputs of a finished case and the
baseline it meets from small PIL images (see the ``lifecycle`` fixture in conftest.py).
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest

from pytest_diffbench.judge.lifecycle import ACCEPT_SPEED, judge
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome


UPDATES = [None, "missing", "all"]


# -- missing and unreadable baselines --------------------------------------------------------


def test_missing_baseline_fails_and_says_how_to_create_it(lifecycle):
    inputs = lifecycle.inputs()
    result, action = lifecycle.judge(inputs, None)
    assert (result.outcome, action) == (Outcome.MISSING_BASELINE, BaselineAction.NONE)
    assert f"no baseline at {inputs.baseline_path}" in result.message
    assert "pytest --diffbench --diffbench-update=missing" in result.message
    assert result.failure_text.startswith(f"diffbench missing-baseline: {inputs.nodeid}\n")
    assert result.scores == {} and result.baseline_path == "" and result.output_path == inputs.output_path


@pytest.mark.parametrize("update", ["missing", "all"])
def test_missing_baseline_is_created_with_update(lifecycle, update):
    inputs = lifecycle.inputs(seconds=0.25)
    result, action = lifecycle.judge(inputs, None, update)
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.CREATED)
    assert action.wrote
    assert result.scores["ssim"] == 1.0 and result.scores["psnr"] == math.inf  # judged against itself
    assert result.baseline_seconds_per_image == 0.25 and result.baseline_path == inputs.baseline_path
    assert result.baseline_action is BaselineAction.CREATED and result.failure_text == ""


def test_broken_baseline_is_an_error_naming_the_fault(lifecycle):
    broken = lifecycle.broken("baseline sidecar b.json lacks config_hash; rewrite it with --diffbench-update")
    result, action = lifecycle.judge(lifecycle.inputs(), broken)
    assert (result.outcome, action) == (Outcome.ERROR, BaselineAction.NONE)
    assert result.message == broken.message
    assert broken.message in result.failure_text


@pytest.mark.parametrize("update", ["missing", "all"])
def test_broken_baseline_is_rewritten_with_update(lifecycle, update):
    result, action = lifecycle.judge(lifecycle.inputs(), lifecycle.broken(), update)
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.REWRITTEN)
    assert result.baseline_action is BaselineAction.REWRITTEN


# -- an update whose write did not happen (another run wrote the pair meanwhile) -------------------

NOTE = "not refreshed: baseline b.png was changed by another run after this run read it, so this run did not write over it"


def test_a_note_leads_the_message_of_a_case_judged_again_after_a_conflict(lifecycle):
    inputs = lifecycle.inputs()
    result, action, *_ = judge(inputs, lifecycle.baseline(inputs), None, note=NOTE)
    assert (result.outcome, action, result.baseline_action) == (Outcome.PASSED, BaselineAction.NONE, BaselineAction.NONE)
    assert result.message == NOTE and result.failure_text == ""  # passed against the other run's (equal) picture


@pytest.mark.parametrize("other", ["another-picture", "removed", "broken"])
def test_a_note_leads_the_failure_text_of_a_case_judged_again_after_a_conflict(lifecycle, other):
    inputs = lifecycle.inputs()
    now = {"another-picture": lifecycle.baseline(inputs, image=lifecycle.checkerboard()), "removed": None,
           "broken": lifecycle.broken()}[other]
    result, action, *_ = judge(inputs, now, None, note=NOTE)
    assert action is BaselineAction.NONE and not result.passed
    assert result.message.startswith(NOTE + "; ")
    assert result.failure_text.splitlines()[2] == f"  {NOTE}"


# -- identity: workflow version, config hash, environment ------------------------------------


@pytest.mark.parametrize("update", [None, "missing"])
def test_version_mismatch(lifecycle, update):
    inputs = lifecycle.inputs()
    old = dataclasses.replace(lifecycle.config, workflow_version="0")
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs, config=old), update)
    assert (result.outcome, action) == (Outcome.VERSION_MISMATCH, BaselineAction.NONE)
    assert "workflow_version '0', this run is '1'" in result.message
    assert result.scores == {}  # not compared: the images belong to different workflows


def test_stale_baseline_lists_the_fields_that_differ(lifecycle):
    inputs = lifecycle.inputs()
    old = dataclasses.replace(lifecycle.config, seed=1, steps=30)
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs, config=old))
    assert (result.outcome, action) == (Outcome.STALE_BASELINE, BaselineAction.NONE)
    assert f"baseline config hash {old.short_hash} != this case's {lifecycle.config.short_hash}" in result.message
    assert "seed: 1 -> 0" in result.message and "steps: 30 -> 20" in result.message
    lines = result.failure_text.splitlines()
    assert "    seed: 1 -> 0" in lines and "    steps: 30 -> 20" in lines
    assert f"  baseline: {inputs.baseline_path}" in lines


@pytest.mark.parametrize("changed", ["version", "config"])
def test_update_all_refreshes_a_changed_baseline(lifecycle, changed):
    inputs = lifecycle.inputs()
    old = dataclasses.replace(lifecycle.config, workflow_version="0") if changed == "version" else dataclasses.replace(lifecycle.config, seed=9)
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs, config=old, image=lifecycle.checkerboard()), "all")
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.REFRESHED)
    assert result.scores["ssim"] == 1.0


def test_environment_difference_is_reported_and_fails_only_with_strict_env(lifecycle):
    elsewhere = dataclasses.replace(lifecycle.machine, torch="2.3.0")
    relaxed = lifecycle.inputs()
    result, _ = lifecycle.judge(relaxed, lifecycle.baseline(relaxed, machine=elsewhere))
    assert result.outcome is Outcome.PASSED
    assert result.env_diff == "torch: 2.3.0 -> 2.4.1"

    strict = lifecycle.inputs(strict_env=True)
    result, action = lifecycle.judge(strict, lifecycle.baseline(strict, machine=elsewhere))
    assert (result.outcome, action) == (Outcome.ENV_MISMATCH, BaselineAction.NONE)
    assert "--diffbench-strict-env" in result.message and "torch: '2.3.0' -> '2.4.1'" in result.message
    assert result.failure_text.count("2.3.0") == 1  # the reasons list each field; no second environment line


# -- quality, speed, memory ------------------------------------------------------------------


def test_same_image_passes_with_every_score(lifecycle):
    inputs = lifecycle.inputs()
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs))
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.NONE)
    assert result.scores == {"ssim": 1.0, "psnr": math.inf, "lpips": None}
    assert result.metric_status == {"ssim": "ok", "psnr": "ok", "lpips": "off"}
    assert result.tolerances["min_ssim"] == 0.95 and result.message == "" and result.failure_text == ""


@pytest.mark.parametrize("update", [None, "missing"])
def test_quality_failure(lifecycle, update):
    inputs = lifecycle.inputs()
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs, image=lifecycle.checkerboard()), update)
    assert (result.outcome, action) == (Outcome.FAILED_QUALITY, BaselineAction.NONE)
    assert result.scores["ssim"] < 0.95 and result.scores["psnr"] < 25
    assert "ssim" in result.message and "FAIL" in result.message
    text = result.failure_text
    assert text.startswith(f"diffbench failed-quality: {inputs.nodeid}\n")
    assert f"case {inputs.case_id}, config {lifecycle.config.short_hash}, pin cpu-float32" in text
    assert [line.split()[0] for line in text.splitlines() if line.rstrip().endswith("FAIL")] == ["ssim", "psnr"]
    assert f"  output:   {inputs.output_path}" in text.splitlines()


def test_update_all_refreshes_a_quality_failure(lifecycle):
    inputs = lifecycle.inputs()
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs, image=lifecycle.gradient(phase=128)), "all")
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.REFRESHED)
    assert result.scores["ssim"] == 1.0


@pytest.mark.parametrize("update", UPDATES)
def test_a_relative_slowdown_fails_and_no_update_rewrites_its_timing(lifecycle, update):
    inputs = lifecycle.inputs(seconds=2.0, tolerances={"time_regression": 0.1})
    stored = lifecycle.baseline(inputs, seconds=1.0)
    judgement = lifecycle.judgement(inputs, stored, update)
    result = judgement.result
    assert (result.outcome, judgement.action, judgement.sidecar) == (Outcome.FAILED_SPEED, BaselineAction.NONE, None)
    assert result.slowdown == pytest.approx(1.0) and result.time_check == "failed"
    assert result.baseline_seconds_per_image == 1.0
    assert "accept it with: pytest --diffbench --diffbench-update-timing" in result.message
    assert ACCEPT_SPEED in result.failure_text


@pytest.mark.parametrize("update", UPDATES)
def test_update_timing_rewrites_the_timing_and_keeps_the_image(lifecycle, update):
    inputs = lifecycle.inputs(seconds=2.0, tolerances={"time_regression": 0.1})
    stored = lifecycle.baseline(inputs, seconds=1.0, image=lifecycle.gradient())
    judgement = lifecycle.judgement(inputs, stored, update, update_timing=True)
    assert (judgement.result.outcome, judgement.action, judgement.keeps_image) == (Outcome.PASSED, BaselineAction.RETIMED, True)
    assert judgement.sidecar == dataclasses.replace(stored.sidecar, measurement=Measurement(2.0))
    assert judgement.result.slowdown == 0.0 and judgement.result.baseline_seconds_per_image == 2.0
    assert judgement.result.message == ("timing reference rewritten (--diffbench-update-timing): 1 s -> 2 s per image; "
                                        "the image is the baseline's")


def test_update_timing_writes_nothing_when_the_timing_is_this_runs(lifecycle):
    inputs = lifecycle.inputs(seconds=2.0, tolerances={"time_regression": 0.1})
    judgement = lifecycle.judgement(inputs, lifecycle.baseline(inputs), update_timing=True)
    assert (judgement.result.outcome, judgement.action, judgement.sidecar) == (Outcome.PASSED, BaselineAction.NONE, None)
    assert judgement.result.message == ""


@pytest.mark.parametrize("update", [None, "missing"])
def test_update_timing_leaves_a_case_whose_image_fails(lifecycle, update):
    inputs = lifecycle.inputs(seconds=2.0)
    stored = lifecycle.baseline(inputs, seconds=1.0, image=lifecycle.checkerboard())
    judgement = lifecycle.judgement(inputs, stored, update, update_timing=True)
    assert (judgement.result.outcome, judgement.action) == (Outcome.FAILED_QUALITY, BaselineAction.NONE)


def test_a_refresh_for_quality_rewrites_image_and_timing_together(lifecycle):
    inputs = lifecycle.inputs(seconds=2.0, tolerances={"time_regression": 0.1})
    stored = lifecycle.baseline(inputs, seconds=1.0, image=lifecycle.checkerboard())
    judgement = lifecycle.judgement(inputs, stored, "all")
    assert (judgement.result.outcome, judgement.action, judgement.keeps_image) == (Outcome.PASSED, BaselineAction.REFRESHED, False)
    assert judgement.sidecar == inputs.sidecar() and judgement.result.baseline_seconds_per_image == 2.0


def test_absolute_max_seconds_still_fails_after_a_refresh(lifecycle):
    inputs = lifecycle.inputs(seconds=2.0, tolerances={"max_seconds": 1.5})
    over_budget = lifecycle.baseline(inputs)
    result, action = lifecycle.judge(inputs, over_budget, "all")
    assert (result.outcome, action) == (Outcome.FAILED_SPEED, BaselineAction.NONE)  # nothing to refresh

    # A quality failure is refreshed, and the refreshed case still misses its absolute budget.
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs, image=lifecycle.checkerboard()), "all")
    assert (result.outcome, action) == (Outcome.FAILED_SPEED, BaselineAction.REFRESHED)
    assert result.scores["ssim"] == 1.0
    assert "seconds/image" in result.message and "<= 1.5 s" in result.message


def test_the_result_names_the_device_the_baseline_was_timed_on(lifecycle):
    inputs = lifecycle.inputs()
    elsewhere = dataclasses.replace(lifecycle.machine, device_name="NVIDIA A100")
    result, _ = lifecycle.judge(inputs, lifecycle.baseline(inputs, machine=elsewhere))
    assert result.baseline_device_name == "NVIDIA A100" and result.to_row()["baseline_device_name"] == "NVIDIA A100"
    result, action = lifecycle.judge(inputs, None, "missing")  # the case wrote its own baseline
    assert action is BaselineAction.CREATED and result.baseline_device_name == inputs.machine.device_name
    result, _ = lifecycle.judge(inputs, None)  # no baseline, no timing
    assert (result.baseline_seconds_per_image, result.baseline_device_name) == (None, "")


def test_time_check_says_off_without_a_tolerance_and_why_it_was_skipped(lifecycle):
    inputs = lifecycle.inputs()
    result, _ = lifecycle.judge(inputs, lifecycle.baseline(inputs))
    assert result.time_check == "off"
    timed = lifecycle.inputs(tolerances={"time_regression": 0.1})
    elsewhere = dataclasses.replace(lifecycle.machine, device_name="NVIDIA A100")
    result, _ = lifecycle.judge(timed, lifecycle.baseline(timed, machine=elsewhere))
    assert result.outcome is Outcome.PASSED
    assert result.time_check == "baseline timed on NVIDIA A100, this run on Intel Xeon"


def test_size_mismatch_fails_quality_and_update_all_refreshes_it(lifecycle):
    inputs = lifecycle.inputs()
    stored = lifecycle.baseline(inputs, image=lifecycle.gradient(32, 32))
    result, action = lifecycle.judge(inputs, stored)
    assert (result.outcome, action) == (Outcome.FAILED_QUALITY, BaselineAction.NONE)
    assert result.message == "output and baseline differ in size: image sizes differ: 64x64 vs 32x32 (WxH); " \
                             "images are never resized for comparison"
    result, action = lifecycle.judge(inputs, stored, "all")
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.REFRESHED)


def test_a_required_metric_that_cannot_run_is_an_error(lifecycle):
    inputs = lifecycle.inputs(image=lifecycle.gradient(16, 16), metric_modes={"lpips": "required"})
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs))
    assert (result.outcome, action) == (Outcome.ERROR, BaselineAction.NONE)
    assert result.message.startswith("diffbench_lpips = required, but LPIPS (AlexNet) needs images at least 31x31 px")


def test_the_required_error_names_the_metric_that_could_not_run(lifecycle):
    inputs = lifecycle.inputs(image=lifecycle.gradient(16, 16), metric_modes={"ssim": "required", "lpips": "required"})
    result, _ = lifecycle.judge(inputs, lifecycle.baseline(inputs))
    assert result.outcome is Outcome.ERROR
    assert result.message.startswith("diffbench_lpips = required, but LPIPS (AlexNet)")


def test_an_unavailable_metric_in_auto_mode_is_recorded_not_failed(lifecycle):
    inputs = lifecycle.inputs(image=lifecycle.gradient(16, 16), metric_modes={"lpips": "auto"})
    result, _ = lifecycle.judge(inputs, lifecycle.baseline(inputs))
    assert result.outcome is Outcome.PASSED
    assert result.scores["lpips"] is None and result.metric_status["lpips"].startswith("unavailable: ")


# -- the result row --------------------------------------------------------------------------


@pytest.mark.parametrize("update", UPDATES)
def test_the_result_carries_the_case_and_machine(lifecycle, update):
    inputs = lifecycle.inputs(worker="gw1", workers=2)
    result, _ = lifecycle.judge(inputs, lifecycle.baseline(inputs), update)
    assert (result.nodeid, result.case_id, result.run_id, result.pin) == (inputs.nodeid, inputs.case_id, inputs.run_id, "cpu-float32")
    assert result.config_hash == lifecycle.config.hash and result.setting("seed") == 0
    assert result.machine == lifecycle.machine and (result.worker, result.workers) == ("gw1", 2)


def test_the_sidecar_a_case_would_get_records_what_was_measured(lifecycle):
    inputs = lifecycle.inputs(seconds=0.5, case="tests/test_a/test_a/x", machine=MachineInfo(device_name="GPU"))
    sidecar = inputs.sidecar()
    assert sidecar.config_hash == lifecycle.config.hash and sidecar.case == "tests/test_a/test_a/x"
    assert sidecar.measurement.seconds_per_image == 0.5 and sidecar.device_name == "GPU"


def test_judging_imports_neither_torch_nor_the_run_package():
    code = ("import sys\nimport pytest_diffbench.judge.lifecycle\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'pytest_diffbench.run.case') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
