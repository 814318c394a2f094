"""The noise floor of repeats (issue 12, item 6): the worst pair, the timing spread, and the
suggested tolerances with their stated margins."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.judge.noise_floor import (
    ONE_LEVEL_PSNR,
    PLAIN,
    Floor,
    Repeat,
    coefficient_of_variation,
    combine,
    measure_case,
    suggest,
)
from pytest_diffbench.judge.tolerances import Tolerances, apply_floor

MODES = {"lpips": "off"}


def picture(noise: float = 0.0, seed: int = 0) -> Image.Image:
    ys, xs = np.mgrid[0:64, 0:64]
    base = np.stack([xs * 4 % 256, ys * 4 % 256, (xs + ys) * 2 % 256], axis=-1).astype(float)
    base += np.random.default_rng(seed).normal(0, noise, base.shape) if noise else 0
    return Image.fromarray(np.clip(np.rint(base), 0, 255).astype(np.uint8), "RGB")


def test_identical_repeats_have_the_perfect_floor_and_the_least_slack() -> None:
    repeats = [Repeat(PLAIN, picture(), seconds) for seconds in (1.0, 1.0, 1.0)]
    floor = measure_case(repeats, prompt="p", device="cpu", modes=MODES)
    assert floor.figures["min_ssim"] == pytest.approx(1.0)
    assert math.isinf(floor.figures["min_psnr"])
    assert floor.figures["max_lpips"] is None  # LPIPS off: no figure, so no suggestion
    assert floor.seconds_cv == 0.0 and floor.repeats == 3
    assert suggest(floor) == {"min_ssim": 0.995, "min_psnr": round(ONE_LEVEL_PSNR - 10 * math.log10(2), 4),
                              "time_regression": 0.05}


def test_the_worst_pair_sets_the_floor_and_perturbed_timings_stay_out_of_the_spread() -> None:
    clean, slight, noisy = picture(), picture(2.0, seed=1), picture(12.0, seed=2)
    few = measure_case([Repeat(PLAIN, clean, 1.0), Repeat(PLAIN, slight, 1.0)], prompt="p", device="cpu", modes=MODES)
    many = measure_case([Repeat(PLAIN, clean, 1.0), Repeat(PLAIN, slight, 1.2), Repeat("cold", noisy, 9.0)],
                        prompt="p", device="cpu", modes=MODES, perturbations={"cold": "first call"})
    assert many.figures["min_ssim"] < few.figures["min_ssim"] < 1
    assert many.figures["min_psnr"] < few.figures["min_psnr"]
    assert many.seconds_cv == pytest.approx(coefficient_of_variation([1.0, 1.2]))  # the cold 9 s is not noise
    assert many.seconds_mean == pytest.approx(1.1) and many.perturbations == {"cold": "first call"}
    suggested = suggest(many)
    assert suggested["min_ssim"] == pytest.approx(1 - 2 * (1 - many.figures["min_ssim"]), abs=1e-4)
    assert suggested["min_psnr"] == pytest.approx(many.figures["min_psnr"] - 3.0103, abs=1e-3)
    assert suggested["time_regression"] == math.ceil(3 * math.sqrt(2) * many.seconds_cv * 100) / 100


def test_lpips_margin_doubles_the_floor_with_a_least_slack() -> None:
    assert suggest(Floor({"max_lpips": 0.03}, None, None, 3)) == {"max_lpips": 0.06}
    assert suggest(Floor({"max_lpips": 0.001}, None, None, 3)) == {"max_lpips": 0.01}


def test_a_suggestion_outside_the_metric_range_is_left_out() -> None:
    # a PSNR floor of 2 dB would suggest a negative tolerance: the ini's applies instead
    assert "min_psnr" not in suggest(Floor({"min_psnr": 2.0}, None, None, 2))


def test_coefficient_of_variation() -> None:
    assert coefficient_of_variation([2.0, 4.0]) == pytest.approx(1 / 3)
    assert coefficient_of_variation([3.0]) is None
    assert coefficient_of_variation([0.0, 0.0]) is None


def test_a_floor_needs_two_repeats() -> None:
    with pytest.raises(ValueError, match="at least two repeats"):
        measure_case([Repeat(PLAIN, picture(), 1.0)], prompt="p", device="cpu", modes=MODES)


def test_a_test_floor_is_the_worst_of_its_cases() -> None:
    a = Floor({"min_ssim": 0.99, "min_psnr": math.inf, "max_lpips": None}, 0.02, 1.0, 3)
    b = Floor({"min_ssim": 0.97, "min_psnr": 40.0, "max_lpips": 0.05}, 0.01, 3.0, 4)
    test = combine([a, b])
    assert test.figures == {"min_ssim": 0.97, "min_psnr": 40.0, "max_lpips": 0.05}
    assert (test.seconds_cv, test.seconds_mean, test.repeats, test.cases) == (0.02, 2.0, 3, 2)


def test_floor_round_trips_through_json_with_infinity_as_text() -> None:
    floor = Floor({"min_ssim": 1.0, "min_psnr": math.inf, "max_lpips": None}, 0.01, 0.5, 3, {"batch": "n/a"})
    data = floor.as_dict()
    assert data["min_psnr"] == "inf"
    assert Floor.from_dict(data) == floor
    with pytest.raises(ValueError, match="'seconds_cv' holds 'fast'"):
        Floor.from_dict({**data, "seconds_cv": "fast"})


def test_a_floor_replaces_the_ini_tolerances_but_not_the_tests_own() -> None:
    ini = Tolerances().merged({"min_ssim": 0.5, "max_seconds": 9}, source="ini")
    applied = apply_floor(ini, {"min_ssim": 0.99, "min_psnr": 40.0}, {"min_psnr"}, "noise floor of the case")
    assert applied.tolerances["min_ssim"] == 0.99
    assert applied.tolerances["min_psnr"] == ini["min_psnr"]  # the test set it: it wins
    assert applied.tolerances["max_seconds"] == 9  # no floor figure: the ini's stays
    assert applied.source == "noise floor of the case; the test's own: min_psnr"


def test_a_floor_never_turns_on_a_gate_that_is_off_and_sets_those_that_are_on() -> None:
    off = Tolerances()  # the speed gate is off by default
    assert off["time_regression"] is None
    suggested = {"time_regression": 0.32, "min_ssim": 0.99}
    assert apply_floor(off, suggested, set(), "floor").tolerances["time_regression"] is None
    metric_off = Tolerances().merged({"min_ssim": "off"}, source="ini")  # a metric gate the ini turns off
    assert apply_floor(metric_off, suggested, set(), "floor").tolerances["min_ssim"] is None
    on = Tolerances().merged({"time_regression": 0.15}, source="ini")
    assert apply_floor(on, suggested, set(), "floor").tolerances["time_regression"] == 0.32


def test_the_failure_shows_where_the_tolerances_came_from_when_it_shows_checks(lifecycle) -> None:
    source = "noise floor of the case in baselines/noise-floor.json (pin cpu-float32)"
    inputs = lifecycle.inputs(tolerance_source=source)
    failed, _ = lifecycle.judge(inputs, lifecycle.baseline(inputs, image=lifecycle.checkerboard()))
    assert failed.tolerance_source == source and failed.to_row()["tolerance_source"] == source
    assert f"  tolerances from: {source}" in failed.failure_text.splitlines()
    stale, _ = lifecycle.judge(inputs, lifecycle.baseline(inputs, config=dataclasses.replace(lifecycle.config, seed=1)))
    assert "tolerances from" not in stale.failure_text  # no check ran: no tolerance applied
