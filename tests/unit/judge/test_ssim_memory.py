"""The CPU SSIM (scikit-image, about 150 MiB of temporaries at 1024x1024 px) runs one at a time
per process, so the verdict's and the background writer's ssim_vs_most_steps never stack their
peaks (benchmarks/memory.py measures the peak)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import skimage.metrics

from pytest_diffbench.judge.metrics import ssim as ssim_module


def test_scikit_image_ssim_runs_holding_the_process_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    held: list[bool] = []
    original = skimage.metrics.structural_similarity

    def probe(*args, **kwargs):
        held.append(ssim_module._CPU_SSIM.locked())
        return original(*args, **kwargs)

    monkeypatch.setattr(skimage.metrics, "structural_similarity", probe)
    a = np.zeros((8, 8, 3), np.uint8)
    threads = [threading.Thread(target=ssim_module.ssim, args=(a, a)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert held == [True, True]
    assert not ssim_module._CPU_SSIM.locked()  # released after each call
