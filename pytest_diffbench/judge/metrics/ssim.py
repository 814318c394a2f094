"""SSIM: structural similarity on RGB (scikit-image), 1.0 for identical images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_diffbench.judge.metrics.base import Direction, MetricInputs, MetricKind
from pytest_diffbench.judge.metrics.images import check_pair, size_text

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_DATA_RANGE = 255.0
#: The smallest side SSIM scores: its window shrinks from 7 to 3 for small images.
MIN_SIDE = 3
_DEFAULT_WINDOW = 7


def ssim(a: "npt.NDArray[np.uint8]", b: "npt.NDArray[np.uint8]") -> float:
    """Structural similarity of two RGB uint8 arrays of shape (H, W, 3) (1.0 means identical).

    ``skimage.metrics.structural_similarity`` with data range 255, averaged over channels. The
    window shrinks from the default 7 to the largest odd size that fits, so thumbnails down to
    3x3 can be compared. Raises ValueError for smaller images or shapes that differ.
    """
    from skimage.metrics import structural_similarity

    check_pair(a, b)
    side = min(a.shape[0], a.shape[1])
    if side < MIN_SIDE:
        raise ValueError(f"SSIM needs images at least {MIN_SIDE}x{MIN_SIDE} px, got {size_text(a)}")
    win_size = min(side, _DEFAULT_WINDOW)
    if win_size % 2 == 0:
        win_size -= 1
    return float(structural_similarity(a, b, channel_axis=-1, data_range=_DATA_RANGE, win_size=win_size))


@dataclass(frozen=True)
class SSIM:
    name: str = "ssim"
    label: str = "SSIM"
    kind: MetricKind = MetricKind.FULL_REFERENCE
    direction: Direction = Direction.HIGHER_IS_BETTER
    unit: str = ""
    default_tolerance: float | None = 0.95
    valid_tolerance: str = "a number from -1 to 1"
    reports_status: bool = False
    plotted: bool = True

    def accepts(self, tolerance: float) -> bool:
        return -1.0 <= tolerance <= 1.0

    def check_available(self, inputs: MetricInputs) -> None:
        return None

    def compute(self, inputs: MetricInputs) -> float:
        assert inputs.baseline is not None
        return ssim(inputs.baseline, inputs.output)
