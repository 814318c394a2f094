"""Grids of a run folder: which cases get a comparison grid, how sweep sheets are grouped, and
the labels under a grid."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pytest_diffbench.report.grids import grid_labels, write_grids
from pytest_diffbench.store.files import encode_png
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder


@pytest.fixture
def record(make_result):
    def build(seed: int, sampler: str, steps: int, outcome: str = "passed", action: str = "", **changes):
        return make_result(seed, sampler, steps, outcome=outcome, action=action,
                           scores={"ssim": 0.5, "psnr": float("inf"), "lpips": None}, **changes)
    return build


def make_run(tmp_path: Path, results, astronaut_photo) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    image = astronaut_photo(64)
    for i, result in enumerate(results):
        folder.write_case(case_path(result.nodeid), encode_png(image.rotate(10 * i)), "{}\n")
    return folder


def test_grid_labels_show_each_metric_against_its_tolerance_and_the_trace(record):
    lines = grid_labels(record(0, "Euler", 20, outcome="failed-quality"))
    assert lines[0] == "failed-quality · tests/test_a.py::test_a[seed0-euler-20steps-cfg7.5]"
    assert lines[1] == "sampler Euler · steps 20 · cfg 7.5 · seed 0 · config ffffffffffff"
    assert lines[2] == "ssim 0.5 >= 0.95 FAIL · psnr inf dB >= 25 dB ok · lpips -"
    assert lines[3] == "0.4 s/img · Intel Xeon"


def test_comparison_grids_only_for_failed_or_written_cases_and_one_sheet_per_seed(tmp_path, record, astronaut_photo):
    results = [record(seed, sampler, steps, outcome="failed-quality" if (seed, sampler, steps) == (0, "DDIM", 20) else "passed",
                      action="created" if (seed, sampler, steps) == (1, "Euler", 4) else "")
               for seed in (0, 1) for sampler in ("Euler", "DDIM") for steps in (4, 20)]
    folder = make_run(tmp_path, results, astronaut_photo)
    stale = folder.grids / "old.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    written = write_grids(folder, tmp_path, results)
    names = sorted(p.relative_to(folder.grids).as_posix() for p in written)
    assert names == ["cases/tests/test_a/test_a/seed0-ddim-20steps-cfg7.5.png",
                     "cases/tests/test_a/test_a/seed1-euler-4steps-cfg7.5.png",
                     "sheets/tests/test_a/test_a/seed0-cfg7.5.png",
                     "sheets/tests/test_a/test_a/seed1-cfg7.5.png"]
    assert not stale.exists()
    with Image.open(folder.grids / "sheets/tests/test_a/test_a/seed0-cfg7.5.png") as sheet:
        # 2 samplers x 2 step counts of 256 px cells (64 px images shown x4), plus labels
        assert 2 * 256 < sheet.width < 3 * 256 and 2 * 256 < sheet.height < 3 * 256


def test_cases_without_an_image_are_skipped(tmp_path, record):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    assert write_grids(folder, tmp_path, [record(0, "Euler", 4, outcome="error")]) == []
