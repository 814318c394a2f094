"""plot.png: deterministic bytes, one panel per measured metric, points only where measured."""

from __future__ import annotations

import io

from PIL import Image

from pytest_diffbench.plot import plottable, speed_quality_png


def rows(lpips: float | None = None) -> list[dict]:
    return [{"sampler": sampler, "steps": steps, "seconds_per_image": 0.1 * steps, "ssim": 1 - 1 / steps, "lpips": lpips}
            for sampler in ("Euler", "DDIM") for steps in (4, 10, 20)]


def test_same_rows_give_the_same_png_bytes():
    assert speed_quality_png(rows(), "run") == speed_quality_png(rows(), "run")
    assert speed_quality_png(rows(), "run") != speed_quality_png(rows(), "another run")


def test_a_second_panel_appears_when_lpips_was_measured():
    ssim_only = Image.open(io.BytesIO(speed_quality_png(rows(), "run")))
    with_lpips = Image.open(io.BytesIO(speed_quality_png(rows(lpips=0.1), "run")))
    assert with_lpips.height == ssim_only.height
    assert with_lpips.width == 2 * ssim_only.width


def test_only_cases_with_both_numbers_are_plotted():
    data = rows() + [{"sampler": "Euler", "steps": 30, "seconds_per_image": "", "ssim": 0.9},
                     {"sampler": "Euler", "steps": 40, "seconds_per_image": 1.0, "ssim": float("nan")}]
    assert len(plottable(data, "ssim")) == 6
    assert plottable(rows(), "lpips") == []
