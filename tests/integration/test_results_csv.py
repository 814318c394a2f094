"""results.csv of an in-process run with a FakePipeline: one row per case, read back as results,
with the sweep score ssim_vs_most_steps filled for step sweeps."""

from __future__ import annotations

import csv

import pytest

from pytest_diffbench.judge.result import SCHEMA_VERSION, columns
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome
from pytest_diffbench.testing import run_diffbench, use_fake_pipeline

TESTS = '''
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=0, steps=[1, 3])
def test_steps(diffbench):
    diffbench.generate("a red cube")


@diffbench.sweep(seeds=0, steps=2)
def test_single(diffbench):
    diffbench.generate("a red cube")
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """The project's runs use a FakePipeline; $GITHUB_STEP_SUMMARY is unset by tests/conftest.py."""
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TESTS)
    return pytester


def test_a_step_sweep_fills_ssim_vs_most_steps(project):
    run = run_diffbench(project, update="all")
    run.outcome.assert_outcomes(passed=3)
    assert run.result("test_steps[seed0-euler-3steps-cfg7.5]").ssim_vs_most_steps == 1.0
    assert run.result("test_steps[seed0-euler-1steps-cfg7.5]").ssim_vs_most_steps < 0.95
    assert run.result("test_single").ssim_vs_most_steps is None


def test_rows_are_the_cases_sorted_by_node_id_with_the_schema_version(project):
    run = run_diffbench(project, update="missing")
    run.outcome.assert_outcomes(passed=3)
    with open(run.folder.results, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(columns())
    assert [row["nodeid"] for row in rows] == sorted(row["nodeid"] for row in rows)
    assert {row["schema_version"] for row in rows} == {str(SCHEMA_VERSION)}
    assert {r.baseline_action for r in run.results} == {BaselineAction.CREATED}
    assert {r.outcome for r in run.results} == {Outcome.PASSED}
    assert all(r.run_id == run.folder.run_id and r.config_hash and r.output_path for r in run.results)


def test_a_second_run_reads_the_baselines_the_first_wrote(project):
    run_diffbench(project, update="missing").outcome.assert_outcomes(passed=3)
    run = run_diffbench(project)
    run.outcome.assert_outcomes(passed=3)
    assert {r.baseline_action for r in run.results} == {BaselineAction.NONE}
    assert {r.scores["ssim"] for r in run.results} == {1.0}
    assert all(r.baseline_path.startswith("baselines/cpu-float32/test_gen/") for r in run.results)
