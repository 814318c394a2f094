"""A failing case's comparison grid lists every check that failed with its value and budget,
speed and memory included, and a sweep sheet frames the cases that did not pass (issue 10,
item 3). The label lines are checked as the drawing receives them, and the PNGs as written."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from pytest_diffbench.report import draw, grids
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store.paths import case_path

SWEEP = 'seeds=[0, 1], samplers=["Euler", "DDIM"], steps=2'


@pytest.fixture
def drawn(monkeypatch) -> dict[str, Any]:
    """What write_grids hands the drawing: each grid's label lines by node id, each sheet's marks."""
    seen: dict[str, Any] = {"grids": {}, "marks": []}
    comparison_grid, sweep_sheet = grids.comparison_grid, grids.sweep_sheet

    def grid(output, baseline, label_lines, *inputs):
        seen["grids"][label_lines[0].split(" · ", 1)[1]] = list(label_lines)
        return comparison_grid(output, baseline, label_lines, *inputs)

    def sheet(*args, **kwargs):
        seen["marks"].append(dict(args[6]))
        return sweep_sheet(*args, **kwargs)

    monkeypatch.setattr(grids, "comparison_grid", grid)
    monkeypatch.setattr(grids, "sweep_sheet", sheet)
    return seen


def failing_run(project, drawn, **ini: Any):
    project.write_tests(project.test("test_case", sweep=SWEEP))
    project.run(update="all").outcome.assert_outcomes(passed=4)
    drawn["grids"].clear()
    drawn["marks"].clear()
    project.write_ini(**ini)
    project.fake(seconds_per_image=0.05, peak_vram_mb=300.0)
    return project.run()


def budget_line(lines: list[str]) -> list[str]:
    (line,) = [line for line in lines if line.startswith(("seconds/image", "slowdown", "peak VRAM"))]
    return line.split(" · ")


def assert_grid_written(run, result) -> None:
    path = run.folder.case_grid(case_path(result.nodeid))
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 3 * 64


def test_a_failed_speed_grid_shows_the_seconds_and_slowdown_against_their_budgets(project, drawn):
    run = failing_run(project, drawn, max_seconds=0.03, time_regression=0.5)
    run.outcome.assert_outcomes(failed=4)
    result = run.result("seed0-euler")
    assert result.outcome is Outcome.FAILED_SPEED
    lines = drawn["grids"][result.nodeid]
    assert lines == grids.grid_labels(result)
    assert lines[0] == f"failed-speed · {result.nodeid}"
    assert lines[2].startswith("ssim 1 >= 0.95 ok")
    assert budget_line(lines) == ["seconds/image 0.05 s <= 0.03 s FAIL",
                                  "slowdown +400% <= +50% FAIL (0.05 s vs baseline 0.01 s)"]
    assert_grid_written(run, result)


def test_a_failed_memory_grid_shows_peak_vram_against_its_budget(project, drawn):
    run = failing_run(project, drawn, max_vram_mb=200)
    run.outcome.assert_outcomes(failed=4)
    result = run.result("seed1-ddim")
    assert result.outcome is Outcome.FAILED_MEMORY
    lines = drawn["grids"][result.nodeid]
    assert lines == grids.grid_labels(result)
    assert budget_line(lines) == ["peak VRAM 300 MiB <= 200 MiB FAIL"]
    assert lines[-1].startswith("0.05 s/img · 300 MiB")
    assert_grid_written(run, result)


def test_a_sweep_sheet_frames_the_cases_that_did_not_pass(project, drawn):
    project.write_tests(project.test("test_case", sweep=SWEEP))
    project.run(update="all")
    project.write_ini(max_seconds=0.03)
    project.fake(seconds_per_image=0.05)
    run = project.run("-k", "seed0")
    run.outcome.assert_outcomes(failed=2)
    assert drawn["marks"][-1] == {("Euler", "2"): "failed-speed", ("DDIM", "2"): "failed-speed"}
    sheets = sorted((run.folder.grids / "sheets").rglob("*.png"))
    assert len(sheets) == 1
    with Image.open(sheets[0]) as sheet:
        assert draw.FAILED in {colour for _, colour in sheet.convert("RGB").getcolors(1 << 20)}


def test_a_clean_run_draws_no_grid_and_no_mark(project, drawn):
    project.write_tests(project.test("test_case", sweep=SWEEP))
    project.run(update="all")
    drawn["grids"].clear()
    drawn["marks"].clear()
    project.run().outcome.assert_outcomes(passed=4)
    assert drawn["grids"] == {} and drawn["marks"] == [{}, {}]
