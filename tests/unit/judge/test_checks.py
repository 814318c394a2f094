"""judge.checks: the identity verdict (version, config hash, strict environment) and the gates
(one check per metric, then time and memory), each number kept against its tolerance."""

from __future__ import annotations

import dataclasses
import math

import pytest

from pytest_diffbench.judge.checks import Check, Verdict, judge_gates, judge_identity
from pytest_diffbench.judge.metrics import Score
from pytest_diffbench.judge.tolerances import Tolerances
from pytest_diffbench.spec.config import FrozenConfig
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import Outcome

CONFIG = FrozenConfig(
    model="tiny-sd", model_fingerprint="abc", vae="tiny-vae", loras=(), controlnets=(), prompt="an astronaut",
    negative_prompt=None, seed=0, sampler="Euler", steps=20, cfg=7.5, width=64, height=64,
    workflow="StableDiffusionPipeline", workflow_version="1", dtype="float32", device="cpu", pipeline_kwargs={},
)
DEVICE = "Intel(R) Xeon(R) CPU"


def scores(ssim: float | None = 0.99, psnr: float | None = 40.0, lpips: float | None = 0.01,
           lpips_status: str = "ok") -> dict[str, Score]:
    return {"ssim": Score(ssim), "psnr": Score(psnr), "lpips": Score(lpips, lpips_status)}


GOOD = scores()


def identity(new: FrozenConfig, old: FrozenConfig = CONFIG, env_diff=None, strict_env=False):
    return judge_identity(new.to_dict(), new.hash, old.to_dict(), old.hash, env_diff or {}, strict_env)


def gates(scores=GOOD, seconds=1.0, peak=None, tolerances=None, baseline=None, device=DEVICE, workers=1,
          baseline_device=DEVICE, baseline_workers=1) -> Verdict:
    """``baseline``: the baseline's seconds per image (None: a baseline without timing)."""
    measured = Measurement(baseline) if baseline is not None else None
    return judge_gates(scores, tolerances or Tolerances(), measured, baseline_device, baseline_workers,
                       Measurement(seconds, peak), device, workers)


def tol(**changes) -> Tolerances:
    return Tolerances().merged(changes, source="test")


# -- judge_identity --------------------------------------------------------------------------


def test_identity_of_the_same_config_is_none():
    assert identity(CONFIG) is None
    assert identity(dataclasses.replace(CONFIG, cfg=0.1 + 7.4)) is None  # same after normalisation


def test_version_mismatch_names_both_versions():
    new = dataclasses.replace(CONFIG, workflow_version="2", seed=5)
    verdict = identity(new)
    assert verdict.outcome is Outcome.VERSION_MISMATCH
    text = "\n".join(verdict.reasons)
    assert "'1'" in text and "'2'" in text
    assert "--diffbench-update" in text
    assert verdict.checks == ()


def test_stale_baseline_lists_short_hashes_and_differing_fields():
    new = dataclasses.replace(CONFIG, seed=3, prompt="a horse")
    verdict = identity(new)
    assert verdict.outcome is Outcome.STALE_BASELINE
    text = "\n".join(verdict.reasons)
    assert CONFIG.short_hash in text and new.short_hash in text
    assert CONFIG.hash not in text  # only the short forms
    field_lines = [line for line in verdict.reasons if line.startswith("  ")]
    assert field_lines == ["  prompt: 'an astronaut' -> 'a horse'", "  seed: 0 -> 3"]


def test_environment_difference_only_fails_with_strict_env():
    env_diff = {"torch": ("2.3.0", "2.4.1"), "device_name": ("A100", "H100")}
    assert identity(CONFIG, env_diff=env_diff, strict_env=False) is None
    assert identity(CONFIG, env_diff={}, strict_env=True) is None
    verdict = identity(CONFIG, env_diff=env_diff, strict_env=True)
    assert verdict.outcome is Outcome.ENV_MISMATCH
    assert "--diffbench-strict-env" in verdict.reasons[0]
    assert verdict.reasons[1:] == ("  device_name: 'A100' -> 'H100'", "  torch: '2.3.0' -> '2.4.1'")


def test_version_mismatch_comes_before_stale():
    verdict = identity(dataclasses.replace(CONFIG, workflow_version="2", seed=9), env_diff={"torch": ("a", "b")}, strict_env=True)
    assert verdict.outcome is Outcome.VERSION_MISMATCH
    assert "workflow_version" in verdict.reasons[0]


def test_stale_comes_before_strict_env():
    verdict = identity(dataclasses.replace(CONFIG, seed=9), env_diff={"torch": ("a", "b")}, strict_env=True)
    assert verdict.outcome is Outcome.STALE_BASELINE


# -- judge_gates -----------------------------------------------------------------------------


def test_all_good_passes_with_every_check_kept():
    verdict = gates()
    assert verdict.outcome is Outcome.PASSED
    assert [c.name for c in verdict.checks] == ["ssim", "psnr", "lpips", "seconds/image", "slowdown", "peak VRAM"]
    assert verdict.check("ssim").passed is True
    assert verdict.check("psnr").passed is True
    assert verdict.check("lpips").passed is True
    assert verdict.check("seconds/image").passed is None  # max_seconds is off by default
    assert verdict.check("nonexistent") is None


def test_only_scored_metrics_get_a_check():
    verdict = gates(scores={"ssim": Score(0.99)})
    assert [c.name for c in verdict.checks] == ["ssim", "seconds/image", "slowdown", "peak VRAM"]


def test_ssim_below_the_limit_fails_quality():
    verdict = gates(scores=scores(ssim=0.9), tolerances=tol(min_ssim=0.95))
    assert verdict.outcome is Outcome.FAILED_QUALITY
    check = verdict.check("ssim")
    assert (check.value, check.limit, check.passed, check.op) == (0.9, 0.95, False, ">=")


def test_limits_are_inclusive():
    verdict = gates(scores=scores(0.95, 25.0, 0.05), seconds=2.0, peak=100.0,
                    tolerances=tol(max_seconds=2.0, max_vram_mb=100.0))
    assert verdict.outcome is Outcome.PASSED
    assert all(c.passed is not False for c in verdict.checks)


@pytest.mark.parametrize("name, measured", [
    ("psnr", scores(0.99, 20.0, 0.01)),
    ("lpips", scores(0.99, 40.0, 0.2)),
    ("ssim", scores(math.nan, 40.0, 0.01)),
])
def test_other_quality_failures(name, measured):
    verdict = gates(scores=measured)
    assert verdict.outcome is Outcome.FAILED_QUALITY
    assert [c.name for c in verdict.failed_checks] == [name]


def test_infinite_psnr_passes():
    verdict = gates(scores=scores(1.0, math.inf, 0.0))
    assert verdict.outcome is Outcome.PASSED
    assert verdict.check("psnr").passed is True


def test_lpips_unavailable_is_skipped_not_failed():
    verdict = gates(scores=scores(0.99, 40.0, None, "unavailable: no AlexNet checkpoint"))
    assert verdict.outcome is Outcome.PASSED
    check = verdict.check("lpips")
    assert check.passed is None
    assert check.note == "unavailable: no AlexNet checkpoint"
    assert "skipped" in check.render() and "no AlexNet checkpoint" in check.render()


def test_lpips_off():
    check = gates(scores=scores(0.99, 40.0, None, "off")).check("lpips")
    assert check.passed is None and check.note == "off"


def test_quality_check_switched_off_is_skipped():
    verdict = gates(scores=scores(ssim=0.1), tolerances=tol(min_ssim=None))
    assert verdict.outcome is Outcome.PASSED
    assert verdict.check("ssim").passed is None


def test_max_seconds_fails_speed():
    verdict = gates(seconds=3.0, tolerances=tol(max_seconds=2.0))
    assert verdict.outcome is Outcome.FAILED_SPEED
    check = verdict.check("seconds/image")
    assert (check.value, check.limit, check.passed, check.unit) == (3.0, 2.0, False, "s")


def test_slowdown_against_a_baseline_on_the_same_device():
    ok = gates(seconds=1.1, baseline=1.0, tolerances=tol(time_regression=0.15))
    assert ok.outcome is Outcome.PASSED
    assert ok.check("slowdown").passed is True
    assert ok.check("slowdown").value == pytest.approx(0.1)
    slow = gates(seconds=1.3, baseline=1.0, tolerances=tol(time_regression=0.15))
    assert slow.outcome is Outcome.FAILED_SPEED
    check = slow.check("slowdown")
    assert check.passed is False and check.value == pytest.approx(0.3) and check.limit == 0.15
    assert "1.3 s vs baseline 1 s" in check.note


def test_faster_than_the_baseline_passes():
    check = gates(seconds=0.5, baseline=1.0, tolerances=tol(time_regression=0.0)).check("slowdown")
    assert check.passed is True and check.value == pytest.approx(-0.5)


def test_slowdown_on_another_device_is_skipped_with_the_reason():
    verdict = gates(seconds=10.0, baseline=1.0, baseline_device="NVIDIA A100", tolerances=tol(time_regression=0.15))
    assert verdict.outcome is Outcome.PASSED
    check = verdict.check("slowdown")
    assert check.passed is None
    assert "NVIDIA A100" in check.note and DEVICE in check.note
    assert check.value == pytest.approx(9.0)


def test_slowdown_with_another_worker_count_is_skipped_with_the_reason():
    verdict = gates(seconds=10.0, baseline=1.0, tolerances=tol(time_regression=0.15), workers=2)
    assert verdict.outcome is Outcome.PASSED
    check = verdict.check("slowdown")
    assert check.passed is None and "1 pytest worker(s), this run with 2" in check.note
    same = gates(seconds=10.0, baseline=1.0, baseline_workers=2, tolerances=tol(time_regression=0.15), workers=2)
    assert same.outcome is Outcome.FAILED_SPEED


def test_slowdown_with_unknown_baseline_device_is_skipped():
    check = gates(seconds=10.0, baseline=1.0, baseline_device="", tolerances=tol(time_regression=0.15)).check("slowdown")
    assert check.passed is None and "unknown" in check.note


@pytest.mark.parametrize("baseline", [None, 0.0], ids=["no-measurement", "zero-seconds"])
def test_no_baseline_timing_is_skipped(baseline):
    verdict = gates(seconds=10.0, baseline=baseline, tolerances=tol(time_regression=0.15))
    assert verdict.outcome is Outcome.PASSED
    check = verdict.check("slowdown")
    assert check.passed is None and check.value is None and check.note == "baseline has no timing"


def test_peak_vram_unknown_is_skipped():
    verdict = gates(peak=None, tolerances=tol(max_vram_mb=1000))
    assert verdict.outcome is Outcome.PASSED
    check = verdict.check("peak VRAM")
    assert check.passed is None and "CUDA only" in check.note


def test_peak_vram_over_budget_fails_memory():
    verdict = gates(peak=1500.0, tolerances=tol(max_vram_mb=1000))
    assert verdict.outcome is Outcome.FAILED_MEMORY
    check = verdict.check("peak VRAM")
    assert (check.value, check.limit, check.passed, check.note) == (1500.0, 1000, False, "")


def test_priority_quality_over_speed_over_memory():
    everything = dict(seconds=5.0, peak=2000.0, tolerances=tol(max_seconds=1.0, max_vram_mb=1000))
    verdict = gates(scores=scores(ssim=0.5), **everything)
    assert verdict.outcome is Outcome.FAILED_QUALITY
    assert {c.name for c in verdict.failed_checks} == {"ssim", "seconds/image", "peak VRAM"}
    assert gates(**everything).outcome is Outcome.FAILED_SPEED
    assert gates(peak=2000.0, tolerances=tol(max_vram_mb=1000)).outcome is Outcome.FAILED_MEMORY
    slow_and_big = gates(seconds=1.5, peak=2000.0, baseline=1.0, tolerances=tol(time_regression=0.1, max_vram_mb=1000))
    assert slow_and_big.outcome is Outcome.FAILED_SPEED


# -- tolerances ------------------------------------------------------------------------------


def test_tolerances_validate_and_name_the_source():
    with pytest.raises(ValueError, match=r"ini diffbench_min_ssim: tolerance min_ssim=2 is not valid; it must be a number from -1 to 1"):
        Tolerances().merged({"min_ssim": 2}, source="ini diffbench_min_ssim")
    with pytest.raises(ValueError, match=r"unknown tolerance 'min_sim'; valid names are min_ssim, min_psnr, max_lpips"):
        Tolerances().merged({"min_sim": 0.9}, source="@diffbench.tolerance")
    assert Tolerances().merged({"max_lpips": "off", "max_seconds": "2.5"}, source="ini", text=True)["max_seconds"] == 2.5
    assert Tolerances().merged({"max_lpips": "off"}, source="ini", text=True)["max_lpips"] is None


@pytest.mark.parametrize("value", ["0.9", " 1e-3", b"0.9"])
def test_a_tests_own_tolerance_must_be_a_number_not_text(value):
    """Issue 9 P8: sweep(tolerance={"min_ssim": "0.9"}) was taken while steps="20" was refused."""
    with pytest.raises(ValueError, match=r"sweep\(tolerance=...\): tolerance min_ssim=.* is text, not a number"):
        Tolerances().merged({"min_ssim": value}, source="sweep(tolerance=...)")


def test_a_decimal_tolerance_is_a_number():
    from decimal import Decimal

    assert Tolerances().merged({"min_ssim": Decimal("0.9")}, source="@diffbench.tolerance")["min_ssim"] == 0.9


# -- Check.render ----------------------------------------------------------------------------


def test_render_failed_check_shows_value_limit_and_fail():
    line = Check("ssim", 0.912345, ">=", 0.95, False).render()
    assert line.split() == ["ssim", "0.9123", ">=", "0.95", "FAIL"]


def test_render_passed_check_with_unit_and_note():
    line = Check("seconds/image", 1.25, "<=", 2.0, True, unit="s", note="fast").render()
    assert "1.25 s" in line and "<= 2 s" in line
    assert line.endswith("ok  (fast)")
    assert "FAIL" not in line


def test_render_off_says_off_once_and_no_reason():
    line = Check("peak VRAM", None, "<=", None, None, unit="MiB", note="measured on CUDA only").render()
    assert line.split() == ["peak", "VRAM", "-", "off"]


@pytest.mark.parametrize("check", [
    Check("peak VRAM", None, "<=", 1000.0, None, unit="MiB", note="measured on CUDA only"),
    Check("slowdown", 9.0, "<=", 0.15, None, note="baseline timed on NVIDIA A100, this run on Intel Xeon"),
    Check("lpips", None, "<=", 0.05, None, note="unavailable: no AlexNet weights, see the run's warning"),
], ids=["vram", "slowdown", "lpips"])
def test_render_skipped_says_skipped_once_with_the_reason(check):
    line = check.render()
    assert line.endswith(f" skipped ({check.note})")
    assert line.count("skipped") == 1 and line.count(check.note) == 1


def test_render_infinite_value():
    assert Check("psnr", math.inf, ">=", 25.0, True, unit="dB").render().split() == ["psnr", "inf", "dB", ">=", "25", "dB", "ok"]


def test_rendered_verdict_shows_every_check():
    verdict = gates(scores=scores(psnr=12.5), tolerances=tol(max_seconds=9))
    lines = [check.render() for check in verdict.checks]
    assert len(lines) == 6
    assert sum("FAIL" in line for line in lines) == 1 and "12.5 dB" in lines[1]


def test_a_metric_switched_off_renders_off_with_its_tolerance_and_no_skip_note():
    check = gates(scores=scores(0.99, 40.0, None, "off")).check("lpips")
    assert check.status == "off"
    assert check.render().split() == ["lpips", "-", "<=", "0.05", "off"]
