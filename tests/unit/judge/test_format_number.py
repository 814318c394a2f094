"""A number printed beside another (a value and its limit, a timing and the baseline's) never reads
the same as it when the two differ: ``ssim 1 >= 1 FAIL`` gets the digits that tell them apart."""

from __future__ import annotations

import math

import pytest

from pytest_diffbench.judge.checks import Check, format_number
from pytest_diffbench.report.summary import what_failed
from pytest_diffbench.spec.measurement import Measurement


@pytest.mark.parametrize(("value", "beside", "style", "text"), [
    (0.6123456, 0.95, "g", "0.6123"),  # 4 significant digits when they already differ
    (0.99999, 1.0, "g", "0.99999"),
    (1.0, 0.99999, "g", "1"),
    (0.25, 0.25, "g", "0.25"),  # equal numbers print alike
    (math.inf, 25.0, "g", "inf"),
    (-math.inf, None, "g", "-inf"),
    (0.504, 0.5, "%", "+50.4%"),
    (0.5, 0.504, "%", "+50.0%"),
    (2048.4, 2048.0, "g", "2048.4"),
    (900.0, 800.0, "g", "900"),
    (12345.6, 10000.0, "g", "12346"),  # as many digits as the whole part: no 1.235e+04
    (0.001, 2048.0, "g", "0.001"),
])
def test_format_number(value, beside, style, text) -> None:
    assert format_number(value, beside, style=style) == text


def test_a_failed_check_whose_value_rounds_to_its_limit_prints_them_apart() -> None:
    line = " ".join(Check("ssim", 0.99999, ">=", 1.0, False).render().split())
    assert line == "ssim 0.99999 >= 1 FAIL"
    line = " ".join(Check("seconds/image", 1.00004, "<=", 1.0, False, unit="s").render().split())
    assert line == "seconds/image 1.00004 s <= 1 s FAIL"


def test_what_failed_prints_each_value_apart_from_its_tolerance(make_result) -> None:
    result = make_result(outcome="failed-quality", scores={"ssim": 0.99999, "psnr": 40.0, "lpips": None},
                         tolerances={"min_ssim": 1.0, "max_seconds": 1.0, "max_vram_mb": 2048.0, "time_regression": 0.5},
                         measurement=Measurement(1.00004, 2048.4), baseline_seconds_per_image=0.5,
                         slowdown=0.504, time_check="failed")
    assert what_failed(result) == ("ssim 0.99999 < 1; seconds/image 1.00004 s > 1 s; slowdown +50.4% > +50.0%; "
                                   "peak VRAM 2048.4 MiB > 2048 MiB")


def test_a_timing_rewrite_prints_the_old_and_new_timing_apart(lifecycle) -> None:
    inputs = lifecycle.inputs(seconds=0.25001, tolerances={"time_regression": 0.1})
    stored = lifecycle.baseline(inputs, seconds=0.25)
    result, _ = lifecycle.judge(inputs, stored, None, update_timing=True)
    assert result.message.startswith("timing reference rewritten (--diffbench-update-timing): 0.25 s -> 0.25001 s per image")
