"""The terminal summary's counting lines say only what happened: no line reads "0 ..."."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest

from pytest_diffbench.cli.main import main
from pytest_diffbench.plugin.terminal import TABLE_MAX_ROWS
from pytest_diffbench.testing import DiffbenchRun

SWEEP = f"seeds=list(range({TABLE_MAX_ROWS + 1})), steps=2"
CASES = TABLE_MAX_ROWS + 1


def accept_latest() -> tuple[int, list[str]]:
    """``diffbench accept latest`` in the current folder: its exit status and its lines."""
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(["accept", "latest"])
    return status, out.getvalue().splitlines()


@pytest.fixture(scope="module")
def big_sweep_failed(shared_project) -> tuple[DiffbenchRun, str]:
    """A sweep of one case more than the terminal's table lists, run without baselines (every
    case fails), made once for the module: the run and its terminal text."""
    with shared_project() as project:
        project.write_tests(project.test("test_a", sweep=SWEEP))
        run = project.run()
        run.outcome.assert_outcomes(failed=CASES)
        return run, project.text(run.outcome)


@pytest.fixture(scope="module")
def big_sweep_accepted(shared_project, big_sweep_failed: tuple[DiffbenchRun, str],
                       copy_run) -> tuple[DiffbenchRun, list[str]]:
    """:func:`big_sweep_failed` copied, then ``diffbench accept latest`` (every case's baseline
    created), once for the module: the run, in the folder accept wrote to, and accept's lines."""
    with shared_project() as project:  # the command runs in the project's folder
        run = copy_run(big_sweep_failed[0], project.path)
        status, lines = accept_latest()
        assert status == 0, lines
        return run, lines


def test_a_big_sweep_that_all_fails_lists_every_case_and_leaves_none_out(big_sweep_failed) -> None:
    _, text = big_sweep_failed
    assert "not listed" not in text
    assert all(f"test_a[seed{seed}-euler-2steps-cfg7.5]" in text for seed in range(CASES))


def test_a_big_sweep_with_one_failure_counts_the_passed_cases_it_leaves_out(project, big_sweep_accepted, copy_run) -> None:
    """Every case's baseline accepted (:func:`big_sweep_accepted`), then seed 0's removed: one case fails."""
    copy_run(big_sweep_accepted[0], project.path)
    project.baseline_pair("test_a", "seed0-euler-2steps-cfg7.5")[0].unlink()
    project.baseline_pair("test_a", "seed0-euler-2steps-cfg7.5")[1].unlink()
    text = project.text(project.run().outcome)
    assert f"({TABLE_MAX_ROWS} passed cases not listed; see summary.md)" in text


def test_accept_closes_with_the_actions_that_happened_only(project, big_sweep_accepted, copy_run) -> None:
    """The first accept is :func:`big_sweep_accepted`'s; this one accepts the same run again."""
    run, lines = big_sweep_accepted
    assert lines[-1] == f"{CASES} created"
    copy_run(run, project.path)  # the command runs in the project's folder
    status, lines = accept_latest()
    assert status == 0 and lines[-1] == f"{CASES} unchanged"
