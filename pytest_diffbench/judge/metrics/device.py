"""Images on the pipeline's device, for the metrics that run in torch there.

Where metrics run is decided by the device's type (:func:`runs_on_torch`): on CUDA the output and
its baseline are uploaded once as uint8 and converted there (:class:`DeviceImage`), SSIM, PSNR and
LPIPS are computed there and their values come back in one host sync
(:func:`pytest_diffbench.judge.metrics.score_images`). Everywhere else (``cpu``, and ``mps``, which
has no float64) SSIM runs in scikit-image and PSNR in numpy: torch on the CPU was slower at every
size measured (see :func:`pytest_diffbench.judge.metrics.ssim.ssim`).

torch is imported only inside functions: without ``--diffbench`` nothing here loads it.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Protocol, runtime_checkable

from pytest_diffbench.judge.metrics.base import MetricInputs
from pytest_diffbench.spec.video import frame_boxes

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

#: The device types (``torch.device(...).type``) whose metrics run in torch on the device.
TORCH_DEVICE_TYPES: tuple[str, ...] = ("cuda",)


def runs_on_torch(device: str) -> bool:
    """Whether metrics for a pipeline on ``device`` (``"cpu"``, ``"cuda:0"``) run in torch there."""
    return device.partition(":")[0] in TORCH_DEVICE_TYPES


_STREAMS: dict[str, "torch.cuda.Stream"] = {}
_STREAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def metric_stream(device: str) -> Iterator[None]:
    """The block's CUDA work runs on the metrics' own stream of ``device`` (one per device), so
    metrics scored from another thread (a background writer) do not queue behind the pipeline's
    next generation on the default stream; a no-op off CUDA. Tensors made in the block are ready
    only on that stream: bring their values to the host inside the block."""
    if device.partition(":")[0] != "cuda":
        yield
        return
    import torch

    key = str(torch.device(device))
    with _STREAMS_LOCK:
        if key not in _STREAMS:
            _STREAMS[key] = torch.cuda.Stream(device=key)
        stream = _STREAMS[key]
    with torch.cuda.stream(stream):
        yield


@dataclass(frozen=True)
class DeviceImage:
    """An RGB image on a torch device: ``pixels`` is float64 of shape (N, 3, H, W), levels 0-255,
    one row per frame (N = 1 for a still). float64, because SSIM's variances in float32 lose up to
    8e-4 SSIM on bright, nearly flat images (E[x²] - E[x]² with x near 255)."""

    pixels: "torch.Tensor"

    @classmethod
    def upload(cls, array: "npt.NDArray[np.uint8]", device: str, frames: int = 1) -> "DeviceImage":
        """``array`` ((H, W, 3) uint8, a strip of ``frames`` frames left to right) copied to
        ``device`` as uint8 once and converted there. Raises ValueError (see
        :func:`~pytest_diffbench.spec.video.frame_boxes`) when the width is not a multiple of ``frames``."""
        import torch

        boxes = frame_boxes(array.shape[1], array.shape[0], frames)
        # torch refuses to share a read-only array (PIL's); the copy is of uint8, the smallest form.
        strip = torch.from_numpy(array if array.flags.writeable else array.copy()).to(device).permute(2, 0, 1)
        stacked = torch.stack([strip[:, top:bottom, left:right] for left, top, right, bottom in boxes])
        return cls(stacked.to(torch.float64))

    @property
    def device(self) -> str:
        return str(self.pixels.device)


@runtime_checkable
class DeviceMetric(Protocol):
    """A metric that can also score a pair already on a torch device (``score_images`` uses it
    on the devices of :func:`runs_on_torch`)."""

    def compute_on_device(self, inputs: MetricInputs, output: DeviceImage, baseline: DeviceImage) -> "torch.Tensor":
        """The score of each frame, a float tensor of shape (N,) on the device; no host sync.
        ``inputs`` holds the same pair (frame 1 of a video) on the host, for
        :meth:`~pytest_diffbench.judge.metrics.base.Metric.check_available`-style checks."""
        ...
