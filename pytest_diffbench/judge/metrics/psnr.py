"""PSNR: peak signal-to-noise ratio in dB for 8-bit images, infinite for identical images."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_diffbench.judge.metrics.base import Direction, MetricInputs, MetricKind
from pytest_diffbench.judge.metrics.images import check_pair

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

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
