"""PSNR: peak signal-to-noise ratio in dB for 8-bit images, infinite for identical images.

numpy defines it (:func:`psnr`); on a CUDA pipeline's device torch computes the same
(:func:`psnr_on_device`, float64: the squared differences of 8-bit levels and their sum are exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_diffbench.judge.metrics.base import Direction, MetricInputs, MetricKind
from pytest_diffbench.judge.metrics.device import DeviceImage
from pytest_diffbench.judge.metrics.images import check_pair

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

_DATA_RANGE = 255.0


def psnr(a: "npt.NDArray[np.uint8]", b: "npt.NDArray[np.uint8]") -> float:
    """10 log10(255² / MSE) in dB over all pixels and channels of two (H, W, 3) arrays;
    ``math.inf`` when they are identical."""
    import numpy as np

    check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(_DATA_RANGE**2 / mse)


def psnr_on_device(a: DeviceImage, b: DeviceImage) -> "torch.Tensor":
    """PSNR of each frame of ``a`` against the same frame of ``b`` in dB: float64 tensor (N,) on
    their device (inf for an identical frame), no host sync; equal to :func:`psnr` (float64 sums
    of squared 8-bit differences are exact; the logarithms may differ in the last bit).

    Two lines of torch rather than torchmetrics' ``peak_signal_noise_ratio``, which rounds the
    data range through a float32 tensor (1e-6 dB off numpy's value)."""
    import torch

    if a.pixels.shape != b.pixels.shape:
        raise ValueError(f"PSNR needs images of one size, got {tuple(a.pixels.shape)} and {tuple(b.pixels.shape)}")
    mse = (a.pixels - b.pixels).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(_DATA_RANGE**2 / mse)


@dataclass(frozen=True)
class PSNR:
    name: str = "psnr"
    label: str = "PSNR"
    kind: MetricKind = MetricKind.FULL_REFERENCE
    direction: Direction = Direction.HIGHER_IS_BETTER
    unit: str = "dB"
    default_tolerance: float | None = 25.0
    valid_tolerance: str = "a number of dB >= 0"
    reports_status: bool = False
    plotted: bool = False

    def accepts(self, tolerance: float) -> bool:
        return tolerance >= 0

    def check_available(self, inputs: MetricInputs) -> None:
        return None

    def compute(self, inputs: MetricInputs) -> float:
        assert inputs.baseline is not None
        return psnr(inputs.baseline, inputs.output)

    def compute_on_device(self, inputs: MetricInputs, output: DeviceImage, baseline: DeviceImage) -> "torch.Tensor":
        return psnr_on_device(baseline, output)
