"""Labeled figures for review: one case's baseline | output | difference grid (then the case's
input images), and one test's sweep sheet.

The figures describe themselves: captions, the case's settings and the axis labels are drawn
into the pixels, so a PNG copied out of a run folder still says what it shows. The same inputs
give the same pixels, and so the same bytes through :func:`pytest_diffbench.files.encode_png`
(for one Pillow version: glyph rendering belongs to Pillow's FreeType build).

Text uses Pillow's own font (``ImageFont.load_default(size=...)``, Pillow >= 10.1), so no
system fonts are needed. It covers ASCII and a few Latin-1 signs (the middle dot "·", "°",
"±"), not accented letters. Text is put in Unicode NFC first, and a character the font has
no glyph for is drawn as its escape (``très ✓`` as ``tr\\u00e8s \\u2713``, see
:func:`drawable_text`) rather than as a box: readable, unambiguous, and the same pixels on
every machine.

Sizing, the same for both figures:

- Images whose short side is below :data:`MIN_PANEL_SIDE` are upscaled with NEAREST by one
  integer factor for the whole figure, so each source pixel stays a crisp square and images of
  different sizes keep their relative size. The factor never makes a long side exceed
  :data:`MAX_UPSCALED_SIDE`, which keeps very thin images from becoming enormous.
- Larger images are drawn at their native size, never downscaled: a difference grid exists to
  show small artefacts, which downscaling would hide. Three 1024x1024 panels give a grid about
  3200 px wide. Callers that want a smaller sweep sheet of large images should pass thumbnails.
- The text size follows the panels (1/18 of the largest panel's short side, at least
  :data:`MIN_FONT_SIZE` px), and gaps and margins are half the text size, so labels stay
  equally readable at 64x64 and at 1024x1024.
"""

from __future__ import annotations

import math
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from pytest_diffbench.judge.metrics import ImageSizeMismatch, to_rgb_array

MIN_PANEL_SIDE = 256
MAX_UPSCALED_SIDE = 1024
MIN_FONT_SIZE = 12
#: An output wider than this many times its height (a strip of video frames) gets its grid's
#: panels stacked top to bottom instead of side by side.
STRIP_RATIO = 3

Color = tuple[int, int, int]
BACKGROUND: Color = (255, 255, 255)
TEXT: Color = (0, 0, 0)
AXIS_TEXT: Color = (0, 70, 160)
PLACEHOLDER_FILL: Color = (232, 232, 232)
PLACEHOLDER_EDGE: Color = (160, 160, 160)
PLACEHOLDER_TEXT: Color = (90, 90, 90)
FAILED: Color = (200, 0, 0)
#: The key line of a sweep sheet with marked cells.
MARK_KEY = "red frame: did not pass"


def _heatmap_colors() -> np.ndarray:
    """256 RGB colours: black at 0, through red, to yellow at 255.

    The difference goes through a square root first so that small differences (a few levels,
    typical of a changed kernel or dtype) are visibly red rather than nearly black; a
    difference of 1 already maps to red 32. Only 0 maps to black.
    """
    t = np.sqrt(np.arange(256) / 255.0)
    colors = np.zeros((256, 3), dtype=np.uint8)
    colors[:, 0] = np.rint(np.clip(2 * t, 0, 1) * 255)
    colors[:, 1] = np.rint(np.clip(2 * t - 1, 0, 1) * 255)
    return colors


_HEATMAP_COLORS = _heatmap_colors()


def difference_heatmap(output: Image.Image, baseline: Image.Image) -> Image.Image:
    """Per-pixel absolute difference (max over R, G, B) in a fixed colour map, at native size.

    Identical pixels are exactly black, differing ones are never black. Raises
    :class:`~pytest_diffbench.metrics.ImageSizeMismatch` when the sizes differ.
    """
    if output.size != baseline.size:
        raise ImageSizeMismatch(
            f"image sizes differ: {_size_text(output)} vs {_size_text(baseline)} (WxH); "
            "a difference heatmap needs equal sizes"
        )
    a = to_rgb_array(output).astype(np.int16)
    b = to_rgb_array(baseline).astype(np.int16)
    difference = np.abs(a - b).max(axis=2).astype(np.uint8)
    return Image.fromarray(_HEATMAP_COLORS[difference], mode="RGB")


def comparison_grid(output: Image.Image, baseline: Image.Image | None, label_lines: Sequence[str],
                    inputs: Sequence[tuple[str, Image.Image | None]] = ()) -> Image.Image:
    """baseline | output | difference heatmap side by side, each captioned, then one panel per
    input image of the case (``inputs``: (keyword, image), None for an image not at hand, drawn
    as a placeholder saying "input not saved"), with ``label_lines`` printed in a band below the
    panels (each line wrapped to the band's width).

    Without a baseline, the baseline and difference panels are placeholders saying "no
    baseline". When the sizes differ, both images are drawn at their own size (same scale
    factor, never resized to match) and the difference panel says "sizes differ". An input is
    context, not compared: it is drawn at the figure's scale when that fits the output panel's
    box, else fitted into that box (keeping its aspect ratio; the caption says so). An output
    wider than :data:`STRIP_RATIO` times its height (a video's strip of frames, see
    :mod:`pytest_diffbench.spec.video`) has the panels stacked top to bottom, each under its
    caption, so the figure reads as a film strip.
    """
    images = [output] if baseline is None else [baseline, output]
    scale = _scale(image.size for image in images)
    shown_output = _upscale(output, scale)
    style = _Style.for_panels([(image.width * scale, image.height * scale) for image in images])

    if baseline is None:
        panels = [style.placeholder(shown_output.size, "no baseline"), shown_output,
                  style.placeholder(shown_output.size, "no baseline")]
        captions = ["baseline", _caption("output", output, scale), "difference"]
    else:
        if baseline.size == output.size:
            difference = _upscale(difference_heatmap(output, baseline), scale)
        else:
            difference = style.placeholder(
                shown_output.size, f"sizes differ: baseline {_size_text(baseline)}, output {_size_text(output)}")
        panels = [_upscale(baseline, scale), shown_output, difference]
        captions = [_caption("baseline", baseline, scale), _caption("output", output, scale), "difference"]
    for keyword, image in inputs:
        panel, caption = _input_panel(style, keyword, image, scale, shown_output.size)
        panels.append(panel)
        captions.append(caption)

    if output.width > STRIP_RATIO * output.height:
        return _stacked(style, panels, captions, label_lines)
    pad = style.pad
    width = sum(panel.width for panel in panels) + pad * (len(panels) + 1)
    caption_lines = [style.wrap(caption, panel.width) for caption, panel in zip(captions, panels)]
    caption_height = max(len(lines) for lines in caption_lines) * style.line_height
    label_band = [line for label in label_lines for line in style.wrap(label, width - 2 * pad)]
    panels_top = pad + caption_height + pad // 2
    band_top = panels_top + max(panel.height for panel in panels) + pad
    height = band_top + len(label_band) * style.line_height + pad

    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    x = pad
    for panel, lines in zip(panels, caption_lines):
        style.draw_lines(draw, lines, x, pad, TEXT)
        canvas.paste(panel, (x, panels_top))
        x += panel.width + pad
    style.draw_lines(draw, label_band, pad, band_top, TEXT)
    return canvas


def _stacked(style: _Style, panels: Sequence[Image.Image], captions: Sequence[str],
             label_lines: Sequence[str]) -> Image.Image:
    """The panels of :func:`comparison_grid` top to bottom, each under its caption, then the
    label band: the layout of a strip of video frames, which side by side would make a figure
    many times wider than high."""
    pad = style.pad
    width = max(panel.width for panel in panels) + 2 * pad
    caption_lines = [style.wrap(caption, width - 2 * pad) for caption in captions]
    label_band = [line for label in label_lines for line in style.wrap(label, width - 2 * pad)]
    height = (pad + sum(len(lines) * style.line_height + pad // 2 + panel.height + pad
                        for lines, panel in zip(caption_lines, panels))
              + len(label_band) * style.line_height + pad)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = pad
    for panel, lines in zip(panels, caption_lines):
        style.draw_lines(draw, lines, pad, y, TEXT)
        y += len(lines) * style.line_height + pad // 2
        canvas.paste(panel, (pad, y))
        y += panel.height + pad
    style.draw_lines(draw, label_band, pad, y, TEXT)
    return canvas


def sweep_sheet(cells: Mapping[tuple[str, str], Image.Image | Path], rows: Sequence[str], columns: Sequence[str],
                title: str, row_axis: str, column_axis: str,
                marks: Mapping[tuple[str, str], str] | None = None) -> Image.Image:
    """A table of images: ``cells[(row, column)]`` at that row and column, a title on top,
    ``column_axis`` over the column values, ``row_axis`` over the row values on the left.

    A cell is an image or the path of its file: a file's size is read from its header first and
    its pixels one cell at a time as it is pasted, so a sheet holds one cell's image besides its
    canvas (the same pixels as from the opened image).

    Cells are laid out on a regular grid whose pitch is the largest cell (smaller images are
    centred in theirs); a missing cell is a placeholder. ``marks`` maps a cell to a short text
    (a failing case's outcome): that cell gets a red frame and the text in red under it, and a
    key line (:data:`MARK_KEY`) follows the title. A cell or mark whose row or column is not in
    ``rows`` or ``columns`` raises ValueError rather than silently dropping an image.
    """
    marks = marks or {}
    stray = sorted(key for key in [*cells, *marks] if key[0] not in rows or key[1] not in columns)
    if stray:
        raise ValueError(f"cells outside the sheet's rows and columns: {stray}")
    sizes = {key: _cell_size(cell) for key, cell in cells.items()}
    scale = _scale(sizes.values())
    cell_width = max((width * scale for width, _ in sizes.values()), default=MIN_PANEL_SIDE)
    cell_height = max((height * scale for _, height in sizes.values()), default=MIN_PANEL_SIDE)
    style = _Style.for_panels([(cell_width, cell_height)])
    pad, line_height = style.pad, style.line_height

    # The row labels' margin fits the widest label, up to one cell width (longer ones wrap).
    margin = min(cell_width, max(style.text_width(text) for text in [row_axis, *rows]))
    row_labels = {row: style.wrap(row, margin) for row in rows}
    corner = style.wrap(row_axis, margin)
    column_labels = {column: style.wrap(column, cell_width) for column in columns}
    cells_left = pad + margin + pad
    width = cells_left + len(columns) * (cell_width + pad)
    title_lines = style.wrap(title, width - 2 * pad)
    key_lines = style.wrap(MARK_KEY, width - 2 * pad) if marks else []
    mark_lines = {key: style.wrap(text, cell_width) for key, text in marks.items()}
    caption_height = max((len(lines) for lines in mark_lines.values()), default=0) * line_height
    row_pitch = cell_height + caption_height + pad
    axis_top = pad + (len(title_lines) + len(key_lines)) * line_height + pad
    labels_top = axis_top + line_height
    header_lines = max([len(corner), *(len(lines) for lines in column_labels.values())])
    cells_top = labels_top + header_lines * line_height + pad // 2
    height = cells_top + len(rows) * row_pitch

    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    style.draw_lines(draw, title_lines, pad, pad, TEXT)
    style.draw_lines(draw, key_lines, pad, pad + len(title_lines) * line_height, FAILED)
    cells_span = width - pad - cells_left
    axis_box = (cells_left, axis_top, cells_span, line_height)
    style.draw_centred(draw, style.wrap(column_axis, cells_span), axis_box, AXIS_TEXT)
    style.draw_lines(draw, corner, pad, labels_top, AXIS_TEXT)
    for j, column in enumerate(columns):
        label_box = (cells_left + j * (cell_width + pad), labels_top, cell_width, header_lines * line_height)
        style.draw_centred(draw, column_labels[column], label_box, TEXT)
    frame = max(2, pad // 3)
    for i, row in enumerate(rows):
        y = cells_top + i * row_pitch
        label_height = len(row_labels[row]) * line_height
        style.draw_lines(draw, row_labels[row], pad, y + max(0, (cell_height - label_height) // 2), TEXT)
        for j, column in enumerate(columns):
            x = cells_left + j * (cell_width + pad)
            cell = cells.get((row, column))
            if cell is None:
                canvas.paste(style.placeholder((cell_width, cell_height), "no image"), (x, y))
            else:
                image = _upscale(_cell_image(cell), scale)
                canvas.paste(image, (x + (cell_width - image.width) // 2, y + (cell_height - image.height) // 2))
                del image  # one cell's pixels at a time
            if (row, column) in mark_lines:  # the frame lies in the gap around the cell, over no pixel of it
                draw.rectangle((x - frame, y - frame, x + cell_width + frame - 1, y + cell_height + frame - 1),
                               outline=FAILED, width=frame)
                style.draw_lines(draw, mark_lines[(row, column)], x, y + cell_height + frame, FAILED)
    return canvas


def _cell_size(cell: Image.Image | Path) -> tuple[int, int]:
    """(width, height) of a sheet's cell; a file's from its header, without decoding its pixels."""
    if isinstance(cell, Image.Image):
        return cell.size
    with Image.open(cell) as image:
        return image.size


def _cell_image(cell: Image.Image | Path) -> Image.Image:
    """A sheet's cell as an RGB image (a file's decoded now)."""
    if isinstance(cell, Image.Image):
        return cell
    with Image.open(cell) as image:
        return image.convert("RGB")


def _scale(sizes: Iterable[tuple[int, int]]) -> int:
    """The one integer NEAREST factor for a figure's images (see the module docstring)."""
    sizes = list(sizes)
    if not sizes:
        return 1
    short = max(min(size) for size in sizes)
    long = max(max(size) for size in sizes)
    if short >= MIN_PANEL_SIDE:
        return 1
    return max(1, min(math.ceil(MIN_PANEL_SIDE / short), MAX_UPSCALED_SIDE // long))


def _upscale(image: Image.Image, scale: int) -> Image.Image:
    image = image if image.mode == "RGB" else image.convert("RGB")
    if scale == 1:
        return image
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def _input_panel(style: _Style, keyword: str, image: Image.Image | None, scale: int,
                 box: tuple[int, int]) -> tuple[Image.Image, str]:
    """The panel and caption of one input image (see :func:`comparison_grid`)."""
    if image is None:
        return style.placeholder(box, "input not saved"), keyword
    if image.width * scale <= box[0] and image.height * scale <= box[1]:
        return _upscale(image, scale), _caption(keyword, image, scale)
    fitted = ImageOps.contain(image.convert("RGB"), box, Image.Resampling.LANCZOS)
    return fitted, f"{keyword} {_size_text(image)} (shown {_size_text(fitted)})"


def _size_text(image: Image.Image) -> str:
    return f"{image.width}x{image.height}"


def _caption(name: str, image: Image.Image, scale: int) -> str:
    """E.g. ``output 64x64 (shown x4)``: the native size, and the upscaling when there is one."""
    shown = f" (shown x{scale})" if scale > 1 else ""
    return f"{name} {_size_text(image)}{shown}"


@lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow without FreeType falls back to a bitmap font
        raise RuntimeError("Pillow was built without FreeType; grids need ImageFont.load_default(size=...) (Pillow >= 10.1)")
    return font


#: A private-use character: no font has a glyph for it, so it draws the font's "missing" box.
_NO_GLYPH = "\ue000"
#: The size at which glyphs are compared with the missing box (coverage does not depend on size).
_PROBE_SIZE = 24


@lru_cache(maxsize=None)
def _has_glyph(char: str) -> bool:
    """Whether the grid font draws ``char`` (one character) as itself rather than as its missing box."""
    font = _font(_PROBE_SIZE)
    drawn, missing = font.getmask(char), font.getmask(_NO_GLYPH)
    return char != _NO_GLYPH and (drawn.size != missing.size or bytes(drawn) != bytes(missing))


@lru_cache(maxsize=4096)
def drawable_text(text: str) -> str:
    """``text`` as the figures draw it: in Unicode NFC, each character the grid font lacks replaced
    by its escape, ``\\u00e8`` (4 hex digits) or ``\\U0001f600`` (8, beyond the BMP), as in Python.
    Plain ASCII text is returned as it is. Drawable text is its own drawable text.

    Cached: a figure's labels are measured and drawn several times, and a run's figures share
    most of them."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(char if char.isprintable() and _has_glyph(char)
                   else f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}"
                   for char in unicodedata.normalize("NFC", text))


@lru_cache(maxsize=16384)
def _drawn_width(font_size: int, drawn: str) -> int:
    """The width in pixels of ``drawn`` (drawable text, see :func:`drawable_text`) at ``font_size``:
    one FreeType layout per distinct text and size, however often a wrap or a centring asks."""
    return math.ceil(_font(font_size).getlength(drawn))


class _Style:
    """Text size, spacing and text drawing for one figure."""

    def __init__(self, font_size: int) -> None:
        self.font_size = font_size
        self.font = _font(font_size)
        self.pad = font_size // 2
        ascent, descent = self.font.getmetrics()
        self.line_height = ascent + descent + font_size // 4

    @classmethod
    def for_panels(cls, sizes: Sequence[tuple[int, int]]) -> _Style:
        panel_side = max(min(size) for size in sizes)
        return cls(max(MIN_FONT_SIZE, round(panel_side / 18)))

    def text_width(self, text: str) -> int:
        return _drawn_width(self.font_size, drawable_text(text))

    def _fits(self, drawn: str, width: int) -> bool:
        return _drawn_width(self.font_size, drawn) <= width

    def wrap(self, text: str, width: int) -> list[str]:
        """Greedy word wrap to ``width`` pixels; a word longer than a line is split. The lines are
        :func:`drawable_text` (what :meth:`draw_lines` and :meth:`draw_centred` take).

        Greedy: a line takes words while the next one still fits, a word that fits no line is cut
        after its longest first part that fits (at least one character). A text is never wider
        for having more characters, so the longest run of words that fits, and the longest part
        of a word, are found by bisection: a few measurements per line, not one per word or
        character (the lines are the same)."""
        lines: list[str] = []
        for paragraph in [drawable_text(line) for line in text.splitlines()] or [""]:
            words = paragraph.split(" ")
            line, i = "", 0
            while i < len(words):
                if line:
                    taken = self._words_that_fit(line, words, i, width)
                    if taken > i:
                        line = " ".join([line, *words[i:taken]])
                    if taken == len(words):
                        break
                    lines.append(line)
                    i = taken
                line = self._split_long(words[i], width, lines)
                i += 1
            lines.append(line)
        return lines

    def _words_that_fit(self, line: str, words: Sequence[str], start: int, width: int) -> int:
        """The end of the longest run ``words[start:end]`` that still fits ``width`` after ``line``
        (``start`` when not even the first does)."""
        def fits(end: int) -> bool:
            return self._fits(" ".join([line, *words[start:end]]), width)

        if fits(len(words)):  # the common case: the rest of the paragraph fits
            return len(words)
        low, high = start, len(words)  # fits(low) or low == start; not fits(high)
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        return low

    def _split_long(self, word: str, width: int, lines: list[str]) -> str:
        """``word`` cut into lines of ``width`` (appended to ``lines``), each its longest first part
        that fits, or its first character when none does; returns the last part, which fits or is
        one character."""
        while len(word) > 1 and not self._fits(word, width):
            low, high = 1, len(word)  # cut after `low` characters, at least one; word[:high] does not fit
            while high - low > 1:
                middle = (low + high) // 2
                if self._fits(word[:middle], width):
                    low = middle
                else:
                    high = middle
            lines.append(word[:low])
            word = word[low:]
        return word

    def draw_lines(self, draw: ImageDraw.ImageDraw, lines: Sequence[str], x: int, y: int, fill: Color) -> None:
        for i, line in enumerate(lines):
            draw.text((x, y + i * self.line_height), line, font=self.font, fill=fill)

    def draw_centred(self, draw: ImageDraw.ImageDraw, lines: Sequence[str], box: tuple[int, int, int, int],
                     fill: Color) -> None:
        """Each line centred horizontally, the block centred vertically, in ``box`` = (x, y, w, h)."""
        x, y, width, height = box
        top = y + (height - len(lines) * self.line_height) // 2
        for i, line in enumerate(lines):
            draw.text((x + (width - _drawn_width(self.font_size, line)) // 2, top + i * self.line_height), line,
                      font=self.font, fill=fill)

    def placeholder(self, size: tuple[int, int], message: str) -> Image.Image:
        """A grey panel with a border and ``message`` in the middle, standing in for an image."""
        panel = Image.new("RGB", size, PLACEHOLDER_FILL)
        draw = ImageDraw.Draw(panel)
        draw.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=PLACEHOLDER_EDGE, width=max(1, self.pad // 4))
        self.draw_centred(draw, self.wrap(message, size[0] - 2 * self.pad), (0, 0, *size), PLACEHOLDER_TEXT)
        return panel
