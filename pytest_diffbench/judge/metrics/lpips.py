"""LPIPS: the learned perceptual distance (Zhang et al. 2018) with the AlexNet trunk, 0.0 for
identical images, from the ``lpips`` package.

It needs torch, lpips and torchvision's AlexNet checkpoint in the torch hub cache; they are
imported only when LPIPS runs, and the checkpoint is never downloaded: when it is missing,
:class:`LpipsUnavailable` names the file and how to provide it.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_diffbench.judge.metrics.base import Direction, MetricInputs, MetricKind, MetricUnavailable
from pytest_diffbench.judge.metrics.device import DeviceImage
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


#: Why LPIPS did not run, as its status cell and failure line say it (the long advice, which
#: names the file and where to put it, is printed once per run: :meth:`LPIPS.advice`).
NO_WEIGHTS = "no AlexNet weights, see the run's warning"
UNREADABLE_WEIGHTS = "the AlexNet weights do not load, see the run's warning"


def alexnet_checkpoint_path() -> Path:
    """Where torchvision looks for the AlexNet weights: ``$TORCH_HOME/hub/checkpoints/`` (torch's
    default ``~/.cache/torch``, or ``$XDG_CACHE_HOME/torch``). Imports no torch: when torch is
    loaded its ``torch.hub.get_dir()`` (which ``torch.hub.set_dir`` may have moved) decides."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir()) / "checkpoints" / ALEXNET_CHECKPOINT
    home = os.environ.get("TORCH_HOME", os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints" / ALEXNET_CHECKPOINT


def lpips_advice(reason: str) -> str:
    """The whole advice behind the short ``reason`` a case recorded (:data:`NO_WEIGHTS`,
    :data:`UNREADABLE_WEIGHTS`): which file is missing or broken and where to put a copy;
    ``reason`` itself for any other."""
    path = alexnet_checkpoint_path()
    if reason == NO_WEIGHTS:
        return (f"LPIPS needs the AlexNet checkpoint {path}, which does not exist, and diffbench never "
                f"downloads it during tests. On a machine with network, fetch {ALEXNET_URL} and copy it to "
                "that path (set TORCH_HOME to move the torch cache: the file is read from "
                "$TORCH_HOME/hub/checkpoints/), or turn LPIPS off with the ini option `diffbench_lpips = off`.")
    if reason == UNREADABLE_WEIGHTS:
        return (f"LPIPS could not load the AlexNet checkpoint {path}. Replace it with a fresh copy of "
                f"{ALEXNET_URL}, or turn LPIPS off with `diffbench_lpips = off`.")
    return reason


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

    def on_device(self, a: DeviceImage, b: DeviceImage) -> "torch.Tensor":
        """The distance of each frame of ``a`` to the same frame of ``b``: float tensor (N,) on
        the scorer's device, no host sync (the images are moved there if they are elsewhere)."""
        import torch

        def scaled(image: DeviceImage) -> torch.Tensor:
            # lpips expects NCHW float32 in [-1, 1].
            return (image.pixels.to(self.device) / 127.5 - 1.0).to(torch.float32)

        with torch.no_grad():
            return self.model(scaled(a), scaled(b)).reshape(-1)


_SCORERS: dict[str, LpipsScorer] = {}


def load_lpips(device: str) -> LpipsScorer:
    """The LPIPS scorer for ``device``, loaded once per process.

    Raises :class:`LpipsUnavailable` instead of letting torchvision download the checkpoint.
    """
    if device in _SCORERS:
        return _SCORERS[device]
    if not alexnet_checkpoint_path().is_file():
        raise LpipsUnavailable(lpips_advice(NO_WEIGHTS), NO_WEIGHTS)
    import lpips

    try:
        with warnings.catch_warnings():
            # lpips 0.1.4 still calls alexnet(pretrained=True).
            warnings.filterwarnings("ignore", message="The parameter 'pretrained' is deprecated")
            warnings.filterwarnings("ignore", message="Arguments other than a weight enum")
            model = lpips.LPIPS(net="alex", verbose=False)
    except Exception as exc:
        raise LpipsUnavailable(f"{lpips_advice(UNREADABLE_WEIGHTS)} ({type(exc).__name__}: {exc})",
                               UNREADABLE_WEIGHTS) from exc
    scorer = LpipsScorer(model.to(device).eval(), device)
    if device.partition(":")[0] == "cuda":
        import torch

        torch.cuda.synchronize(device)  # the weights are copied before the metrics' own stream reads them
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

    def compute_on_device(self, inputs: MetricInputs, output: DeviceImage, baseline: DeviceImage) -> "torch.Tensor":
        return load_lpips(inputs.device).on_device(baseline, output)

    def advice(self, reason: str) -> str:
        """See :func:`lpips_advice`."""
        return lpips_advice(reason)
