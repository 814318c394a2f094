"""plot.png: deterministic bytes, one panel per measured score, points only where measured."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from pytest_diffbench.report.plot import panels, plottable, speed_quality_png


@pytest.fixture
def rows(make_result):
    def build(lpips: float | None = None, reference: bool = False):
        return [make_result(0, sampler, steps, seconds=0.1 * steps, scores={"ssim": 1 - 1 / steps, "psnr": 30.0, "lpips": lpips},
                            ssim_vs_most_steps=(1 - 1 / steps) if reference else None)
                for sampler in ("Euler", "DDIM") for steps in (4, 10, 20)]
    return build


def size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size


def test_same_results_give_the_same_png_bytes(rows):
    assert speed_quality_png(rows(), "run") == speed_quality_png(rows(), "run")
    assert speed_quality_png(rows(), "run") != speed_quality_png(rows(), "another run")


def test_a_second_panel_appears_when_lpips_was_measured(rows):
    ssim_only, with_lpips = size(speed_quality_png(rows(), "run")), size(speed_quality_png(rows(lpips=0.1), "run"))
    assert with_lpips[1] == ssim_only[1]
    assert with_lpips[0] == 2 * ssim_only[0]
    assert [name for name, _, _ in panels(rows(lpips=0.1))] == ["ssim", "lpips"]


def test_a_step_sweep_gets_a_panel_for_ssim_vs_most_steps_first(rows):
    assert [name for name, _, _ in panels(rows(reference=True))] == ["ssim_vs_most_steps", "ssim"]
    assert size(speed_quality_png(rows(reference=True), "run"))[0] == 2 * size(speed_quality_png(rows(), "run"))[0]


def test_only_cases_with_both_numbers_are_plotted(rows, make_result):
    ssim = lambda r: r.scores.get("ssim")  # noqa: E731
    data = rows() + [make_result(0, "Euler", 30, seconds=None, scores={"ssim": 0.9}),
                     make_result(0, "Euler", 40, seconds=1.0, scores={"ssim": math.nan}),
                     make_result(0, "Euler", 50, seconds=math.inf, scores={"ssim": 0.9})]
    assert len(plottable(data, ssim)) == 6
    assert plottable(rows(), lambda r: r.scores.get("lpips")) == []


def test_no_panel_without_a_measured_score(make_result):
    assert panels([make_result(scores={"ssim": None, "psnr": None, "lpips": None})]) == []
