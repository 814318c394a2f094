"""The labeled figures: panels found by their exact pixels at the documented size and place,
text drawn where it belongs, the heatmap black exactly where pixels agree, same bytes twice."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage import data

from pytest_diffbench.store.files import encode_png
from pytest_diffbench.report.draw import (
    PLACEHOLDER_FILL, comparison_grid, difference_heatmap, sweep_sheet,
)
from pytest_diffbench.judge.metrics import ImageSizeMismatch

REPO_ROOT = Path(__file__).resolve().parents[3]
LABELS = (
    "sampler DPM++ 2M Karras · steps 20 · cfg 5.5 · seed 0 · config 1a2b3c4d5e6f",
    "ssim 0.612 >= 0.95 FAIL · psnr 17.0 dB >= 25 FAIL · lpips - ",
    "0.41 s/img · Intel Xeon",
)
SQUARE = (20, 20, 35, 35)  # inclusive corners of the square painted on the output


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut()).resize((64, 64), Image.Resampling.BILINEAR)


@pytest.fixture(scope="module")
def painted(astronaut: Image.Image) -> Image.Image:
    image = astronaut.copy()
    ImageDraw.Draw(image).rectangle(SQUARE, fill=(0, 255, 0))
    return image


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def upscaled(image: Image.Image, factor: int) -> np.ndarray:
    return pixels(image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST))


def ink(region: np.ndarray) -> np.ndarray:
    """Pixels that are not the white background."""
    return (region != 255).any(axis=2)


def find(grid: np.ndarray, block: np.ndarray) -> list[tuple[int, int]]:
    """Every (x, y) at which ``block`` sits in ``grid``, pixel for pixel."""
    height, width = block.shape[:2]
    corners = grid[:grid.shape[0] - height + 1, :grid.shape[1] - width + 1]
    ys, xs = np.nonzero((corners == block[0, 0]).all(axis=2))
    return [(int(x), int(y)) for y, x in zip(ys, xs)
            if np.array_equal(grid[y, x:x + width], block[0])
            and np.array_equal(grid[y:y + height, x:x + width], block)]


def find_y(grid: np.ndarray, block: np.ndarray, x: int) -> int:
    """The one row at which ``block`` sits with its left edge at column ``x``."""
    found = [y for found_x, y in find(grid, block) if found_x == x]
    assert len(found) == 1, f"block found at {find(grid, block)}, wanted one at x={x}"
    return found[0]


def panel_columns(grid: np.ndarray, widths: list[int]) -> tuple[int, list[int]]:
    """The gap and the panels' left edges, given that the grid is the panels plus four equal gaps."""
    spare = grid.shape[1] - sum(widths)
    assert spare > 0 and spare % 4 == 0, f"width {grid.shape[1]} is not {widths} plus four equal gaps"
    gap = spare // 4
    return gap, [gap, 2 * gap + widths[0], 3 * gap + widths[0] + widths[1]]


def test_small_images_are_upscaled_into_three_panels_side_by_side(astronaut, painted):
    grid = comparison_grid(painted, astronaut, LABELS)
    array = pixels(grid)
    assert grid.mode == "RGB"  # a 64x64 image is drawn 4x, NEAREST, as a 256x256 panel
    gap, xs = panel_columns(array, [256, 256, 256])

    y = find_y(array, upscaled(astronaut, 4), xs[0])
    assert np.array_equal(array[y:y + 256, xs[1]:xs[1] + 256], upscaled(painted, 4))
    assert np.array_equal(array[y:y + 256, xs[2]:xs[2] + 256], upscaled(difference_heatmap(painted, astronaut), 4))
    # Background between and around the panels; captions drawn above them.
    for left, right in [(0, xs[0]), (xs[0] + 256, xs[1]), (xs[1] + 256, xs[2]), (xs[2] + 256, array.shape[1])]:
        assert not ink(array[y:y + 256, left:right]).any()
    for x in xs:
        assert ink(array[:y, x:x + 256]).any()


def test_heatmap_is_black_exactly_where_pixels_agree(astronaut, painted):
    differs = (pixels(painted) != pixels(astronaut)).any(axis=2)
    left, top, right, bottom = SQUARE
    assert differs[top:bottom + 1, left:right + 1].all() and differs.sum() == 16 * 16

    heat = pixels(difference_heatmap(painted, astronaut))
    assert heat.shape == (64, 64, 3)
    assert not heat[~differs].any()
    assert heat[differs].any(axis=1).all()
    assert not pixels(difference_heatmap(astronaut, astronaut.copy())).any()

    # Large differences are brighter than small ones: one level apart is dim red, 255 is yellow.
    one_level = Image.fromarray(np.clip(pixels(astronaut).astype(int) + 1, 0, 255).astype(np.uint8))
    dim = pixels(difference_heatmap(one_level, astronaut))[0, 0]
    full = pixels(difference_heatmap(Image.new("RGB", (2, 2), (255, 255, 255)), Image.new("RGB", (2, 2))))[0, 0]
    assert dim[0] > 0 and dim[1] == 0 and tuple(full) == (255, 255, 0)

    # Inside the grid, the heatmap panel is black exactly outside the (4x) painted square.
    grid = pixels(comparison_grid(painted, astronaut, LABELS))
    _, xs = panel_columns(grid, [256, 256, 256])
    y = find_y(grid, upscaled(astronaut, 4), xs[0])
    panel = grid[y:y + 256, xs[2]:xs[2] + 256]
    expected = np.kron(differs, np.ones((4, 4), dtype=bool))
    assert np.array_equal(panel.any(axis=2), expected)


def test_heatmap_refuses_images_of_different_sizes(astronaut):
    with pytest.raises(ImageSizeMismatch, match="64x64 vs 32x32"):
        difference_heatmap(astronaut, astronaut.resize((32, 32)))


def test_label_band_prints_the_lines_below_the_panels_and_wraps_them(astronaut, painted):
    array = pixels(comparison_grid(painted, astronaut, LABELS))
    bare = pixels(comparison_grid(painted, astronaut, []))
    gap, xs = panel_columns(array, [256, 256, 256])
    panels_bottom = find_y(array, upscaled(astronaut, 4), xs[0]) + 256

    band = ink(array[panels_bottom:])
    assert band.any() and not ink(bare[panels_bottom:]).any()
    assert array.shape[1] == bare.shape[1] and array.shape[0] > bare.shape[0]
    band_rows = np.flatnonzero(band.any(axis=1))
    assert band_rows[0] > 0, "text touches the panels"

    # A line far wider than the grid wraps: same width, more rows, no ink in the side margins.
    long = pixels(comparison_grid(painted, astronaut, [" · ".join(LABELS * 4)]))
    one_line = pixels(comparison_grid(painted, astronaut, [LABELS[2]]))
    assert long.shape[1] == array.shape[1] and long.shape[0] > one_line.shape[0]
    long_band = ink(long[panels_bottom:])
    assert not long_band[:, :gap].any() and not long_band[:, -gap:].any()


def test_without_a_baseline_two_placeholders_flank_the_output(astronaut):
    grid = pixels(comparison_grid(astronaut, None, LABELS))
    _, xs = panel_columns(grid, [256, 256, 256])
    y = find_y(grid, upscaled(astronaut, 4), xs[1])
    baseline_panel = grid[y:y + 256, xs[0]:xs[0] + 256]
    difference_panel = grid[y:y + 256, xs[2]:xs[2] + 256]

    assert np.array_equal(baseline_panel, difference_panel)  # both say "no baseline"
    fill = (baseline_panel == PLACEHOLDER_FILL).all(axis=2)
    assert fill.mean() > 0.8, "a placeholder is mostly its grey fill"
    text = ~fill[16:-16, 16:-16]  # away from the border
    assert text.any(), "the placeholder says something"
    # ... and the message sits in the middle of the panel.
    rows = np.flatnonzero(text.any(axis=1)) + 16
    assert abs((rows[0] + rows[-1]) / 2 - 128) < 16


def test_images_of_different_sizes_are_drawn_at_their_own_size(astronaut, painted):
    wide = painted.resize((96, 64), Image.Resampling.NEAREST)
    grid = pixels(comparison_grid(wide, astronaut, LABELS))
    # One factor for both (4x: the short sides are 64), so the output stays 1.5 times wider.
    _, xs = panel_columns(grid, [256, 384, 384])
    y = find_y(grid, upscaled(astronaut, 4), xs[0])
    assert np.array_equal(grid[y:y + 256, xs[1]:xs[1] + 384], upscaled(wide, 4))
    difference_panel = grid[y:y + 256, xs[2]:xs[2] + 384]
    assert (difference_panel == PLACEHOLDER_FILL).all(axis=2).mean() > 0.8, "no heatmap, a 'sizes differ' note"

    # A 128x128 output against a 64x64 baseline: both 2x, so the baseline is drawn half as wide.
    bigger = astronaut.resize((128, 128), Image.Resampling.NEAREST)
    grid = pixels(comparison_grid(bigger, astronaut, LABELS))
    _, xs = panel_columns(grid, [128, 256, 256])
    y = find_y(grid, upscaled(bigger, 2), xs[1])
    assert np.array_equal(grid[y:y + 128, xs[0]:xs[0] + 128], upscaled(astronaut, 2))


def test_large_images_keep_their_size_and_the_text_grows_with_them(astronaut):
    big = Image.fromarray(data.astronaut()).resize((1024, 1024), Image.Resampling.BILINEAR)
    large = pixels(comparison_grid(big, big, LABELS))
    small = pixels(comparison_grid(astronaut, astronaut, LABELS))
    large_gap, xs = panel_columns(large, [1024, 1024, 1024])
    small_gap, small_xs = panel_columns(small, [256, 256, 256])
    y = find_y(large, pixels(big), xs[1])
    assert np.array_equal(large[y:y + 1024, xs[0]:xs[0] + 1024], pixels(big))
    assert not large[y:y + 1024, xs[2]:xs[2] + 1024].any(), "identical images: an all-black heatmap"
    assert large_gap > small_gap

    def first_line_height(grid: np.ndarray, panels_bottom: int) -> int:
        rows = ink(grid[panels_bottom:]).any(axis=1)
        start = int(np.argmax(rows))
        return int(np.argmin(rows[start:]))  # rows of ink until the first blank row

    small_bottom = find_y(small, upscaled(astronaut, 4), small_xs[0]) + 256
    small_height = first_line_height(small, small_bottom)
    large_height = first_line_height(large, y + 1024)
    assert small_height >= 9, "text at 64x64 is at least ~12 px type"
    assert large_height > 3 * small_height


def sheet_cells(astronaut: Image.Image, rows: list[str], columns: list[str],
                missing: tuple[str, str]) -> dict[tuple[str, str], Image.Image]:
    """A distinct image per cell (the astronaut shifted sideways), except ``missing``."""
    array = pixels(astronaut)
    return {(row, column): Image.fromarray(np.roll(array, 5 * (i * len(columns) + j) + 3, axis=1))
            for i, row in enumerate(rows) for j, column in enumerate(columns) if (row, column) != missing}


def test_sweep_sheet_lays_cells_out_by_row_and_column_with_labels(astronaut):
    rows, columns = ["Euler", "DPM++ 2M Karras"], ["10", "20", "30"]
    missing = ("Euler", "30")
    cells = sheet_cells(astronaut, rows, columns, missing)
    sheet = sweep_sheet(cells, rows, columns, title="test_astronaut · seed 0", row_axis="sampler", column_axis="steps")
    array = pixels(sheet)

    # Find every cell by its pixels: they sit on a regular grid of 256 px cells.
    blocks = {key: upscaled(image, 4) for key, image in cells.items()}
    positions = {}
    for key, block in blocks.items():
        found = find(array, block)
        assert len(found) == 1, (key, found)
        positions[key] = found[0]
    left, top = positions[(rows[0], columns[0])]
    pitch_x = positions[(rows[0], columns[1])][0] - left
    pitch_y = positions[(rows[1], columns[0])][1] - top
    gap = pitch_x - 256
    assert gap > 0 and pitch_y == pitch_x
    for (row, column), block in blocks.items():
        assert positions[(row, column)] == (left + columns.index(column) * pitch_x, top + rows.index(row) * pitch_y)

    # The sheet is the cells plus a label margin on the left and a header on top.
    assert sheet.size == (left + len(columns) * pitch_x, top + len(rows) * pitch_y)
    assert left > 2 * gap and top > 2 * gap
    for i in range(len(rows)):  # each row's value label, beside its row
        assert ink(array[top + i * pitch_y:top + i * pitch_y + 256, :left - gap]).any()
    for j in range(len(columns)):  # each column's value label, above its column
        assert ink(array[top - 2 * gap:top, left + j * pitch_x:left + j * pitch_x + 256]).any()
    # The title, and each axis name over its values: what a sheet without that text lacks.
    labels = {"title": "test_astronaut · seed 0", "row_axis": "sampler", "column_axis": "steps"}
    for name, region in [("title", np.s_[:top, :]), ("row_axis", np.s_[:top, :left - gap]),
                         ("column_axis", np.s_[:top, left:])]:
        without = pixels(sweep_sheet(cells, rows, columns, **{**labels, name: ""}))
        assert without.shape == array.shape
        added = ink(array) & ~ink(without)
        assert added[region].any() and added[region].sum() == added.sum(), name

    placeholder = array[top:top + 256, left + 2 * pitch_x:left + 2 * pitch_x + 256]
    fill = (placeholder == PLACEHOLDER_FILL).all(axis=2)
    assert fill.mean() > 0.8 and (~fill[16:-16, 16:-16]).any()


def test_sweep_sheet_refuses_cells_outside_its_axes(astronaut):
    with pytest.raises(ValueError, match="outside"):
        sweep_sheet({("Euler", "40"): astronaut}, ["Euler"], ["10"], "t", "sampler", "steps")


RENDER = textwrap.dedent("""
    import hashlib
    import numpy as np
    from PIL import Image
    from pytest_diffbench.store.files import encode_png
    from pytest_diffbench.report.draw import comparison_grid, sweep_sheet

    ramp = np.arange(48 * 40 * 3, dtype=np.uint32).reshape(40, 48, 3)
    a = Image.fromarray((ramp * 7 % 256).astype(np.uint8))
    b = Image.fromarray((ramp * 11 % 256).astype(np.uint8))
    labels = ["sampler Euler · steps 20 · cfg 5.5 · seed 0", "ssim 0.612 >= 0.95 FAIL"]
    grid = comparison_grid(b, a, labels)
    sheet = sweep_sheet({("Euler", "10"): a, ("Euler", "20"): b, ("DDIM", "10"): a},
                        ["Euler", "DDIM"], ["10", "20"], "test_ramp · seed 0", "sampler", "steps")
    hashes = (hashlib.sha256(encode_png(grid)).hexdigest(), hashlib.sha256(encode_png(sheet)).hexdigest())
    print(*hashes)
""")


def test_same_inputs_give_the_same_png_bytes(astronaut, painted):
    cells = sheet_cells(astronaut, ["a", "b"], ["1", "2"], ("b", "2"))
    for render in (lambda: comparison_grid(painted, astronaut, LABELS),
                   lambda: comparison_grid(painted, None, LABELS),
                   lambda: sweep_sheet(cells, ["a", "b"], ["1", "2"], "t · seed 0", "sampler", "steps")):
        assert encode_png(render()) == encode_png(render())

    # And across processes: a fresh interpreter draws the same bytes as this one.
    child = subprocess.run([sys.executable, "-c", RENDER], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])})
    namespace: dict = {}
    exec(RENDER, namespace)
    assert child.stdout.split() == list(namespace["hashes"])
