"""The run folder of an in-process ``pytest --diffbench`` run with a FakePipeline: made only by
runs that run cases, holding only files RunFolder names, and each derived artifact written on
its own (a broken one is a warning line, never a lost run or a changed exit status)."""

from __future__ import annotations

import json
import os

import pytest

from pytest_diffbench.judge.convergence import case_group
from pytest_diffbench.report import artifacts
from pytest_diffbench.store import paths
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.testing import FAKE_PIPELINE_ENV, run_diffbench, use_fake_pipeline

#: FakePipeline's keywords for a run whose every image drifts from its baseline (a quality regression).
DRIFT = json.dumps({"drift": 0.5})
TESTS = '''
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], samplers=["Euler", "DDIM"], steps=[1, 3])
def test_gen(diffbench):
    diffbench.generate("a red cube")


def test_plain():
    pass
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """The project's runs use a FakePipeline; $DIFFBENCH_FAKE_PIPELINE and $GITHUB_STEP_SUMMARY are
    unset by tests/conftest.py's autouse fixture."""
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TESTS)
    return pytester


@pytest.mark.parametrize("args", [("--help",), ("--collect-only",), ("--collect-only", "-q")], ids=" ".join)
def test_no_run_folder_without_cases_running(project, args):
    outcome = project.runpytest_inprocess("--diffbench", "-p", "no:cacheprovider", *args)
    assert outcome.ret == pytest.ExitCode.OK
    assert not (project.path / ".diffbench").exists()
    if "--help" not in args:
        assert "test_gen[seed1-ddim-3steps-cfg7.5]" in outcome.stdout.str()


@pytest.fixture(scope="module")
def created(shared_project):
    """The first run of :data:`TESTS` (--diffbench-update=all creates every baseline), made once for
    the module; a test that runs again takes a copy (``copy_run``)."""
    with shared_project() as shared:
        use_fake_pipeline(shared.pytester)
        shared.pytester.makepyfile(test_gen=TESTS)
        return run_diffbench(shared.pytester, update="all")


def test_a_real_run_creates_one_run_folder_and_names_it_latest(created):
    run, project = created, created.root
    run.outcome.assert_outcomes(passed=9)
    assert sorted(p.name for p in (project / ".diffbench").iterdir()) == ["latest", "runs"]
    assert [p.name for p in (project / ".diffbench" / "runs").iterdir()] == [run.folder.run_id]


def test_every_file_of_a_finished_run_folder_is_one_runfolder_names(project, monkeypatch, created, copy_run):
    copy_run(created, project.path).outcome.assert_outcomes(passed=9)
    monkeypatch.setenv(FAKE_PIPELINE_ENV, DRIFT)
    run = run_diffbench(project, update="all")  # every case fails quality and is refreshed
    run.outcome.assert_outcomes(passed=9)
    folder, results = run.folder, run.results
    assert len(results) == 8 and all(r.baseline_action.wrote for r in results)

    named = {folder.results, folder.environment, folder.summary, folder.plot, folder.report, folder.bundle, folder.journal,
             folder.jobs}
    for result in results:
        case = case_path(result.nodeid)
        named |= {folder.image(case), folder.config(case), folder.case_grid(case),
                  folder.replaced(case, ".png"), folder.replaced(case, ".json")}
        named.add(folder.sheet(paths.case_folder(result.nodeid), case_group(result, "sampler", "steps")[1].replace(" · ", "-")))
    present = {path for path in folder.path.rglob("*") if path.is_file()}
    assert present == named, (sorted(map(folder.relative, present - named)), sorted(map(folder.relative, named - present)))


def test_a_failing_artifact_is_one_warning_and_costs_nothing_else(project, monkeypatch):
    def broken_plot(results, title):
        raise RuntimeError("matplotlib exploded")

    monkeypatch.setattr(artifacts, "speed_quality_png", broken_plot)
    run = run_diffbench(project, update="all")
    assert run.outcome.ret == pytest.ExitCode.OK
    run.outcome.assert_outcomes(passed=9)
    folder = run.folder
    for path in (folder.results, folder.environment, folder.latest, folder.summary, folder.report, folder.bundle):
        assert path.is_file(), path
    assert not folder.plot.exists()
    assert len(run.results) == 8
    text = run.outcome.stdout.str() + run.outcome.stderr.str()
    warnings = [line for line in text.splitlines() if "WARNING" in line]
    assert warnings == [f"WARNING: diffbench could not write plot.png in {folder.path}: RuntimeError: matplotlib exploded"]
    assert "Traceback" not in text and "INTERNALERROR" not in text


def test_summary_md_names_no_bundle_that_could_not_be_written(project, monkeypatch):
    def broken_bundle(folder, results, images="failures"):
        raise OSError(28, "No space left on device")

    write_bundle = artifacts.write_bundle
    monkeypatch.setattr(artifacts, "write_bundle", broken_bundle)
    run = run_diffbench(project, update="all")
    run.outcome.assert_outcomes(passed=9)
    folder = run.folder
    assert not folder.bundle.exists()
    summary = folder.summary.read_text(encoding="utf-8")
    assert folder.bundle.name not in summary and "passed" in summary
    text = run.outcome.stdout.str()
    assert f"WARNING: diffbench could not write the bundle in {folder.path}" in text
    monkeypatch.setattr(artifacts, "write_bundle", write_bundle)
    run = run_diffbench(project)  # with the bundle written, summary.md names it
    assert f"`{run.folder.bundle.name}`" in run.folder.summary.read_text(encoding="utf-8")


def test_an_output_dir_that_cannot_hold_run_folders_is_a_usage_error(project: pytest.Pytester) -> None:
    (project.path / "out").write_text("a file where the folder should be\n", encoding="utf-8")
    project.makeini("[pytest]\ndiffbench_output_dir = out\n")
    outcome = run_diffbench(project).outcome
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    error = outcome.stderr.str()
    assert "diffbench_output_dir" in error and "cannot hold run folders" in error
    assert "INTERNALERROR" not in outcome.stdout.str() + error


def test_a_latest_that_cannot_be_written_is_a_warning(project: pytest.Pytester) -> None:
    (project.path / ".diffbench" / "latest").mkdir(parents=True)  # a folder where the file goes
    outcome = run_diffbench(project, update="all").outcome
    outcome.assert_outcomes(passed=9)
    assert outcome.ret == pytest.ExitCode.OK
    outcome.stdout.fnmatch_lines(["WARNING: diffbench could not mark the run as latest in *latest: *"])
    (run_dir,) = (project.path / ".diffbench" / "runs").iterdir()
    assert {"results.csv", "environment.json", "summary.md", "report.html"} <= {p.name for p in run_dir.iterdir()}


@pytest.mark.parametrize("where", ["a folder", "/dev/full", "a missing folder"])
def test_a_step_summary_that_cannot_be_appended_is_one_warning(project, monkeypatch, where):
    """$GITHUB_STEP_SUMMARY naming a folder, a full device or a file in a missing folder: one
    warning line; every file of the run and the terminal summary are still there."""
    if where == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("this system has no /dev/full")
    step_summary = {"a folder": str(project.path), "/dev/full": "/dev/full",
                    "a missing folder": str(project.path / "no-such-folder" / "summary.md")}[where]
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", step_summary)
    run = run_diffbench(project, update="all")
    assert run.outcome.ret == pytest.ExitCode.OK
    run.outcome.assert_outcomes(passed=9)
    folder = run.folder
    for path in (folder.results, folder.environment, folder.latest, folder.summary, folder.plot, folder.report, folder.bundle):
        assert path.is_file(), path
    text = run.outcome.stdout.str() + run.outcome.stderr.str()
    warnings = [line for line in text.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"WARNING: diffbench could not append summary.md to $GITHUB_STEP_SUMMARY ({step_summary}): "), warnings
    assert "diffbench: 8 cases: 8 passed" in text
    assert "Traceback" not in text and "INTERNALERROR" not in text


def test_a_run_record_that_cannot_be_written_is_one_warning_and_the_journal_stays(project, monkeypatch):
    """results.csv cannot be written at the end (a full disk): one warning naming the run and how
    to finish it; the journal keeps the cases, and the run is not marked latest."""
    import importlib

    results = importlib.import_module("pytest_diffbench.store.results")  # the module the run will import

    def full_disk(path, rows):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(results, "write_results", full_disk)
    run = run_diffbench(project, update="all")
    assert run.outcome.ret == pytest.ExitCode.OK
    run.outcome.assert_outcomes(passed=9)
    text = run.outcome.stdout.str() + run.outcome.stderr.str()
    warnings = [line for line in text.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "could not write the run's record" in warnings[0] and "diffbench report" in warnings[0]
    assert "Traceback" not in text and "INTERNALERROR" not in text
    (folder,) = (project.path / ".diffbench" / "runs").iterdir()
    assert (folder / "journal.jsonl").stat().st_size > 0 and not (folder / "results.csv").exists()
    assert not (project.path / ".diffbench" / "latest").exists()
