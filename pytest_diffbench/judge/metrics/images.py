"""Images as the arrays metrics read: RGB uint8, shape (H, W, 3), never resized."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_diffbench.spec.video import frame_boxes

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image


class ImageSizeMismatch(ValueError):
    """The two images have different sizes; they are never resized to match."""


def to_rgb_array(image: "Image.Image") -> "npt.NDArray[np.uint8]":
    """``image`` as a uint8 array of shape (H, W, 3): RGBA loses alpha, grayscale is replicated."""
    import numpy as np

    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def size_text(array: "npt.NDArray[np.uint8]") -> str:
    """``WxH`` of an (H, W, 3) array."""
    return f"{array.shape[1]}x{array.shape[0]}"


def check_pair(a: "npt.NDArray[np.uint8]", b: "npt.NDArray[np.uint8]") -> None:
    """Raise ValueError unless both are (H, W, 3); :class:`ImageSizeMismatch` when their sizes differ."""
    for array in (a, b):
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"expected an RGB array of shape (H, W, 3), got shape {array.shape}; "
                             "convert images with to_rgb_array()")
    if a.shape != b.shape:
        raise ImageSizeMismatch(f"image sizes differ: {size_text(a)} vs {size_text(b)} (WxH); "
                                "images are never resized for comparison")


def split_frames(array: "npt.NDArray[np.uint8]", frames: int) -> "list[npt.NDArray[np.uint8]]":
    """The ``frames`` frames of a video strip (an (H, W, 3) array of frames left to right, see
    :mod:`pytest_diffbench.spec.video`), frame 1 first, each (H, W / frames, 3) (views, not copies);
    ``[array]`` for 1 frame. Raises :class:`ImageSizeMismatch` when the width is not a multiple
    of ``frames``."""
    try:
        boxes = frame_boxes(array.shape[1], array.shape[0], frames)
    except ValueError as exc:
        raise ImageSizeMismatch(str(exc)) from None
    return [array[top:bottom, left:right] for left, top, right, bottom in boxes]
