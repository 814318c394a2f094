"""A diffbench case pytest skips is finished, not left to run: the run is complete, not paused.

Each way pytest skips a case (a ``skip`` or ``skipif`` mark, ``pytest.skip()`` in the test or in a
fixture's setup, ``xfail(run=False)``, ``pytest.xfail()`` in the test) leaves no results.csv row and
one journal line saying so; a case whose setup failed ran, and is finished with outcome ``error``.
``-k`` deselection stays as it is: a deselected case is no job of the run.
"""

from __future__ import annotations

import pytest

from pytest_diffbench.store.journal import read_journal_entries

SKIPS = {
    "skip-mark": (['@pytest.mark.skip(reason="later")'], 'diffbench.generate("x")', "skipped: later"),
    "skipif-mark": (['@pytest.mark.skipif(True, reason="not here")'], 'diffbench.generate("x")', "skipped: not here"),
    "xfail-not-run": (['@pytest.mark.xfail(run=False, reason="known")'], 'diffbench.generate("x")',
                      "xfailed: [NOTRUN] known"),
    "skip-in-body": ([], 'pytest.skip("not today")', "skipped: not today"),
    "skip-after-generate": ([], 'diffbench.generate("x")\npytest.skip("after")', "skipped: after"),
    "xfail-in-body": ([], 'pytest.xfail("broken upstream")', "xfailed: broken upstream"),
    "skip-in-fixture": ([], 'diffbench.generate("x")', "skipped: no GPU"),
}
FIXTURE = '''
@pytest.fixture
def needs_gpu():
    pytest.skip("no GPU")
'''


def write_project(project, decorators: list[str], body: str, *, fixture: str = "") -> None:
    kept = project.test("test_kept", sweep="seeds=[0, 1], steps=2")
    skipped = project.test("test_s", sweep="seeds=0, steps=2", body=body, decorators=decorators)
    if fixture:
        skipped = skipped.replace("def test_s(diffbench):", f"def test_s(diffbench, {fixture}):")
    project.write_tests("import pytest\n" + FIXTURE, kept, skipped)


@pytest.mark.parametrize("how", SKIPS)
def test_a_skipped_case_is_finished(project, how: str) -> None:
    decorators, body, reason = SKIPS[how]
    write_project(project, decorators, body, fixture="needs_gpu" if how == "skip-in-fixture" else "")
    run = project.run(update="all")
    text = project.text(run.outcome)
    assert "paused" not in text and "resume it with" not in text
    assert [result.nodeid.split("[")[0] for result in run.results] == ["test_gen.py::test_kept"] * 2  # no row
    entries = read_journal_entries(run.folder.journal)
    assert entries.skipped == {"test_gen.py::test_s[seed0-euler-2steps-cfg7.5]": reason}
    jobs, left = run.folder.jobs_left()
    assert len(jobs) == 3 and left == []
    resumed = project.run(f"--diffbench-resume={run.run_id}", update="all")
    assert resumed.outcome.ret == pytest.ExitCode.USAGE_ERROR  # nothing to resume
    assert "already complete" in project.text(resumed.outcome)


def test_a_case_skipped_on_an_xdist_worker_is_finished(project) -> None:
    write_project(project, *SKIPS["skip-in-body"][:2])
    run = project.run("-n", "2", update="all")
    run.outcome.assert_outcomes(passed=2, skipped=1)
    assert run.folder.jobs_left()[1] == []
    assert "paused" not in project.text(run.outcome)


def test_list_shows_a_run_with_a_skipped_case_as_complete(project, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_diffbench.cli.main import main

    write_project(project, *SKIPS["skip-mark"][:2])
    run = project.run(update="all")
    project.monkeypatch.chdir(project.path)
    capsys.readouterr()
    assert main(["list"]) == 0
    assert capsys.readouterr().out.strip() == f"{run.run_id}  (latest)  2 passed"


def test_a_case_whose_setup_failed_ran_and_is_finished_as_an_error(project) -> None:
    project.write_tests("import pytest\n\n@pytest.fixture\ndef broken():\n    raise RuntimeError('no disk')\n",
                        project.test("test_s", sweep="seeds=0, steps=2").replace("(diffbench)", "(diffbench, broken)"))
    run = project.run(update="all")
    assert [(result.outcome.value, result.message) for result in run.results] == [
        ("error", "setup failed: no disk")]
    assert run.folder.jobs_left()[1] == []
    assert "paused" not in project.text(run.outcome)
