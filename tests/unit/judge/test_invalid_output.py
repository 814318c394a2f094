"""Outputs that cannot be a baseline: judge() refuses them as ``invalid-output`` before any
baseline is read, compared or written.

The classic instance (issue 9): a float16 VAE overflow gives NaN, which diffusers decodes to an
all-black image; without this check it passed and ``--diffbench-update`` blessed it. Also: any
flat colour (white, grey, red), images smaller than SSIM scores (2x2, 1x64, 64x2), and NaN
reported by numpy while the image was made. A nearly flat output passes with a warning.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.judge.lifecycle import output_problem, output_warning
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

UPDATES = [None, "missing", "all"]
FP16_HINT = "a float16 VAE overflow gives NaN, decoded as black; try float32 or the fp16-fix VAE"


def flat(colour: tuple[int, int, int], width: int = 64, height: int = 64) -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def nearly_flat(colour: tuple[int, int, int] = (128, 128, 128), *, odd: int = 10) -> Image.Image:
    """``colour`` with ``odd`` pixels one level brighter (standard deviation well below 1 level)."""
    array = np.full((64, 64, 3), colour, dtype=np.uint8)
    array.reshape(-1, 3)[:odd] += 1
    return Image.fromarray(array, "RGB")


def assert_refused(result, action, reason: str) -> None:
    assert (result.outcome, action) == (Outcome.INVALID_OUTPUT, BaselineAction.NONE)
    assert reason in result.message
    assert "\n" not in result.message
    assert result.failure_text.startswith(f"diffbench invalid-output: {result.nodeid}\n")
    assert f"  {result.message}" in result.failure_text
    assert result.scores == {} and result.output_warning == ""


# -- one flat colour ----------------------------------------------------------------------------


@pytest.mark.parametrize("update", UPDATES)
def test_an_all_black_output_is_refused_naming_the_fp16_vae_without_a_baseline(lifecycle, update):
    inputs = lifecycle.inputs(image=flat((0, 0, 0)))
    result, action = lifecycle.judge(inputs, None, update)
    assert_refused(result, action, f"the output is one flat colour (0, 0, 0): {FP16_HINT}")
    assert "safety checker" in result.message
    assert result.baseline_path == ""


@pytest.mark.parametrize("colour", [(255, 255, 255), (128, 128, 128), (200, 16, 16)], ids=["white", "grey", "red"])
@pytest.mark.parametrize("update", UPDATES)
def test_any_flat_colour_is_refused_naming_the_colour(lifecycle, update, colour):
    result, action = lifecycle.judge(lifecycle.inputs(image=flat(colour)), None, update)
    assert_refused(result, action, f"the output is one flat colour {colour}: the pipeline made no picture")
    assert "float16" not in result.message


@pytest.mark.parametrize("update", UPDATES)
def test_a_stored_baseline_is_left_untouched_by_a_black_output(lifecycle, update):
    good = lifecycle.inputs()
    baseline = lifecycle.baseline(good)
    black = lifecycle.inputs(image=flat((0, 0, 0)))
    result, action = lifecycle.judge(black, baseline, update)
    assert_refused(result, action, "the output is one flat colour (0, 0, 0)")
    # Shown where it is, never compared, never refreshed (an update would refresh a quality failure).
    assert result.baseline_path == black.baseline_path and result.baseline_action is BaselineAction.NONE
    assert result.env_diff == ""


@pytest.mark.parametrize("update", UPDATES)
def test_an_unreadable_baseline_is_not_rewritten_by_a_black_output(lifecycle, update):
    result, action = lifecycle.judge(lifecycle.inputs(image=flat((0, 0, 0))), lifecycle.broken(), update)
    assert_refused(result, action, "the output is one flat colour (0, 0, 0)")


def test_a_black_output_is_refused_even_when_the_baseline_is_black_too(lifecycle):
    """A black baseline blessed before this check existed must not make a black output pass."""
    inputs = lifecycle.inputs(image=flat((0, 0, 0)))
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs))
    assert_refused(result, action, "the output is one flat colour (0, 0, 0)")


def test_a_flat_grayscale_or_rgba_image_is_refused_by_its_rgb_colour(lifecycle):
    grey = Image.new("L", (32, 32), 7)
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    assert output_problem(grey).startswith("the output is one flat colour (7, 7, 7)")
    assert output_problem(rgba).startswith("the output is one flat colour (0, 0, 0)")


# -- too small to score ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(2, 2), (1, 64), (64, 2), (1, 1)], ids=["2x2", "1x64", "64x2", "1x1"])
@pytest.mark.parametrize("update", UPDATES)
def test_an_output_smaller_than_ssim_scores_is_refused_naming_its_size(lifecycle, update, size):
    width, height = size
    image = lifecycle.gradient(width, height)
    baseline = lifecycle.baseline(lifecycle.inputs(image=image)) if update is None else None
    result, action = lifecycle.judge(lifecycle.inputs(image=image), baseline, update)
    assert_refused(result, action, f"the output is {width}x{height} px, smaller than SSIM can score (at least 3x3)")


def test_the_smallest_scorable_output_is_judged(lifecycle):
    inputs = lifecycle.inputs(image=lifecycle.gradient(3, 3, phase=5))
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs))
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.NONE)
    assert result.scores["ssim"] == pytest.approx(1.0)


# -- non-finite values reported while the image was made ------------------------------------------


@pytest.mark.parametrize("update", UPDATES)
def test_nan_reported_while_making_the_image_is_refused_even_when_the_image_is_not_flat(lifecycle, update):
    inputs = lifecycle.inputs(measurement=Measurement(1.0, warnings=("numpy: invalid value encountered in cast",)))
    result, action = lifecycle.judge(inputs, None, update)
    assert_refused(result, action, "the output had non-finite values (NaN or inf) when it was made "
                                   f"(numpy: invalid value encountered in cast); {FP16_HINT}")


def test_the_sidecar_of_a_case_never_carries_the_warnings(lifecycle):
    inputs = lifecycle.inputs(measurement=Measurement(1.0, 5.0, warnings=("numpy: invalid value encountered in cast",)))
    assert inputs.sidecar().measurement == Measurement(1.0, 5.0)


# -- nearly flat: passes with a warning -------------------------------------------------------------


@pytest.mark.parametrize("colour", [(128, 128, 128), (0, 0, 0), (254, 254, 254)], ids=["grey", "black", "white"])
def test_a_nearly_flat_output_passes_with_a_warning(lifecycle, colour):
    inputs = lifecycle.inputs(image=nearly_flat(colour))
    result, action = lifecycle.judge(inputs, lifecycle.baseline(inputs))
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.NONE)
    assert result.output_warning.startswith(f"the output is nearly one flat colour {colour} (standard deviation 0.")
    assert result.to_row()["output_warning"] == result.output_warning


def test_a_nearly_flat_output_still_becomes_a_baseline_with_update(lifecycle):
    result, action = lifecycle.judge(lifecycle.inputs(image=nearly_flat()), None, "missing")
    assert (result.outcome, action) == (Outcome.PASSED, BaselineAction.CREATED)
    assert "nearly one flat colour" in result.output_warning


def test_an_output_with_one_level_of_spread_is_not_warned_about():
    """Spread at or above one level in a channel is a picture, however faint."""
    array = np.full((64, 64, 3), 100, dtype=np.uint8)
    array[:, ::2, 1] = 102  # green alternates 100/102: standard deviation exactly 1.0
    assert output_warning(Image.fromarray(array, "RGB")) == ""
    assert output_problem(Image.fromarray(array, "RGB")) == ""


def test_a_picture_has_no_problem_and_no_warning(lifecycle):
    result, _ = lifecycle.judge(lifecycle.inputs(), None, "all")
    assert result.outcome is Outcome.PASSED and result.output_warning == ""
