"""What a run keeps while it runs and how it is named: the journal (each case durable before the
next one runs), the removal of a killed run's temporary files, ``latest`` naming the newest run
and nothing outside, reruns (pytest-rerunfailures) counted as pytest counts them, and JUnit
properties on every case that has a row."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest
from filelock import FileLock

from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store import run_folder
from pytest_diffbench.store.baselines import lock_path
from pytest_diffbench.store.journal import Journal, read_journal
from pytest_diffbench.store.run_folder import RunFolder, read_latest
from pytest_diffbench.testing import DiffbenchRun

#: A plain test that runs after the diffbench cases of its module and reads the run's journal.
JOURNAL_PROBE = '''
def test_zz_probe(request):
    import glob, json
    from pytest_diffbench.plugin.keys import SESSION_KEY
    request.config.stash[SESSION_KEY].drain_writes()  # the background writer journals the cases before
    (journal,) = glob.glob(".diffbench/runs/*/journal.jsonl")
    lines = open(journal, encoding="ascii").read().splitlines()
    assert sorted(json.loads(line)["case_id"] for line in lines) == ["seed0-euler-2steps-cfg7.5", "seed1-euler-2steps-cfg7.5"]
'''

#: A test that fails on its first attempt and passes on its second (a counter file per case).
FLAKY = '''
@diffbench.sweep(seeds=0, steps=2)
def test_flaky(diffbench, tmp_path_factory):
    diffbench.generate("a red cube")
    counter = tmp_path_factory.getbasetemp().parent / "attempts"
    tries = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(tries))
    assert tries > 1, "first attempt fails"
'''


def assert_counts(outcome: pytest.RunResult, **expected: int) -> None:
    """pytest's own counts of the run (``rerun`` too, which assert_outcomes does not take)."""
    counts = {key: value for key, value in outcome.parseoutcomes().items() if key not in ("warnings", "warning")}
    assert counts == expected


def journal_lines(folder: RunFolder) -> list[dict]:
    return [json.loads(line) for line in folder.journal.read_text(encoding="ascii").splitlines()]


# -- the journal ------------------------------------------------------------------------------


def test_each_case_is_journaled_before_the_next_test_runs(project):
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"), JOURNAL_PROBE)
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=3)
    folder = run.folder
    assert [r.to_row() for r in read_journal(folder.journal)] == [r.to_row() for r in run.results]


def test_a_finished_run_keeps_its_journal_and_is_no_longer_running(project):
    project.write_tests(project.test(sweep="seeds=[0, 1, 2], steps=2"))
    run = project.run(update="all")
    folder = run.folder
    assert folder.finished and not folder.running
    assert [(r.nodeid, r.outcome, r.attempts) for r in read_journal(folder.journal)] == [
        (r.nodeid, r.outcome, 1) for r in run.results]


def test_under_xdist_the_controller_journals_every_case_once(project):
    project.write_tests(project.test(sweep="seeds=[0, 1, 2, 3], steps=2"))
    run = project.run("-n", "2", update="all")
    run.outcome.assert_outcomes(passed=4)
    lines = journal_lines(run.folder)
    assert sorted(line["nodeid"] for line in lines) == [r.nodeid for r in run.results]
    assert {line["worker"] for line in lines} <= {"gw0", "gw1"} and len(lines) == 4


def test_error_cases_are_journaled_too(project):
    project.write_tests(project.test(body='diffbench.generate("a red cube")\nraise RuntimeError("after generate")'),
                       "import pytest\n\n@pytest.fixture\ndef broken():\n    raise OSError('no disk')\n\n\n"
                       + project.test(name="test_setup", sweep="seeds=1, steps=2").replace("(diffbench)", "(diffbench, broken)"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=1, errors=1)
    journaled = {r.nodeid.split("::")[1]: r for r in read_journal(run.folder.journal)}
    assert {name.split("[")[0]: r.outcome for name, r in journaled.items()} == {"test_case": Outcome.ERROR,
                                                                                 "test_setup": Outcome.ERROR}
    assert "RuntimeError: after generate" in journaled[f"test_case[{project.CASE}]"].message


def test_a_journal_that_cannot_be_written_is_one_warning_and_the_run_still_writes_its_results(project, monkeypatch):
    def full_disk(self, result):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Journal, "append", full_disk)
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=2)
    assert len(run.results) == 2
    warnings = [line for line in project.text(run.outcome).splitlines() if line.startswith("WARNING")]
    assert warnings == [f"WARNING: diffbench could not write the journal {run.folder.journal} (OSError: [Errno 28] No "
                        "space left on device); a kill now would lose this run's finished cases"]


# -- temporary files of killed writes ---------------------------------------------------------


@pytest.fixture(scope="module")
def one_case_once(shared_project) -> DiffbenchRun:
    """One case and the run that made its baseline, made once for the module."""
    with shared_project() as project:
        project.write_tests(project.test())
        run = project.run(update="all")
        run.outcome.assert_outcomes(passed=1)
        return run


@pytest.fixture
def one_case(project, one_case_once: DiffbenchRun, copy_run):
    """The project with a copy of :func:`one_case_once` (its test, baseline and run folder)."""
    copy_run(one_case_once, project.path)
    return project


def test_temporary_files_of_killed_writes_are_removed_at_start_but_not_through_links(one_case, tmp_path_factory):
    project = one_case
    png, sidecar = project.baseline_pair("test_case")
    stale = [png.with_name(f".{png.name}.ab12cd_3.diffbench-tmp"), sidecar.with_name(f".{sidecar.name}.zz99zz99.diffbench-tmp"),
             project.output_dir / ".latest.q1w2e3r4.diffbench-tmp", project.runs()[0] / "images" / ".x.png.abcdefgh.diffbench-tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    outside = tmp_path_factory.mktemp("outside")
    elsewhere = outside / ".a.png.abcdefgh.diffbench-tmp"
    elsewhere.write_bytes(b"not diffbench's")
    (project.baselines / "linked").symlink_to(outside)
    user_files = [png.with_name("notes.tmp"), png.with_name(".notes.tmp")]
    for path in user_files:
        path.write_text("mine")
    project.run().outcome.assert_outcomes(passed=1)
    assert [path for path in stale if path.exists()] == []
    assert elsewhere.exists() and all(path.exists() for path in user_files)


def test_only_diffbenchs_own_temporary_files_in_its_own_folders_are_removed(one_case):
    """Other programs' mkstemp-like files (``.x.<8 characters>.tmp``) survive anywhere; diffbench's
    own names survive outside the baseline dir's pin folders and the output dir's runs/ (a
    baseline dir that also holds a docs folder or ``.git``)."""
    project = one_case
    png, _ = project.baseline_pair("test_case")
    ours = [png.with_name(f".{png.name}.abcdefgh.diffbench-tmp"),
            project.runs()[0] / "images" / ".x.png.abcdefgh.diffbench-tmp"]
    theirs = [png.with_name(f".{png.name}.abcdefgh.tmp"), project.baselines / ".git" / ".index.abc_1234.tmp",
              project.baselines / ".git" / ".index.abc_1234.diffbench-tmp",
              project.baselines / ".report.draft001.tmp",
              project.output_dir / "shared" / "other" / ".state.json.k2j4h5g6.tmp",
              project.output_dir / "shared" / ".state.json.k2j4h5g6.diffbench-tmp",
              project.runs()[0] / ".results.csv.k2j4h5g6.tmp"]
    for path in ours + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"a file")
    project.run().outcome.assert_outcomes(passed=1)
    assert [path for path in ours if path.exists()] == []
    assert [path for path in theirs if not path.exists()] == []


def test_a_running_runs_temporary_files_are_left_alone(one_case):
    """Another run still going (its journal held) may be writing its folder: it is not cleaned
    until that run is over."""
    project = one_case
    live = RunFolder.create(project.output_dir)
    in_flight = live.path / ".results.csv.abcdefgh.diffbench-tmp"
    with Journal(live.journal):
        in_flight.write_bytes(b"being written")
        project.run().outcome.assert_outcomes(passed=1)
        assert in_flight.exists()
    project.run().outcome.assert_outcomes(passed=1)
    assert not in_flight.exists()


def test_baseline_temporary_files_are_left_while_another_run_writes_baselines(one_case, monkeypatch):
    """A baseline write in progress holds the baselines' lock: its temporary file is not taken
    from under it; the next run cleans it."""
    project = one_case
    monkeypatch.setattr(run_folder, "BASELINE_LOCK_WAIT", 0.05)
    png, _ = project.baseline_pair("test_case")
    in_flight = png.with_name(f".{png.name}.abcdefgh.diffbench-tmp")
    in_flight.write_bytes(b"being written")
    with FileLock(lock_path(project.baselines)):
        project.run().outcome.assert_outcomes(passed=1)
        assert in_flight.exists()
    project.run().outcome.assert_outcomes(passed=1)
    assert not in_flight.exists()


# -- latest -----------------------------------------------------------------------------------


def test_latest_is_not_taken_from_a_newer_run_by_an_older_one_finishing_later(project):
    project.write_tests(project.test())
    newer = RunFolder.of(project.output_dir, "99991231T235959Z-ffffff")
    newer.path.mkdir(parents=True)
    (project.output_dir / "latest").write_text(newer.run_id + "\n")
    outcome = project.run_plain("--diffbench", "--diffbench-update=all")
    outcome.assert_outcomes(passed=1)
    assert read_latest(project.output_dir) == newer.run_id
    assert len(project.runs()) == 2


@pytest.mark.parametrize("crafted", ["../../../x", "../outside", "/tmp", "runs/../../outside"])
def test_a_crafted_latest_is_replaced_not_followed(project, crafted):
    (project.path / "outside").mkdir()
    (project.output_dir / "runs").mkdir(parents=True)
    (project.output_dir / "latest").write_text(crafted + "\n")
    project.write_tests(project.test())
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    assert read_latest(project.output_dir) == run.folder.run_id == project.runs()[0].name
    assert list((project.path / "outside").iterdir()) == []


# -- reruns -----------------------------------------------------------------------------------


def test_a_case_passing_on_its_rerun_is_one_passed_row_with_two_attempts(project):
    project.write_tests(FLAKY)
    run = project.run("-p", "rerunfailures", "--reruns", "1", update="all")
    assert_counts(run.outcome, passed=1, rerun=1)
    (row,) = run.results
    assert (row.outcome, row.attempts) == (Outcome.PASSED, 2)
    text = project.text(run.outcome)
    assert "diffbench: 1 case: 1 passed, 1 rerun" in text
    assert "error" not in text.split("diffbench: ")[-1].splitlines()[0]
    assert [line["attempts"] for line in journal_lines(run.folder)] == [1, 2]


def test_a_setup_error_passing_on_its_rerun_is_one_row(project):
    project.write_tests('''
import pytest


@pytest.fixture
def flaky_setup(tmp_path_factory):
    counter = tmp_path_factory.getbasetemp().parent / "setups"
    tries = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(tries))
    if tries == 1:
        raise OSError("the disk is not mounted yet")
''' + project.test(sweep="seeds=0, steps=2").replace("(diffbench)", "(diffbench, flaky_setup)"))
    run = project.run("-p", "rerunfailures", "--reruns", "1", update="all")
    assert_counts(run.outcome, passed=1, rerun=1)
    (row,) = run.results
    assert (row.outcome, row.attempts) == (Outcome.PASSED, 2)
    assert "diffbench: 1 case: 1 passed, 1 rerun" in project.text(run.outcome)


def test_a_case_failing_every_attempt_is_one_row_with_its_attempts(project):
    project.write_tests(project.test(body='diffbench.generate("a red cube")\nraise RuntimeError("always")'))
    run = project.run("-p", "rerunfailures", "--reruns", "2", update="all")
    assert_counts(run.outcome, failed=1, rerun=2)
    (row,) = run.results
    assert (row.outcome, row.attempts) == (Outcome.ERROR, 3)
    assert "diffbench: 1 case: 1 error, 2 rerun" in project.text(run.outcome)


def test_reruns_under_xdist_are_one_row_per_case(project):
    """A case's attempts all run on the worker that took it, which reports each to the controller:
    one worker process (``-n 1``) shows whether the controller makes them one row."""
    project.write_tests(FLAKY, project.test(name="test_steady", sweep="seeds=[0, 1], steps=2"))
    run = project.run("-n", "1", "-p", "rerunfailures", "--reruns", "1", update="all")
    assert_counts(run.outcome, passed=3, rerun=1)
    assert sorted((r.short_id.split("[")[0], r.attempts) for r in run.results) == [
        ("test_flaky", 2), ("test_steady", 1), ("test_steady", 1)]
    assert "diffbench: 3 cases: 3 passed, 1 rerun" in project.text(run.outcome)


# -- JUnit ------------------------------------------------------------------------------------


def junit_properties(path) -> dict[str, dict[str, list[str]]]:
    """Each test case's ``diffbench_*`` properties in a JUnit XML file: name -> values (in order)."""
    found: dict[str, dict[str, list[str]]] = {}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        properties: dict[str, list[str]] = {}
        for prop in case.iter("property"):
            if prop.get("name", "").startswith("diffbench_"):
                properties.setdefault(prop.get("name", ""), []).append(prop.get("value", ""))
        found[case.get("name", "")] = properties
    return found


def test_every_case_with_a_row_has_junit_properties(project):
    project.write_tests(
        project.test(name="test_ok"),
        project.test(name="test_raises", body='diffbench.generate("a red cube")\nraise RuntimeError("after generate")'),
        project.test(name="test_no_image", body="pass"),
        "import pytest\n\n@pytest.fixture\ndef broken():\n    raise OSError('no disk')\n\n\n"
        + project.test(name="test_setup").replace("(diffbench)", "(diffbench, broken)"),
    )
    run = project.run("--junitxml=junit.xml", update="all")
    run.outcome.assert_outcomes(passed=1, failed=2, errors=1)
    properties = junit_properties(project.path / "junit.xml")
    rows = {r.short_id: r for r in run.results}
    assert set(rows) == set(properties) and len(rows) == 4
    for name, row in rows.items():
        assert properties[name]["diffbench_outcome"] == [row.outcome.value], name
    assert properties[f"test_ok[{project.CASE}]"]["diffbench_ssim"] == ["1.0"]
    assert properties[f"test_raises[{project.CASE}]"]["diffbench_outcome"] == ["error"]


def test_a_rerun_case_has_one_set_of_junit_properties_its_last_attempts(project):
    project.write_tests(FLAKY)
    run = project.run("--junitxml=junit.xml", "-p", "rerunfailures", "--reruns", "1", update="all")
    assert_counts(run.outcome, passed=1, rerun=1)
    (properties,) = [p for p in junit_properties(project.path / "junit.xml").values() if p]
    assert properties["diffbench_outcome"] == ["passed"]
    assert all(len(values) == 1 for values in properties.values()), properties


def test_junit_properties_under_xdist_include_setup_errors(project):
    """The controller writes the JUnit XML from the reports its workers send, each case's from the
    worker that ran it: one worker process (``-n 1``) shows whether a setup error's properties
    reach it."""
    project.write_tests(project.test(name="test_ok", sweep="seeds=[0, 1], steps=2"),
                       "import pytest\n\n@pytest.fixture\ndef broken():\n    raise OSError('no disk')\n\n\n"
                       + project.test(name="test_setup").replace("(diffbench)", "(diffbench, broken)"))
    run = project.run("-n", "1", "--junitxml=junit.xml", update="all")
    run.outcome.assert_outcomes(passed=2, errors=1)
    properties = junit_properties(project.path / "junit.xml")
    assert {name: p["diffbench_outcome"] for name, p in properties.items()} == {
        "test_ok[seed0-euler-2steps-cfg7.5]": ["passed"], "test_ok[seed1-euler-2steps-cfg7.5]": ["passed"],
        f"test_setup[{project.CASE}]": ["error"]}
