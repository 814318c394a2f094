"""A deterministic procedural dataset: one coloured shape on a plain or two-tone background.

Every example is a 64x64 RGB image of a single filled shape (:data:`SHAPES`) in one of
the :data:`COLOURS`, placed at a random position and size on a background of one or two
*other* colours, with a caption such as ``"a red circle on a blue background"`` or
``"a red circle on a blue and white background"`` (two-tone: the image is split by a
horizontal or vertical line into the two named colours, in that order: top/left first).

Determinism: :func:`make_example` draws everything from the ``numpy.random.Generator``
it is given and renders with PIL only (no fonts, no platform-dependent code), so the
same generator state gives byte-identical images on any machine. :func:`dataset` and
:func:`batch` seed their own generators from ``seed`` (and ``index``).

Rendering: shapes are drawn at 4x resolution and box-filtered down, so edges are
anti-aliased; the two-tone split is drawn at full resolution (a sharp edge), so the
only in-between colours in an image are on the shape's own outline. Each colour is
jittered by up to :data:`COLOUR_JITTER` per channel so the model sees more than six
exact RGB values.

Squares are axis-aligned, triangles are upright isosceles triangles whose base equals
their height; circles are round. :mod:`training.classify` relies on this.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "BACKGROUND_KINDS",
    "COLOURS",
    "COLOUR_JITTER",
    "COLOUR_NAMES",
    "IMAGE_SIZE",
    "Labels",
    "SHAPES",
    "batch",
    "caption_for",
    "dataset",
    "draw_shape",
    "make_example",
    "render",
    "shape_mask",
]

IMAGE_SIZE = 64
#: Name -> nominal RGB. Chosen far apart in RGB (min pairwise distance ~ 200).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 170, 60),
    "blue": (40, 70, 215),
    "yellow": (240, 215, 40),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
BACKGROUND_KINDS: tuple[str, ...] = ("plain", "two-tone")
#: Per-channel jitter (uniform integer in [-J, J]) applied to every colour of an example.
COLOUR_JITTER = 12
#: Probability that an example has a two-tone background.
TWO_TONE_PROBABILITY = 0.3
#: Shape extent (side of its bounding box) in pixels at 64x64, inclusive range.
MIN_EXTENT, MAX_EXTENT = 24, 40
#: Minimum distance from the shape's bounding box to the image border, in pixels.
MARGIN = 4
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Labels:
    """What an example shows. ``box`` is (left, top, right, bottom) in pixels, floats."""

    shape: str
    colour: str
    background: tuple[str, ...]  # one colour (plain) or two (two-tone)
    split: str | None  # "horizontal" or "vertical" for two-tone, else None
    box: tuple[float, float, float, float]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def caption_for(shape: str, colour: str, background: tuple[str, ...] | list[str]) -> str:
    """``"a red circle on a blue background"`` / ``"... on a blue and white background"``."""
    return f"a {colour} {shape} on a {' and '.join(background)} background"


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float],
               fill: int | tuple[int, int, int]) -> None:
    """Draw filled ``shape`` inscribed in ``box`` (left, top, right, bottom)."""
    left, top, right, bottom = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([((left + right) / 2, top), (right, bottom), (left, bottom)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def shape_mask(shape: str, box: tuple[float, float, float, float], size: tuple[int, int]) -> Image.Image:
    """Anti-aliased coverage ("L", 0-255) of ``shape`` in ``box`` on a (width, height) canvas.

    Drawn at 4x and box-filtered down, so edge pixels hold the fraction of them covered.
    """
    width, height = size
    canvas = Image.new("L", (width * _SUPERSAMPLE, height * _SUPERSAMPLE), 0)
    scaled = tuple(v * _SUPERSAMPLE for v in box)
    draw_shape(ImageDraw.Draw(canvas), shape, scaled, 255)  # type: ignore[arg-type]
    return canvas.resize((width, height), Image.Resampling.BOX)


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    offsets = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
    return tuple(int(np.clip(c + o, 0, 255)) for c, o in zip(rgb, offsets))  # type: ignore[return-value]


def render(labels: Labels, fg_rgb: tuple[int, int, int],
           bg_rgbs: tuple[tuple[int, int, int], ...], size: int = IMAGE_SIZE) -> Image.Image:
    """Render ``labels`` with the given (already jittered) colours."""
    image = Image.new("RGB", (size, size), bg_rgbs[0])
    if len(bg_rgbs) == 2:
        half = size // 2
        second = (0, half, size, size) if labels.split == "horizontal" else (half, 0, size, size)
        ImageDraw.Draw(image).rectangle(
            (second[0], second[1], second[2] - 1, second[3] - 1), fill=bg_rgbs[1]
        )
    mask = shape_mask(labels.shape, labels.box, (size, size))
    image.paste(Image.new("RGB", (size, size), fg_rgb), (0, 0), mask)
    return image


def make_example(rng: np.random.Generator) -> tuple[Image.Image, str, Labels]:
    """Draw one example from ``rng``: (64x64 RGB image, caption, labels)."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
    others = [c for c in COLOUR_NAMES if c != colour]
    if rng.random() < TWO_TONE_PROBABILITY:
        first, second = rng.choice(len(others), size=2, replace=False)
        background: tuple[str, ...] = (others[int(first)], others[int(second)])
        split: str | None = "horizontal" if rng.random() < 0.5 else "vertical"
    else:
        background = (others[int(rng.integers(len(others)))],)
        split = None
    extent = float(rng.uniform(MIN_EXTENT, MAX_EXTENT))
    left = float(rng.uniform(MARGIN, IMAGE_SIZE - MARGIN - extent))
    top = float(rng.uniform(MARGIN, IMAGE_SIZE - MARGIN - extent))
    labels = Labels(shape, colour, background, split, (left, top, left + extent, top + extent))
    fg_rgb = _jitter(rng, COLOURS[colour])
    bg_rgbs = tuple(_jitter(rng, COLOURS[name]) for name in background)
    return render(labels, fg_rgb, bg_rgbs), caption_for(shape, colour, background), labels


def dataset(n: int, seed: int) -> list[tuple[Image.Image, str, Labels]]:
    """``n`` examples from one generator seeded with ``seed`` (same seed -> identical bytes)."""
    rng = np.random.default_rng(seed)
    return [make_example(rng) for _ in range(n)]


def batch(n: int, seed: int, index: int) -> tuple[np.ndarray, list[str], list[Labels]]:
    """Batch number ``index`` of the stream for ``seed``, as a float32 NCHW array in [-1, 1].

    Each batch has its own generator (seeded with ``(seed, index)``), so a training run
    can draw batch ``k`` without drawing the ones before it.
    """
    rng = np.random.default_rng([seed, index])
    images, captions, labels = [], [], []
    for _ in range(n):
        image, caption, label = make_example(rng)
        images.append(np.asarray(image))
        captions.append(caption)
        labels.append(label)
    array = np.stack(images).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
    return array, captions, labels
