"""GPU paths: CUDA timing, peak VRAM, NVML device name and driver, LPIPS on the GPU, xdist.

Skipped without CUDA (CI has none); run on a GPU machine by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TEST_FILE = textwrap.dedent("""
    import pytest_diffbench as diffbench

    @diffbench.sweep(seeds=[0, 1], samplers=["Euler", "DPM++ 2M Karras"], steps=4, cfg=5.5)
    def test_gpu(diffbench):
        diffbench.generate("a red circle on a blue background")
""")


def _rows(pytester: pytest.Pytester) -> list[dict[str, str]]:
    run_id = (pytester.path / ".diffbench" / "latest").read_text().strip()
    with open(pytester.path / ".diffbench" / "runs" / run_id / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _stand_in_alexnet(home: Path) -> None:
    import torchvision

    torch.manual_seed(0)
    path = home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)


def test_cuda_case_records_vram_driver_and_device(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(pytester.path / "torch-home"))
    _stand_in_alexnet(pytester.path / "torch-home")
    pytester.makepyfile(test_gpu=TEST_FILE)
    args = ["--diffbench", "--diffbench-device=cuda", "--diffbench-lpips=required", "-p", "no:cacheprovider"]

    pytester.runpytest_subprocess(*args, "--diffbench-update").assert_outcomes(passed=4)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=4)

    rows = _rows(pytester)
    assert {row["pin"] for row in rows} == {"cuda-float16"}
    for row in rows:
        assert row["device"] == "cuda" and row["dtype"] == "float16"
        assert float(row["peak_vram_mb"]) > 0
        assert row["device_name"] == torch.cuda.get_device_name(0)
        assert row["driver"], "the driver version comes from NVML"
        assert row["cuda"] == torch.version.cuda
        assert float(row["lpips"]) < 1e-6 and row["lpips_status"] == "ok"
        assert float(row["ssim"]) == 1.0
        assert row["time_check"] == "off"


def test_vram_budget_fails_on_cuda(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gpu=TEST_FILE.replace("def test_gpu", "@diffbench.tolerance(max_vram_mb=0.001)\ndef test_gpu"))
    args = ["--diffbench", "--diffbench-device=cuda", "--diffbench-lpips=off", "--diffbench-update", "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*peak VRAM*<= 0.001 MiB*FAIL*"])
    assert {row["outcome"] for row in _rows(pytester)} == {"failed-memory"}


def test_xdist_on_one_gpu(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gpu=TEST_FILE)
    args = ["--diffbench", "--diffbench-device=cuda", "--diffbench-lpips=off", "-p", "no:cacheprovider"]
    pytester.runpytest_subprocess(*args, "--diffbench-update").assert_outcomes(passed=4)
    pytester.runpytest_subprocess(*args, "-n", "2").assert_outcomes(passed=4)
    rows = _rows(pytester)
    assert {row["worker"] for row in rows} == {"gw0", "gw1"}
    assert all(float(row["ssim"]) == 1.0 for row in rows)
