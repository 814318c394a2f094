"""The same rows come out with and without pytest-xdist.

``xdist_mode`` runs each test without the xdist plugin (``-p no:xdist``), with it but no workers
(``-n 0``) and with two workers (``-n 2``: the controller runs in this process, the workers are
child processes, which import no torch with the FakePipeline). Each mode's rows are compared
with another mode's, without the fields that differ between any two runs (run id, timestamps,
timings, worker). Each scenario runs once per mode in a module (``rows_in``): a mode's rows serve
its own test and the tests that take it as their reference.
"""

from __future__ import annotations

import shutil
from typing import Any, Callable

import pytest

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

XDIST_MODES = {"no-xdist": ("-p", "no:xdist"), "n0": ("-n", "0"), "n2": ("-n", "2")}
#: The mode each mode's rows are compared with.
REFERENCE = {"no-xdist": "n0", "n0": "no-xdist", "n2": "no-xdist"}


@pytest.fixture(params=list(XDIST_MODES))
def xdist_mode(request: pytest.FixtureRequest) -> str:
    return request.param


Scenario = Callable[..., Any]


@pytest.fixture(scope="module")
def rows_in(shared_project) -> Callable[[Scenario, str], Any]:
    """``rows_in(scenario, mode)``: what ``scenario(project, mode)`` returned, run once per module in
    a project of its own (its assertions run then)."""
    made: dict[tuple[Scenario, str], Any] = {}

    def rows(scenario: Scenario, mode: str) -> Any:
        if (scenario, mode) not in made:
            with shared_project() as project:
                made[scenario, mode] = scenario(project, mode)
        return made[scenario, mode]

    return rows


def fresh(project) -> None:
    shutil.rmtree(project.baselines, ignore_errors=True)
    shutil.rmtree(project.output_dir, ignore_errors=True)


def update_then_rerun(project, mode: str) -> dict[str, list]:
    """Create the baselines, then compare with them, in ``mode``; the results of both runs."""
    fresh(project)
    results = {}
    for step, update in (("update", "all"), ("rerun", None)):
        run = project.run(*XDIST_MODES[mode], update=update)
        run.outcome.assert_outcomes(passed=4)
        assert project.text(run.outcome).count("diffbench: 4 cases: 4 passed") == 1, (mode, step)  # the controller's summary only
        runs = project.runs()
        folder = run.folder
        assert folder.path in runs and len(runs) == (1 if step == "update" else 2), (mode, step)
        assert [p.name for p in folder.path.rglob("results.csv")] == ["results.csv"], (mode, step)
        assert len(list((folder.path / "images").rglob("*.png"))) == 4, (mode, step)
        rows = run.results
        assert {row.run_id for row in rows} == {folder.run_id}
        workers = {row.worker for row in rows}
        assert workers == ({"gw0", "gw1"} if mode == "n2" else {"main"}), (mode, step, workers)
        assert {row.workers for row in rows} == {2 if mode == "n2" else 1}
        results[step] = rows
    assert [row.baseline_action for row in results["update"]] == [BaselineAction.CREATED] * 4
    return results


def sweep_in(project, mode: str) -> dict[str, list]:
    """Four cases (two seeds, two samplers): :func:`update_then_rerun` in ``mode``."""
    project.write_tests(project.test(sweep='seeds=[0, 1], samplers=["Euler", "DDIM"], steps=2'))
    return update_then_rerun(project, mode)


def test_same_results_without_xdist_with_n0_and_n2(rows_in, stable_row, xdist_mode: str) -> None:
    ours = rows_in(sweep_in, xdist_mode)
    reference = rows_in(sweep_in, REFERENCE[xdist_mode])
    for step in ("update", "rerun"):
        assert [row.case_id for row in ours[step]] == sorted(
            f"seed{s}-{sampler}-2steps-cfg7.5" for s in (0, 1) for sampler in ("euler", "ddim"))
        assert [stable_row(row) for row in ours[step]] == [stable_row(row) for row in reference[step]], step


def failures_in(project, mode: str) -> list:
    """A passing, a stale, a missing and an erroring case, run in ``mode`` against baselines
    made without xdist; their results."""
    fresh(project)
    project.write_tests(project.test("test_ok"), project.test("test_stale", body='diffbench.generate("a red cube")'))
    project.run("-p", "no:xdist", update="all").outcome.assert_outcomes(passed=2)
    project.write_tests(project.test("test_ok"), project.test("test_stale", body='diffbench.generate("a blue cube")'),
                        project.test("test_missing"), project.test("test_error", body='raise ValueError("boom")'))
    run = project.run(*XDIST_MODES[mode])
    run.outcome.assert_outcomes(passed=1, failed=3)
    text = project.text(run.outcome)
    assert text.count("diffbench: 4 cases: 1 error, 1 missing-baseline, 1 passed, 1 stale-baseline") == 1, text
    # The failure text of each case reaches the controller's report.
    assert "diffbench stale-baseline: test_gen.py::test_stale[" in text
    assert "diffbench missing-baseline: test_gen.py::test_missing[" in text
    assert "ValueError: boom" in text
    return run.results


def test_failures_and_errors_reach_the_controller_in_every_mode(rows_in, stable_row, xdist_mode: str) -> None:
    ours = rows_in(failures_in, xdist_mode)
    assert {row.short_id.split("[")[0]: row.outcome for row in ours} == {
        "test_ok": Outcome.PASSED, "test_stale": Outcome.STALE_BASELINE,
        "test_missing": Outcome.MISSING_BASELINE, "test_error": Outcome.ERROR}
    reference = rows_in(failures_in, REFERENCE[xdist_mode])
    assert [stable_row(row) for row in ours] == [stable_row(row) for row in reference]
