"""The example sweep of the README, on the built-in tiny pipeline.

Run it with ``pytest --diffbench examples/``; its ``cpu-float32`` baselines are committed
under ``baselines/``. Refresh them on purpose with ``--diffbench-update``.
"""

import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], samplers=["Euler a", "DPM++ 2M Karras"], steps=[20, 30], cfg=[5.5])
def test_astronaut(diffbench):
    diffbench.generate("a photo of an astronaut riding a horse", negative_prompt="blurry")


@diffbench.sweep(seeds=0, samplers=["DDIM", "UniPC"], steps=10, cfg=7.5, width=[64, 96], height=64)
@diffbench.tolerance(min_ssim=0.98, max_seconds=60)
def test_sizes(diffbench):
    diffbench.generate("a red circle on a blue background")
