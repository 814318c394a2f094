"""SSIM against the most-steps image of each case's group (pytest_diffbench/convergence.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageFilter
from skimage import data
from helpers import diffbench_test, rows_by_case, run, write_tests
from test_reports import record

from pytest_diffbench.convergence import add_reference_ssim, case_group, reference_ssim
from pytest_diffbench.files import encode_png
from pytest_diffbench.reports import write_reports
from pytest_diffbench.results import REFERENCE_SSIM_COLUMN

#: Fewer steps, blurrier image: a stand-in for a sampler that has not converged.
BLUR = {4: 3.0, 10: 1.0, 20: 0.0}


def write_image(run_dir: Path, rec: dict, image: Image.Image) -> None:
    path = run_dir / "images" / "tests" / "test_a" / "test_a" / f"{rec['case_id']}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(image))


@pytest.fixture
def photo() -> Image.Image:
    return Image.fromarray(data.astronaut()).resize((64, 64))


def sweep(run_dir: Path, photo: Image.Image, seeds=(0,), samplers=("Euler",), steps=(4, 10, 20)) -> list[dict]:
    records = []
    for seed in seeds:
        for sampler in samplers:
            for count in steps:
                rec = record(seed, sampler, count)
                image = photo.rotate(15 * seed + (5 if sampler == "DDIM" else 0))
                write_image(run_dir, rec, image.filter(ImageFilter.GaussianBlur(BLUR[count])) if BLUR[count] else image)
                records.append(rec)
    return records


def test_case_group_drops_only_the_named_axes():
    rec = record(3, "DDIM", 10)
    assert case_group(rec, "steps") == ("tests/test_a.py::test_a", "seed3 · ddim · cfg7.5")
    assert case_group(rec, "sampler", "steps") == ("tests/test_a.py::test_a", "seed3 · cfg7.5")


def test_fewer_steps_score_lower_against_the_most_steps_image(tmp_path, photo):
    records = sweep(tmp_path, photo, seeds=(0, 1), samplers=("Euler", "DDIM"))
    scores = reference_ssim(tmp_path, records)
    assert len(scores) == len(records) == 12
    for seed in (0, 1):
        for sampler in ("Euler", "DDIM"):
            by_steps = [scores[record(seed, sampler, steps)["nodeid"]] for steps in (4, 10, 20)]
            assert by_steps[0] < by_steps[1] < by_steps[2] == 1.0


def test_groups_are_kept_apart_by_seed_and_sampler(tmp_path, photo):
    # Every group's images are the same photo turned by seed and sampler: were groups mixed,
    # the 20-step images would score below 1.0 against another group's reference.
    records = sweep(tmp_path, photo, seeds=(0, 1), samplers=("Euler", "DDIM"), steps=(10, 20))
    scores = reference_ssim(tmp_path, records)
    assert {scores[r["nodeid"]] for r in records if r["steps"] == 20} == {1.0}


def test_no_score_without_a_second_step_count_an_image_or_a_matching_size(tmp_path, photo):
    single = sweep(tmp_path, photo, seeds=(0,), steps=(20,))
    missing = [record(1, "Euler", 4), *sweep(tmp_path, photo, seeds=(1,), steps=(20,))]
    resized = record(2, "Euler", 4)
    write_image(tmp_path, resized, photo.resize((32, 32)))
    others = sweep(tmp_path, photo, seeds=(2,), steps=(20,))
    scores = reference_ssim(tmp_path, [*single, *missing, resized, *others])
    assert scores == {others[0]["nodeid"]: 1.0}


def test_add_reference_ssim_sets_the_results_column_where_there_is_a_score(tmp_path, photo):
    records = [*sweep(tmp_path, photo, seeds=(0,)), *sweep(tmp_path, photo, seeds=(1,), steps=(20,))]
    add_reference_ssim(tmp_path, records)
    assert [r.get(REFERENCE_SSIM_COLUMN) is not None for r in records] == [True, True, True, False]
    assert records[2][REFERENCE_SSIM_COLUMN] == 1.0


def test_the_plot_gets_a_panel_for_it(tmp_path, photo):
    records = sweep(tmp_path, photo)
    add_reference_ssim(tmp_path, records)
    write_reports(tmp_path, "run", records, "none", tmp_path)
    with Image.open(io.BytesIO((tmp_path / "plot.png").read_bytes())) as with_reference:
        width = with_reference.width
    single = sweep(tmp_path / "single", photo, steps=(20,))
    write_reports(tmp_path / "single", "run", single, "none", tmp_path)
    with Image.open(tmp_path / "single" / "plot.png") as baseline_only:
        assert width == 2 * baseline_only.width


def test_a_step_sweep_fills_the_column_in_results_csv(pytester: pytest.Pytester):
    write_tests(pytester, diffbench_test("test_steps", sweep="seeds=0, steps=[1, 3]"), diffbench_test("test_single"))
    run(pytester, "--diffbench-update").assert_outcomes(passed=3)
    rows = rows_by_case(pytester)
    assert float(rows["test_steps[seed0-euler-3steps-cfg7.5]"][REFERENCE_SSIM_COLUMN]) == 1.0
    assert float(rows["test_steps[seed0-euler-1steps-cfg7.5]"][REFERENCE_SSIM_COLUMN]) < 0.95
    assert rows["test_single[seed0-euler-2steps-cfg7.5]"][REFERENCE_SSIM_COLUMN] == ""
