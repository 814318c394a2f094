"""SSIM: structural similarity on RGB, 1.0 for identical images.

scikit-image defines it here (:func:`ssim` on the host); on a CUDA pipeline's device the same
definition runs in torchmetrics (:func:`ssim_on_device`, float64), equal to scikit-image within
1e-6 SSIM on real photos (tests/unit/judge/test_metrics_on_device.py; measured: 1e-14).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_diffbench.judge.metrics.base import Direction, MetricInputs, MetricKind
from pytest_diffbench.judge.metrics.device import DeviceImage, metric_stream, runs_on_torch
from pytest_diffbench.judge.metrics.images import check_pair

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

_DATA_RANGE = 255.0
#: The smallest side SSIM scores: its window shrinks from 7 to 3 for small images.
MIN_SIDE = 3
_DEFAULT_WINDOW = 7
_K1, _K2 = 0.01, 0.03
#: One scikit-image SSIM at a time in this process: each allocates about 150 MiB at 1024x1024 px,
#: so two at once (the verdict's and the background writer's ssim_vs_most_steps) would double the
#: peak memory (benchmarks/memory.py). numpy and scipy hold the GIL for most of it anyway.
_CPU_SSIM = threading.Lock()


def window_size(height: int, width: int) -> int:
    """The side of SSIM's uniform window for an image of ``height`` x ``width`` px: 7, or the
    largest odd size that fits. Raises ValueError for sides below :data:`MIN_SIDE`."""
    side = min(height, width)
    if side < MIN_SIDE:
        raise ValueError(f"SSIM needs images at least {MIN_SIDE}x{MIN_SIDE} px, got {width}x{height}")
    size = min(side, _DEFAULT_WINDOW)
    return size if size % 2 else size - 1


def ssim(a: "npt.NDArray[np.uint8] | DeviceImage", b: "npt.NDArray[np.uint8] | DeviceImage",
         device: str = "cpu") -> float:
    """Structural similarity of two RGB images (1.0 means identical): (H, W, 3) uint8 arrays, or
    :class:`DeviceImage` stills already on a device.

    Arrays on a ``device`` of :func:`~pytest_diffbench.judge.metrics.device.runs_on_torch`
    (``cuda:0``) are uploaded there and scored by :func:`ssim_on_device` on the metrics' own
    stream (:func:`~pytest_diffbench.judge.metrics.device.metric_stream`: from a background
    thread it does not wait for the pipeline's next generation), one host sync; on any
    other device by ``skimage.metrics.structural_similarity`` with data range 255, averaged over
    channels, the window shrunk from 7 to the largest odd size that fits (thumbnails down to 3x3).
    Raises ValueError for smaller images or shapes that differ. One scikit-image SSIM runs at a
    time per process (about 150 MiB each at 1024x1024 px).

    scikit-image stays on the CPU because torch was 15-30x slower there at every size and thread
    count. ``python benchmarks/metrics.py --sizes 1024 512 256 64 --cpu-runs 5`` on the project's
    shared 2-core Xeon (load about 9; median ms of 5 interleaved rounds, SSIM + PSNR through
    ``score_images``), scikit-image / torch float64 with 1 thread / with 2 threads: 64 px
    1.4 / 44 / 326; 256 px 151 / 2440 / 3384; 512 px 579 / 9619 / 9025; 1024 px 2222 / 34353 /
    32864. torch float32 (SSIM alone, 1 thread: 64 px 8.1 ms against scikit-image's 3.9, 512 px 109
    against 200, 1024 px 1635 against 945) would win at 512 px only and is up to 8e-4 off on
    bright flat images, so no size switches to torch.
    """
    if isinstance(a, DeviceImage) or isinstance(b, DeviceImage):
        first = a if isinstance(a, DeviceImage) else DeviceImage.upload(_checked(a, b), device)
        second = b if isinstance(b, DeviceImage) else DeviceImage.upload(_checked(b, a), first.device)
        return float(ssim_on_device(first, second)[0])
    if runs_on_torch(device):
        with metric_stream(device):  # everything made here is synced here: safe from any thread
            return float(ssim_on_device(DeviceImage.upload(_checked(a, b), device), DeviceImage.upload(b, device))[0])
    from skimage.metrics import structural_similarity

    check_pair(a, b)
    win_size = window_size(a.shape[0], a.shape[1])
    with _CPU_SSIM:
        return float(structural_similarity(a, b, channel_axis=-1, data_range=_DATA_RANGE, win_size=win_size))


def _checked(array: "npt.NDArray[np.uint8]", other: "npt.NDArray[np.uint8] | DeviceImage") -> "npt.NDArray[np.uint8]":
    if not isinstance(other, DeviceImage):
        check_pair(array, other)
    return array


def ssim_on_device(a: DeviceImage, b: DeviceImage) -> "torch.Tensor":
    """SSIM of each frame of ``a`` against the same frame of ``b``: float64 tensor (N,) on their
    device, no host sync. scikit-image's definition (:func:`ssim`) in torchmetrics.

    torchmetrics' ``structural_similarity_index_measure`` with a uniform window
    (``gaussian_kernel=False``, ``kernel_size`` of :func:`window_size`), ``data_range=255``,
    ``k1=0.01``. Two differences from scikit-image are undone: scikit-image uses the sample
    covariance, which scales every (co)variance by f = NP / (NP - 1) (NP = window²), and that
    SSIM equals the population one with C2 / f, so ``k2 = 0.03 / sqrt(f)``; and torchmetrics
    reflect-pads the image and averages the whole map, so the full map
    (``return_full_image``) is cropped by half a window on each side, as scikit-image does,
    before the mean over channels and pixels. ValueError when the sizes differ or are too small.
    """
    from torchmetrics.functional.image.ssim import structural_similarity_index_measure

    if a.pixels.shape != b.pixels.shape:
        raise ValueError(f"SSIM needs images of one size, got {tuple(a.pixels.shape)} and {tuple(b.pixels.shape)}")
    height, width = a.pixels.shape[-2:]
    win = window_size(height, width)
    scale = win * win / (win * win - 1)
    _, full = structural_similarity_index_measure(
        a.pixels, b.pixels, gaussian_kernel=False, kernel_size=win, data_range=_DATA_RANGE, k1=_K1,
        k2=_K2 / math.sqrt(scale), return_full_image=True)
    pad = (win - 1) // 2
    return full[..., pad:height - pad, pad:width - pad].mean(dim=(1, 2, 3))


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

    def compute_on_device(self, inputs: MetricInputs, output: DeviceImage, baseline: DeviceImage) -> "torch.Tensor":
        return ssim_on_device(baseline, output)
