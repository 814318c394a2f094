"""Near-flat and transparent outputs (issue 9, P7): a few specks on one flat colour, or an image
with alpha 0 everywhere, is ``invalid-output`` like a flat one; pictures, however plain, pass."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.judge.lifecycle import output_problem, output_warning
from pytest_diffbench.testing import FakePipeline


def specks(count: int, *, size: int = 64, background: int = 0, speck: int = 255) -> Image.Image:
    """``count`` pixels of ``speck`` grey on a ``background`` grey square of ``size`` px."""
    array = np.full((size, size, 3), background, dtype=np.uint8)
    array.reshape(-1, 3)[:count] = speck
    return Image.fromarray(array, "RGB")


def test_one_white_pixel_on_black_is_invalid():
    problem = output_problem(specks(1))
    assert problem.startswith("the output is one flat colour (0, 0, 0) but for 1 of 4096 pixels "
                              "(at least 99.9% one colour): a float16 VAE overflow gives NaN")


@pytest.mark.parametrize("image, colour, others", [
    (specks(2), (0, 0, 0), 2),  # two pixels differ
    (specks(4, background=255, speck=0), (255, 255, 255), 4),
    (specks(200, size=512, background=40, speck=41), (40, 40, 40), 200),  # 0.08% faint specks on a large image
])
def test_a_few_specks_on_one_colour_are_invalid(image, colour, others):
    problem = output_problem(image)
    assert f"the output is one flat colour {colour} but for {others} of " in problem
    assert "\n" not in problem


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_a_fully_transparent_output_is_invalid(mode):
    picture = FakePipeline().draw("Euler", 0, {}).convert(mode)
    picture.putalpha(0)
    assert output_problem(picture) == ("the output is fully transparent (alpha 0 in every pixel): the pipeline made "
                                       "no visible picture; check its output and mode")


def test_a_partly_transparent_output_is_judged():
    picture = FakePipeline().draw("Euler", 0, {}).convert("RGBA")
    alpha = np.zeros((64, 64), dtype=np.uint8)
    alpha[:, 32:] = 255
    picture.putalpha(Image.fromarray(alpha, "L"))
    assert output_problem(picture) == ""


@pytest.mark.parametrize("seed, steps", [(0, 2), (1, 20), (7, 50)])
def test_the_fake_pipelines_pictures_pass(seed, steps):
    picture = FakePipeline().draw("Euler", seed, {"num_inference_steps": steps, "prompt": "a red cube"})
    assert output_problem(picture) == "" and output_warning(picture) == ""


def test_a_smooth_photo_like_gradient_passes():
    ys, xs = np.mgrid[0:96, 0:128]
    array = np.stack([xs * 2, ys * 2, (xs + ys)], axis=-1).clip(0, 255).astype(np.uint8)
    assert output_problem(Image.fromarray(array, "RGB")) == ""


def test_specks_just_above_the_share_are_a_faint_picture_not_invalid():
    """5 of 4096 pixels (0.12%) one level off: nearly flat, a warning, not refused."""
    image = specks(5, background=90, speck=91)
    assert output_problem(image) == ""
    assert output_warning(image).startswith("the output is nearly one flat colour (90, 90, 90)")
