"""Image similarity metrics for comparing pipeline outputs against baselines.

SSIM and PSNR need only numpy and scikit-image. LPIPS needs torch, lpips and
the torchvision AlexNet checkpoint in the torch hub cache; torch and lpips are
imported only when LPIPS is actually requested, and the checkpoint is never
downloaded: when it is missing, :class:`LpipsUnavailable` explains how to
provide it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

if TYPE_CHECKING:
    import torch

LPIPS_MODES = ("auto", "required", "off")

ALEXNET_CHECKPOINT = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_CHECKPOINT}"

# AlexNet's layers up to the last one LPIPS reads (conv 11/4, pool 3/2, conv 5,
# pool 3/2, three conv 3) produce no output for sides below 31 px.
LPIPS_MIN_SIDE = 31

_DATA_RANGE = 255.0
_MIN_SSIM_SIDE = 3
_DEFAULT_SSIM_WINDOW = 7


@dataclass(frozen=True)
class ImageScores:
    """Scores of one output image against its baseline.

    ``lpips`` is None unless ``lpips_status`` is ``"ok"``; otherwise the status
    is ``"off"`` or ``"unavailable: <reason>"``.
    """

    ssim: float
    psnr: float
    lpips: float | None
    lpips_status: str


class ImageSizeMismatch(ValueError):
    """The two images have different sizes; they are never resized to match."""


class LpipsUnavailable(RuntimeError):
    """LPIPS cannot run: its AlexNet checkpoint is missing or unreadable, or
    (from :func:`compare_images`) the images are too small for AlexNet."""


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Return ``image`` as a uint8 array of shape (H, W, 3).

    RGBA loses its alpha channel, grayscale is replicated to three channels.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    for array in (a, b):
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(
                f"expected an RGB array of shape (H, W, 3), got shape {array.shape}; "
                "convert images with to_rgb_array()"
            )
    if a.shape != b.shape:
        raise ImageSizeMismatch(
            f"image sizes differ: {_size(a)} vs {_size(b)} (WxH); "
            "images are never resized for comparison"
        )


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two RGB uint8 arrays (1.0 means identical).

    The window shrinks from the default 7 to the largest odd size that fits,
    so thumbnails down to 3x3 can be compared.
    """
    _check_pair(a, b)
    side = min(a.shape[0], a.shape[1])
    if side < _MIN_SSIM_SIDE:
        raise ValueError(
            f"SSIM needs images at least {_MIN_SSIM_SIDE}x{_MIN_SSIM_SIDE} px, "
            f"got {_size(a)}"
        )
    win_size = min(side, _DEFAULT_SSIM_WINDOW)
    if win_size % 2 == 0:
        win_size -= 1
    return float(
        structural_similarity(
            a, b, channel_axis=-1, data_range=_DATA_RANGE, win_size=win_size
        )
    )


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for data range 255; ``math.inf`` if identical."""
    _check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(_DATA_RANGE**2 / mse)


def alexnet_checkpoint_path() -> Path:
    """Where torchvision looks for the AlexNet weights (follows $TORCH_HOME)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_CHECKPOINT


def _lpips_size_problem(array: np.ndarray) -> str | None:
    if min(array.shape[0], array.shape[1]) < LPIPS_MIN_SIDE:
        return (
            f"LPIPS (AlexNet) needs images at least {LPIPS_MIN_SIDE}x{LPIPS_MIN_SIDE} px, "
            f"got {_size(array)}"
        )
    return None


class LpipsScorer:
    """LPIPS (AlexNet) distance on one device; 0.0 means perceptually identical."""

    def __init__(self, model: torch.nn.Module, device: str) -> None:
        self.model = model
        self.device = device

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        import torch

        _check_pair(a, b)
        problem = _lpips_size_problem(a)
        if problem:
            raise ValueError(problem)

        def to_tensor(array: np.ndarray) -> torch.Tensor:
            # lpips expects NCHW float in [-1, 1].
            tensor = torch.tensor(array, dtype=torch.float32, device=self.device)
            return (tensor.permute(2, 0, 1).unsqueeze(0) / 127.5) - 1.0

        with torch.no_grad():
            return float(self.model(to_tensor(a), to_tensor(b)).item())


_SCORERS: dict[str, LpipsScorer] = {}


def load_lpips(device: str) -> LpipsScorer:
    """Return the LPIPS scorer for ``device``, loading it once per process.

    Raises :class:`LpipsUnavailable` instead of letting torchvision try to
    download the AlexNet checkpoint.
    """
    if device in _SCORERS:
        return _SCORERS[device]

    path = alexnet_checkpoint_path()
    if not path.is_file():
        raise LpipsUnavailable(
            f"LPIPS needs the AlexNet checkpoint {path}, which does not exist, and "
            f"diffbench never downloads it during tests. On a machine with network, "
            f"fetch {ALEXNET_URL} and copy it to that path (set TORCH_HOME to move "
            f"the torch cache: the file is read from $TORCH_HOME/hub/checkpoints/), "
            f"or turn LPIPS off with the ini option `diffbench_lpips = off`."
        )

    import lpips

    try:
        with warnings.catch_warnings():
            # lpips 0.1.4 still calls alexnet(pretrained=True).
            warnings.filterwarnings(
                "ignore", message="The parameter 'pretrained' is deprecated"
            )
            warnings.filterwarnings(
                "ignore", message="Arguments other than a weight enum"
            )
            model = lpips.LPIPS(net="alex", verbose=False)
    except Exception as exc:
        raise LpipsUnavailable(
            f"LPIPS could not load the AlexNet checkpoint {path}: "
            f"{type(exc).__name__}: {exc}. Replace it with a fresh copy of "
            f"{ALEXNET_URL}, or turn LPIPS off with `diffbench_lpips = off`."
        ) from exc

    scorer = LpipsScorer(model.to(device).eval(), device)
    _SCORERS[device] = scorer
    return scorer


def compare_images(
    baseline: Image.Image,
    output: Image.Image,
    *,
    lpips_mode: str = "auto",
    device: str = "cpu",
) -> ImageScores:
    """Score ``output`` against ``baseline`` with SSIM, PSNR and optionally LPIPS.

    ``lpips_mode``: "off" skips LPIPS (torch is not imported); "auto" records
    why LPIPS could not run in ``lpips_status``; "required" raises
    :class:`LpipsUnavailable` instead.
    """
    if lpips_mode not in LPIPS_MODES:
        raise ValueError(
            f"lpips_mode must be one of {', '.join(LPIPS_MODES)}; got {lpips_mode!r}"
        )
    a = to_rgb_array(baseline)
    b = to_rgb_array(output)
    ssim_value = ssim(a, b)
    psnr_value = psnr(a, b)
    if lpips_mode == "off":
        return ImageScores(ssim_value, psnr_value, None, "off")

    problem = _lpips_size_problem(a)
    if problem:
        if lpips_mode == "required":
            raise LpipsUnavailable(problem)
        return ImageScores(ssim_value, psnr_value, None, f"unavailable: {problem}")

    try:
        scorer = load_lpips(device)
    except LpipsUnavailable as exc:
        if lpips_mode == "required":
            raise
        return ImageScores(ssim_value, psnr_value, None, f"unavailable: {exc}")
    return ImageScores(ssim_value, psnr_value, scorer(a, b), "ok")
