"""The "change" column compares only timings the speed gate compares (issue 10, item 3): a
baseline timed by one pytest process and a run with ``-n 2`` are not compared, so the terminal
table, summary.md and report.html show the mark and a footnote naming the worker counts, not a
percentage; results.csv records the baseline's worker count next to its device."""

from __future__ import annotations

import csv

from pytest_diffbench.judge.result import columns
NOT_COMPARABLE = "—†"  # the change column's mark

WORKERS_NOTE = "baseline timed with 1 pytest worker(s), this run with 2"


def test_a_baseline_timed_by_another_worker_count_shows_no_change(project) -> None:
    project.write_tests(project.test("test_case", sweep="seeds=[0, 1], steps=2"))
    project.run("-p", "no:xdist", update="all").outcome.assert_outcomes(passed=2)
    project.write_ini(time_regression=0.5)
    project.fake(seconds_per_image=0.02)  # twice the baseline's 0.01 s: +100% if it were compared
    run = project.run("-n", "2", "-p", "xdist")
    run.outcome.assert_outcomes(passed=2)
    text = project.text(run.outcome)
    rows = [line for line in text.splitlines() if line.startswith("test_case[")]
    assert len(rows) == 2 and all(NOT_COMPARABLE in row and "%" not in row for row in rows)
    footnote = f"† {WORKERS_NOTE}: no change shown"
    assert footnote in text
    summary = run.folder.summary.read_text(encoding="utf-8")
    assert "+100%" not in summary and footnote in summary
    page = run.folder.report.read_text(encoding="utf-8")
    assert "+100%" not in page and footnote in page and f'"change_title": "{WORKERS_NOTE}"' in page

    with open(run.folder.results, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    for result in run.results:
        assert (result.workers, result.baseline_workers, result.time_check) == (2, 1, WORKERS_NOTE)
    assert header.index("baseline_workers") == header.index("baseline_device_name") + 1 == columns().index("baseline_workers")


def test_the_same_worker_count_shows_the_change(project) -> None:
    project.write_tests(project.test("test_case", sweep="seeds=[0, 1], steps=2"))
    project.run("-n", "2", "-p", "xdist", update="all").outcome.assert_outcomes(passed=2)
    project.write_ini(time_regression=1.5)
    project.fake(seconds_per_image=0.02)
    run = project.run("-n", "2", "-p", "xdist")
    run.outcome.assert_outcomes(passed=2)
    assert {(r.baseline_workers, r.time_check) for r in run.results} == {(2, "passed")}
    rows = [line for line in project.text(run.outcome).splitlines() if line.startswith("test_case[")]
    assert len(rows) == 2 and all("+100%" in row for row in rows)
    assert "†" not in run.folder.summary.read_text(encoding="utf-8")
