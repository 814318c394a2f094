"""End-to-end tests: pytest-diffbench as users run it, through pytest in a subprocess.

Each test writes a small test project with ``pytester``, runs ``pytest --diffbench`` on it
(the built-in tiny random-weight pipeline, 2 steps, 64x64, CPU) and checks the outcomes,
the failure text, results.csv, the run folder and the baseline files.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from pytest_diffbench.bundle import build_bundle
from helpers import (
    PIN,
    baseline_pair,
    diffbench_test,
    edit_sidecar,
    latest_rows,
    latest_run_dir,
    output_dir,
    read_json,
    read_rows,
    rows_by_case,
    run,
    run_plain,
    sha256_file,
    snapshot,
    stable_columns,
    write_ini,
    write_tests,
)

CASE = "seed0-euler-2steps-cfg7.5"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Child runs see no LPIPS weights unless a test provides them, and an xdist worker id
    inherited from this (possibly xdist) process must not leak into their records. One torch
    thread per child: on a shared CPU, OpenMP's spinning threads make each run several times
    slower (the images are tiny; the run time is imports)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("empty-torch-home")))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw9")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _text(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


# -- 1 + 13: the baseline lifecycle, and stable config hashes across processes -------------------


def test_lifecycle_missing_created_passed_stale_refreshed(pytester: pytest.Pytester) -> None:
    write_tests(pytester, diffbench_test(body='diffbench.generate("a red cube")'))
    png, sidecar = baseline_pair(pytester, "test_gen", "test_case", CASE)

    # First run: no baseline, the case fails and says how to create it; nothing is written.
    result = run(pytester)
    result.assert_outcomes(failed=1)
    text = _text(result)
    assert f"diffbench missing-baseline: test_gen.py::test_case[{CASE}]" in text
    assert f"no baseline at baselines/{PIN}/test_gen/test_case/{CASE}.png" in text
    assert "create it with: pytest --diffbench --diffbench-update" in text
    assert "diffbench: 1 case: 1 missing-baseline" in text
    (row,) = latest_rows(pytester)
    assert row["outcome"] == "missing-baseline"
    assert row["baseline_action"] == "" and row["baseline_path"] == ""
    assert row["case_id"] == CASE and row["prompt"] == "a red cube"
    assert not png.exists() and not sidecar.exists()
    # The run folder keeps the output image and the frozen config of the case.
    run_dir = latest_run_dir(pytester)
    assert sorted(p.name for p in output_dir(pytester).joinpath("runs").iterdir()) == [run_dir.name]
    assert row["run_id"] == run_dir.name
    frozen = read_json(run_dir / "configs" / "test_gen" / "test_case" / f"{CASE}.json")
    assert frozen["config_hash"] == row["config_hash"] and frozen["config"]["prompt"] == "a red cube"
    assert (run_dir / "images" / "test_gen" / "test_case" / f"{CASE}.png").is_file()
    missing_hash = row["config_hash"]

    # --diffbench-update writes the pair and passes.
    result = run(pytester, "--diffbench-update")
    result.assert_outcomes(passed=1)
    (row,) = latest_rows(pytester)
    assert (row["outcome"], row["baseline_action"]) == ("passed", "created")
    assert row["baseline_path"] == f"baselines/{PIN}/test_gen/test_case/{CASE}.png"
    assert float(row["ssim"]) == 1.0
    data = read_json(sidecar)
    assert data["config_hash"] == row["config_hash"] == missing_hash
    from pytest_diffbench.config import config_hash

    assert config_hash(data["config"]) == data["config_hash"]
    assert data["config"]["prompt"] == "a red cube"
    assert (data["config"]["seed"], data["config"]["sampler"], data["config"]["steps"], data["config"]["cfg"]) == (0, "Euler", 2, 7.5)
    assert (data["config"]["width"], data["config"]["height"], data["config"]["device"], data["config"]["dtype"]) == (64, 64, "cpu", "float32")
    assert data["image_sha256"] == sha256_file(png)
    assert data["environment"]["diffusers"] == metadata.version("diffusers")
    assert data["environment"]["torch"] == row["torch"]
    assert data["measurement"]["seconds_per_image"] > 0
    assert data["measurement"]["device_name"] == data["environment"]["device_name"] == row["device_name"]
    assert data["measurement"]["peak_vram_mb"] is None  # measured on CUDA only
    # The baseline PNG is the run's output image, byte for byte.
    assert png.read_bytes() == (latest_run_dir(pytester) / "images" / "test_gen" / "test_case" / f"{CASE}.png").read_bytes()
    created = snapshot(pytester.path / "baselines")

    # A rerun, in another process, gives the same image and the same config hash.
    result = run(pytester)
    result.assert_outcomes(passed=1)
    (row,) = latest_rows(pytester)
    assert (row["outcome"], row["baseline_action"]) == ("passed", "")
    assert float(row["ssim"]) == 1.0 and row["psnr"] == "inf"
    assert row["config_hash"] == missing_hash
    assert snapshot(pytester.path / "baselines") == created
    assert len(list(output_dir(pytester).joinpath("runs").iterdir())) == 3

    # A changed prompt is a stale baseline: both short hashes and the field that differs.
    write_tests(pytester, diffbench_test(body='diffbench.generate("a blue cube")'))
    result = run(pytester)
    result.assert_outcomes(failed=1)
    (row,) = latest_rows(pytester)
    assert row["outcome"] == "stale-baseline"
    new_hash = row["config_hash"]
    assert new_hash != missing_hash
    text = _text(result)
    assert f"diffbench stale-baseline: test_gen.py::test_case[{CASE}]" in text
    assert f"baseline config hash {missing_hash[:12]} != this case's {new_hash[:12]}" in text
    assert "prompt: 'a red cube' -> 'a blue cube'" in text
    assert "refresh with --diffbench-update" in text
    assert "prompt" in row["message"] and missing_hash[:12] in row["message"]
    assert row["ssim"] == ""  # identity failed: no comparison
    assert snapshot(pytester.path / "baselines") == created

    # --diffbench-update refreshes it.
    result = run(pytester, "--diffbench-update")
    result.assert_outcomes(passed=1)
    (row,) = latest_rows(pytester)
    assert (row["outcome"], row["baseline_action"], row["config_hash"]) == ("passed", "refreshed", new_hash)
    data = read_json(sidecar)
    assert data["config_hash"] == new_hash and data["config"]["prompt"] == "a blue cube"
    assert data["image_sha256"] == sha256_file(png)
    # The replaced pair is kept, byte for byte, in the run folder.
    replaced = latest_run_dir(pytester) / "replaced-baselines"
    kept = {path.relative_to(replaced).as_posix(): path.read_bytes() for path in replaced.rglob("*") if path.is_file()}
    assert sorted(kept.values()) == sorted(created.values())


def test_update_missing_writes_only_missing_baselines(pytester: pytest.Pytester) -> None:
    write_tests(pytester, diffbench_test("test_old", body='diffbench.generate("a red cube")'))
    run(pytester, "--diffbench-update").assert_outcomes(passed=1)
    before = snapshot(pytester.path / "baselines")
    assert set(before) == {f"{PIN}/test_gen/test_old/{CASE}.png", f"{PIN}/test_gen/test_old/{CASE}.json"}

    write_tests(pytester,
                diffbench_test("test_old", body='diffbench.generate("a green cube")'),
                diffbench_test("test_new", body='diffbench.generate("a new cube")'))
    result = run(pytester, "--diffbench-update=missing")
    result.assert_outcomes(passed=1, failed=1)
    rows = rows_by_case(pytester)
    assert (rows[f"test_old[{CASE}]"]["outcome"], rows[f"test_old[{CASE}]"]["baseline_action"]) == ("stale-baseline", "")
    assert (rows[f"test_new[{CASE}]"]["outcome"], rows[f"test_new[{CASE}]"]["baseline_action"]) == ("passed", "created")
    after = snapshot(pytester.path / "baselines")
    assert {k: v for k, v in after.items() if "/test_old/" in k} == before  # byte-identical
    assert set(after) - set(before) == {f"{PIN}/test_gen/test_new/{CASE}.png", f"{PIN}/test_gen/test_new/{CASE}.json"}


# -- 2 + 3: quality regressions with an unchanged config ----------------------------------------

BUGGY_CONFTEST = '''
import os

import pytest

from pytest_diffbench.pipelines import load_tiny_pipeline


@pytest.fixture(scope="session")
def diffbench_pipeline():
    """The built-in model, with a bug switched on by $DIFFBENCH_TEST_BUG: the config that
    diffbench records stays the same, only the pixels change."""
    pipe = load_tiny_pipeline()
    base = type(pipe)

    def __call__(self, *args, **kwargs):
        bug = os.environ.get("DIFFBENCH_TEST_BUG", "")
        if bug == "steps":
            kwargs["num_inference_steps"] = max(1, kwargs["num_inference_steps"] - 1)
        elif bug == "sampler":
            from diffusers import DDIMScheduler

            self.scheduler = DDIMScheduler.from_config(self.scheduler.config)
        return base.__call__(self, *args, **kwargs)

    pipe.__class__ = type(base.__name__, (base,), {"__call__": __call__})
    return pipe
'''


def test_silent_step_count_or_sampler_change_fails_on_quality(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(BUGGY_CONFTEST)
    write_tests(pytester, diffbench_test())
    monkeypatch.delenv("DIFFBENCH_TEST_BUG", raising=False)
    run(pytester, "--diffbench-update").assert_outcomes(passed=1)
    (created,) = latest_rows(pytester)
    png, sidecar = baseline_pair(pytester, "test_gen", "test_case", CASE)
    assert created["baseline_action"] == "created"
    assert read_json(sidecar)["config"]["workflow"] == "StableDiffusionPipeline"
    baseline_bytes = png.read_bytes()

    for bug in ("steps", "sampler"):
        monkeypatch.setenv("DIFFBENCH_TEST_BUG", bug)
        result = run(pytester)
        result.assert_outcomes(failed=1)
        (row,) = latest_rows(pytester)
        assert row["outcome"] == "failed-quality", (bug, row["message"])
        assert row["config_hash"] == created["config_hash"], bug  # same config: not a stale baseline
        assert float(row["ssim"]) < 0.95 and row["min_ssim"] == "0.95"
        assert "ssim" in row["message"] and "FAIL" in row["message"]
        text = _text(result)
        assert f"diffbench failed-quality: test_gen.py::test_case[{CASE}]" in text
        assert re.search(r"ssim\s+0\.\d+\s+>= 0\.95\s+FAIL", text), text
        assert f"baseline: baselines/{PIN}/test_gen/test_case/{CASE}.png" in text
        assert png.read_bytes() == baseline_bytes

    # --diffbench-update accepts the new pixels (a quality failure is refreshable).
    result = run(pytester, "--diffbench-update")
    result.assert_outcomes(passed=1)
    (row,) = latest_rows(pytester)
    assert (row["outcome"], row["baseline_action"], float(row["ssim"])) == ("passed", "refreshed", 1.0)
    assert png.read_bytes() != baseline_bytes


# -- 4: speed and memory gates, tolerance precedence --------------------------------------------

SPEED_TESTS = (
    diffbench_test("test_marker_budget", decorators=["@diffbench.tolerance(max_seconds=1e-9, max_vram_mb=1)"]),
    diffbench_test("test_ini_budget"),
    diffbench_test("test_marker_over_ini", sweep='seeds=0, steps=2, tolerance={"min_psnr": 10}',
                   decorators=["@diffbench.tolerance(max_seconds=1000, min_ssim=0.5)"]),
    diffbench_test("test_vram_on_cpu", decorators=["@diffbench.tolerance(max_seconds=None, max_vram_mb=1)"]),
    diffbench_test("test_slowdown", decorators=["@diffbench.tolerance(max_seconds=None, time_regression=0.5)"]),
    diffbench_test("test_slowdown_other_device", decorators=["@diffbench.tolerance(max_seconds=None, time_regression=0.5)"]),
)


def test_speed_and_memory_gates(pytester: pytest.Pytester) -> None:
    write_ini(pytester, max_seconds="1e-9")
    write_tests(pytester, *SPEED_TESTS)

    # Creating baselines does not excuse an absolute budget.
    result = run(pytester, "--diffbench-update")
    result.assert_outcomes(passed=4, failed=2)
    rows = rows_by_case(pytester)
    assert {row["baseline_action"] for row in rows.values()} == {"created"}
    assert rows[f"test_marker_budget[{CASE}]"]["outcome"] == rows[f"test_ini_budget[{CASE}]"]["outcome"] == "failed-speed"

    _, slow_sidecar = baseline_pair(pytester, "test_gen", "test_slowdown", CASE)
    _, other_sidecar = baseline_pair(pytester, "test_gen", "test_slowdown_other_device", CASE)
    edit_sidecar(slow_sidecar, measurement={"seconds_per_image": 1e-9})
    edit_sidecar(other_sidecar, measurement={"seconds_per_image": 1e-9, "device_name": "Other Accelerator 9000"})

    result = run(pytester)
    result.assert_outcomes(passed=3, failed=3)
    rows = rows_by_case(pytester)
    text = _text(result)

    marker = rows[f"test_marker_budget[{CASE}]"]
    assert (marker["outcome"], float(marker["max_seconds"]), float(marker["max_vram_mb"])) == ("failed-speed", 1e-9, 1.0)
    assert marker["peak_vram_mb"] == ""
    assert "seconds/image" in marker["message"] and "FAIL" in marker["message"]
    assert re.search(r"seconds/image\s+\S+ s\s+<= 1e-09 s\s+FAIL", text), text
    # VRAM is not measured on the CPU: the check is skipped, not failed.
    assert re.search(r"peak VRAM\s+-\s+<= 1 MiB\s+skipped\s+\(measured on CUDA only\)", text), text

    ini = rows[f"test_ini_budget[{CASE}]"]
    assert (ini["outcome"], float(ini["max_seconds"]), float(ini["min_ssim"]), float(ini["min_psnr"])) == ("failed-speed", 1e-9, 0.95, 25.0)

    over = rows[f"test_marker_over_ini[{CASE}]"]
    assert (over["outcome"], float(over["max_seconds"]), float(over["min_ssim"]), float(over["min_psnr"])) == ("passed", 1000.0, 0.5, 10.0)

    vram = rows[f"test_vram_on_cpu[{CASE}]"]
    assert (vram["outcome"], vram["max_seconds"], float(vram["max_vram_mb"]), vram["peak_vram_mb"]) == ("passed", "", 1.0, "")

    slow = rows[f"test_slowdown[{CASE}]"]
    assert (slow["outcome"], slow["time_check"], float(slow["time_regression"])) == ("failed-speed", "failed", 0.5)
    assert float(slow["baseline_seconds_per_image"]) == 1e-9 and float(slow["slowdown"]) > 1000
    assert re.search(r"slowdown\s+\S+\s+<= 0\.5\s+FAIL", text), text

    other = rows[f"test_slowdown_other_device[{CASE}]"]
    assert other["outcome"] == "passed"
    assert other["time_check"] == f"skipped: baseline timed on Other Accelerator 9000, this run on {other['device_name']}"

    # --diffbench-update refreshes a relative-speed failure, never an absolute budget.
    result = run(pytester, "--diffbench-update")
    result.assert_outcomes(passed=4, failed=2)
    rows = rows_by_case(pytester)
    assert (rows[f"test_slowdown[{CASE}]"]["outcome"], rows[f"test_slowdown[{CASE}]"]["baseline_action"]) == ("passed", "refreshed")
    assert rows[f"test_slowdown[{CASE}]"]["time_check"] == "passed"
    assert (rows[f"test_marker_budget[{CASE}]"]["outcome"], rows[f"test_marker_budget[{CASE}]"]["baseline_action"]) == ("failed-speed", "")
    assert rows[f"test_slowdown_other_device[{CASE}]"]["baseline_action"] == ""
    assert read_json(slow_sidecar)["measurement"]["seconds_per_image"] > 1e-9


# -- 6: workflow version --------------------------------------------------------------------------


def test_workflow_version_mismatch_from_ini_and_sweep(pytester: pytest.Pytester) -> None:
    write_tests(pytester,
                diffbench_test("test_default"),
                diffbench_test("test_pinned", sweep='seeds=0, steps=2, workflow_version="3"'),
                diffbench_test("test_bumped", sweep='seeds=0, steps=2, workflow_version="3"'))
    run(pytester, "--diffbench-update").assert_outcomes(passed=3)
    assert read_json(baseline_pair(pytester, "test_gen", "test_default", CASE)[1])["config"]["workflow_version"] == "1"
    before = snapshot(pytester.path / "baselines")

    write_ini(pytester, workflow_version="2")
    write_tests(pytester,
                diffbench_test("test_default"),
                diffbench_test("test_pinned", sweep='seeds=0, steps=2, workflow_version="3"'),
                diffbench_test("test_bumped", sweep='seeds=0, steps=2, workflow_version="4"'))
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=2)
    rows = rows_by_case(pytester)
    assert (rows[f"test_default[{CASE}]"]["outcome"], rows[f"test_default[{CASE}]"]["workflow_version"]) == ("version-mismatch", "2")
    assert (rows[f"test_pinned[{CASE}]"]["outcome"], rows[f"test_pinned[{CASE}]"]["workflow_version"]) == ("passed", "3")
    assert (rows[f"test_bumped[{CASE}]"]["outcome"], rows[f"test_bumped[{CASE}]"]["workflow_version"]) == ("version-mismatch", "4")
    text = _text(result)
    assert "baseline was made by workflow_version '1', this run is '2'" in text
    assert "baseline was made by workflow_version '3', this run is '4'" in text
    assert snapshot(pytester.path / "baselines") == before


# -- 7: environment drift -------------------------------------------------------------------------


def test_environment_drift_is_reported_and_fails_with_strict_env(pytester: pytest.Pytester) -> None:
    write_tests(pytester, diffbench_test(sweep="seeds=[0, 1], steps=2"))
    run(pytester, "--diffbench-update").assert_outcomes(passed=2)
    _, sidecar = baseline_pair(pytester, "test_gen", "test_case", CASE)
    edit_sidecar(sidecar, environment={"diffusers": "0.0.1"})
    diffusers = metadata.version("diffusers")

    result = run(pytester)
    result.assert_outcomes(passed=2)
    rows = rows_by_case(pytester)
    assert rows[f"test_case[{CASE}]"]["env_diff"] == f"diffusers: 0.0.1 -> {diffusers}"
    assert rows["test_case[seed1-euler-2steps-cfg7.5]"]["env_diff"] == ""
    assert f"note: 1 baseline was made in another environment: diffusers: 0.0.1 -> {diffusers}" in _text(result)

    result = run(pytester, "--diffbench-strict-env")
    result.assert_outcomes(passed=1, failed=1)
    rows = rows_by_case(pytester)
    assert rows[f"test_case[{CASE}]"]["outcome"] == "version-mismatch"
    assert rows["test_case[seed1-euler-2steps-cfg7.5]"]["outcome"] == "passed"
    text = _text(result)
    assert "baseline was made in another environment (--diffbench-strict-env)" in text
    assert f"diffusers: '0.0.1' -> '{diffusers}'" in text


# -- 8: corrupt baselines -------------------------------------------------------------------------


def test_corrupt_baselines_are_errors_and_update_rewrites_them(pytester: pytest.Pytester) -> None:
    from PIL import Image

    write_tests(pytester, diffbench_test(sweep="seeds=[0, 1, 2, 3], steps=2"))
    run(pytester, "--diffbench-update").assert_outcomes(passed=4)
    pairs = {seed: baseline_pair(pytester, "test_gen", "test_case", f"seed{seed}-euler-2steps-cfg7.5") for seed in range(4)}
    pairs[0][1].write_text("{not json", encoding="utf-8")
    with Image.open(pairs[1][0]) as image:
        edited = image.convert("RGB")
    edited.putpixel((0, 0), tuple(255 - v for v in edited.getpixel((0, 0))))
    edited.save(pairs[1][0])
    pairs[2][1].unlink()
    pairs[3][0].unlink()

    result = run(pytester)
    result.assert_outcomes(failed=4)
    rows = {int(row["seed"]): row for row in latest_rows(pytester)}
    assert {row["outcome"] for row in rows.values()} == {"error"}
    rel = {seed: (f"{PIN}/test_gen/test_case/seed{seed}-euler-2steps-cfg7.5.png", f"{PIN}/test_gen/test_case/seed{seed}-euler-2steps-cfg7.5.json")
           for seed in range(4)}
    assert "is not readable JSON" in rows[0]["message"] and rel[0][1] in rows[0]["message"]
    assert "SHA-256" in rows[1]["message"] and rel[1][0] in rows[1]["message"]
    assert rel[2][0] in rows[2]["message"] and f"{rel[2][1]} does not" in rows[2]["message"]
    assert rel[3][1] in rows[3]["message"] and f"{rel[3][0]} does not" in rows[3]["message"]
    assert all("--diffbench-update" in row["message"] for row in rows.values())
    assert "diffbench error:" in _text(result)

    result = run(pytester, "--diffbench-update")
    result.assert_outcomes(passed=4)
    rows = {int(row["seed"]): row for row in latest_rows(pytester)}
    assert {(row["outcome"], row["baseline_action"]) for row in rows.values()} == {("passed", "rewritten")}
    for png, sidecar in pairs.values():
        assert read_json(sidecar)["image_sha256"] == sha256_file(png)


# -- 9: LPIPS through the plugin --------------------------------------------------------------------


@pytest.fixture(scope="session")
def torch_home_with_alexnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TORCH_HOME holding stand-in (random) AlexNet weights under torchvision's file name."""
    import torch
    import torchvision

    from pytest_diffbench.metrics import ALEXNET_CHECKPOINT

    home = tmp_path_factory.mktemp("torch-home")
    path = home / "hub" / "checkpoints" / ALEXNET_CHECKPOINT
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return home


def test_lpips_modes_with_and_without_weights(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path, torch_home_with_alexnet: Path) -> None:
    write_tests(pytester, diffbench_test())
    empty_home = tmp_path / "no-weights"
    monkeypatch.setenv("TORCH_HOME", str(empty_home))
    missing = empty_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"

    # auto without weights: passes, warns with the missing file, records why.
    write_ini(pytester, lpips="auto")
    result = run(pytester, "--diffbench-update", lpips=None)
    result.assert_outcomes(passed=1)
    (row,) = latest_rows(pytester)
    assert row["lpips"] == "" and row["lpips_status"].startswith("unavailable")
    assert str(missing) in row["lpips_status"]
    warning = [line for line in result.stdout.lines if line.startswith("WARNING: LPIPS was not computed")]
    assert len(warning) == 1 and str(missing) in warning[0]

    # required without weights: an error naming the file.
    write_ini(pytester, lpips="required")
    result = run(pytester, lpips=None)
    result.assert_outcomes(failed=1)
    (row,) = latest_rows(pytester)
    assert row["outcome"] == "error"
    assert "diffbench_lpips = required" in row["message"] and str(missing) in row["message"]

    # off (the command line over the ini's required): no LPIPS, no warning.
    result = run(pytester, lpips="off")
    result.assert_outcomes(passed=1)
    (row,) = latest_rows(pytester)
    assert (row["lpips"], row["lpips_status"]) == ("", "off")
    assert "WARNING" not in result.stdout.str()

    # With weights: auto and required both score 0.0 against the identical baseline.
    monkeypatch.setenv("TORCH_HOME", str(torch_home_with_alexnet))
    for mode in ("auto", "required"):
        write_ini(pytester, lpips=mode)
        result = run(pytester, lpips=None)
        result.assert_outcomes(passed=1)
        (row,) = latest_rows(pytester)
        assert (row["outcome"], float(row["lpips"]), row["lpips_status"], float(row["max_lpips"])) == ("passed", 0.0, "ok", 0.05), mode
        assert "WARNING" not in result.stdout.str()


# -- 10: xdist ---------------------------------------------------------------------------------------

XDIST_MODES = {"no-xdist": ("-p", "no:xdist"), "n0": ("-n", "0"), "n2": ("-n", "2")}


def test_same_results_without_xdist_with_n0_and_n2(pytester: pytest.Pytester) -> None:
    write_tests(pytester, diffbench_test(sweep='seeds=[0, 1], samplers=["Euler", "DDIM"], steps=2'))
    results: dict[tuple[str, str], list[dict[str, str]]] = {}
    for mode, args in XDIST_MODES.items():
        shutil.rmtree(pytester.path / "baselines", ignore_errors=True)
        shutil.rmtree(output_dir(pytester), ignore_errors=True)
        for step, extra in (("update", ("--diffbench-update",)), ("rerun", ())):
            result = run(pytester, *args, *extra)
            result.assert_outcomes(passed=4)
            assert _text(result).count("diffbench: 4 cases: 4 passed") == 1, (mode, step)  # the controller's summary only
            runs = list(output_dir(pytester).joinpath("runs").iterdir())
            run_dir = latest_run_dir(pytester)
            assert run_dir in runs and len(runs) == (1 if step == "update" else 2), (mode, step)
            assert [p.name for p in run_dir.rglob("results.csv")] == ["results.csv"], (mode, step)
            assert len(list((run_dir / "images").rglob("*.png"))) == 4, (mode, step)
            rows = read_rows(run_dir / "results.csv")
            assert {row["run_id"] for row in rows} == {run_dir.name}
            workers = {row["worker"] for row in rows}
            assert workers == ({"gw0", "gw1"} if mode == "n2" else {"main"}), (mode, step, workers)
            results[mode, step] = rows
        assert [row["baseline_action"] for row in results[mode, "update"]] == ["created"] * 4
    for step in ("update", "rerun"):
        expected = [stable_columns(row) for row in results["no-xdist", step]]
        assert [row["nodeid"].split("[")[1] for row in results["no-xdist", step]] == sorted(
            f"seed{s}-{sampler}-2steps-cfg7.5]" for s in (0, 1) for sampler in ("euler", "ddim"))
        for mode in ("n0", "n2"):
            assert [stable_columns(row) for row in results[mode, step]] == expected, (mode, step)


# -- 11: without --diffbench ---------------------------------------------------------------------------


def test_without_flag_tests_skip_and_nothing_heavy_is_imported(pytester: pytest.Pytester) -> None:
    write_tests(pytester, diffbench_test(sweep="seeds=[0, 1], steps=2"))
    pytester.makepyfile(test_zz_imports='''
        import sys

        def test_heavy_modules_not_imported():
            loaded = [name for name in ("torch", "diffusers", "transformers", "lpips", "pandas") if name in sys.modules]
            assert loaded == []
    ''')
    result = run_plain(pytester)
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED [[]2[]] test_gen.py:*: diffbench tests run only with --diffbench"])
    assert not output_dir(pytester).exists()
    assert not (pytester.path / "baselines").exists()


# -- 12: errors inside tests and fixtures -------------------------------------------------------------

ERROR_TESTS = (
    diffbench_test("test_raises", body='raise ValueError("boom before generating")'),
    diffbench_test("test_fails_after_generate", body='diffbench.generate("a red cube")\nassert False, "late failure"'),
    diffbench_test("test_no_generate", body="pass"),
    diffbench_test("test_generate_twice", body='diffbench.generate("a red cube")\ndiffbench.generate("a red cube")'),
)


def test_errors_in_test_bodies_and_pipeline_fixture_are_recorded(pytester: pytest.Pytester) -> None:
    write_tests(pytester, *ERROR_TESTS)
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture(scope='session')\ndef diffbench_pipeline():\n"
        "    raise RuntimeError('no pipeline on this machine')\n", encoding="utf-8")
    (sub / "test_sub.py").write_text("import pytest_diffbench as diffbench\n\n\n" + diffbench_test("test_broken_fixture"), encoding="utf-8")

    result = run(pytester, "--diffbench-update")
    result.assert_outcomes(failed=4, errors=1)
    rows = rows_by_case(pytester)
    assert len(rows) == 5
    assert {row["outcome"] for row in rows.values()} == {"error"}
    assert rows[f"test_raises[{CASE}]"]["message"] == "ValueError: boom before generating"
    assert rows[f"test_fails_after_generate[{CASE}]"]["message"].startswith("AssertionError: late failure")
    assert "did not call diffbench.generate()" in rows[f"test_no_generate[{CASE}]"]["message"]
    assert "generate() was called twice" in rows[f"test_generate_twice[{CASE}]"]["message"]
    broken = rows[f"test_broken_fixture[{CASE}]"]
    assert broken["message"] == "setup failed: no pipeline on this machine"
    assert broken["nodeid"] == f"sub/test_sub.py::test_broken_fixture[{CASE}]" and broken["case_id"] == CASE
    # An error is never turned into a baseline, even with --diffbench-update.
    assert not (pytester.path / "baselines").exists()
    assert "diffbench: 5 cases: 5 error" in _text(result)


def test_model_option_picks_the_pipeline_and_a_model_change_is_a_stale_baseline(pytester: pytest.Pytester) -> None:
    write_tests(pytester, diffbench_test())
    run(pytester, "--diffbench-model=diffbench-tiny-random", "--diffbench-update").assert_outcomes(passed=1)
    (random_row,) = latest_rows(pytester)
    assert random_row["model"] == "diffbench/tiny-random-sd"

    # The default is the shipped model: another model, another config, so the baseline is stale.
    result = run(pytester)
    result.assert_outcomes(failed=1)
    (row,) = latest_rows(pytester)
    assert (row["model"], row["outcome"]) == ("diffbench/diffbench-tiny", "stale-baseline")
    assert "model: 'diffbench/tiny-random-sd' -> 'diffbench/diffbench-tiny'" in row["message"]

    missing = pytester.path / "no-such-model"
    result = run(pytester, f"--diffbench-model={missing}")
    result.assert_outcomes(errors=1)
    (row,) = latest_rows(pytester)
    assert row["outcome"] == "error"
    assert row["message"].startswith(f"setup failed: diffbench_model: cannot load {str(missing)!r}")
    assert "diffbench-tiny, diffbench-tiny-random" in row["message"]


# -- 14: extra axes, ids and collection errors -----------------------------------------------------------


def test_extra_axes_land_in_ids_config_and_images(pytester: pytest.Pytester) -> None:
    write_tests(pytester,
                diffbench_test(sweep="seeds=0, steps=2, width=[64, 96], guidance_rescale=0.0",
                               body='diffbench.generate("a red cube", negative_prompt="blurry", height=64, eta=0.0)'),
                # diffusers' SD pipelines ignore width without height: recording width=96 would be a lie.
                diffbench_test("test_width_only", sweep="seeds=0, steps=2, width=96"))
    result = run(pytester, "--diffbench-update")
    result.assert_outcomes(passed=2, failed=1)
    rows = rows_by_case(pytester)
    assert sorted(rows) == [f"test_case[{CASE}-width{w}-guidance_rescale0]" for w in (64, 96)] + [f"test_width_only[{CASE}-width96]"]
    from PIL import Image

    for width in (64, 96):
        case_id = f"{CASE}-width{width}-guidance_rescale0"
        row = rows[f"test_case[{case_id}]"]
        assert (row["outcome"], row["width"], row["height"], row["negative_prompt"]) == ("passed", str(width), "64", "blurry")
        assert json.loads(row["pipeline_kwargs"]) == {"eta": 0.0, "guidance_rescale": 0.0}
        png, sidecar = baseline_pair(pytester, "test_gen", "test_case", case_id)
        assert read_json(sidecar)["config"]["width"] == width
        with Image.open(png) as image:
            assert image.size == (width, 64)
        with Image.open(latest_run_dir(pytester) / "images" / "test_gen" / "test_case" / f"{case_id}.png") as image:
            assert image.size == (width, 64)
    width_only = rows[f"test_width_only[{CASE}-width96]"]
    assert width_only["outcome"] == "error"
    assert "asked for width=96, but the pipeline returned a 64x64 image; set both width and height" in width_only["message"]
    assert not baseline_pair(pytester, "test_gen", "test_width_only", f"{CASE}-width96")[0].exists()


def test_collect_only_lists_cases_in_product_order(pytester: pytest.Pytester) -> None:
    write_tests(pytester, diffbench_test(
        "test_x", sweep='seeds=[1, 0], samplers=["Euler a", "DPM++ 2M Karras"], steps=[20, 4], cfg=[5.5, 7], width=[96, 64]'))
    expected = [
        f"test_gen.py::test_x[seed{seed}-{sampler}-{steps}steps-cfg{cfg}-width{width}]"
        for seed, sampler, steps, cfg, width in itertools.product([1, 0], ["euler_a", "dpmpp_2m_karras"], [20, 4], ["5.5", "7"], [96, 64])
    ]
    for _ in range(2):
        result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
        assert result.ret == 0
        assert [line for line in result.stdout.lines if line.startswith("test_gen.py::")] == expected


BAD_SWEEPS = {
    "unknown-sampler": ('samplers=["Eulr"]', ["sweep axis 'samplers': unknown sampler 'Eulr'", "Known samplers: Euler, Euler a, Heun"]),
    "steps-zero": ("steps=0", ["sweep axis 'steps': 0 is not valid; steps must be a positive integer"]),
    "steps-string": ('steps="20"', ["sweep axis 'steps': '20' is not valid; steps must be a positive integer"]),
    "steps-float": ("steps=2.5", ["sweep axis 'steps': 2.5 is not valid; steps must be a positive integer"]),
    "cfg-negative": ("cfg=-1", ["sweep axis 'cfg': -1 is not valid; cfg (guidance scale) must be a finite number >= 0"]),
    "seed-string": ('seeds="a"', ["sweep axis 'seeds': 'a' is not a valid seed; seeds are integers from 0 to 2**63 - 1"]),
    "seed-negative": ("seeds=-1", ["sweep axis 'seeds': -1 is not a valid seed"]),
    "seed-bool": ("seeds=True", ["sweep axis 'seeds': True is not a valid seed"]),
    "empty-axis": ("seeds=[]", ["sweep axis 'seeds' is empty; give at least one value"]),
    "duplicate": ('samplers=["DDIM", "DDIM"]', ["sweep axis 'samplers' lists 'DDIM' twice; each value may appear once"]),
    "reserved-seed": ("seed=[1, 2]", ["sweep axis 'seed' is reserved; use seeds instead"]),
    "reserved-steps": ("num_inference_steps=4", ["sweep axis 'num_inference_steps' is reserved; use steps instead"]),
    "width-zero": ("width=[64, 0]", ["sweep axis 'width': 0 is not valid; width must be a positive integer"]),
    "unserialisable": ("strength=[object()]", ["sweep axis 'strength'", "cannot go into a frozen config"]),
    "sweep-tolerance": ('tolerance={"max_seconds": 0}', ["tolerance max_seconds=0 is not valid; it must be a number of seconds > 0"]),
    "over-cap": ("seeds=[0, 1], steps=[1, 2]", ["sweep has 4 cases, more than the cap of 3", "diffbench_max_cases"]),
}


@pytest.mark.parametrize("source, fragments", list(BAD_SWEEPS.values()), ids=list(BAD_SWEEPS))
def test_invalid_sweep_is_a_collection_error_naming_the_field(pytester: pytest.Pytester, source: str, fragments: list[str]) -> None:
    write_ini(pytester, max_cases=3)
    write_tests(pytester, diffbench_test("test_bad", sweep=source), "def test_other():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    text = _text(result)
    assert "test_gen.py::test_bad: invalid diffbench sweep: " in text
    for fragment in fragments:
        assert fragment in text, fragment


BAD_DECORATIONS = {
    "sweep-without-fixture": ("@diffbench.sweep(seeds=[0])\ndef test_bad():\n    pass\n",
                              ["test_gen.py::test_bad: @diffbench.sweep needs the test to take the 'diffbench' fixture"]),
    "tolerance-name": ("@diffbench.tolerance(min_ssm=0.5)\ndef test_bad(diffbench):\n    pass\n",
                       ["@diffbench.tolerance: unknown tolerance 'min_ssm'; valid names are min_ssim, min_psnr, max_lpips"]),
    "tolerance-value": ("@diffbench.tolerance(min_ssim=2)\ndef test_bad(diffbench):\n    pass\n",
                        ["@diffbench.tolerance: tolerance min_ssim=2 is not valid; it must be a number from -1 to 1"]),
    "tolerance-twice": ('@diffbench.tolerance(min_ssim=0.5)\n@diffbench.sweep(seeds=0, tolerance={"min_ssim": 0.6})\n'
                        "def test_bad(diffbench):\n    pass\n",
                        ["tolerance min_ssim is set both in sweep(tolerance=...) and @diffbench.tolerance; set it once"]),
}


@pytest.mark.parametrize("source, fragments", list(BAD_DECORATIONS.values()), ids=list(BAD_DECORATIONS))
def test_invalid_marker_is_a_collection_error(pytester: pytest.Pytester, source: str, fragments: list[str]) -> None:
    write_tests(pytester, source)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    text = _text(result)
    for fragment in fragments:
        assert fragment in text, fragment


BAD_SETTINGS = {
    "lpips": ({"lpips": "maybe"}, (), "diffbench_lpips = 'maybe' is not valid: valid values are auto, required, off"),
    "pin": ({"pin": "{nope}"}, (), "diffbench_pin = '{nope}' is not valid: unknown or malformed field 'nope'; valid fields are {device}"),
    "min-ssim": ({"min_ssim": "abc"}, (), "ini diffbench_min_ssim: tolerance min_ssim='abc' is not valid; it must be a number from -1 to 1"),
    "max-cases": ({"max_cases": "0"}, (), "diffbench_max_cases = '0' is not valid: it must be a positive integer"),
    "update-flag": ({}, ("--diffbench-update=bogus",), "--diffbench-update got 'bogus'; valid values are all, missing"),
    "device": ({"device": "tpu"}, (), "diffbench_device = 'tpu' is not valid: valid devices are auto, cpu, cuda, cuda:N and mps"),
    "device-flag": ({}, ("--diffbench-device=cuda:x",), "diffbench_device = 'cuda:x' is not valid"),
    "dtype": ({"dtype": "float8"}, (), "diffbench_dtype = 'float8' is not valid: valid values are auto, float32, fp32"),
}


@pytest.mark.parametrize("ini, args, fragment", list(BAD_SETTINGS.values()), ids=list(BAD_SETTINGS))
def test_invalid_setting_is_a_usage_error_naming_the_key(pytester: pytest.Pytester, ini: dict[str, str],
                                                          args: tuple[str, ...], fragment: str) -> None:
    write_ini(pytester, **ini)
    write_tests(pytester, diffbench_test())
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fragment in _text(result)


def test_update_implies_diffbench_and_collect_only_leaves_no_run(pytester: pytest.Pytester) -> None:
    write_tests(pytester, diffbench_test())
    pytester.runpytest_subprocess("--diffbench", "--collect-only", "-q", "-p", "no:cacheprovider").assert_outcomes()
    assert not (output_dir(pytester) / "latest").exists()
    assert list((output_dir(pytester) / "runs").iterdir()) == []

    result = pytester.runpytest_subprocess("--diffbench-update", "--diffbench-lpips=off", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert latest_rows(pytester)[0]["baseline_action"] == "created"


def test_xdist_workers_share_the_cpu_threads(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    write_tests(pytester, diffbench_test(sweep="seeds=[0, 1], steps=2", body="""
        import os, torch
        diffbench.generate("a red cube")
        assert torch.get_num_threads() == max(1, os.cpu_count() // 2)
    """))
    run(pytester, "--diffbench-update", "-n", "2").assert_outcomes(passed=2)


def test_run_folder_has_environment_summary_and_junit_properties(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = pytester.path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    write_tests(pytester, diffbench_test(sweep="seeds=[0, 1], steps=2"))
    result = run(pytester, "--diffbench-update=missing", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    run_dir = latest_run_dir(pytester)

    environment = read_json(run_dir / "environment.json")
    assert "--diffbench-update=missing" in environment["command"]
    assert [device["device_name"] for device in environment["devices"]] == [latest_rows(pytester)[0]["device_name"]]
    assert environment["versions"]["pytest-diffbench"]

    summary = (run_dir / "summary.md").read_text()
    assert f"## diffbench run `{run_dir.name}`" in summary and "**2** passed" in summary
    assert summary.count("| test_case[seed") == 2
    assert step_summary.read_text() == "earlier step\n" + summary

    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count('name="diffbench_outcome" value="passed"') == 2
    assert 'name="diffbench_ssim" value="1.0"' in junit
    text = _text(result)
    assert "diffbench: 2 cases: 2 passed" in text and f"summary: {run_dir / 'summary.md'}" in text

    bundle = run_dir / f"diffbench-{run_dir.name}.zip"
    assert f"bundle:  {bundle}" in text and f"Bundle: `{bundle.name}`" in summary
    assert bundle.read_bytes() == build_bundle(run_dir, run_dir.name, "failures")  # rebuilt: the same bytes
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert {"summary.md", "environment.json", "results.csv", "plot.png", "report.html"} <= set(names)
    assert any(name.startswith("grids/sheets/") for name in names)
    assert (run_dir / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [name for name in names if name.startswith("images/")]  # every case passed
