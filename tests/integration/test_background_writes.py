"""The per-case path off the critical path (issue 13): each case's files and journal line are
written by the background writer while the next case generates, a write that fails errs its own
case (and only it), nothing keeps a finished case's image alive, each output is PNG-encoded once
and a baseline decoded once, and a journaled case whose image is missing runs again on resume."""

from __future__ import annotations

import pytest

from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store import baselines as baselines_module
from pytest_diffbench.store import files as files_module
from pytest_diffbench.store.journal import read_journal
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder
from pytest_diffbench.testing import DiffbenchRun

SWEEP = "seeds=[0, 1, 2], steps=2"
CASES = [f"seed{seed}-euler-2steps-cfg7.5" for seed in range(3)]


def nodeid(case_id: str) -> str:
    return f"test_gen.py::test_case[{case_id}]"


@pytest.fixture(scope="module")
def made_once(shared_project) -> DiffbenchRun:
    """SWEEP's three cases and the run that made their baselines, made once for the module."""
    with shared_project() as project:
        project.write_tests(project.test(sweep=SWEEP))
        run = project.run(update="all")
        run.outcome.assert_outcomes(passed=3)
        return run


@pytest.fixture
def made(project, made_once: DiffbenchRun, copy_run) -> DiffbenchRun:
    """The project with a copy of :func:`made_once` (its test, baselines and run folder); the copied run."""
    return copy_run(made_once, project.path)


def test_a_failed_background_write_errs_its_own_case_only_names_the_file_and_fails_the_run(project, made, monkeypatch):
    real_write_case = RunFolder.write_case
    broken = case_path(nodeid(CASES[1]))

    def full_disk(self, case, png, sidecar_json):
        if case == broken:
            raise OSError(28, "No space left on device")
        return real_write_case(self, case, png, sidecar_json)

    monkeypatch.setattr(RunFolder, "write_case", full_disk)
    run = project.run()
    assert run.outcome.ret == pytest.ExitCode.TESTS_FAILED  # pytest reported all three before the write failed
    folder = run.folder
    shown = f".diffbench/runs/{folder.run_id}/images/{broken}.png"
    message = f"diffbench could not write {shown} for {nodeid(CASES[1])}: OSError: No space left on device"
    rows = {result.case_id: result for result in run.results}
    assert {case: row.outcome for case, row in rows.items()} == {CASES[0]: Outcome.PASSED, CASES[1]: Outcome.ERROR,
                                                                 CASES[2]: Outcome.PASSED}
    assert rows[CASES[1]].message == message
    journaled = {result.case_id: result for result in read_journal(folder.journal)}
    assert journaled[CASES[1]].outcome is Outcome.ERROR and journaled[CASES[1]].message == message
    assert [folder.image(case_path(nodeid(case))).is_file() for case in CASES] == [True, False, True]
    assert f"ERROR: {message}" in project.text(run.outcome)


def test_a_journaled_case_whose_image_is_missing_did_not_finish_and_runs_again_on_resume(project, made):
    """Under xdist the controller journals a case while its worker may still write its image: a
    kill then leaves the line without the image, and the case counts as not finished."""
    folder = made.folder
    lost = folder.image(case_path(nodeid(CASES[2])))
    lost.unlink()
    assert [r.case_id for r in folder.finished_results()] == CASES[:2]
    resumed = project.run(f"--diffbench-resume={folder.run_id}")
    resumed.outcome.assert_outcomes(passed=1, deselected=2)
    assert lost.is_file()
    assert [r.case_id for r in read_journal(folder.journal)] == CASES and len(folder.journal.read_bytes().splitlines()) == 4


RELEASED = '''
import gc
import weakref

from pytest_diffbench.plugin.keys import SESSION_KEY

IMAGES = []


@diffbench.sweep(seeds=[0, 1, 2], steps=[2, 3])
def test_case(diffbench):
    IMAGES.append(weakref.ref(diffbench.generate("a red cube")))


def test_zz_no_finished_case_keeps_its_image(request):
    request.config.stash[SESSION_KEY].drain_writes()  # what the background writer still had to write
    gc.collect()
    assert len(IMAGES) == 6
    assert [ref() is None for ref in IMAGES] == [True] * 6
'''


def test_nothing_keeps_a_finished_cases_image_alive(project):
    project.write_tests(RELEASED)
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=7)
    assert all(result.ssim_vs_most_steps is not None for result in run.results)  # scored, then released


def test_each_output_is_encoded_once_and_a_baseline_decoded_once(project, monkeypatch):
    project.write_tests(project.test(sweep=SWEEP))
    calls = {"encode": 0, "decode": 0}
    real_encode, real_decode = files_module.encode_png, baselines_module._decode

    def encode(image):
        calls["encode"] += 1
        return real_encode(image)

    def decode(png, path, *, writing=False):
        calls["decode"] += 1
        return real_decode(png, path, writing=writing)

    monkeypatch.setattr(files_module, "encode_png", encode)
    monkeypatch.setattr(baselines_module, "_decode", decode)
    counted = []
    for drift, update in ((0.0, "all"), (0.0, None), (0.6, "all")):  # create, compare, refresh
        project.fake(drift=drift)
        calls.update(encode=0, decode=0)
        run = project.run(update=update)
        assert len(run.results) == 3, project.text(run.outcome)
        counted.append(dict(calls))
    # the session's own encodes (grids and sheets, drawn at the session end, encode theirs)
    assert [c["encode"] for c in counted] == [3, 3, 3]
    assert [c["decode"] for c in counted] == [0, 3, 3]  # a write never decodes the bytes it was handed



FAILING_WRITE = '''
from pytest_diffbench.store.run_folder import RunFolder

_real_write_case = RunFolder.write_case


def _full_disk(self, case, png, sidecar_json):
    if "seed1-" in case:
        raise OSError(28, "No space left on device")
    return _real_write_case(self, case, png, sidecar_json)


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # a worker process of its own (the controller runs in the test's process)
        RunFolder.write_case = _full_disk


def pytest_unconfigure(config):
    RunFolder.write_case = _real_write_case  # never leak into the process that ran this pytest in-process
'''


def test_under_xdist_a_workers_failed_write_errs_its_case_in_the_controllers_results_and_journal(project, made):
    """The write fails on the worker that ran the case, which sends the error to the controller:
    one worker process (``-n 1``) shows whether it reaches the controller's results and journal."""
    from pytest_diffbench.testing import use_fake_pipeline

    use_fake_pipeline(project.pytester, extra=FAILING_WRITE)
    run = project.run("-n", "1")
    assert run.outcome.ret == pytest.ExitCode.TESTS_FAILED
    folder = run.folder
    broken = case_path(nodeid(CASES[1]))
    message = (f"diffbench could not write .diffbench/runs/{folder.run_id}/images/{broken}.png for {nodeid(CASES[1])}: "
               "OSError: No space left on device")
    rows = {result.case_id: result for result in run.results}
    assert [rows[case].outcome for case in CASES] == [Outcome.PASSED, Outcome.ERROR, Outcome.PASSED]
    assert rows[CASES[1]].message == message
    journaled = {result.case_id: result for result in read_journal(folder.journal)}  # the last line of a case wins
    assert journaled[CASES[1]].outcome is Outcome.ERROR and journaled[CASES[1]].message == message
    assert sorted(r.case_id for r in folder.finished_results()) == [CASES[0], CASES[2]]  # it runs again on resume
    assert f"ERROR: {message}" in project.text(run.outcome)
