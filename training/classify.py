"""A simple, documented check of what an image of the shapes dataset shows.

:func:`classify` answers "which colour and which shape is the foreground object?" for a
64x64 image in the style of :mod:`training.shapes`. It is the yardstick the tiny model's
quality is measured with, so it is deliberately plain:

1. **Background colours.** The pixels of a 2-px frame along the image border are
   background (the dataset keeps shapes :data:`~training.shapes.MARGIN` px inside).
   The first background colour is the mode of the frame: the frame pixel with the most
   neighbours (in RGB) closer than ``BACKGROUND_SPLIT / 2``, refined to the median of the
   frame pixels within :data:`BACKGROUND_SPLIT` of it. If the frame pixels farther than
   that are at least :data:`SECOND_TONE_SHARE` of the frame, their mode is a second
   background colour (two-tone backgrounds).
2. **Foreground mask.** Pixels whose RGB distance to the nearest background colour
   exceeds :data:`FOREGROUND_DISTANCE`; then a 3x3 binary opening (drops thin lines such
   as a blurred two-tone split), the largest connected component, holes filled.
   Fewer than :data:`MIN_PIXELS` pixels: no foreground (colour and shape are None).
3. **Colour.** The per-channel median of the mask's interior (the mask eroded once, when
   that leaves enough pixels, so anti-aliased edges do not pull the colour), snapped to
   the nearest nominal colour of :data:`~training.shapes.COLOURS`.
4. **Shape.** Template IoU: each shape of :data:`~training.shapes.SHAPES` is drawn into
   the mask's bounding box (the same drawing code as the dataset: a circle/ellipse, an
   axis-aligned rectangle, an upright triangle), and the shape whose template overlaps
   the mask best (intersection over union) wins. Equivalent in spirit to the fill ratio
   area / bbox area (circle pi/4, square 1, triangle 1/2) but it also uses *where* the
   pixels are. Rotated shapes are out of scope (the dataset has none).

Accuracy on the synthetic training images is measured by ``tests/test_shapes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from training.shapes import COLOURS, COLOUR_NAMES, SHAPES, shape_mask

__all__ = ["Classification", "classify", "foreground_mask", "nearest_colour"]

BORDER = 2
BACKGROUND_SPLIT = 80.0
SECOND_TONE_SHARE = 0.15
FOREGROUND_DISTANCE = 60.0
MIN_PIXELS = 20
_PALETTE = np.array([COLOURS[name] for name in COLOUR_NAMES], dtype=np.float32)


@dataclass(frozen=True)
class Classification:
    colour: str | None
    shape: str | None
    #: IoU of the mask with each shape's template (empty when there is no foreground).
    ious: dict[str, float] = field(default_factory=dict)
    #: Fraction of the image covered by the foreground mask.
    coverage: float = 0.0


def nearest_colour(rgb: np.ndarray) -> str:
    """Name of the :data:`~training.shapes.COLOURS` entry nearest to ``rgb`` (Euclidean)."""
    distances = np.linalg.norm(_PALETTE - np.asarray(rgb, dtype=np.float32), axis=1)
    return COLOUR_NAMES[int(np.argmin(distances))]


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:  # float images in [0, 1], as pipelines return with output_type="np"
        array = np.clip(np.round(array * 255.0), 0, 255)
    return array.astype(np.float32)


def _mode_colour(pixels: np.ndarray) -> np.ndarray:
    """Median of the pixels near the densest one (the frame pixel with most close neighbours)."""
    candidates = pixels[::4]  # every 4th frame pixel is plenty to find the mode, 16x cheaper
    pairwise = np.linalg.norm(candidates[:, None, :] - candidates[None, :, :], axis=-1)
    seed = candidates[int(np.argmax((pairwise < BACKGROUND_SPLIT / 2).sum(axis=1)))]
    return np.median(pixels[np.linalg.norm(pixels - seed, axis=1) <= BACKGROUND_SPLIT], axis=0)


def _background_colours(array: np.ndarray) -> list[np.ndarray]:
    frame = np.concatenate([
        array[:BORDER].reshape(-1, 3), array[-BORDER:].reshape(-1, 3),
        array[BORDER:-BORDER, :BORDER].reshape(-1, 3), array[BORDER:-BORDER, -BORDER:].reshape(-1, 3),
    ])
    colours = []
    remaining = frame
    while len(colours) < 2 and len(remaining) >= SECOND_TONE_SHARE * len(frame):
        colour = _mode_colour(remaining)
        colours.append(colour)
        remaining = remaining[np.linalg.norm(remaining - colour, axis=1) > BACKGROUND_SPLIT]
    return colours


def foreground_mask(image: Image.Image | np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of the foreground object (steps 1-2 of the module docs)."""
    return _foreground_mask(_as_array(image))


def _foreground_mask(array: np.ndarray) -> np.ndarray:
    distance = np.min(
        [np.linalg.norm(array - colour, axis=-1) for colour in _background_colours(array)], axis=0
    )
    mask = ndimage.binary_opening(distance > FOREGROUND_DISTANCE, structure=np.ones((3, 3)))
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=range(1, count + 1))
    mask = labels == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_fill_holes(mask)


def _template(shape: str, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    height, width = size
    return np.asarray(shape_mask(shape, box, (width, height))) >= 128


def classify(image: Image.Image | np.ndarray) -> Classification:
    """Dominant foreground colour and shape of ``image`` (PIL, uint8 HxWx3, or float in [0, 1])."""
    array = _as_array(image)
    mask = _foreground_mask(array)
    area = int(mask.sum())
    if area < MIN_PIXELS:
        return Classification(None, None, {}, area / mask.size)

    interior = ndimage.binary_erosion(mask)
    pixels = array[interior] if interior.sum() >= MIN_PIXELS else array[mask]
    colour = nearest_colour(np.median(pixels, axis=0))

    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    ious = {}
    for shape in SHAPES:
        template = _template(shape, box, mask.shape)
        union = np.logical_or(mask, template).sum()
        ious[shape] = float(np.logical_and(mask, template).sum() / union) if union else 0.0
    shape = max(SHAPES, key=lambda name: ious[name])
    return Classification(colour, shape, ious, area / mask.size)
