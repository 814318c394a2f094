"""What a grid or sheet says about a failing case (issue 10): every check that failed with its
value and budget, in the words of the failure message, and a red frame round a failing cell
of a sweep sheet that covers none of its pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.report.draw import FAILED, sweep_sheet
from pytest_diffbench.report.grids import budget_checks, grid_labels
from pytest_diffbench.store.files import encode_png

TOLERANCES = {"min_ssim": 0.95, "min_psnr": 25.0, "max_lpips": 0.05, "max_seconds": None, "max_vram_mb": None,
              "time_regression": None}


def labels(make_result, **changes) -> list[str]:
    return grid_labels(make_result(**changes))


def test_budgets_that_are_off_and_passed_add_no_line(make_result):
    assert len(labels(make_result)) == 4  # outcome, settings, quality, trace
    assert budget_checks(make_result(time_check="off")) == []


def test_every_set_budget_is_listed_and_a_skipped_slowdown_says_why(make_result):
    lines = labels(make_result, outcome="failed-speed", vram=90.0, slowdown=0.1, baseline_seconds_per_image=0.36,
                   time_check="baseline timed on Intel Xeon Gold, this run on Intel Xeon",
                   tolerances={**TOLERANCES, "max_seconds": 0.3, "max_vram_mb": 100.0, "time_regression": 0.05})
    seconds, slowdown, vram = lines[3].split(" · ")
    assert seconds == "seconds/image 0.4 s <= 0.3 s FAIL"
    assert slowdown == "slowdown +10% <= +5% skipped (baseline timed on Intel Xeon Gold, this run on Intel Xeon)"
    assert vram == "peak VRAM 90 MiB <= 100 MiB ok"


def test_a_value_that_prints_like_its_limit_is_shown_in_full(make_result):
    lines = labels(make_result, outcome="failed-quality", scores={"ssim": 0.9999974, "psnr": 80.0, "lpips": None},
                   tolerances={**TOLERANCES, "min_ssim": 0.999999})
    assert lines[2].split(" · ")[0] == "ssim 0.999997 >= 0.999999 FAIL"


def test_an_outcome_no_check_explains_gets_its_message(make_result):
    message = "baseline config hash 0123456789ab != this case's ba9876543210; fields that differ: steps: 4 -> 5"
    lines = labels(make_result, outcome="stale-baseline", message=message)
    assert f"why: {message}" in lines
    assert not any(line.startswith("why:") for line in labels(make_result, outcome="failed-quality", message="ssim ...",
                                                               scores={"ssim": 0.5, "psnr": 30.0, "lpips": None}))


@pytest.fixture
def cells() -> dict[tuple[str, str], Image.Image]:
    ramp = np.arange(32 * 32 * 3, dtype=np.uint32).reshape(32, 32, 3)
    return {("Euler", "10"): Image.fromarray((ramp * 7 % 200).astype(np.uint8)),
            ("Euler", "20"): Image.fromarray((ramp * 11 % 200).astype(np.uint8))}


def red(sheet: Image.Image) -> np.ndarray:
    return (np.asarray(sheet.convert("RGB")) == FAILED).all(axis=2)


def find(array: np.ndarray, block: np.ndarray) -> list[tuple[int, int]]:
    """Top-left corners (y, x) where ``block`` lies in ``array`` exactly."""
    h, w = block.shape[:2]
    return [(y, x) for y in range(array.shape[0] - h + 1) for x in range(array.shape[1] - w + 1)
            if array[y, x, 0] == block[0, 0, 0] and (array[y:y + h, x:x + w] == block).all()]


def test_a_marked_cell_is_framed_in_red_around_its_pixels(cells):
    args = (cells, ["Euler"], ["10", "20"], "t · seed 0", "sampler", "steps")
    plain, marked = sweep_sheet(*args), sweep_sheet(*args, {("Euler", "20"): "failed-speed"})
    assert not red(plain).any()
    assert marked.width == plain.width and marked.height > plain.height  # the key line and the caption row
    array, mask = np.asarray(marked.convert("RGB")), red(marked)
    shown = {key: np.asarray(image.resize((256, 256), Image.Resampling.NEAREST)) for key, image in cells.items()}
    ((y, x),) = find(array, shown[("Euler", "20")])  # the cell's pixels, untouched by the frame
    assert mask[y - 1, x:x + 256].all() and mask[y + 256, x:x + 256].all()
    assert mask[y:y + 256, x - 1].all() and mask[y:y + 256, x + 256].all()
    ((y, x),) = find(array, shown[("Euler", "10")])  # the passing cell has no frame
    assert not mask[y - 1, x:x + 256].any() and not mask[y:y + 256, x - 1].any()
    assert mask[:y].any()  # the key line, in red, above the cells
    assert encode_png(marked) == encode_png(sweep_sheet(*args, {("Euler", "20"): "failed-speed"}))


def test_a_mark_outside_the_sheet_is_refused(cells):
    with pytest.raises(ValueError, match="outside"):
        sweep_sheet(cells, ["Euler"], ["10", "20"], "t", "sampler", "steps", {("DDIM", "10"): "failed-speed"})
