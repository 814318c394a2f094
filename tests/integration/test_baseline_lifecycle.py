"""The baseline lifecycle as users meet it, through ``pytest --diffbench`` in this process.

Each test writes a small project (``project`` fixture, tests/conftest.py) whose
``diffbench_pipeline`` is a :class:`~pytest_diffbench.testing.FakePipeline`, runs pytest on it and
checks the outcomes, the failure text, results.csv (read as CaseResult), the run folder and the
baseline files. The built-in models run the same lifecycle once in tests/e2e.
"""

from __future__ import annotations

import json
import re
from importlib import metadata

import pytest

from pytest_diffbench.spec.config import config_hash
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

CASE = "seed0-euler-2steps-cfg7.5"
PIN = "cpu-float32"


def by_case(run) -> dict:
    """The run's results keyed by ``<test function>[<case id>]``."""
    return {result.short_id: result for result in run.results}


# -- missing, created, passed, stale, refreshed ---------------------------------------------------


def test_lifecycle_missing_created_passed_stale_refreshed(project) -> None:
    project.write_tests(project.test(body='diffbench.generate("a red cube")'))
    png, sidecar = project.baseline_pair("test_case")

    # First run: no baseline, the case fails and says how to create it; nothing is written.
    run = project.run()
    run.outcome.assert_outcomes(failed=1)
    text = project.text(run.outcome)
    assert f"diffbench missing-baseline: test_gen.py::test_case[{CASE}]" in text
    assert f"no baseline at baselines/{PIN}/test_gen/test_case/{CASE}.png" in text
    assert "create it with: pytest --diffbench --diffbench-update" in text
    assert "diffbench: 1 case: 1 missing-baseline" in text
    (row,) = run.results
    assert row.outcome is Outcome.MISSING_BASELINE
    assert row.baseline_action is BaselineAction.NONE and row.baseline_path == ""
    assert row.case_id == CASE and row.setting("prompt") == "a red cube"
    assert not png.exists() and not sidecar.exists()
    # The run folder keeps the output image and the frozen config of the case.
    folder = run.folder
    assert project.runs() == [folder.path]
    assert row.run_id == folder.run_id
    frozen = project.read_json(folder.config(f"test_gen/test_case/{CASE}"))
    assert frozen["config_hash"] == row.config_hash and frozen["config"]["prompt"] == "a red cube"
    assert folder.image(f"test_gen/test_case/{CASE}").is_file()
    missing_hash = row.config_hash

    # --diffbench-update writes the pair and passes.
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    (row,) = run.results
    assert (row.outcome, row.baseline_action) == (Outcome.PASSED, BaselineAction.CREATED)
    assert row.baseline_path == f"baselines/{PIN}/test_gen/test_case/{CASE}.png"
    assert row.scores["ssim"] == 1.0
    data = project.read_json(sidecar)
    assert data["config_hash"] == row.config_hash == missing_hash
    assert config_hash(data["config"]) == data["config_hash"]
    config = data["config"]
    assert config["prompt"] == "a red cube"
    assert (config["seed"], config["sampler"], config["steps"], config["cfg"]) == (0, "Euler", 2, 7.5)
    assert (config["width"], config["height"], config["device"], config["dtype"]) == (64, 64, "cpu", "float32")
    assert config["workflow"] == "FakePipeline"
    assert data["image_sha256"] == project.sha256_file(png)
    assert data["environment"]["diffusers"] == metadata.version("diffusers")
    assert data["environment"]["torch"] == row.machine.torch
    assert data["measurement"]["seconds_per_image"] > 0
    assert data["measurement"]["device_name"] == data["environment"]["device_name"] == row.machine.device_name
    assert data["measurement"]["peak_vram_mb"] is None  # measured on CUDA only
    # The baseline PNG is the run's output image, byte for byte.
    assert png.read_bytes() == run.folder.image(f"test_gen/test_case/{CASE}").read_bytes()
    created = project.snapshot(project.baselines)

    # A rerun gives the same image and the same config hash.
    run = project.run()
    run.outcome.assert_outcomes(passed=1)
    (row,) = run.results
    assert (row.outcome, row.baseline_action) == (Outcome.PASSED, BaselineAction.NONE)
    assert row.scores["ssim"] == 1.0 and row.scores["psnr"] == float("inf")
    assert row.config_hash == missing_hash
    assert project.snapshot(project.baselines) == created
    assert len(project.runs()) == 3

    # A changed prompt is a stale baseline: both short hashes and the field that differs.
    project.write_tests(project.test(body='diffbench.generate("a blue cube")'))
    run = project.run()
    run.outcome.assert_outcomes(failed=1)
    (row,) = run.results
    assert row.outcome is Outcome.STALE_BASELINE
    new_hash = row.config_hash
    assert new_hash != missing_hash
    text = project.text(run.outcome)
    assert f"diffbench stale-baseline: test_gen.py::test_case[{CASE}]" in text
    assert f"baseline config hash {missing_hash[:12]} != this case's {new_hash[:12]}" in text
    assert "prompt: 'a red cube' -> 'a blue cube'" in text
    assert "refresh with --diffbench-update" in text
    assert "prompt" in row.message and missing_hash[:12] in row.message
    assert row.scores["ssim"] is None  # identity failed: no comparison
    assert project.snapshot(project.baselines) == created

    # --diffbench-update refreshes it.
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    (row,) = run.results
    assert (row.outcome, row.baseline_action, row.config_hash) == (Outcome.PASSED, BaselineAction.REFRESHED, new_hash)
    data = project.read_json(sidecar)
    assert data["config_hash"] == new_hash and data["config"]["prompt"] == "a blue cube"
    assert data["image_sha256"] == project.sha256_file(png)
    # The replaced pair is kept, byte for byte, in the run folder.
    kept = project.snapshot(run.folder.replaced_dir)
    assert sorted(kept.values()) == sorted(created.values())


def test_new_weights_make_the_baseline_stale_and_update_refreshes_it(project) -> None:
    """Another model fingerprint (the weights) is another config: stale, not a quality failure."""
    project.write_tests(project.test())
    project.fake(weights="weights-v1")
    project.run(update="all").outcome.assert_outcomes(passed=1)
    _, sidecar = project.baseline_pair("test_case")
    before = project.read_json(sidecar)

    project.fake(weights="weights-v2")
    run = project.run()
    run.outcome.assert_outcomes(failed=1)
    (row,) = run.results
    assert row.outcome is Outcome.STALE_BASELINE
    assert "model_fingerprint" in row.message
    assert project.read_json(sidecar) == before

    run = project.run(update="all")
    (row,) = run.results
    assert (row.outcome, row.baseline_action) == (Outcome.PASSED, BaselineAction.REFRESHED)
    assert project.read_json(sidecar)["config"]["model_fingerprint"] != before["config"]["model_fingerprint"]


def test_update_missing_writes_only_missing_baselines(project) -> None:
    project.write_tests(project.test("test_old", body='diffbench.generate("a red cube")'))
    project.run(update="all").outcome.assert_outcomes(passed=1)
    before = project.snapshot(project.baselines)
    assert set(before) == {f"{PIN}/test_gen/test_old/{CASE}.png", f"{PIN}/test_gen/test_old/{CASE}.json"}

    project.write_tests(project.test("test_old", body='diffbench.generate("a green cube")'),
                        project.test("test_new", body='diffbench.generate("a new cube")'))
    run = project.run(update="missing")
    run.outcome.assert_outcomes(passed=1, failed=1)
    rows = by_case(run)
    assert (rows[f"test_old[{CASE}]"].outcome, rows[f"test_old[{CASE}]"].baseline_action) == (Outcome.STALE_BASELINE, BaselineAction.NONE)
    assert (rows[f"test_new[{CASE}]"].outcome, rows[f"test_new[{CASE}]"].baseline_action) == (Outcome.PASSED, BaselineAction.CREATED)
    after = project.snapshot(project.baselines)
    assert {k: v for k, v in after.items() if "/test_old/" in k} == before  # byte-identical
    assert set(after) - set(before) == {f"{PIN}/test_gen/test_new/{CASE}.png", f"{PIN}/test_gen/test_new/{CASE}.json"}


# -- quality regressions with an unchanged config -------------------------------------------------

BUGGY_CONFTEST = '''
import os

import pytest

from pytest_diffbench.testing import FakePipeline


class BuggyPipeline(FakePipeline):
    """A bug switched on by $DIFFBENCH_TEST_BUG: the config diffbench records stays the same,
    only the pixels change (one step fewer, another sampler, or drifting weights)."""

    def diffbench_generate(self, sampler, seed, call_kwargs):
        bug = os.environ.get("DIFFBENCH_TEST_BUG", "")
        kwargs = dict(call_kwargs)
        if bug == "steps":
            kwargs["num_inference_steps"] = max(1, kwargs["num_inference_steps"] - 1)
        elif bug == "sampler":
            sampler = "DDIM"
        self.drift = 0.3 if bug == "drift" else 0.0
        return super().diffbench_generate(sampler, seed, kwargs)


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return BuggyPipeline()
'''


def test_silent_step_count_sampler_or_pixel_change_fails_on_quality(project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.pytester.makeconftest(BUGGY_CONFTEST)
    project.write_tests(project.test())
    monkeypatch.delenv("DIFFBENCH_TEST_BUG", raising=False)
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    (created,) = run.results
    png, sidecar = project.baseline_pair("test_case")
    assert created.baseline_action is BaselineAction.CREATED
    assert project.read_json(sidecar)["config"]["workflow"] == "FakePipeline"  # the bug is not in the config
    baseline_bytes = png.read_bytes()

    for bug in ("steps", "sampler", "drift"):
        monkeypatch.setenv("DIFFBENCH_TEST_BUG", bug)
        run = project.run()
        run.outcome.assert_outcomes(failed=1)
        (row,) = run.results
        assert row.outcome is Outcome.FAILED_QUALITY, (bug, row.message)
        assert row.config_hash == created.config_hash, bug  # same config: not a stale baseline
        assert row.scores["ssim"] < 0.95 and row.tolerances["min_ssim"] == 0.95
        assert "ssim" in row.message and "FAIL" in row.message
        text = project.text(run.outcome)
        assert f"diffbench failed-quality: test_gen.py::test_case[{CASE}]" in text
        assert re.search(r"ssim\s+0\.\d+\s+>= 0\.95\s+FAIL", text), text
        assert f"baseline: baselines/{PIN}/test_gen/test_case/{CASE}.png" in text
        assert png.read_bytes() == baseline_bytes

    # --diffbench-update accepts the new pixels (a quality failure is refreshable).
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    (row,) = run.results
    assert (row.outcome, row.baseline_action, row.scores["ssim"]) == (Outcome.PASSED, BaselineAction.REFRESHED, 1.0)
    assert png.read_bytes() != baseline_bytes


# -- speed and memory gates, tolerance precedence ---------------------------------------------------

SPEED_TESTS = (
    ("test_marker_budget", "seeds=0, steps=2", ["@diffbench.tolerance(max_seconds=1e-9, max_vram_mb=1)"]),
    ("test_ini_budget", "seeds=0, steps=2", []),
    ("test_marker_over_ini", 'seeds=0, steps=2, tolerance={"min_psnr": 10}', ["@diffbench.tolerance(max_seconds=1000, min_ssim=0.5)"]),
    ("test_vram_on_cpu", "seeds=0, steps=2", ["@diffbench.tolerance(max_seconds=None, max_vram_mb=1)"]),
    ("test_slowdown", "seeds=0, steps=2", ["@diffbench.tolerance(max_seconds=None, time_regression=0.5)"]),
    ("test_slowdown_other_device", "seeds=0, steps=2", ["@diffbench.tolerance(max_seconds=None, time_regression=0.5)"]),
)


def test_speed_and_memory_gates(project) -> None:
    project.write_ini(max_seconds="1e-9")
    project.write_tests(*(project.test(name, sweep=sweep, decorators=decorators) for name, sweep, decorators in SPEED_TESTS))
    project.fake(seconds_per_image=0.25)

    # Creating baselines does not excuse an absolute budget.
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=4, failed=2)
    rows = by_case(run)
    assert {row.baseline_action for row in rows.values()} == {BaselineAction.CREATED}
    assert rows[f"test_marker_budget[{CASE}]"].outcome is rows[f"test_ini_budget[{CASE}]"].outcome is Outcome.FAILED_SPEED

    _, slow_sidecar = project.baseline_pair("test_slowdown")
    _, other_sidecar = project.baseline_pair("test_slowdown_other_device")
    project.edit_sidecar(slow_sidecar, measurement={"seconds_per_image": 1e-9})
    project.edit_sidecar(other_sidecar, measurement={"seconds_per_image": 1e-9, "device_name": "Other Accelerator 9000"})

    run = project.run()
    run.outcome.assert_outcomes(passed=3, failed=3)
    rows = by_case(run)
    text = project.text(run.outcome)

    marker = rows[f"test_marker_budget[{CASE}]"]
    assert (marker.outcome, marker.tolerances["max_seconds"], marker.tolerances["max_vram_mb"]) == (Outcome.FAILED_SPEED, 1e-9, 1.0)
    assert marker.measurement.seconds_per_image == 0.25 and marker.measurement.peak_vram_mb is None
    assert "seconds/image" in marker.message and "FAIL" in marker.message
    assert re.search(r"seconds/image\s+0\.25 s\s+<= 1e-09 s\s+FAIL", text), text
    # VRAM is not measured on the CPU: the check is skipped, not failed.
    assert re.search(r"peak VRAM\s+-\s+<= 1 MiB\s+skipped\s+\(measured on CUDA only\)", text), text

    ini = rows[f"test_ini_budget[{CASE}]"]
    assert (ini.outcome, ini.tolerances["max_seconds"], ini.tolerances["min_ssim"], ini.tolerances["min_psnr"]) == (
        Outcome.FAILED_SPEED, 1e-9, 0.95, 25.0)

    # Precedence: the marker over the sweep over the ini over the defaults.
    over = rows[f"test_marker_over_ini[{CASE}]"]
    assert (over.outcome, over.tolerances["max_seconds"], over.tolerances["min_ssim"], over.tolerances["min_psnr"]) == (
        Outcome.PASSED, 1000.0, 0.5, 10.0)

    vram = rows[f"test_vram_on_cpu[{CASE}]"]
    assert (vram.outcome, vram.tolerances["max_seconds"], vram.tolerances["max_vram_mb"], vram.measurement.peak_vram_mb) == (
        Outcome.PASSED, None, 1.0, None)

    slow = rows[f"test_slowdown[{CASE}]"]
    assert (slow.outcome, slow.time_check, slow.tolerances["time_regression"]) == (Outcome.FAILED_SPEED, "failed", 0.5)
    assert slow.baseline_seconds_per_image == 1e-9 and slow.slowdown > 1000
    assert re.search(r"slowdown\s+\S+%\s+<= \+50%\s+FAIL", text), text

    other = rows[f"test_slowdown_other_device[{CASE}]"]
    assert other.outcome is Outcome.PASSED
    assert other.time_check == f"baseline timed on Other Accelerator 9000, this run on {other.machine.device_name}"

    # --diffbench-update rewrites no timing reference as a side effect, nor an absolute budget;
    # --diffbench-update-timing accepts the new speed on purpose.
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=3, failed=3)
    rows = by_case(run)
    assert (rows[f"test_slowdown[{CASE}]"].outcome, rows[f"test_slowdown[{CASE}]"].baseline_action) == (
        Outcome.FAILED_SPEED, BaselineAction.NONE)
    assert "accept it with: pytest --diffbench --diffbench-update-timing" in rows[f"test_slowdown[{CASE}]"].message
    assert (rows[f"test_marker_budget[{CASE}]"].outcome, rows[f"test_marker_budget[{CASE}]"].baseline_action) == (
        Outcome.FAILED_SPEED, BaselineAction.NONE)
    assert rows[f"test_slowdown_other_device[{CASE}]"].baseline_action is BaselineAction.NONE
    assert project.read_json(slow_sidecar)["measurement"]["seconds_per_image"] == 1e-9
    run = project.run("--diffbench-update-timing")
    rows = by_case(run)
    assert (rows[f"test_slowdown[{CASE}]"].outcome, rows[f"test_slowdown[{CASE}]"].baseline_action) == (
        Outcome.PASSED, BaselineAction.RETIMED)
    assert rows[f"test_slowdown[{CASE}]"].time_check == "passed"
    assert project.read_json(slow_sidecar)["measurement"]["seconds_per_image"] == 0.25


# -- workflow version ----------------------------------------------------------------------------------


def test_workflow_version_mismatch_from_ini_and_sweep(project) -> None:
    project.write_tests(project.test("test_default"),
                        project.test("test_pinned", sweep='seeds=0, steps=2, workflow_version="3"'),
                        project.test("test_bumped", sweep='seeds=0, steps=2, workflow_version="3"'))
    project.run(update="all").outcome.assert_outcomes(passed=3)
    assert project.read_json(project.baseline_pair("test_default")[1])["config"]["workflow_version"] == "1"
    before = project.snapshot(project.baselines)

    project.write_ini(workflow_version="2")
    project.write_tests(project.test("test_default"),
                        project.test("test_pinned", sweep='seeds=0, steps=2, workflow_version="3"'),
                        project.test("test_bumped", sweep='seeds=0, steps=2, workflow_version="4"'))
    run = project.run()
    run.outcome.assert_outcomes(passed=1, failed=2)
    rows = by_case(run)
    assert (rows[f"test_default[{CASE}]"].outcome, rows[f"test_default[{CASE}]"].setting("workflow_version")) == (Outcome.VERSION_MISMATCH, "2")
    assert (rows[f"test_pinned[{CASE}]"].outcome, rows[f"test_pinned[{CASE}]"].setting("workflow_version")) == (Outcome.PASSED, "3")
    assert (rows[f"test_bumped[{CASE}]"].outcome, rows[f"test_bumped[{CASE}]"].setting("workflow_version")) == (Outcome.VERSION_MISMATCH, "4")
    text = project.text(run.outcome)
    assert "baseline was made by workflow_version '1', this run is '2'" in text
    assert "baseline was made by workflow_version '3', this run is '4'" in text
    assert project.snapshot(project.baselines) == before


# -- environment drift -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_seeds_created(shared_project):
    """A run that created the baselines of two cases (seeds 0 and 1), made once for the module;
    the tests that change its baselines take a copy (``copy_run``)."""
    with shared_project() as project:
        project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
        run = project.run(update="all")
        run.outcome.assert_outcomes(passed=2)
        return run


def test_environment_drift_is_reported_and_fails_with_strict_env(project, two_seeds_created, copy_run) -> None:
    copy_run(two_seeds_created, project.path)
    _, sidecar = project.baseline_pair("test_case")
    project.edit_sidecar(sidecar, environment={"diffusers": "0.0.1"})
    diffusers = metadata.version("diffusers")

    run = project.run()
    run.outcome.assert_outcomes(passed=2)
    rows = by_case(run)
    assert rows[f"test_case[{CASE}]"].env_diff == f"diffusers: 0.0.1 -> {diffusers}"
    assert rows["test_case[seed1-euler-2steps-cfg7.5]"].env_diff == ""
    assert f"note: 1 baseline was made in another environment: diffusers: 0.0.1 -> {diffusers}" in project.text(run.outcome)

    run = project.run("--diffbench-strict-env")
    run.outcome.assert_outcomes(passed=1, failed=1)
    rows = by_case(run)
    assert rows[f"test_case[{CASE}]"].outcome is Outcome.ENV_MISMATCH
    assert rows["test_case[seed1-euler-2steps-cfg7.5]"].outcome is Outcome.PASSED
    text = project.text(run.outcome)
    assert "baseline was made in another environment (--diffbench-strict-env)" in text
    assert f"diffusers: '0.0.1' -> '{diffusers}'" in text


# -- broken baselines ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corrupt_run(shared_project):
    """The run without update over four corrupt baseline pairs (a sidecar that is no JSON, an
    edited PNG, a PNG without its sidecar, a sidecar without its PNG), made once for the module:
    both update modes' tests read it, and each rewrites the pairs in its own copy."""
    from PIL import Image

    with shared_project() as project:
        project.write_tests(project.test(sweep="seeds=[0, 1, 2, 3], steps=2"))
        project.run(update="all").outcome.assert_outcomes(passed=4)
        pairs = {seed: project.baseline_pair("test_case", f"seed{seed}-euler-2steps-cfg7.5") for seed in range(4)}
        pairs[0][1].write_text("{not json", encoding="utf-8")
        with Image.open(pairs[1][0]) as image:
            edited = image.convert("RGB")
        edited.putpixel((0, 0), tuple(255 - v for v in edited.getpixel((0, 0))))
        edited.save(pairs[1][0])
        pairs[2][1].unlink()
        pairs[3][0].unlink()
        return project.run()


@pytest.mark.parametrize("update", ["all", "missing"])
def test_corrupt_baselines_are_errors_and_update_rewrites_them(project, corrupt_run, copy_run, update: str) -> None:
    run = corrupt_run  # the run without update, made once for both update modes
    copy_run(run, project.path)  # this test's own copy, which its update rewrites
    pairs = {seed: project.baseline_pair("test_case", f"seed{seed}-euler-2steps-cfg7.5") for seed in range(4)}
    run.outcome.assert_outcomes(failed=4)
    rows = {row.setting("seed"): row for row in run.results}
    assert {row.outcome for row in rows.values()} == {Outcome.ERROR}
    rel = {seed: (f"{PIN}/test_gen/test_case/seed{seed}-euler-2steps-cfg7.5.png", f"{PIN}/test_gen/test_case/seed{seed}-euler-2steps-cfg7.5.json")
           for seed in range(4)}
    assert "is not readable JSON" in rows[0].message and rel[0][1] in rows[0].message
    assert "SHA-256" in rows[1].message and rel[1][0] in rows[1].message
    assert rel[2][0] in rows[2].message and f"{rel[2][1]} does not" in rows[2].message
    assert rel[3][1] in rows[3].message and f"{rel[3][0]} does not" in rows[3].message
    assert all("--diffbench-update" in row.message for row in rows.values())
    assert "diffbench error:" in project.text(run.outcome)

    # Both update modes rewrite unreadable pairs (they hold no usable baseline).
    run = project.run(update=update)
    run.outcome.assert_outcomes(passed=4)
    assert {(row.outcome, row.baseline_action) for row in run.results} == {(Outcome.PASSED, BaselineAction.REWRITTEN)}
    for png, sidecar in pairs.values():
        assert project.read_json(sidecar)["image_sha256"] == project.sha256_file(png)


def _damage_png(png, how: str) -> None:
    data = png.read_bytes()
    png.write_bytes({"garbage": b"GIF89a not a png", "truncated": data[: len(data) // 2], "zero-bytes": b""}[how])


def _set_sidecar(sidecar, key: str, value) -> None:
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    *parents, last = key.split(".")
    target = data
    for parent in parents:
        target = target[parent]
    target[last] = value
    sidecar.write_text(json.dumps(data), encoding="utf-8")


# (how the pair is damaged, the text the error names)
DAMAGES = {
    "garbage-png": (lambda png, sidecar: _damage_png(png, "garbage"), "is not a PNG (no PNG signature)"),
    "truncated-png": (lambda png, sidecar: _damage_png(png, "truncated"), "is truncated"),
    "zero-byte-png": (lambda png, sidecar: _damage_png(png, "zero-bytes"), "is empty (0 bytes)"),
    "config_hash-number": (lambda png, sidecar: _set_sidecar(sidecar, "config_hash", 123), "config_hash of type number"),
    "config-string": (lambda png, sidecar: _set_sidecar(sidecar, "config", "a string"), "config of type string"),
    "measurement-array": (lambda png, sidecar: _set_sidecar(sidecar, "measurement", []), "measurement of type array"),
    "seconds-fast": (lambda png, sidecar: _set_sidecar(sidecar, "measurement.seconds_per_image", "fast"),
                     'measurement.seconds_per_image = "fast"'),
    "hash-of-another-config": (lambda png, sidecar: _set_sidecar(sidecar, "config.seed", 99), "but its config hashes to"),
    "new-png-old-sidecar": (lambda png, sidecar: png.write_bytes(_other_png(png)), "the pair disagrees"),
}


def _other_png(png) -> bytes:
    """The PNG of another picture of the same size (what a refresh killed between its two renames leaves)."""
    from PIL import Image

    from pytest_diffbench.store.files import encode_png

    with Image.open(png) as image:
        return encode_png(image.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT))


@pytest.fixture(scope="module")
def damaged_run(shared_project):
    """(the baselines' files after each pair got one of :data:`DAMAGES`, the run without update
    over them), made once for the module: both update modes' tests read the run, and each
    rewrites the pairs in its own copy."""
    with shared_project() as project:
        seeds = range(len(DAMAGES))
        project.write_tests(project.test(sweep=f"seeds={list(seeds)}, steps=2"))
        project.run(update="all").outcome.assert_outcomes(passed=len(DAMAGES))
        for seed, (damage, _) in zip(seeds, DAMAGES.values()):
            damage(*project.baseline_pair("test_case", f"seed{seed}-euler-2steps-cfg7.5"))
        return project.snapshot(project.baselines), project.run()


@pytest.mark.parametrize("update", ["all", "missing"])
def test_damaged_baselines_are_one_error_line_each_and_both_update_modes_rewrite_them(project, damaged_run, copy_run,
                                                                                      update: str) -> None:
    seeds = range(len(DAMAGES))
    damaged, run = damaged_run  # the run without update, made once for both update modes
    copy_run(run, project.path)  # this test's own copy, which its update rewrites
    pairs = {seed: project.baseline_pair("test_case", f"seed{seed}-euler-2steps-cfg7.5") for seed in seeds}
    run.outcome.assert_outcomes(failed=len(DAMAGES))
    text = project.text(run.outcome)
    assert "Traceback" not in text and "INTERNALERROR" not in text
    rows = {row.setting("seed"): row for row in run.results}
    for seed, (name, (_, fault)) in zip(seeds, DAMAGES.items()):
        row = rows[seed]
        assert row.outcome is Outcome.ERROR, name
        assert fault in row.message and "\n" not in row.message, (name, row.message)
        assert "--diffbench-update=missing" in row.message
        png, sidecar = pairs[seed]
        named = (png if "png" in name else sidecar).relative_to(project.path)  # as the run named it in its own folder
        assert str(named) in row.message or str(run.root / named) in row.message, (name, row.message)
        assert f"diffbench error: test_gen.py::test_case[seed{seed}-" in text
    assert project.snapshot(project.baselines) == damaged  # a run without update writes nothing (copied after it)

    run = project.run(update=update)
    run.outcome.assert_outcomes(passed=len(DAMAGES))
    assert {(row.outcome, row.baseline_action) for row in run.results} == {(Outcome.PASSED, BaselineAction.REWRITTEN)}
    kept = project.snapshot(run.folder.replaced_dir)
    assert sorted(kept.values()) == sorted(damaged.values())  # every damaged file is kept, byte for byte
    project.run().outcome.assert_outcomes(passed=len(DAMAGES))


def test_a_losslessly_reencoded_baseline_still_passes(project, two_seeds_created, copy_run) -> None:
    from PIL import Image

    copy_run(two_seeds_created, project.path)  # the baselines of seeds 0 and 1, as an update created them
    for seed, (mode, level) in ((0, ("RGBA", 9)), (1, ("RGB", 0))):  # as image optimisers may save them
        png, _ = project.baseline_pair("test_case", f"seed{seed}-euler-2steps-cfg7.5")
        before = png.read_bytes()
        with Image.open(png) as image:
            image.convert(mode).save(png, compress_level=level, dpi=(96, 96))
        assert png.read_bytes() != before
    baselines = project.snapshot(project.baselines)
    run = project.run()
    run.outcome.assert_outcomes(passed=2)
    assert {row.baseline_action for row in run.results} == {BaselineAction.NONE}
    assert project.snapshot(project.baselines) == baselines


def _entries(folder) -> dict[str, str]:
    """Every entry under ``folder``, links not followed: a link's target, "fifo", a file's bytes' digest."""
    import hashlib
    import os

    entries = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            entries[name] = f"-> {os.readlink(path)}"
        elif path.is_fifo():
            entries[name] = "fifo"
        elif path.is_file():
            entries[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def _obstruct(project, outside) -> dict[str, tuple[object, str]]:
    """Put a folder, a FIFO, links and a file where the baseline files and folders go; for each
    place (relative to the pin folder), the test's seed (or test name) and the text its error names."""
    import os
    import shutil

    pairs = {seed: project.baseline_pair("test_case", f"seed{seed}-euler-2steps-cfg7.5") for seed in range(5)}
    png, _ = pairs[0]
    png.unlink()
    png.mkdir()
    (png / "notes.txt").write_text("a user's file")
    _, sidecar = pairs[1]
    sidecar.unlink()
    sidecar.mkdir()
    png, _ = pairs[2]
    png.unlink()
    os.mkfifo(png)  # opening it would block the run
    outside.mkdir()
    png, _ = pairs[3]
    (outside / "image.png").write_bytes(png.read_bytes())
    png.unlink()
    png.symlink_to(outside / "image.png")
    _, sidecar = pairs[4]
    (outside / "folder").mkdir()
    (outside / "folder" / "secret").write_text("not diffbench's")
    sidecar.unlink()
    sidecar.symlink_to(outside / "folder", target_is_directory=True)
    filed, _ = project.baseline_pair("test_filed", "seed0-euler-2steps-cfg7.5")
    shutil.rmtree(filed.parent)
    filed.parent.write_text("a user's file where a folder goes")
    linked, _ = project.baseline_pair("test_linked", "seed0-euler-2steps-cfg7.5")
    shutil.move(linked.parent, outside / "linked")
    linked.parent.symlink_to(outside / "linked", target_is_directory=True)
    case = "test_gen/test_case/seed{}-euler-2steps-cfg7.5{}"
    return {case.format(0, ".png"): (0, "is a folder, not a file"), case.format(1, ".json"): (1, "is a folder, not a file"),
            case.format(2, ".png"): (2, "is not a plain file (a FIFO"), case.format(3, ".png"): (3, "is a symbolic link"),
            case.format(4, ".json"): (4, "is a symbolic link"), "test_gen/test_filed": ("test_filed", "is a file, not a folder"),
            "test_gen/test_linked": ("test_linked", "is a symbolic link")}


@pytest.fixture(scope="module")
def seven_created(shared_project):
    """A run that created seven baselines (test_case's seeds 0 to 4, test_filed, test_linked),
    made once for the module; each test obstructs them in its own copy."""
    with shared_project() as project:
        project.write_tests(project.test(sweep="seeds=list(range(5)), steps=2"), project.test("test_filed"),
                            project.test("test_linked"))
        run = project.run(update="all")
        run.outcome.assert_outcomes(passed=7)
        return run


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("update", ["all", "missing"])
def test_what_stands_where_a_baseline_goes_is_one_error_and_both_update_modes_move_it_aside_and_repair(
        project, tmp_path, seven_created, copy_run, update: str) -> None:
    """A folder, FIFO or link where a baseline file goes, a file or link where its folder goes:
    without update one line naming it and the repair; an update moves it (a folder whole, a link as
    a link, nothing opened or followed) into replaced-baselines/ and writes the pair."""
    copy_run(seven_created, project.path)
    outside = tmp_path / "outside"
    places = _obstruct(project, outside)
    pin_folder = project.baselines / PIN
    obstructed, elsewhere = _entries(project.baselines), _entries(outside)

    run = project.run()
    run.outcome.assert_outcomes(failed=7)
    text = project.text(run.outcome)
    assert "Traceback" not in text and "INTERNALERROR" not in text
    rows = {row.setting("seed") if row.nodeid.startswith("test_gen.py::test_case") else row.nodeid.split("::")[1].split("[")[0]: row
            for row in run.results}
    for place, (key, fault) in places.items():
        row = rows[key]
        assert row.outcome is Outcome.ERROR and "\n" not in row.message, (place, row.message)
        assert f"{place} {fault}" in row.message, (place, row.message)
        assert "--diffbench-update=missing moves it (a link as a link) into the run folder's replaced-baselines/" in row.message
    assert _entries(project.baselines) == obstructed  # a run without update moves and writes nothing

    run = project.run(update=update)
    run.outcome.assert_outcomes(passed=7)
    assert {row.baseline_action for row in run.results} == {BaselineAction.REWRITTEN}
    kept = run.folder.replaced_dir
    moved = {place: kept / place for place in places}
    assert _entries(moved[places_named(places, 0)]) == {"notes.txt": obstructed[f"{PIN}/{places_named(places, 0)}/notes.txt"]}
    assert moved[places_named(places, 1)].is_dir() and moved[places_named(places, 2)].is_fifo()
    assert (kept / f"{places_named(places, 3)}.link").readlink() == outside / "image.png"  # a link as a link
    assert (kept / f"{places_named(places, 4)}.link").readlink() == outside / "folder"
    assert (kept / "test_gen/test_filed").read_text() == "a user's file where a folder goes"
    assert (kept / "test_gen/test_linked.link").readlink() == outside / "linked"
    assert _entries(outside) == elsewhere  # what the links pointed to is untouched
    assert not any(path.is_symlink() for path in pin_folder.rglob("*"))
    assert "WARNING" not in project.text(run.outcome)
    project.run().outcome.assert_outcomes(passed=7)


def places_named(places: dict, key: object) -> str:
    return next(place for place, (which, _) in places.items() if which == key)


# -- another run writing the same baselines ---------------------------------------------------------


@pytest.fixture
def another_run_writes_after_each_read(monkeypatch: pytest.MonkeyPatch):
    """After this run reads a case's pair, "another run" writes it (once per case) with ``image``."""
    from pytest_diffbench.store.baselines import BaselineStore
    from pytest_diffbench.store.files import encode_png

    real_read = BaselineStore.read
    done: set[str] = set()
    written: dict[str, object] = {}

    def arrange(image_for):
        def read(self, case):
            found = real_read(self, case)
            if case not in done:
                done.add(case)
                sidecar = json.loads(self.paths(case)[1].read_text(encoding="utf-8")) if found.baseline else None
                other = _candidate(self, case, sidecar)
                written[case] = self.write(case, encode_png(image_for(case)), other,
                                           keep_replaced_in=self.root.parent / "other-run-replaced")
            return found
        monkeypatch.setattr(BaselineStore, "read", read)
        return written
    return arrange


def _candidate(store, case: str, sidecar: dict | None):
    """The sidecar another run writes: this run's own candidate from its run folder."""
    from pytest_diffbench.spec.sidecar import Sidecar

    runs = sorted((store.root.parent / ".diffbench" / "runs").iterdir())
    text = (runs[-1] / "configs" / f"{case}.json").read_text(encoding="utf-8")
    return Sidecar.from_json(text, require_image_sha256=False)


@pytest.mark.parametrize("update", ["all", "missing"])
def test_an_update_never_writes_over_a_pair_another_run_wrote_meanwhile(project, another_run_writes_after_each_read,
                                                                       update: str) -> None:
    from PIL import Image

    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    if update == "all":  # both runs refresh existing baselines; with =missing both create them
        project.fake(drift=0.6)
        project.run(update="all").outcome.assert_outcomes(passed=2)
        project.fake()
    seed0 = "test_gen/test_case/seed0-euler-2steps-cfg7.5"
    run_output = {}

    def image_for(case: str):
        # seed 0: the other run made a different picture; seed 1: the same one as this run
        own = project.path / ".diffbench" / "runs"
        with Image.open(sorted(own.iterdir())[-1] / "images" / f"{case}.png") as image:
            run_output[case] = image.convert("RGB")
        return run_output[case].transpose(Image.Transpose.FLIP_LEFT_RIGHT) if case == seed0 else run_output[case]

    written = another_run_writes_after_each_read(image_for)
    run = project.run(update=update)
    text = project.text(run.outcome)
    assert "Traceback" not in text and "INTERNALERROR" not in text
    rows = {row.setting("seed"): row for row in run.results}
    verb = "refreshed" if update == "all" else "created"
    for seed, row in rows.items():
        assert row.baseline_action is BaselineAction.NONE  # this run claims no write
        assert row.message.startswith(f"not {verb}: baseline ") and "was changed by another run after this run read it" \
            in row.message, row.message
    assert rows[0].outcome is Outcome.FAILED_QUALITY  # judged against the other run's picture
    assert rows[1].outcome is Outcome.PASSED  # the other run wrote this run's very picture
    run.outcome.assert_outcomes(passed=1, failed=1)
    # The other run's pairs are on disk, whole.
    for case, baseline in written.items():
        png, sidecar = project.baselines / "cpu-float32" / f"{case}.png", project.baselines / "cpu-float32" / f"{case}.json"
        assert png.read_bytes() == baseline.image_path.read_bytes() and sidecar.read_bytes() == baseline.sidecar_path.read_bytes()
    assert not run.folder.replaced_dir.exists() or not any(run.folder.replaced_dir.rglob("*.png"))


# -- errors inside tests and fixtures ---------------------------------------------------------------------

ERROR_TESTS = (
    ("test_raises", 'raise ValueError("boom before generating")'),
    ("test_fails_after_generate", 'diffbench.generate("a red cube")\nassert False, "late failure"'),
    ("test_no_generate", "pass"),
    ("test_generate_twice", 'diffbench.generate("a red cube")\ndiffbench.generate("a red cube")'),
)


def test_errors_in_test_bodies_and_pipeline_fixture_are_recorded(project) -> None:
    project.write_tests(*(project.test(name, body=body) for name, body in ERROR_TESTS))
    sub = project.pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture(scope='session')\ndef diffbench_pipeline():\n"
        "    raise RuntimeError('no pipeline on this machine')\n", encoding="utf-8")
    (sub / "test_sub.py").write_text("import pytest_diffbench as diffbench\n\n\n" + project.test("test_broken_fixture"), encoding="utf-8")

    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=4, errors=1)
    rows = by_case(run)
    assert len(rows) == 5
    assert {row.outcome for row in rows.values()} == {Outcome.ERROR}
    assert rows[f"test_raises[{CASE}]"].message == "ValueError: boom before generating"
    assert rows[f"test_fails_after_generate[{CASE}]"].message.startswith("AssertionError: late failure")
    assert "did not call diffbench.generate()" in rows[f"test_no_generate[{CASE}]"].message
    assert "generate() was called twice" in rows[f"test_generate_twice[{CASE}]"].message
    broken = rows[f"test_broken_fixture[{CASE}]"]
    assert broken.message == "setup failed: no pipeline on this machine"
    assert broken.nodeid == f"sub/test_sub.py::test_broken_fixture[{CASE}]" and broken.case_id == CASE
    # An error is never turned into a baseline, even with --diffbench-update.
    assert not project.baselines.exists()
    assert "diffbench: 5 cases: 5 error" in project.text(run.outcome)


# -- extra axes ---------------------------------------------------------------------------------------------

SIZED_LIKE_DIFFUSERS_CONFTEST = '''
import pytest

from pytest_diffbench.testing import FakePipeline


class SizedLikeDiffusers(FakePipeline):
    """As diffusers' SD pipelines: a width without a height (or the reverse) is ignored."""

    def diffbench_generate(self, sampler, seed, call_kwargs):
        kwargs = dict(call_kwargs)
        if kwargs.get("width") is None or kwargs.get("height") is None:
            kwargs.pop("width", None)
            kwargs.pop("height", None)
        return super().diffbench_generate(sampler, seed, kwargs)


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return SizedLikeDiffusers()
'''


def test_extra_axes_land_in_ids_config_and_images(project) -> None:
    from PIL import Image

    project.pytester.makeconftest(SIZED_LIKE_DIFFUSERS_CONFTEST)
    project.write_tests(
        project.test(sweep="seeds=0, steps=2, width=[64, 96], guidance_rescale=0.0",
                     body='diffbench.generate("a red cube", negative_prompt="blurry", height=64, eta=0.0)'),
        # A pipeline that ignores width without height returns its default size: recording
        # width=96 would be a lie.
        project.test("test_width_only", sweep="seeds=0, steps=2, width=96"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=2, failed=1)
    rows = by_case(run)
    assert sorted(rows) == [f"test_case[{CASE}-width{w}-guidance_rescale0]" for w in (64, 96)] + [f"test_width_only[{CASE}-width96]"]
    for width in (64, 96):
        case_id = f"{CASE}-width{width}-guidance_rescale0"
        row = rows[f"test_case[{case_id}]"]
        assert (row.outcome, row.setting("width"), row.setting("height"), row.setting("negative_prompt")) == (
            Outcome.PASSED, width, 64, "blurry")
        assert row.setting("pipeline_kwargs") == {"eta": 0.0, "guidance_rescale": 0.0}
        png, sidecar = project.baseline_pair("test_case", case_id)
        assert project.read_json(sidecar)["config"]["width"] == width
        with Image.open(png) as image:
            assert image.size == (width, 64)
        with Image.open(run.folder.image(f"test_gen/test_case/{case_id}")) as image:
            assert image.size == (width, 64)
    width_only = rows[f"test_width_only[{CASE}-width96]"]
    assert width_only.outcome is Outcome.ERROR
    assert "asked for width=96, but the pipeline returned a 64x64 image; set both width and height" in width_only.message
    assert not project.baseline_pair("test_width_only", f"{CASE}-width96")[0].exists()
