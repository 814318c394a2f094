"""The example sweeps of the README, on the built-in diffbench-tiny model.

diffbench-tiny draws one coloured circle, square or triangle on a plain or two-tone
background at 64x64 (its model card: ``pytest_diffbench/assets/diffbench-tiny/README.md``).
Run these with ``pytest --diffbench examples/``; their ``cpu-float32`` baselines are
committed under ``baselines/``. Refresh them on purpose with ``--diffbench-update``.
"""

import pytest_diffbench as diffbench

# Speed gate: relative to each baseline's own seconds per image, and only where the baseline was
# timed on a device of the same name with as many xdist workers (elsewhere it is reported as
# skipped, with the reason). 2.0 allows three times the baseline's time, which a busy CPU can
# cost; no absolute budget, which a slow or busy CPU would miss.
pytestmark = diffbench.tolerance(time_regression=2.0)


@diffbench.sweep(seeds=[0, 1], samplers=["Euler a", "DPM++ 2M Karras"], steps=[20, 30], cfg=[5.5])
def test_red_circle(diffbench):
    diffbench.generate("a red circle on a blue background", negative_prompt="a yellow background")


# Speed against quality: each sampler's image at 4, 10 and 20 steps. The run's sweep sheet
# (grids/sheets/) shows them side by side, and plot.png seconds per image against SSIM.
@diffbench.sweep(seeds=3, samplers=["Euler", "DPM++ 2M", "DDIM"], steps=[4, 10, 20], cfg=7.5)
def test_steps(diffbench):
    diffbench.generate("a yellow triangle on a green and white background")


@diffbench.sweep(seeds=0, samplers=["DDIM", "UniPC"], steps=10, cfg=7.5, width=[64, 96], height=64,
                 tolerance={"min_ssim": 0.98})
def test_sizes(diffbench):
    diffbench.generate("a white square on a black background")
