"""GPU paths: CUDA timing, peak VRAM, NVML device name and driver, LPIPS on the GPU, xdist, batches.

Skipped without CUDA (CI has none); run on a GPU machine by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_diffbench.spec.outcomes import Outcome

from .test_seed_batches_builtin import MAX_ABS_DIFF, MIN_SSIM, batched_against_unbatched

pytestmark = [pytest.mark.gpu, pytest.mark.subprocess]

TEST_FILE = """
import pytest_diffbench as diffbench

@diffbench.sweep(seeds=[0, 1], samplers=["Euler", "DPM++ 2M Karras"], steps=4, cfg=5.5)
def test_gpu(diffbench):
    diffbench.generate("a red circle on a blue background")
"""
CUDA = ("--diffbench-device=cuda",)


@pytest.fixture(scope="session", autouse=True)
def _needs_cuda():
    """Skip without an NVIDIA CUDA device. NVML is asked first: where its library or driver is
    missing (CI, any machine without an NVIDIA GPU) the tests skip without importing torch,
    which would cost this test process seconds of CPU for nothing. Session-scoped, so that it
    runs before the session fixtures the tests ask for (the stand-in AlexNet weights)."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        pytest.skip(f"needs an NVIDIA CUDA device (NVML: {exc})")
    pynvml.nvmlShutdown()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return torch


def test_cuda_case_records_vram_driver_and_device(project, monkeypatch: pytest.MonkeyPatch,
                                                  torch_home_with_alexnet: Path, _needs_cuda) -> None:
    torch = _needs_cuda
    monkeypatch.setenv("TORCH_HOME", str(torch_home_with_alexnet))
    project.use_builtin_pipeline()
    project.pytester.makepyfile(test_gpu=TEST_FILE)

    project.run(*CUDA, update="all", lpips="required", subprocess=True).outcome.assert_outcomes(passed=4)
    run = project.run(*CUDA, lpips="required", subprocess=True)
    run.outcome.assert_outcomes(passed=4)

    rows = run.results
    assert {row.pin for row in rows} == {"cuda-float16"}
    for row in rows:
        assert (row.setting("device"), row.setting("dtype")) == ("cuda", "float16")
        assert row.measurement.peak_vram_mb > 0
        assert row.machine.device_name == torch.cuda.get_device_name(0)
        assert row.machine.driver, "the driver version comes from NVML"
        assert row.machine.cuda == torch.version.cuda
        assert row.scores["lpips"] < 1e-6 and row.metric_status["lpips"] == "ok"
        assert row.scores["ssim"] == 1.0
        assert row.time_check == "off"


def test_vram_budget_fails_on_cuda(project) -> None:
    project.use_builtin_pipeline()
    project.pytester.makepyfile(test_gpu=TEST_FILE.replace("def test_gpu", "@diffbench.tolerance(max_vram_mb=0.001)\ndef test_gpu"))
    run = project.run(*CUDA, update="all", subprocess=True)
    run.outcome.assert_outcomes(failed=4)
    run.outcome.stdout.fnmatch_lines(["*peak VRAM*<= 0.001 MiB*FAIL*"])
    assert {row.outcome for row in run.results} == {Outcome.FAILED_MEMORY}


def test_xdist_on_one_gpu(project) -> None:
    project.use_builtin_pipeline()
    project.pytester.makepyfile(test_gpu=TEST_FILE)
    project.run(*CUDA, update="all", subprocess=True).outcome.assert_outcomes(passed=4)
    run = project.run(*CUDA, "-n", "2", subprocess=True)
    run.outcome.assert_outcomes(passed=4)
    rows = run.results
    assert {row.worker for row in rows} == {"gw0", "gw1"}
    assert all(row.scores["ssim"] == 1.0 for row in rows)


def test_a_batch_on_cuda_is_within_a_grey_level_of_its_unbatched_twin(project, record_property) -> None:
    max_diff, min_ssim = batched_against_unbatched(project, record_property, *CUDA)
    assert max_diff <= MAX_ABS_DIFF and min_ssim >= MIN_SSIM
