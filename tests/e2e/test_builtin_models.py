"""End to end on the built-in pipelines: ``pytest --diffbench`` in a child process with
``--diffbench-model`` (diffbench-tiny, diffbench-tiny-random), 2 steps at 64x64 on the CPU.

The lifecycle, gates and reports are tested in tests/integration with a FakePipeline; these
tests check what only a real diffusers pipeline shows: its config and fingerprint, the same
pixels from another process, a silent sampler or step change, loading errors, and xdist workers
making the same images (their torch threads: test_threads_builtin.py).
"""

from __future__ import annotations

from importlib import metadata

import pytest

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

CASE = "seed0-euler-2steps-cfg7.5"


BUGGY_CONFTEST = '''
import os

import pytest

from pytest_diffbench.run.pipelines import load_pipeline

#: Which bug $DIFFBENCH_TEST_BUG switches on for which prompt.
BUGS = {"a red circle on a blue background": "steps", "a blue square on a red background": "sampler"}


@pytest.fixture(scope="session")
def diffbench_pipeline(pytestconfig):
    """The --diffbench-model pipeline with a bug switched on by $DIFFBENCH_TEST_BUG: the config
    that diffbench records stays the same, only the pixels change."""
    pipe = load_pipeline(pytestconfig.getoption("diffbench_model") or "diffbench-tiny")
    base = type(pipe)

    def __call__(self, *args, **kwargs):
        bug = BUGS.get(kwargs.get("prompt")) if os.environ.get("DIFFBENCH_TEST_BUG") else None
        if bug == "steps":
            kwargs["num_inference_steps"] = max(1, kwargs["num_inference_steps"] - 1)
        elif bug == "sampler":
            from diffusers import DDIMScheduler

            self.scheduler = DDIMScheduler.from_config(self.scheduler.config)
        return base.__call__(self, *args, **kwargs)

    pipe.__class__ = type(base.__name__, (base,), {"__call__": __call__})
    return pipe
'''


@pytest.mark.subprocess
@pytest.mark.model
def test_builtin_models_lifecycle_silent_changes_and_a_model_change(project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Created, then passed from another process (same pixels, same config hash); a silent step
    count or sampler change fails on quality; another model is a stale baseline."""
    project.pytester.makeconftest(BUGGY_CONFTEST)
    project.write_tests(project.test("test_case", body='diffbench.generate("a yellow triangle on a green background")'),
                        project.test("test_steps", body='diffbench.generate("a red circle on a blue background")'),
                        project.test("test_sampler", body='diffbench.generate("a blue square on a red background")'))
    png, sidecar = project.baseline_pair("test_case")
    monkeypatch.delenv("DIFFBENCH_TEST_BUG", raising=False)

    # The shipped model is the default; --diffbench-update writes the baselines.
    run = project.run(update="all", subprocess=True)
    run.outcome.assert_outcomes(passed=3)
    created = {row.short_id.split("[")[0]: row for row in run.results}
    assert {row.baseline_action for row in created.values()} == {BaselineAction.CREATED}
    assert {row.setting("model") for row in created.values()} == {"diffbench/diffbench-tiny"}
    data = project.read_json(sidecar)
    config = data["config"]
    assert (config["workflow"], config["vae"], config["width"], config["height"]) == ("StableDiffusionPipeline", "diffbench/diffbench-tiny", 64, 64)
    assert (config["device"], config["dtype"], config["sampler"], config["steps"]) == ("cpu", "float32", "Euler", 2)
    assert len(config["model_fingerprint"]) == 64
    assert data["config_hash"] == created["test_case"].config_hash
    assert data["environment"]["diffusers"] == metadata.version("diffusers")
    assert data["environment"]["torch"] == created["test_case"].machine.torch != ""
    assert data["image_sha256"] == project.sha256_file(png)
    made = project.snapshot(project.baselines)

    # Another process: the unchanged case gives the same pixels and config hash; the bugs keep
    # the config but change the pixels, a quality failure.
    monkeypatch.setenv("DIFFBENCH_TEST_BUG", "1")
    run = project.run(subprocess=True)
    run.outcome.assert_outcomes(passed=1, failed=2)
    rows = {row.short_id.split("[")[0]: row for row in run.results}
    text = project.text(run.outcome)
    assert {name: row.config_hash for name, row in rows.items()} == {name: row.config_hash for name, row in created.items()}
    same = rows["test_case"]
    assert (same.outcome, same.baseline_action, same.scores["ssim"], same.scores["psnr"]) == (Outcome.PASSED, BaselineAction.NONE, 1.0, float("inf"))
    for name in ("test_steps", "test_sampler"):
        row = rows[name]
        assert row.outcome is Outcome.FAILED_QUALITY, (name, row.message)
        assert row.scores["ssim"] < 0.95 and row.tolerances["min_ssim"] == 0.95
        assert f"diffbench failed-quality: {row.nodeid}" in text
    assert project.snapshot(project.baselines) == made

    # --diffbench-model picks the random-weight twin: another model, another config, stale baselines.
    monkeypatch.delenv("DIFFBENCH_TEST_BUG")
    run = project.run("--diffbench-model=diffbench-tiny-random", subprocess=True)
    run.outcome.assert_outcomes(failed=3)
    for row in run.results:
        assert (row.setting("model"), row.outcome) == ("diffbench/diffbench-tiny-random", Outcome.STALE_BASELINE)
        assert "model: 'diffbench/diffbench-tiny' -> 'diffbench/diffbench-tiny-random'" in row.message
    assert project.snapshot(project.baselines) == made


@pytest.mark.subprocess
@pytest.mark.model
def test_a_model_that_does_not_load_is_an_error_naming_diffbench_model(project) -> None:
    project.use_builtin_pipeline()
    project.write_tests(project.test())
    (project.path / "broken").mkdir()  # a diffusers folder by its model_index.json, with no components
    (project.path / "broken" / "model_index.json").write_text('{"_class_name": "NoSuchPipeline"}', encoding="utf-8")
    run = project.run("--diffbench-model=./broken/", subprocess=True)
    run.outcome.assert_outcomes(errors=1)
    (row,) = run.results
    assert row.outcome is Outcome.ERROR
    assert row.message.startswith("setup failed: diffbench_model: cannot load 'broken'")
    assert "diffbench-tiny, diffbench-tiny-random" in row.message


XDIST_TESTS = '''
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_case(diffbench):
    diffbench.generate("a red cube")


# diffusers' SD pipelines ignore a width without a height: recording width=96 would be a lie.
@diffbench.sweep(seeds=0, steps=2, width=96)
def test_width_only(diffbench):
    diffbench.generate("a red cube")
'''


@pytest.mark.subprocess
@pytest.mark.model
def test_xdist_workers_make_the_same_images(project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.use_builtin_pipeline()
    project.pytester.makepyfile(test_gen=XDIST_TESTS)
    run = project.run("--diffbench-model=diffbench-tiny-random", "-n", "2", update="all", subprocess=True)
    run.outcome.assert_outcomes(passed=2, failed=1)
    rows = {row.short_id: row for row in run.results}
    assert {row.worker for row in rows.values()} == {"gw0", "gw1"}
    width_only = rows[f"test_width_only[{CASE}-width96]"]
    assert width_only.outcome is Outcome.ERROR
    assert "asked for width=96, but the pipeline returned a 64x64 image; set both width and height" in width_only.message
    assert not project.baseline_pair("test_width_only", f"{CASE}-width96")[0].exists()

    # The images the workers made are the images one process makes.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rerun = project.run("--diffbench-model=diffbench-tiny-random", "-p", "no:xdist", subprocess=True)
    rerun.outcome.assert_outcomes(passed=2, failed=1)
    again = {row.short_id: row for row in rerun.results}
    assert sorted(again) == sorted(rows)
    for key in ("test_case[seed0-euler-2steps-cfg7.5]", "test_case[seed1-euler-2steps-cfg7.5]"):
        assert (again[key].outcome, again[key].scores["ssim"], again[key].worker) == (Outcome.PASSED, 1.0, "main")
        assert again[key].config_hash == rows[key].config_hash
