"""LPIPS: the learned perceptual distance (Zhang et al. 2018) with the AlexNet trunk, 0.0 for
identical images, from the ``lpips`` package.

It needs torch, lpips and torchvision's AlexNet checkpoint in the torch hub cache; they are
imported only when LPIPS runs, and the checkpoint is never downloaded: when it is missing,
:class:`LpipsUnavailable` names the file and how to provide it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_diffbench.judge.metrics.base import Direction, MetricInputs, MetricKind, MetricUnavailable
from pytest_diffbench.judge.metrics.images import check_pair, size_text

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

ALEXNET_CHECKPOINT = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_CHECKPOINT}"
# AlexNet's layers up to the last one LPIPS reads (conv 11/4, pool 3/2, conv 5, pool 3/2, three
# conv 3) produce no output for sides below 31 px.
LPIPS_MIN_SIDE = 31


class LpipsUnavailable(MetricUnavailable):
    """LPIPS cannot run: its AlexNet checkpoint is missing or unreadable, or the images are
    smaller than AlexNet needs."""


def alexnet_checkpoint_path() -> Path:
    """Where torchvision looks for the AlexNet weights: ``$TORCH_HOME/hub/checkpoints/`` (torch's
    default ``~/.cache/torch``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_CHECKPOINT


class LpipsScorer:
    """LPIPS (AlexNet) distance on one device; 0.0 means perceptually identical."""

    def __init__(self, model: "torch.nn.Module", device: str) -> None:
        self.model = model
        self.device = device

    def __call__(self, a: "npt.NDArray[np.uint8]", b: "npt.NDArray[np.uint8]") -> float:
        """The distance of two (H, W, 3) uint8 arrays, each side at least 31 px."""
        import torch

        check_pair(a, b)
        _check_size(a)

        def to_tensor(array: "npt.NDArray[np.uint8]") -> torch.Tensor:
            # lpips expects NCHW float in [-1, 1].
            tensor = torch.tensor(array, dtype=torch.float32, device=self.device)
            return (tensor.permute(2, 0, 1).unsqueeze(0) / 127.5) - 1.0

        with torch.no_grad():
            return float(self.model(to_tensor(a), to_tensor(b)).item())


_SCORERS: dict[str, LpipsScorer] = {}


def load_lpips(device: str) -> LpipsScorer:
    """The LPIPS scorer for ``device``, loaded once per process.

    Raises :class:`LpipsUnavailable` instead of letting torchvision download the checkpoint.
    """
    if device in _SCORERS:
        return _SCORERS[device]
    path = alexnet_checkpoint_path()
    if not path.is_file():
        raise LpipsUnavailable(
            f"LPIPS needs the AlexNet checkpoint {path}, which does not exist, and diffbench never "
            f"downloads it during tests. On a machine with network, fetch {ALEXNET_URL} and copy it to "
            "that path (set TORCH_HOME to move the torch cache: the file is read from "
            "$TORCH_HOME/hub/checkpoints/), or turn LPIPS off with the ini option `diffbench_lpips = off`."
        )
    import lpips

    try:
        with warnings.catch_warnings():
            # lpips 0.1.4 still calls alexnet(pretrained=True).
            warnings.filterwarnings("ignore", message="The parameter 'pretrained' is deprecated")
            warnings.filterwarnings("ignore", message="Arguments other than a weight enum")
            model = lpips.LPIPS(net="alex", verbose=False)
    except Exception as exc:
        raise LpipsUnavailable(
            f"LPIPS could not load the AlexNet checkpoint {path}: {type(exc).__name__}: {exc}. Replace it "
            f"with a fresh copy of {ALEXNET_URL}, or turn LPIPS off with `diffbench_lpips = off`."
        ) from exc
    scorer = LpipsScorer(model.to(device).eval(), device)
    _SCORERS[device] = scorer
    return scorer


def _check_size(array: "npt.NDArray[np.uint8]") -> None:
    if min(array.shape[0], array.shape[1]) < LPIPS_MIN_SIDE:
        raise LpipsUnavailable(
            f"LPIPS (AlexNet) needs images at least {LPIPS_MIN_SIDE}x{LPIPS_MIN_SIDE} px, got {size_text(array)}")


@dataclass(frozen=True)
class LPIPS:
    name: str = "lpips"
    label: str = "LPIPS"
    kind: MetricKind = MetricKind.FULL_REFERENCE
    direction: Direction = Direction.LOWER_IS_BETTER
    unit: str = ""
    default_tolerance: float | None = 0.05
    valid_tolerance: str = "a number >= 0"
    reports_status: bool = True
    plotted: bool = True

    def accepts(self, tolerance: float) -> bool:
        return tolerance >= 0

    def check_available(self, inputs: MetricInputs) -> None:
        _check_size(inputs.output)
        load_lpips(inputs.device)

    def compute(self, inputs: MetricInputs) -> float:
        assert inputs.baseline is not None
        return load_lpips(inputs.device)(inputs.baseline, inputs.output)
