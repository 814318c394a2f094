"""A run's job list and ``--diffbench-resume``: a stopped run goes on in its own folder.

Runs are in-process (FakePipeline). A run is stopped by ``-x`` at a case that fails while
``STOP_AT`` names it: the cases after it are left, as after Ctrl-C or a kill (the subprocess tests
of those are in tests/e2e/test_resume_kills.py).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from pytest_diffbench.cli.main import main
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store.jobs import read_jobs
from pytest_diffbench.store.journal import Journal, read_journal
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import RunFolder
from pytest_diffbench.testing import DiffbenchRun

#: A sweep of 4 cases; the case whose id contains $STOP_AT fails (after generating), so ``-x`` stops there.
STOPPABLE = '''
import os


@diffbench.sweep(seeds=[0, 1, 2, 3], steps=2)
def test_case(diffbench, request):
    diffbench.generate("{prompt}")
    stop = os.environ.get("STOP_AT")
    assert not stop or stop not in request.node.name, "stopped here"
'''
CASES = [f"test_gen.py::test_case[seed{seed}-euler-2steps-cfg7.5]" for seed in range(4)]
#: A second test whose sweep is invalid: a collection error, so pytest runs nothing.
BROKEN = """

@diffbench.sweep(steps=-1)
def test_broken(diffbench):
    diffbench.generate("x")
"""


def write(project, prompt: str = "a red cube", extra: str = "") -> None:
    project.write_tests(STOPPABLE.replace("{prompt}", prompt) + extra)


def stop(project, *args: str) -> DiffbenchRun:
    """A run stopped by ``-x`` at seed 1 (seeds 2 and 3 never ran)."""
    write(project)
    project.monkeypatch.setenv("STOP_AT", "seed1")
    run = project.run("-x", *args, update="all")
    project.monkeypatch.delenv("STOP_AT")
    assert run.outcome.ret == 1
    return run


@pytest.fixture(scope="module")
def stopped_once(shared_project) -> DiffbenchRun:
    """:func:`stop`'s run, made once for the module: tests that resume it take their own copy
    (``stopped``); the test of its resume command reads its output."""
    with shared_project() as project:
        return stop(project)


@pytest.fixture
def stopped(project, stopped_once: DiffbenchRun, copy_run) -> RunFolder:
    """The project with a copy of :func:`stopped_once` (its test module, baselines and run folder):
    the stopped run's folder, for a test to resume or change."""
    return copy_run(stopped_once, project.path).folder


def test_the_job_list_names_every_selected_case_in_order_with_stable_bytes(project):
    write(project)
    first = project.run("-k", "not seed3", update="all").folder
    assert [job.nodeid for job in read_jobs(first.jobs)] == CASES[:3]
    second = project.run("-k", "not seed3").folder
    assert second.run_id != first.run_id and second.jobs.read_bytes() == first.jobs.read_bytes()
    hashes = {job.hash for job in read_jobs(first.jobs)}
    assert len(hashes) == 3 and all(len(h) == 64 for h in hashes)


def test_a_stopped_run_prints_its_resume_command_and_resume_runs_only_what_is_left(project, stopped):
    folder = stopped
    assert folder.finished  # the artifacts of what finished are written
    assert [r.nodeid for r in read_results(folder.results)] == CASES[:2]
    outcome = project.run("--diffbench-resume", update="all").outcome
    outcome.assert_outcomes(passed=2, deselected=2)
    assert project.runs() == [folder.path]  # no new run folder
    results = read_results(folder.results)
    assert [r.nodeid for r in results] == CASES
    assert {r.run_id for r in results} == {folder.run_id}
    assert [r.nodeid for r in read_journal(folder.journal)] == CASES  # appended to the same journal
    assert project.latest() == folder.run_id
    assert f"summary: {folder.summary}" in project.text(outcome) and "paused" not in project.text(outcome)


def test_the_resume_command_is_printed_exactly(stopped_once):
    run = stopped_once
    text = run.outcome.stdout.str() + "\n" + run.outcome.stderr.str()
    expected = (f"diffbench: run {run.folder.run_id} paused with 2 of 4 cases not run; resume it with: pytest "
                f"-p no:cacheprovider --diffbench -p no:cacheprovider -rA --diffbench-lpips=off --diffbench-update=all -x "
                f"--diffbench-resume={run.folder.run_id}")
    assert expected in text.replace("\n", "")


def test_resume_refuses_a_complete_an_unknown_and_a_running_run(project):
    write(project)
    folder = project.run(update="all").folder
    before = project.snapshot(folder.path)
    complete = project.run("--diffbench-resume")
    assert complete.outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert f"run {folder.run_id} is already complete: all 4 cases of its job list finished" in project.text(complete.outcome)
    unknown = project.run("--diffbench-resume=20200101T000000Z-000000")
    assert unknown.outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "there is no run '20200101T000000Z-000000'" in project.text(unknown.outcome)
    folder.journal.write_bytes(folder.journal.read_bytes().split(b"\n", 1)[1])  # one case left
    with Journal(folder.journal):  # another process running it
        running = project.run(f"--diffbench-resume={folder.run_id}")
    assert running.outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert f"run {folder.run_id} is still running" in project.text(running.outcome)
    assert project.runs() == [folder.path]
    after = project.snapshot(folder.path)
    assert {k: v for k, v in after.items() if k != "journal.jsonl"} == {k: v for k, v in before.items() if k != "journal.jsonl"}


@pytest.mark.parametrize("edit, said", [
    (lambda project: write(project, extra="\n\n" + project.test("test_other")), "1 added (test_gen.py::test_other"),
    (lambda project: write(project, prompt="a blue cube"), "4 changed (test_gen.py::test_case[seed0"),
])
def test_a_resume_whose_cases_changed_says_which_and_refuses(project, stopped, edit, said):
    folder = stopped
    jobs, journal = folder.jobs.read_bytes(), folder.journal.read_bytes()
    edit(project)
    refused = project.run("--diffbench-resume", update="all")
    assert refused.outcome.ret == pytest.ExitCode.USAGE_ERROR
    text = project.text(refused.outcome)
    assert f"cannot resume run {folder.run_id}: the cases collected now differ from its job list: {said}" in text
    assert "--diffbench-resume-changed" in text
    assert folder.jobs.read_bytes() == jobs and folder.journal.read_bytes() == journal
    assert [r.nodeid for r in read_results(folder.results)] == CASES[:2]


def test_a_removed_case_is_named_and_resume_changed_goes_on_with_the_cases_collected_now(project, stopped):
    folder = stopped
    refused = project.run("--diffbench-resume", "-k", "not seed3", update="all")
    assert refused.outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert f"1 removed ({CASES[3]})" in project.text(refused.outcome)
    write(project, prompt="a blue cube")  # every case changed: all run again
    run = project.run("--diffbench-resume", "--diffbench-resume-changed", update="all")
    run.outcome.assert_outcomes(passed=4)
    assert "its job list changed: 4 changed" in project.text(run.outcome)
    assert [r.config["prompt"] for r in read_results(folder.results)] == ["a blue cube"] * 4


def test_a_resume_with_another_model_is_refused_at_its_first_case_and_the_run_stays_resumable(project, stopped):
    folder = stopped
    project.fake(weights="fake-weights-2")
    refused = project.run("--diffbench-resume", update="all")
    refused.outcome.assert_outcomes(failed=1, deselected=2)  # stopped at the first refused case
    text = project.text(refused.outcome)
    assert "ran with another pipeline than the cases of its test" in text and "model_fingerprint differ" in text
    assert "1 resumed case of run" in text and "it stays to run" in text
    assert [r.nodeid for r in read_journal(folder.journal)] == CASES[:2]  # the refused case did not finish
    assert [r.nodeid for r in read_results(folder.results)] == CASES[:2]
    assert not (folder.path / "images" / "test_gen" / "test_case" / "seed2-euler-2steps-cfg7.5.png").exists()
    hint = f"paused with 2 of 4 cases not run; resume it with: pytest"
    assert hint in text and f"--diffbench-resume={folder.run_id}" in text
    assert project.run("--diffbench-resume", update="all").outcome.ret == pytest.ExitCode.INTERRUPTED  # refused again
    # the advice works: --diffbench-resume-changed keeps both pipelines in the run
    changed = project.run(f"--diffbench-resume={folder.run_id}", "--diffbench-resume-changed", update="all")
    changed.outcome.assert_outcomes(passed=2, deselected=2)
    results = {r.nodeid: r for r in read_results(folder.results)}
    assert list(results) == CASES and results[CASES[2]].passed and results[CASES[3]].passed
    assert "paused with" not in project.text(changed.outcome)


def test_a_resume_refused_for_another_model_completes_with_the_runs_own_model(project, stopped):
    folder = stopped
    project.fake(weights="fake-weights-2")
    project.run("--diffbench-resume", update="all")
    project.fake()  # the run's own pipeline again
    run = project.run("--diffbench-resume", update="all")
    run.outcome.assert_outcomes(passed=2, deselected=2)
    assert [r.nodeid for r in read_journal(folder.journal)] == CASES
    assert {r.config_hash for r in read_results(folder.results) if r.passed} == {
        r.config_hash for r in read_journal(folder.journal) if r.passed}


@pytest.fixture(scope="module")
def xdist_resumes(shared_project) -> SimpleNamespace:
    """A stopped run resumed under xdist with another model (refused), then under xdist with its
    own, made once for the module: ``folder``, ``refused`` (that resume's outcome),
    ``journal_after_refusal`` (the journal's node ids right after it) and ``resumed``.

    The refused resume leaves the run as it was (its cases stay to run), so the resume after it is
    the one a stopped run gets under xdist: the test of the refusal and the test of a resume under
    xdist read the same two runs instead of each making its own."""
    with shared_project() as project:
        folder = stop(project, "-p", "no:randomly").folder
        project.fake(weights="fake-weights-2")
        refused = project.run("-n", "2", "--diffbench-resume", update="all").outcome
        journal_after_refusal = [r.nodeid for r in read_journal(folder.journal)]
        project.fake()
        resumed = project.run("-n", "2", "--diffbench-resume", update="all").outcome
        return SimpleNamespace(folder=folder, refused=refused, journal_after_refusal=journal_after_refusal,
                               resumed=resumed)


def test_xdist_resume_with_another_model_leaves_the_refused_cases_to_run(xdist_resumes):
    assert xdist_resumes.refused.ret != 0
    assert xdist_resumes.journal_after_refusal == CASES[:2]
    xdist_resumes.resumed.assert_outcomes(passed=2)
    assert sorted(r.nodeid for r in read_journal(xdist_resumes.folder.journal)) == CASES


def test_a_run_stopped_by_collection_errors_is_not_paused_and_leaves_no_run(project):
    write(project, extra=BROKEN)
    run = project.run(update="all")
    assert run.outcome.ret == pytest.ExitCode.INTERRUPTED
    text = project.text(run.outcome)
    assert "paused with" not in text and "--diffbench-resume" not in text
    assert project.runs() == []  # the run never began: no job list, no folder


def test_a_resume_stopped_by_collection_errors_keeps_its_job_list_and_prints_no_command(project, stopped):
    folder = stopped
    jobs = folder.jobs.read_bytes()
    write(project, prompt="a blue cube", extra=BROKEN)  # its cases changed, and one test does not collect
    run = project.run("--diffbench-resume", "--diffbench-resume-changed", update="all")
    assert run.outcome.ret == pytest.ExitCode.INTERRUPTED
    assert "paused with" not in project.text(run.outcome)
    assert folder.jobs.read_bytes() == jobs  # not the job list without the test that did not collect


def test_resume_under_xdist_runs_the_cases_left_once(xdist_resumes):
    folder, run = xdist_resumes.folder, xdist_resumes.resumed
    run.assert_outcomes(passed=2)
    text = run.stdout.str() + "\n" + run.stderr.str()
    assert f"diffbench: resumed run {folder.run_id}: 2 cases finished before, 2 ran now" in text
    assert sorted(r.nodeid for r in read_journal(folder.journal)) == CASES  # the workers finish in any order
    lines = folder.journal.read_text(encoding="ascii").splitlines()
    assert sorted(json.loads(line)["worker"] for line in lines[-2:]) != ["main", "main"]
    assert [r.nodeid for r in read_results(folder.results)] == CASES
    assert sorted(p.name for p in folder.path.glob("jobs*.json")) == ["jobs.json"]


@pytest.fixture(scope="module")
def xdist_changed(shared_project, stopped_once: DiffbenchRun, copy_run) -> SimpleNamespace:
    """A copy of the stopped run whose cases all changed (another prompt), resumed under xdist
    without ``--diffbench-resume-changed`` (refused: exit 4), then with it; made once for the
    module: ``folder``, ``jobs_before`` (its job list when it stopped), ``refused`` (that resume's
    outcome), ``journal_after_refusal``, ``changed`` (the second resume's outcome).

    The refusal leaves the run as it was, so the second resume is the one a stopped run whose
    cases changed gets. The refusal happens on the controller when the first worker has collected
    (plugin/session.py ``jobs_of_worker``): one worker process checks it (``-n 1``)."""
    with shared_project() as project:
        folder = copy_run(stopped_once, project.path).folder
        jobs_before = read_jobs(folder.jobs)
        write(project, prompt="a blue cube")
        refused = project.run("-n", "1", "--diffbench-resume", update="all").outcome
        journal_after_refusal = [r.nodeid for r in read_journal(folder.journal)]
        changed = project.run("-n", "2", "--diffbench-resume", "--diffbench-resume-changed", update="all").outcome
        return SimpleNamespace(folder=folder, jobs_before=jobs_before, refused=refused,
                               journal_after_refusal=journal_after_refusal, changed=changed)


def test_xdist_resume_changed_runs_the_changed_cases_again_and_keeps_the_new_job_list(xdist_changed):
    xdist_changed.changed.assert_outcomes(passed=4)
    after = read_jobs(xdist_changed.folder.jobs)
    assert [job.nodeid for job in after] == CASES and all(a.hash != b.hash for a, b in zip(after, xdist_changed.jobs_before))
    assert [r.config["prompt"] for r in read_results(xdist_changed.folder.results)] == ["a blue cube"] * 4


def test_xdist_refuses_a_changed_job_list_with_exit_4(xdist_changed):
    refused = xdist_changed.refused
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert "4 changed" in refused.stdout.str() + "\n" + refused.stderr.str()
    assert xdist_changed.journal_after_refusal == CASES[:2]


def test_diffbench_list_shows_a_stopped_run_as_resumable(project, stopped, monkeypatch, capsys):
    folder = stopped
    monkeypatch.chdir(project.path)
    capsys.readouterr()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"{folder.run_id}  (latest)  paused: 2 of 4 cases left" in out
    assert f"(resume: pytest <its arguments> --diffbench-resume={folder.run_id})" in out
    folder.results.unlink()  # as a kill leaves it: its journal only
    capsys.readouterr()
    assert main(["list"]) == 0
    assert f"{folder.run_id}  (latest)  killed: 2 of 4 cases left; 1 passed, 1 error" in capsys.readouterr().out
    project.run("--diffbench-resume", update="all")
    capsys.readouterr()
    main(["list"])
    out = capsys.readouterr().out
    assert out == f"{folder.run_id}  (latest)  3 passed, 1 error\n"  # seed 1 finished (failed) before: not run again


def test_a_run_killed_while_resuming_after_a_pause_is_read_from_its_journal(project, stopped, monkeypatch, capsys):
    """A paused run has a results.csv; when its resume is then killed, the journal holds more: the
    commands read the journal, not the stale results.csv, and ``diffbench report`` rewrites it."""
    folder = stopped
    (earlier,) = [r for r in read_journal(folder.journal) if r.nodeid == CASES[0]]
    # what the killed resume wrote before the kill: the case's image, then its journal line
    folder.image(case_path(CASES[2])).write_bytes(folder.image(case_path(CASES[0])).read_bytes())
    with Journal(folder.journal) as journal:
        journal.append(earlier.with_changes(nodeid=CASES[2], case_id="seed2-euler-2steps-cfg7.5",
                                            baseline_path=earlier.baseline_path.replace("seed0", "seed2")))
    monkeypatch.chdir(project.path)
    capsys.readouterr()
    assert main(["list"]) == 0
    assert f"{folder.run_id}  (latest)  killed: 1 of 4 cases left; 2 passed, 1 error" in capsys.readouterr().out
    assert main(["report", folder.run_id]) == 0
    assert [r.nodeid for r in read_results(folder.results)] == CASES[:3]
