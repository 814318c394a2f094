"""How a video is one image: its frames side by side, left to right, in one PNG strip.

A pipeline that returns frames (diffusers' ``.frames``: AnimateDiff, ...) is stored, compared and
shown as one lossless PNG: frame 1 at the left edge, frame ``n`` at the right, each frame
``width`` px wide, so the strip is ``n * width`` x ``height`` px. One layout everywhere (baseline
store, run folder, bundle, grids); the frame count is in the case's frozen config
(``video = {"frames": n, ...}``), so a strip is cut back into its frames without guessing, and a
baseline with another frame count is a stale baseline (its config hash differs), never a crash.

Plain geometry: no PIL, no numpy, no torch.
"""

from __future__ import annotations

import numbers
from typing import Any, Mapping

#: The frozen config's field that holds a video's record (``{"frames": n}``, plus ``fps``).
VIDEO_KEY = "video"
#: The key of :data:`VIDEO_KEY` that holds the frame count.
FRAMES_KEY = "frames"
#: Call keywords that make several outputs per call, with what they make; diffbench compares one per case.
COUNT_KEYWORDS = {"num_images_per_prompt": "image", "num_videos_per_prompt": "video"}


def frame_size(width: int, height: int, frames: int) -> tuple[int, int]:
    """The (width, height) in px of one frame of a ``width`` x ``height`` strip of ``frames`` frames.

    Raises ValueError (one line) when ``frames`` is not a positive int or ``width`` is not a
    multiple of it (the image is not a strip of that many frames).
    """
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise ValueError(f"a frame count must be an int >= 1, got {frames!r}")
    if width % frames:
        raise ValueError(f"a {width}x{height} image is not a strip of {frames} frames: its width is not a multiple "
                         f"of {frames}")
    return width // frames, height


def frame_boxes(width: int, height: int, frames: int) -> list[tuple[int, int, int, int]]:
    """Each frame's (left, top, right, bottom) box in a ``width`` x ``height`` strip, frame 1
    first (PIL's crop box, px). Raises ValueError as :func:`frame_size` does."""
    step, _ = frame_size(width, height, frames)
    return [(i * step, 0, (i + 1) * step, height) for i in range(frames)]


def config_frames(config: Mapping[str, Any]) -> int:
    """How many frames a case's image holds, from its frozen config (a mapping of its fields):
    ``video.frames``, or 1 for a still (no ``video`` record). Raises ValueError (one line) for a
    record whose frame count is not an int >= 1."""
    video = config.get(VIDEO_KEY) or {}
    if not isinstance(video, Mapping):
        raise ValueError(f"config field {VIDEO_KEY!r} must be a mapping like {{'frames': 16}}, got {video!r}")
    frames = video.get(FRAMES_KEY, 1)
    if not isinstance(frames, numbers.Integral) or isinstance(frames, bool) or int(frames) < 1:
        raise ValueError(f"config field {VIDEO_KEY}.{FRAMES_KEY} must be an int >= 1, got {frames!r}")
    return int(frames)


def count_problem(call_kwargs: Mapping[str, Any]) -> str:
    """Why the call would make more than one image or video (``num_images_per_prompt=2``,
    ``num_videos_per_prompt=4``), on one line naming the keyword and what is valid; "" when it
    makes one. Checked before the pipeline runs, so a case is refused before a whole generation."""
    for name, output in COUNT_KEYWORDS.items():
        value = call_kwargs.get(name)
        if value is not None and value != 1:
            return (f"{name}={value!r} is not valid; diffbench compares one {output} per case, so {name} must be 1 "
                    f"(or left out): sweep the seed for more {output}s")
    return ""
