"""The inputs of a case in its run folder and its grid: RunFolder.write_inputs saves each input
image once per digest inside ``inputs/``, and a case's comparison grid shows each input the
config records as an extra panel (a placeholder when the file is missing or its name would leave
the run folder)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.report.draw import PLACEHOLDER_FILL, comparison_grid
from pytest_diffbench.report.grids import write_grids
from pytest_diffbench.run.inputs import prepare_inputs
from pytest_diffbench.store.files import PathEscapeError, encode_png
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder

NOISE = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
MASK = np.zeros((64, 64), np.uint8)
MASK[8:40, 20:60] = 255


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def located(grid: np.ndarray, block: np.ndarray) -> list[tuple[int, int]]:
    """Every (x, y) at which ``block`` sits in ``grid``, pixel for pixel."""
    height, width = block.shape[:2]
    corners = grid[:grid.shape[0] - height + 1, :grid.shape[1] - width + 1]
    ys, xs = np.nonzero((corners == block[0, 0]).all(axis=2))
    return [(int(x), int(y)) for y, x in zip(ys, xs) if np.array_equal(grid[y:y + height, x:x + width], block)]


def upscaled(array: np.ndarray, factor: int) -> np.ndarray:
    return np.kron(array, np.ones((factor, factor, 1), dtype=np.uint8))


# -- RunFolder -------------------------------------------------------------------------------------


def test_each_input_is_written_once_per_digest(tmp_path):
    folder = RunFolder(tmp_path / "run")
    prepared = prepare_inputs({"image": NOISE, "control_image": Image.fromarray(NOISE), "mask_image": MASK})
    written = folder.write_inputs(prepared.images)
    assert sorted(p.name for p in written) == sorted(prepared.images) and len(written) == 2
    name = prepared.records["image"]["name"]
    assert folder.input(name) == folder.inputs / name
    with Image.open(folder.input(name)) as saved:
        assert np.array_equal(np.asarray(saved), NOISE)
    before = {p: p.stat().st_mtime_ns for p in written}
    assert folder.write_inputs(prepare_inputs({"image": NOISE.copy()}).images) == []  # already there: not rewritten
    assert {p: p.stat().st_mtime_ns for p in written} == before


@pytest.mark.parametrize("name", ["../escape.png", "/tmp/abs.png", "sub/../../x.png"])
def test_an_input_name_that_would_leave_inputs_is_refused(tmp_path, name):
    folder = RunFolder(tmp_path / "run")
    with pytest.raises(PathEscapeError):
        folder.write_inputs({name: Image.fromarray(NOISE)})
    assert not (tmp_path / "escape.png").exists()


# -- the grid --------------------------------------------------------------------------------------


def test_an_input_is_an_extra_panel_at_the_figure_scale():
    output = Image.fromarray(255 - NOISE)
    bare = comparison_grid(output, None, ["label"])
    grid = comparison_grid(output, None, ["label"], [("image", Image.fromarray(NOISE)), ("mask_image", None)])
    array = pixels(grid)
    assert grid.width > bare.width + 2 * 256  # two more 256 px panels (64 px shown x4)
    assert len(located(array, upscaled(NOISE, 4))) == 1
    right = array[:, bare.width:]
    assert (right == PLACEHOLDER_FILL).all(axis=2).sum() > 200 * 200  # the missing one: a placeholder panel


def test_a_large_input_is_fitted_into_the_output_panel():
    output = Image.fromarray(NOISE)
    large = Image.fromarray(np.kron(NOISE, np.ones((16, 16, 1), dtype=np.uint8)))  # 1024x1024
    grid = comparison_grid(output, None, [], [("control_image", large)])
    assert grid.height < 400  # fitted into the 256 px output panel, not drawn at 1024 px


def test_write_grids_shows_the_inputs_the_config_records(tmp_path, make_result):
    folder = RunFolder(tmp_path / "run")
    prepared = prepare_inputs({"image": NOISE, "mask_image": MASK})
    folder.write_inputs(prepared.images)
    crafted = {**prepared.records["image"], "name": "../../outside.png"}
    Image.fromarray(NOISE).save(tmp_path / "outside.png")
    results = [make_result(0, outcome="failed-quality", config={"pipeline_kwargs": {"strength": 0.5, **prepared.records}}),
               make_result(1, outcome="failed-quality", config={"pipeline_kwargs": {"image": crafted}})]
    for result in results:
        folder.write_case(case_path(result.nodeid), encode_png(Image.fromarray(255 - NOISE)), "{}\n")
    write_grids(folder, tmp_path, results)
    with Image.open(folder.case_grid(case_path(results[0].nodeid))) as first:
        shown = pixels(first)
    assert len(located(shown, upscaled(NOISE, 4))) == 1
    assert len(located(shown, upscaled(np.dstack([MASK] * 3), 4))) == 1
    with Image.open(folder.case_grid(case_path(results[1].nodeid))) as second:
        assert located(pixels(second), upscaled(NOISE, 4)) == []  # the crafted name is not followed out


# -- the compute trace of a two-stage case ---------------------------------------------------------


def test_a_two_stage_case_grid_has_one_compute_trace_per_stage(make_result):
    from pytest_diffbench.report.grids import grid_labels
    from pytest_diffbench.spec.measurement import Measurement, StageMeasurement

    stages = (StageMeasurement("base", 0.9, None), StageMeasurement("refiner", 0.36, None))
    lines = grid_labels(make_result(0, measurement=Measurement(1.26, None, stages=stages)))
    assert lines[-2:] == ["base 0.9 s/img · Intel Xeon", "refiner 0.36 s/img · Intel Xeon"]
    assert grid_labels(make_result(0))[-1] == "0.4 s/img · Intel Xeon"


# -- a strip of video frames -----------------------------------------------------------------------


def test_a_strip_of_frames_is_drawn_as_stacked_panels():
    frames = [np.full((32, 32, 3), 16 * i, np.uint8) for i in range(16)]
    output = Image.fromarray(np.concatenate(frames, axis=1))  # 512x32: 16 frames left to right
    baseline = Image.fromarray(np.concatenate(frames[::-1], axis=1))
    grid = comparison_grid(output, baseline, ["a label"], [("image", Image.fromarray(NOISE[:32, :32]))])
    array = pixels(grid)
    assert grid.width < 1100 and grid.height > 4 * 64  # one strip wide (shown x2), the panels one under another
    (baseline_at,) = located(array, upscaled(pixels(baseline), 2))
    (output_at,) = located(array, upscaled(pixels(output), 2))
    assert baseline_at[0] == output_at[0] and baseline_at[1] + 64 < output_at[1]
    assert len(located(array, upscaled(NOISE[:32, :32], 2))) == 1
