"""The public test harness, used as README's "Testing your setup without a GPU" describes it: a
project set up with ``use_fake_pipeline``, FakePipeline's keywords given in $DIFFBENCH_FAKE_PIPELINE
(``weights=`` makes the baselines stale, ``drift=`` fails on quality), and ``run_diffbench``'s
results read back as ``CaseResult``s."""

from __future__ import annotations

import json

import pytest

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome
from pytest_diffbench.testing import FAKE_PIPELINE_ENV, run_diffbench, use_fake_pipeline

TESTS = '''
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_gen(diffbench):
    diffbench.generate("a red cube")
'''


def test_weights_make_the_baseline_stale_and_drift_fails_on_quality(pytester: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    conftest = use_fake_pipeline(pytester)
    assert conftest.parent == pytester.path and "diffbench_pipeline" in conftest.read_text(encoding="utf-8")
    pytester.makepyfile(test_gen=TESTS)

    created = run_diffbench(pytester, update="all")
    created.outcome.assert_outcomes(passed=2)
    # .results reads the run folder `latest` names: keep them before the next run.
    baselines = {r.case_id: r for r in created.results}
    assert [(r.outcome, r.baseline_action) for r in baselines.values()] == [(Outcome.PASSED, BaselineAction.CREATED)] * 2
    again = run_diffbench(pytester)
    again.outcome.assert_outcomes(passed=2)
    assert [r.scores["ssim"] for r in again.results] == [1.0, 1.0]

    # Other weights: another model fingerprint, so another config; the baseline is stale.
    monkeypatch.setenv(FAKE_PIPELINE_ENV, json.dumps({"weights": "fake-weights-2"}))
    stale = run_diffbench(pytester)
    stale.outcome.assert_outcomes(failed=2)
    for result in stale.results:
        assert result.outcome is Outcome.STALE_BASELINE
        assert "model_fingerprint" in result.message
        assert result.config_hash != baselines[result.case_id].config_hash

    # Drift: the same config, worse pictures; a quality failure, not a stale baseline.
    monkeypatch.setenv(FAKE_PIPELINE_ENV, json.dumps({"drift": 0.5}))
    drifted = run_diffbench(pytester)
    drifted.outcome.assert_outcomes(failed=2)
    for result in drifted.results:
        assert result.outcome is Outcome.FAILED_QUALITY
        assert result.config_hash == baselines[result.case_id].config_hash
        score, tolerance = result.scores["ssim"], result.tolerances["min_ssim"]
        assert score is not None and tolerance is not None and score < tolerance
    assert drifted.result("seed1").baseline_action is BaselineAction.NONE  # nothing written without --diffbench-update

    # The harness's environment variable is only read when set: unset, the baselines pass again.
    monkeypatch.delenv(FAKE_PIPELINE_ENV)
    run_diffbench(pytester).outcome.assert_outcomes(passed=2)


@pytest.mark.subprocess
def test_several_tests_of_a_user_suite_can_each_run_diffbench(pytester: pytest.Pytester) -> None:
    """A user's own suite (run in a fresh process, where numpy is not yet imported) with two tests
    that each drive diffbench in-process: the second must not trip over numpy's "cannot load module
    more than once per process" after pytester dropped the modules the first imported."""
    pytester.makeconftest('pytest_plugins = ["pytester"]\n')
    pytester.makepyfile(test_users_suite=f'''
import pytest
from pytest_diffbench.testing import run_diffbench, use_fake_pipeline

TESTS = {TESTS!r}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drives_diffbench(pytester, seed):
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TESTS)
    run = run_diffbench(pytester, update="all")
    assert [r.outcome.value for r in run.results] == ["passed", "passed"]
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=3)


#: The ini files pytest reads, each naming ``out`` as the folder of the run folders.
OUTPUT_DIR_INIS = {
    "pytest.ini": ("pytest.ini", "[pytest]\ndiffbench_output_dir = out\n"),
    "pyproject": ("pyproject.toml", '[tool.pytest.ini_options]\ndiffbench_output_dir = "out"\n'),
    "tox.ini": ("tox.ini", "[pytest]\ndiffbench_output_dir = out\n"),
    "setup.cfg": ("setup.cfg", "[tool:pytest]\ndiffbench_output_dir = out\n"),
}


@pytest.mark.parametrize(("ini", "text"), list(OUTPUT_DIR_INIS.values()), ids=list(OUTPUT_DIR_INIS))
def test_results_are_read_from_the_output_dir_the_ini_file_names(pytester: pytest.Pytester, ini: str, text: str) -> None:
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TESTS)
    (pytester.path / ini).write_text(text, encoding="utf-8")
    run = run_diffbench(pytester, update="all")
    assert run.output_dir == pytester.path / "out" and run.folder.results.parent.parent.parent == pytester.path / "out"
    assert [r.outcome for r in run.results] == [Outcome.PASSED] * 2
    assert not (pytester.path / ".diffbench").exists()


def test_results_are_read_from_the_output_dir_the_flag_names(pytester: pytest.Pytester) -> None:
    """The flag wins over the ini file, as for the run itself; each run's results stay its own."""
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TESTS)
    pytester.makeini("[pytest]\ndiffbench_output_dir = out\n")
    first = run_diffbench(pytester, update="all")
    flagged = run_diffbench(pytester, "--diffbench-output-dir=out2")
    assert (first.output_dir, flagged.output_dir) == (pytester.path / "out", pytester.path / "out2")
    assert [r.baseline_action for r in first.results] == [BaselineAction.CREATED] * 2
    assert [r.baseline_action for r in flagged.results] == [BaselineAction.NONE] * 2


def test_the_suite_s_project_runs_read_the_output_dir_too(project) -> None:
    """The same fault in this suite's own DiffbenchProject.run (tests/conftest.py)."""
    project.write_tests(project.test())
    project.write_ini(output_dir="runs-here")
    run = project.run(update="all")
    assert run.output_dir == project.path / "runs-here" and len(run.results) == 1
