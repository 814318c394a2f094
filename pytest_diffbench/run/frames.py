"""A pipeline's output as the one image diffbench stores: a still, or a video's frame strip.

A still is ``output.images[0]`` (or ``output[0][0]`` of a ``return_dict=False`` tuple), a PIL
image. A video is ``output.frames[0]``: a list of PIL frames (``output_type="pil"``), or an array
of frames with values in [0, 1] (uint8 arrays are taken as levels 0-255): numpy (frames, H, W, C) from ``output_type="np"``, torch
(frames, C, H, W) from ``output_type="pt"``, each with the batch axis in front. Its frames become
one lossless PNG strip, left to right (the layout of :mod:`pytest_diffbench.spec.video`), so the
baseline store, the run folder and the bundle keep one PNG per case.

Array values are turned into 8-bit levels the way diffusers' ``numpy_to_pil`` does
(``round(x * 255)``), so NaN raises numpy's "invalid value encountered in cast" warning, which
:func:`pytest_diffbench.run.generation.record_nonfinite` turns into an invalid output.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from pytest_diffbench.spec.video import FRAMES_KEY

#: Call keywords that set a video's frame rate (diffusers: ``fps`` in Stable Video Diffusion,
#: ``target_fps`` in I2VGen-XL); recorded in the config's ``video`` when the call takes them.
FPS_KEYWORDS = ("fps", "target_fps")


class OutputError(ValueError):
    """The pipeline's output cannot be one image to compare; the message is one line saying why
    and what would be valid (the case fails with it, no traceback)."""


def output_image(output: Any) -> tuple[Image.Image, int]:
    """The one image of a pipeline call and how many frames it holds (1 for a still).

    Raises :class:`OutputError` when the output holds neither PIL images nor frames, or holds
    several images or videos, frames of different sizes, or a video without frames.
    """
    frames = getattr(output, "frames", None)
    if frames is not None:
        return _video(frames)
    images = getattr(output, "images", None)
    if images is None and isinstance(output, (tuple, list)) and output:
        images = output[0]
        if isinstance(images, (list, tuple)) and images and isinstance(images[0], (list, tuple)):
            return _video(images)  # AnimateDiff with return_dict=False: ([frames],)
    if not isinstance(images, (list, tuple)) or not images or not isinstance(images[0], Image.Image):
        raise OutputError(
            "the pipeline call did not return PIL images (expected output.images[0] to be a PIL.Image, or "
            "output.frames[0] a video's frames); diffbench calls it with output_type='pil'"
        )
    if len(images) != 1:
        raise OutputError(f"the pipeline returned {len(images)} images; diffbench compares one image per case")
    return images[0], 1


def frame_strip(frames: Sequence[Image.Image]) -> Image.Image:
    """``frames`` side by side, left to right, in one image of their mode (RGB when their modes
    differ): ``len(frames) * width`` x ``height`` px. Raises :class:`OutputError` when there are
    none or their sizes differ."""
    if not frames:
        raise OutputError("the pipeline returned a video without frames; diffbench compares at least one frame")
    sizes = sorted({frame.size for frame in frames})
    if len(sizes) != 1:
        raise OutputError(f"the pipeline returned frames of different sizes ({', '.join(f'{w}x{h}' for w, h in sizes)}); "
                         "a video's frames must share one size")
    modes = {frame.mode for frame in frames}
    mode = frames[0].mode if len(modes) == 1 else "RGB"
    width, height = sizes[0]
    strip = Image.new(mode, (width * len(frames), height))
    for index, frame in enumerate(frames):
        strip.paste(frame if frame.mode == mode else frame.convert(mode), (index * width, 0))
    return strip


def video_config(pipe: Any, frames: int, call_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The frozen config's ``video`` record: ``{}`` for a still (``frames`` 1), else
    ``{"frames": frames}`` plus each of :data:`FPS_KEYWORDS` the pipeline's ``__call__`` takes,
    with the value given in ``call_kwargs`` or else the call's default."""
    if frames <= 1:
        return {}
    record: dict[str, Any] = {FRAMES_KEY: frames}
    call = getattr(type(pipe), "__call__", None)
    try:
        parameters = inspect.signature(call).parameters if call is not None else {}
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        parameters = {}
    for name in FPS_KEYWORDS:
        if name in call_kwargs:
            record[name] = call_kwargs[name]
        elif name in parameters and parameters[name].default is not inspect.Parameter.empty:
            record[name] = parameters[name].default
    return record


def _video(videos: Any) -> tuple[Image.Image, int]:
    """The strip of the one video in ``videos`` (a batch: a list of frame lists, or an array
    with the batch axis first) and its frame count."""
    count = len(videos)
    if count != 1:
        raise OutputError(f"the pipeline returned {count} videos; diffbench compares one video per case "
                         "(leave num_videos_per_prompt at 1)")
    frames = videos[0]
    if isinstance(frames, (list, tuple)):
        if not all(isinstance(frame, Image.Image) for frame in frames):
            kinds = sorted({type(frame).__name__ for frame in frames})
            raise OutputError(f"the pipeline's video frames are {', '.join(kinds)}, not PIL images; diffbench calls it "
                            "with output_type='pil'")
        return frame_strip(frames), len(frames)
    return _array_video(frames)


def _array_video(frames: Any) -> tuple[Image.Image, int]:
    """A numpy (frames, H, W, C) or torch (frames, C, H, W) array of values in [0, 1] as a strip."""
    is_torch = type(frames).__module__.split(".")[0] == "torch"
    array = frames.detach().float().cpu().permute(0, 2, 3, 1).numpy() if is_torch else np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        layout = "(frames, C, H, W)" if is_torch else "(frames, H, W, C)"
        raise OutputError(f"the pipeline's video frames have shape {tuple(frames.shape)}, not {layout} with 1, 3 or 4 "
                        "channels; diffbench calls it with output_type='pil'")
    if array.dtype != np.uint8:  # values in [0, 1], as diffusers' numpy_to_pil reads them; NaN warns on the cast
        array = (array * 255).round().astype(np.uint8)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[-1]]
    images = [Image.fromarray(frame[..., 0] if mode == "L" else frame, mode) for frame in array]
    return frame_strip(images), len(images)
