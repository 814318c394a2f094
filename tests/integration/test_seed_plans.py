"""Seed plans as a user runs them (issue 12, item 1): the cases of ``seeds=diffbench.seed_plan(...)``
are collected under their seeds' ids, judged against the baselines of the same seeds given as a
list (plan and index are provenance, not config), and record their plan and index in results.csv."""

from __future__ import annotations

from pytest_diffbench.spec.seeds import seed_plan
from pytest_diffbench.spec.outcomes import Outcome


def test_plan_cases_are_collected_by_seed(project) -> None:
    project.write_tests(project.test("test_plan", sweep='seeds=diffbench.seed_plan("portraits", n=3), steps=2'))
    outcome = project.run_plain("--collect-only", "-q")
    ids = [line for line in outcome.outlines if "::test_plan[" in line]
    assert ids == [f"test_gen.py::test_plan[seed{seed}-euler-2steps-cfg7.5]" for seed in seed_plan("portraits", n=3)]


def test_a_plan_and_a_list_of_its_seeds_share_baselines(project) -> None:
    seeds = list(seed_plan("portraits", n=2))
    project.write_tests(project.test("test_plan", sweep=f"seeds={seeds}, steps=2"))
    project.run(update="all").outcome.assert_outcomes(passed=2)
    project.write_tests(project.test("test_plan", sweep='seeds=diffbench.seed_plan("portraits", n=2), steps=2'))
    run = project.run()
    run.outcome.assert_outcomes(passed=2)
    assert [r.outcome for r in run.results] == [Outcome.PASSED, Outcome.PASSED]
    assert sorted(r.setting("seed") for r in run.results) == sorted(seeds)


def test_a_bad_plan_is_a_collection_error_of_one_line(project) -> None:
    project.write_tests(project.test("test_plan", sweep='seeds=diffbench.seed_plan("portraits", n=0)'))
    outcome = project.run_plain("--collect-only", "-q")
    text = project.text(outcome)
    assert "seed_plan(n=0) is not valid; n (the number of seeds) must be an integer from 1 to 100000" in text
    assert outcome.ret != 0
