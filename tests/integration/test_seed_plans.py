"""Seed plans as a user runs them (issue 12, item 1): the cases of ``seeds=diffbench.seed_plan(...)``
are collected under their seeds' ids, judged against the baselines of the same seeds given as a
list (plan and index are provenance, not config), and record their plan and index in results.csv."""

from __future__ import annotations

from pytest_diffbench.report.grids import grid_labels
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.spec.seeds import seed_plan
from pytest_diffbench.store.results import read_results


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
    assert "test_gen.py:4: in <module>" in text and "seeds.py" not in text  # the user's line, no diffbench frame
    assert outcome.ret != 0


def test_results_and_grids_record_each_cases_plan_and_index(project) -> None:
    plan = seed_plan("fixed", n=2) + seed_plan("wild", n=1, salt="2026-w48")
    project.write_tests(project.test(
        "test_plan", sweep='seeds=diffbench.seed_plan("fixed", n=2) + diffbench.seed_plan("wild", n=1, salt="2026-w48"), '
                         'steps=2'),
        project.test("test_list", sweep="seeds=[5], steps=2"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=4)
    rows = {(r.setting("seed"), r.test.split("::")[-1]): r for r in run.results}
    for position, seed in enumerate(plan):
        result = rows[(seed, "test_plan")]
        assert (result.seed_plan, result.seed_index) == plan.origin(position)
        assert result.to_row()["seed_plan"] == plan.origin(position)[0]
        label, index = plan.origin(position)
        assert f"seed {seed} (plan {label} #{index})" in grid_labels(result)[1]
    listed = rows[(5, "test_list")]
    assert (listed.seed_plan, listed.seed_index) == ("", None)
    assert "seed 5 · config" in grid_labels(listed)[1]
    # results.csv keeps them
    read_back = {(r.seed_plan, r.seed_index) for r in read_results(run.folder.results)}
    assert read_back == {("fixed", 0), ("fixed", 1), ("wild@2026-w48", 0), ("", None)}


WILD_CARD = ('seeds=diffbench.seed_plan("fixed", n=3) + diffbench.seed_plan("fixed-wild", n=1, '
             'salt=os.environ.get("DIFFBENCH_WILD", "pinned")), steps=2')


def test_a_new_wild_card_gets_its_baseline_while_the_fixed_seeds_stay_gated(project) -> None:
    project.write_tests("import os\n\n\n" + project.test("test_portraits", sweep=WILD_CARD))
    project.run(update="all").outcome.assert_outcomes(passed=4)
    project.run().outcome.assert_outcomes(passed=4)  # no salt named: the wild card is pinned, every case gates
    project.monkeypatch.setenv("DIFFBENCH_WILD", "2026-w48")
    wild = seed_plan("fixed-wild", n=1, salt="2026-w48")[0]
    run = project.run()  # a new wild seed: its case has no baseline yet, the fixed ones pass
    run.outcome.assert_outcomes(passed=3, failed=1)
    (missing,) = [r for r in run.results if not r.passed]
    assert (missing.outcome, missing.setting("seed"), missing.seed_plan) == (Outcome.MISSING_BASELINE, wild,
                                                                             "fixed-wild@2026-w48")
    project.fake(drift=0.5)  # every image changes: an update of missing baselines still fails the fixed seeds
    run = project.run(update="missing")
    assert {r.setting("seed"): r.passed for r in run.results} == {**{seed: False for seed in seed_plan("fixed", n=3)},
                                                                  wild: True}
    project.fake()
    project.run().outcome.assert_outcomes(passed=3, failed=1)  # the wild card's baseline was made with the drift
