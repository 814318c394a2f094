"""User code diffbench calls cannot break a run's end, and the columns hooks add are stable.

A ``pytest_diffbench_result_row`` hook that raises costs only its own columns (one WARNING naming
it, exit status unchanged, every file of the run written); a ``pytest_diffbench_machine_info`` hook
that raises fails each case in one line naming it. The hook's columns are computed where the case
ran, through the test's own hooks (a conftest.py applies to the tests under it), and kept with the
case's result: results.csv is the same with ``-n 0`` and ``-n 2``, after a resume and after
``diffbench report`` rebuilds it from the journal.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pytest_diffbench.cli.main import main
from pytest_diffbench.testing import use_fake_pipeline

SWEEP = 'seeds=[0, 1], steps=2'
RAISING_ROW_HOOK = '''
def pytest_diffbench_result_row(config, result, row):
    raise RuntimeError("boom")
'''
TEAM_ROW_HOOK = '''
def pytest_diffbench_result_row(config, result, row):
    row["team"] = "imaging"
'''


def header_and_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_raising_result_row_hook_costs_only_its_columns(project, workers: str) -> None:
    """Under xdist the hook raises on the workers: their warning reaches the controller, said once."""
    use_fake_pipeline(project.pytester, extra=RAISING_ROW_HOOK)
    project.write_tests(project.test("test_c", sweep=SWEEP))
    run = project.run("-n", workers, update="all")
    run.outcome.assert_outcomes(passed=2)  # pytest's summary line is printed
    assert run.outcome.ret == 0
    text = project.text(run.outcome)
    assert "Traceback" not in text
    warnings = [line for line in text.splitlines() if "RuntimeError: boom" in line]
    assert warnings == ["WARNING: the pytest_diffbench_result_row hook in conftest.py raised RuntimeError: boom; "
                        "results.csv has no columns from it for the cases where it raised"]
    folder = run.folder  # latest names it
    header, rows = header_and_rows(folder.results)
    assert header[-1] == "schema_version" and len(rows) == 2
    for written in (folder.environment, folder.summary, folder.report, folder.bundle):
        assert written.is_file(), written


def test_a_raising_hook_does_not_cost_another_hooks_columns(project) -> None:
    """Each implementation runs on its own: the raising one is named, the other's columns stay."""
    use_fake_pipeline(project.pytester, extra=TEAM_ROW_HOOK)
    project.write_tests(project.test("test_c", sweep=SWEEP), module="sub/test_gen")
    project.pytester.path.joinpath("sub", "conftest.py").write_text(RAISING_ROW_HOOK, encoding="utf-8")
    run = project.run(update="all")
    assert run.outcome.ret == 0
    run.outcome.stdout.fnmatch_lines(["WARNING: the pytest_diffbench_result_row hook in sub/conftest.py raised "
                                      "RuntimeError: boom; *"])
    assert [dict(result.extra) for result in run.results] == [{"team": "imaging"}] * 2


def test_a_raising_machine_info_hook_fails_each_case_in_one_line_naming_it(project) -> None:
    """Deliberate: the machine record goes into the baseline sidecar, so a case is not recorded without it."""
    use_fake_pipeline(project.pytester, extra='''
def pytest_diffbench_machine_info(config, machine_info):
    raise RuntimeError("no node name")
''')
    project.write_tests(project.test("test_c", sweep=SWEEP))
    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=2)
    expected = ("diffbench cannot record the machine of this case: the pytest_diffbench_machine_info "
                "hook in conftest.py raised RuntimeError: no node name")
    assert [(result.outcome.value, result.message) for result in run.results] == [("error", expected)] * 2
    assert not project.baselines.exists()  # nothing recorded without its machine
    output = project.text(run.outcome)
    assert output.count(expected) >= 2  # each case's failure is that line, without diffbench's frames
    assert "Traceback" not in output and "another exception" not in output and "pytest_diffbench/" not in output


def test_environment_json_that_cannot_be_made_costs_only_itself(project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another step of the session end: results.csv, ``latest`` and the artifacts are still written."""
    import pytest_diffbench.run.identity as identity

    def broken(**_: object) -> dict[str, object]:
        raise RuntimeError("git exploded")

    monkeypatch.setattr(identity, "run_environment", broken)
    project.write_tests(project.test("test_c", sweep=SWEEP))
    run = project.run(update="all")
    assert run.outcome.ret == 0
    run.outcome.stdout.fnmatch_lines(["WARNING: diffbench could not write environment.json in *: RuntimeError: git exploded"])
    folder = run.folder
    assert folder.results.is_file() and folder.report.is_file() and not folder.environment.exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_conftest_hook_adds_columns_to_its_own_tests_only_with_or_without_xdist(project, workers: str) -> None:
    """A hook in a conftest.py pytest loads only while collecting (``a/conftest.py``, which an xdist
    controller never imports) applies to the tests under its folder, as pytest's own hooks do."""
    project.write_tests(project.test("test_a", sweep=SWEEP), module="a/test_a")
    project.write_tests(project.test("test_b", sweep=SWEEP), module="b/test_b")
    project.pytester.path.joinpath("a", "conftest.py").write_text(TEAM_ROW_HOOK, encoding="utf-8")
    run = project.run("-n", workers, update="all")
    run.outcome.assert_outcomes(passed=4)
    header, rows = header_and_rows(run.folder.results)
    assert header[-1] == "team"
    assert [(row["test"], row["team"]) for row in rows] == [
        ("a/test_a.py::test_a", "imaging"), ("a/test_a.py::test_a", "imaging"),
        ("b/test_b.py::test_b", ""), ("b/test_b.py::test_b", "")]


def test_report_rebuilds_a_killed_runs_results_with_the_hooks_columns(project, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_pipeline(project.pytester, extra=TEAM_ROW_HOOK)
    project.write_tests(project.test("test_c", sweep=SWEEP))
    folder = project.run(update="all").folder
    written = folder.results.read_bytes()
    folder.results.unlink()  # as a run killed before its end leaves it: only its journal
    monkeypatch.chdir(project.path)
    assert main(["report", folder.run_id]) == 0
    assert folder.results.read_bytes() == written


def test_a_resumed_run_keeps_the_earlier_cases_columns(project) -> None:
    use_fake_pipeline(project.pytester, extra='''
def pytest_diffbench_result_row(config, result, row):
    row["seed_label"] = f"seed {result.setting('seed')}"
''')
    project.write_tests(project.test("test_c", sweep="seeds=[0, 1, 2], steps=2", body='''
import os
diffbench.generate("a red cube")
if diffbench.seed == 1 and os.environ.get("STOP_AT_SEED_1"):
    raise RuntimeError("stop")
'''))
    project.monkeypatch.setenv("STOP_AT_SEED_1", "1")
    stopped = project.run("-x", update="all")
    assert [result.extra["seed_label"] for result in stopped.results] == ["seed 0", "seed 1"]
    project.monkeypatch.delenv("STOP_AT_SEED_1")
    resumed = project.run("-x", f"--diffbench-resume={stopped.run_id}", update="all")
    assert resumed.run_id == stopped.run_id
    assert [result.extra["seed_label"] for result in resumed.results] == ["seed 0", "seed 1", "seed 2"]
