"""plot.png is laid out once and drawn once, and is still exactly the figure matplotlib's own
constrained-layout save gives (issue 8: the suite's ~900 in-process runs each write one)."""

from __future__ import annotations

import io

import pytest

from pytest_diffbench.report.plot import speed_quality_figure, speed_quality_png


def saved_with_its_layout_engine(results, title: str) -> bytes:
    """The figure saved the plain way: savefig with the constrained layout engine still set."""
    buffer = io.BytesIO()
    speed_quality_figure(results, title).savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


@pytest.fixture(params=["one panel", "three panels, a failed case, long sampler names"])
def results(request, make_result):
    if request.param == "one panel":
        return [make_result(seed, sampler, steps, seconds=0.01, scores={"ssim": 1.0, "psnr": 99.0, "lpips": None})
                for seed in (0, 1) for sampler in ("Euler", "DDIM") for steps in (1, 3)]
    return [make_result(seed, sampler, steps, seconds=0.05 * steps, outcome="failed-speed" if (seed, steps) == (1, 3) else "passed",
                        scores={"ssim": 1 - 1e-3 * steps, "psnr": 40.0, "lpips": 0.01 * steps}, ssim_vs_most_steps=0.9 + 1e-3 * steps)
            for seed in (0, 1) for sampler in ("Euler", "DPM++ 2M SDE Karras", "KDPM2AncestralDiscreteScheduler")
            for steps in (1, 3, 10)]


def test_the_png_is_the_constrained_layout_figure_byte_for_byte(results):
    png = speed_quality_png(results, "diffbench run 20261128T000000Z-abcdef")
    assert png == saved_with_its_layout_engine(results, "diffbench run 20261128T000000Z-abcdef")


def test_saving_draws_the_figure_once(results, monkeypatch):
    """One draw: the layout is fixed before saving, so savefig does not draw a second time to lay it out."""
    from matplotlib.figure import Figure

    draws = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(renderer) or original(self, renderer))
    speed_quality_png(results, "run")
    assert len(draws) == 1
