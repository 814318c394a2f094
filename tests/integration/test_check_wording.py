"""One wording per check everywhere a user reads it (issue 10, item 3): a case grid prints each
check word for word as the failure message does (``off``, ``skipped (<reason>)``), and the
slowdown, a fraction in results.csv, reads as a percentage in the failure message, the grid,
summary.md and report.html alike; peak VRAM reads in whole MiB in the message, the grid's
check and its compute trace."""

from __future__ import annotations

import re

import pytest

from pytest_diffbench.judge.metrics import lpips as lpips_metric
from pytest_diffbench.report import grids
from pytest_diffbench.report.summary import what_failed
from pytest_diffbench.spec.outcomes import Outcome

CHECK_NAMES = ("ssim", "psnr", "lpips", "seconds/image", "slowdown", "peak VRAM")


def message_checks(text: str) -> dict[str, str]:
    """The check lines of the one failure message in ``text``, by check name, spaces collapsed."""
    lines: dict[str, str] = {}
    for line in text.splitlines():
        words = line.removeprefix("E").split()
        line = " ".join(words)
        for name in CHECK_NAMES:
            if line.startswith(name + " ") and re.search(r" (ok|FAIL|off|skipped)\b", line):
                assert name not in lines, f"{name} printed twice: {lines[name]!r}, {line!r}"
                lines[name] = line
    return lines


def grid_checks(lines: list[str]) -> dict[str, str]:
    """The checks of a grid's label lines, by check name."""
    return {name: part for line in lines[2:] for part in line.split(" · ")
            for name in CHECK_NAMES if part.startswith(name + " ")}


def failing_case(project, **ini):
    """One case made at 0.01 s per image, run again at 0.05 s with a 50% slowdown allowed."""
    project.write_tests(project.test("test_case"))
    project.run(update="all").outcome.assert_outcomes(passed=1)
    project.write_ini(time_regression=0.5, **ini)
    project.fake(seconds_per_image=0.05, peak_vram_mb=12345.6)
    return project


def assert_grid_reads_as_the_message(run) -> dict[str, str]:
    (result,) = run.results
    message = message_checks(project_text(run))
    grid = grid_checks(grids.grid_labels(result))
    assert set(grid) <= set(message) and {"ssim", "lpips", "slowdown"} <= set(grid)
    for name, line in grid.items():
        assert line == message[name], name
    return grid


def project_text(run) -> str:
    return run.outcome.stdout.str()


def test_a_switched_off_metric_reads_off_on_the_grid_as_in_the_message(project) -> None:
    failing_case(project, max_vram_mb=10000)
    run = project.run()  # diffbench_lpips = off
    run.outcome.assert_outcomes(failed=1)
    grid = assert_grid_reads_as_the_message(run)
    assert grid["lpips"] == "lpips - <= 0.05 off"


def test_an_unavailable_metric_reads_skipped_with_its_reason_on_the_grid(project, monkeypatch) -> None:
    def load(device: str) -> lpips_metric.LpipsScorer:
        raise lpips_metric.LpipsUnavailable(lpips_metric.lpips_advice(lpips_metric.NO_WEIGHTS), lpips_metric.NO_WEIGHTS)

    monkeypatch.setattr(lpips_metric, "load_lpips", load)
    failing_case(project)
    run = project.run(lpips=None)  # auto: tried, not available
    run.outcome.assert_outcomes(failed=1)
    grid = assert_grid_reads_as_the_message(run)
    assert re.fullmatch(r"lpips - <= 0\.05 skipped \(unavailable: .+\)", grid["lpips"]), grid["lpips"]


def test_the_slowdown_and_vram_read_alike_in_message_grid_summary_and_report(project) -> None:
    failing_case(project, max_vram_mb=10000)
    run = project.run()
    (result,) = run.results
    assert result.outcome is Outcome.FAILED_SPEED
    assert result.slowdown == pytest.approx(4.0) and result.tolerances["time_regression"] == 0.5  # fractions in results.csv
    grid = assert_grid_reads_as_the_message(run)
    assert grid["slowdown"] == "slowdown +400% <= +50% FAIL (0.05 s vs baseline 0.01 s)"
    assert grid["peak VRAM"] == "peak VRAM 12346 MiB <= 10000 MiB FAIL"
    assert grids.grid_labels(result)[-1].startswith("0.05 s/img · 12346 MiB")
    assert "slowdown +400% <= +50% FAIL" in result.message  # results.csv's message, the junit text
    failed = "slowdown +400% > +50%; peak VRAM 12346 MiB > 10000 MiB"
    assert what_failed(result) == failed
    assert failed in run.folder.summary.read_text(encoding="utf-8")
    page = run.folder.report.read_text(encoding="utf-8")
    assert "slowdown +400% &gt; +50%" in page and "12346 MiB" in page
    assert '"peak_vram_mb": "12346"' in page  # the VRAM column as the check prints it, not 1.235e+04
