"""One case whose grid cannot be written costs only that grid (issue 9): the others are drawn and
the run's warnings name the case."""

from __future__ import annotations

from pytest_diffbench.report.artifacts import write_artifacts
from pytest_diffbench.report.grids import write_grids
from pytest_diffbench.store.files import encode_png
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder


def failing_run(tmp_path, make_result, astronaut_photo, broken: dict[int, bytes]):
    """Three failing cases (each gets a grid); the images of the seeds in ``broken`` are those bytes."""
    results = [make_result(seed, "Euler", 4, outcome="failed-quality", scores={"ssim": 0.5, "psnr": 30.0, "lpips": None})
               for seed in range(3)]
    folder = RunFolder(tmp_path / "run")
    for seed, result in enumerate(results):
        folder.write_case(case_path(result.nodeid), broken.get(seed, encode_png(astronaut_photo(64).rotate(seed))), "{}\n")
    return folder, results


def test_a_case_whose_image_cannot_be_read_is_skipped_with_a_warning(tmp_path, make_result, astronaut_photo):
    folder, results = failing_run(tmp_path, make_result, astronaut_photo, {1: b"not a png"})
    warnings: list[str] = []
    written = write_grids(folder, tmp_path, results, warnings)
    assert folder.case_grid(case_path(results[0].nodeid)) in written
    assert folder.case_grid(case_path(results[2].nodeid)) in written
    assert not folder.case_grid(case_path(results[1].nodeid)).exists()
    assert len(warnings) == 1 and results[1].nodeid in warnings[0] and warnings[0].startswith("WARNING: diffbench could not write the grid of")


def test_several_bad_cases_each_warn_and_the_rest_of_the_artifacts_are_written(tmp_path, make_result, astronaut_photo):
    folder, results = failing_run(tmp_path, make_result, astronaut_photo, {0: b"", 2: encode_png(astronaut_photo(64))[:40]})
    done = write_artifacts(folder, results, rootdir=tmp_path, bundle_images="failed", environment={})
    grid_warnings = [w for w in done.warnings if "could not write the grid of" in w]
    assert len(grid_warnings) == 2
    assert [sum(f"grid of {r.nodeid}:" in w for w in grid_warnings) for r in results] == [1, 0, 1]
    assert folder.case_grid(case_path(results[1].nodeid)) in done.written
    assert not any("could not write grids" in w for w in done.warnings)  # the grids artifact as a whole did not fail
    assert folder.summary.is_file() and folder.report.is_file()
