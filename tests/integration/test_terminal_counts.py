"""The terminal summary's counting lines say only what happened: no line reads "0 ..."."""

from __future__ import annotations

from pytest_diffbench.cli.main import main
from pytest_diffbench.plugin.terminal import TABLE_MAX_ROWS

SWEEP = f"seeds=list(range({TABLE_MAX_ROWS + 1})), steps=2"


def test_a_big_sweep_that_all_fails_lists_every_case_and_leaves_none_out(project) -> None:
    project.write_tests(project.test("test_a", sweep=SWEEP))
    run = project.run()
    run.outcome.assert_outcomes(failed=TABLE_MAX_ROWS + 1)
    text = project.text(run.outcome)
    assert "not listed" not in text
    assert all(f"test_a[seed{seed}-euler-2steps-cfg7.5]" in text for seed in range(TABLE_MAX_ROWS + 1))


def test_a_big_sweep_with_one_failure_counts_the_passed_cases_it_leaves_out(project) -> None:
    project.write_tests(project.test("test_a", sweep=SWEEP))
    project.run(update="all")
    project.baseline_pair("test_a", "seed0-euler-2steps-cfg7.5")[0].unlink()
    project.baseline_pair("test_a", "seed0-euler-2steps-cfg7.5")[1].unlink()
    text = project.text(project.run().outcome)
    assert f"({TABLE_MAX_ROWS} passed cases not listed; see summary.md)" in text


def test_accept_closes_with_the_actions_that_happened_only(project, capsys) -> None:
    project.write_tests(project.test("test_a"), project.test("test_b"))
    project.run().outcome.assert_outcomes(failed=2)
    capsys.readouterr()
    assert main(["accept", "latest"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 created"
    assert main(["accept", "latest"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 unchanged"
