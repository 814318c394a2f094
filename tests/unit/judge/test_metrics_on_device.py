"""SSIM, PSNR and LPIPS in torch (the path a CUDA pipeline's metrics take) against the host
reference: scikit-image's SSIM and numpy's PSNR, on real photos from scikit-image.

No GPU is needed: the torch code is device-agnostic, so it runs here on the CPU, and the
device path of ``score_images`` is taken on the CPU by adding ``cpu`` to
``TORCH_DEVICE_TYPES``. The module is marked ``model``: importing torch and torchmetrics costs
10-30 s per process on a busy 2-core machine (about 3 s on top of diffusers), which the quick
suite does not pay; torch float64 convolutions are also slow on the CPU (seconds at 512 px).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from forked_pytest import MODEL, run_python  # tests/suite_plugin: forked from a warm server
from PIL import Image, ImageFilter
from skimage import data

from pytest_diffbench.judge.metrics import REGISTRY, Score, score_images
from pytest_diffbench.judge.metrics import device as device_module
from pytest_diffbench.judge.metrics.device import DeviceImage, runs_on_torch
from pytest_diffbench.judge.metrics.images import split_frames, to_rgb_array
from pytest_diffbench.judge.metrics.psnr import psnr, psnr_on_device
from pytest_diffbench.judge.metrics.ssim import ssim, ssim_on_device

from .test_metrics import run_snippet, stand_in_torch_home  # noqa: F401 (a fixture)

pytestmark = pytest.mark.model

#: The issue's bound is 1e-4; float64 torch lands within 1e-9 of scikit-image.
SSIM_TOLERANCE = 1e-6
PHOTOS = ("astronaut", "coffee", "chelsea")
PERTURBATIONS = ("identical", "noise", "blur", "shift")


def photo(name: str, height: int, width: int) -> np.ndarray:
    image = Image.fromarray(getattr(data, name)()).resize((width, height), Image.LANCZOS)
    return to_rgb_array(image)


def perturbed(array: np.ndarray, how: str, seed: int = 0) -> np.ndarray:
    """``array`` unchanged, with Gaussian noise (sigma 8 levels), blurred (radius 1.5), or shifted 2 px right."""
    if how == "identical":
        return array.copy()
    if how == "noise":
        noisy = array + np.random.default_rng(seed).normal(0.0, 8.0, array.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)
    if how == "blur":
        return to_rgb_array(Image.fromarray(array).filter(ImageFilter.GaussianBlur(1.5)))
    return np.roll(array, 2, axis=1)


def torch_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(ssim_on_device(DeviceImage.upload(a, "cpu"), DeviceImage.upload(b, "cpu"))[0])


def check_agreement(a: np.ndarray, b: np.ndarray) -> None:
    expected = ssim(a, b)
    assert abs(torch_ssim(a, b) - expected) < SSIM_TOLERANCE, expected
    assert float(psnr_on_device(DeviceImage.upload(a, "cpu"), DeviceImage.upload(b, "cpu"))[0]) == (
        pytest.approx(psnr(a, b), rel=1e-12, abs=0))


@pytest.mark.parametrize("how", PERTURBATIONS)
@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("size", [(64, 64), (3, 5), (7, 7), (67, 131)], ids=lambda s: f"{s[1]}x{s[0]}")
def test_torch_ssim_and_psnr_equal_scikit_image_and_numpy(size: tuple[int, int], name: str, how: str) -> None:
    a = photo(name, *size)
    check_agreement(a, perturbed(a, how))


@pytest.mark.parametrize(("name", "size", "how"), [
    ("astronaut", (512, 512), "noise"), ("coffee", (512, 512), "blur"), ("chelsea", (512, 512), "shift"),
    ("chelsea", (513, 1023), "noise"), ("astronaut", (1024, 1024), "noise"), ("coffee", (1024, 1024), "shift"),
], ids=str)
def test_torch_ssim_equals_scikit_image_on_large_photos(name: str, size: tuple[int, int], how: str) -> None:
    a = photo(name, *size)
    check_agreement(a, perturbed(a, how))


@pytest.mark.parametrize("level", [250, 128, 5])
def test_torch_ssim_is_exact_on_nearly_flat_images(level: int) -> None:
    """Bright flat pictures with a little noise (a white background): float32 variances would be
    up to 8e-4 SSIM off here, float64 is not."""
    rng = np.random.default_rng(level)
    flat = np.full((48, 48, 3), level, dtype=np.uint8)
    a = np.clip(flat + rng.integers(-2, 3, flat.shape), 0, 255).astype(np.uint8)
    b = np.clip(flat + rng.integers(-1, 2, flat.shape), 0, 255).astype(np.uint8)
    assert abs(torch_ssim(a, b) - ssim(a, b)) < SSIM_TOLERANCE


def test_identical_images_score_one_and_infinite_psnr_in_torch() -> None:
    a = DeviceImage.upload(photo("coffee", 40, 60), "cpu")
    assert float(ssim_on_device(a, a)[0]) == pytest.approx(1.0, abs=1e-12)
    assert float(psnr_on_device(a, a)[0]) == math.inf


def test_device_images_hold_every_frame_of_a_strip_as_one_batch(torch: ModuleType) -> None:
    strip = photo("astronaut", 32, 128)
    other = perturbed(strip, "noise")
    a, b = DeviceImage.upload(strip, "cpu", frames=4), DeviceImage.upload(other, "cpu", frames=4)
    assert tuple(a.pixels.shape) == (4, 3, 32, 32) and a.pixels.dtype == torch.float64
    expected = [ssim(x, y) for x, y in zip(split_frames(strip, 4), split_frames(other, 4))]
    assert ssim_on_device(a, b).tolist() == pytest.approx(expected, abs=SSIM_TOLERANCE)


def test_ssim_takes_device_images_and_arrays_alike() -> None:
    a = photo("chelsea", 30, 45)
    b = perturbed(a, "blur")
    assert ssim(DeviceImage.upload(a, "cpu"), b) == pytest.approx(ssim(a, b), abs=SSIM_TOLERANCE)
    assert ssim(a, DeviceImage.upload(b, "cpu")) == pytest.approx(ssim(a, b), abs=SSIM_TOLERANCE)


def test_sizes_that_differ_or_are_too_small_raise_one_line() -> None:
    small = DeviceImage.upload(np.zeros((2, 8, 3), np.uint8), "cpu")
    with pytest.raises(ValueError, match=r"at least 3x3 px, got 8x2"):
        ssim_on_device(small, small)
    with pytest.raises(ValueError, match="one size"):
        ssim_on_device(DeviceImage.upload(photo("coffee", 8, 8), "cpu"), DeviceImage.upload(photo("coffee", 9, 8), "cpu"))


def test_only_cuda_runs_metrics_in_torch() -> None:
    assert runs_on_torch("cuda") and runs_on_torch("cuda:1")
    assert not runs_on_torch("cpu") and not runs_on_torch("mps")


# --- score_images on the device path ------------------------------------------------


@pytest.fixture
def cpu_as_device(monkeypatch: pytest.MonkeyPatch, torch: ModuleType) -> dict[str, int]:
    """``score_images`` on ``cpu`` takes the device path; counts uploads and host syncs."""
    monkeypatch.setattr(device_module, "TORCH_DEVICE_TYPES", ("cpu",))
    counts = {"uploads": 0, "syncs": 0}
    upload = DeviceImage.upload.__func__  # type: ignore[attr-defined]

    def counted_upload(cls, *args, **kwargs):
        counts["uploads"] += 1
        return upload(cls, *args, **kwargs)

    monkeypatch.setattr(DeviceImage, "upload", classmethod(counted_upload))
    for name in ("tolist", "item", "__float__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            counts["syncs"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


def scores(output, baseline, device: str = "cpu", frames: int = 1) -> dict[str, Score]:
    return score_images(output, baseline, prompt="", device=device, modes={"lpips": "off"}, frames=frames)


def host_scores(output, baseline, frames: int = 1) -> dict[str, Score]:
    assert not runs_on_torch("cpu")
    return scores(output, baseline, frames=frames)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
@pytest.mark.parametrize("how", PERTURBATIONS)
def test_score_images_on_the_device_equals_the_host(mode: str, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base = photo("astronaut", 48, 64)
    output = Image.fromarray(perturbed(base, how)).convert(mode)
    baseline = Image.fromarray(base).convert(mode)
    expected = host_scores(output, baseline)
    monkeypatch.setattr(device_module, "TORCH_DEVICE_TYPES", ("cpu",))
    assert_same_scores(scores(output, baseline), expected, how)


def assert_same_scores(got: dict[str, Score], expected: dict[str, Score], how: str) -> None:
    assert list(got) == list(expected) == ["ssim", "psnr", "lpips"]
    assert got["ssim"].value == pytest.approx(expected["ssim"].value, abs=SSIM_TOLERANCE)
    assert got["psnr"].value == pytest.approx(expected["psnr"].value, rel=1e-12)
    assert got["lpips"] == expected["lpips"] == Score(None, "off")
    if how == "identical":
        assert got["psnr"].value == math.inf


@pytest.mark.gpu
@pytest.mark.parametrize("how", PERTURBATIONS)
def test_score_images_on_cuda_equals_the_host(how: str, torch: ModuleType) -> None:
    """The real CUDA path, where the CPU stands in for it above (skipped without CUDA)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    base = photo("astronaut", 512, 512)
    output = perturbed(base, how)
    assert runs_on_torch("cuda")
    assert_same_scores(scores(output, base, device="cuda"), host_scores(output, base), how)


def test_score_images_uploads_each_image_once_and_syncs_once(cpu_as_device: dict[str, int]) -> None:
    base = photo("coffee", 40, 40)
    got = scores(perturbed(base, "noise"), base)
    assert got["ssim"].status == got["psnr"].status == "ok"
    assert cpu_as_device == {"uploads": 2, "syncs": 1}


def test_score_images_scores_every_frame_of_a_video_on_the_device_in_one_sync(cpu_as_device: dict[str, int]) -> None:
    base = photo("chelsea", 32, 96)
    output = base.copy()
    output[:, 32:64] = perturbed(base[:, 32:64], "noise")  # frame 2 differs
    got = scores(output, base, frames=3)
    assert cpu_as_device == {"uploads": 2, "syncs": 1}
    device_module.TORCH_DEVICE_TYPES = ()  # the fixture's monkeypatch restores it
    expected = host_scores(output, base, frames=3)
    for name in ("ssim", "psnr"):
        assert got[name].frame_values == pytest.approx(expected[name].frame_values, abs=SSIM_TOLERANCE)
        assert got[name].worst_frame == expected[name].worst_frame == 2
    assert got["psnr"].frame_values[0] == math.inf


def test_score_images_with_no_baseline_uploads_nothing(cpu_as_device: dict[str, int]) -> None:
    assert scores(photo("coffee", 16, 16), None) == {}
    assert cpu_as_device["uploads"] == 0


def test_every_built_in_full_reference_metric_runs_on_the_device() -> None:
    assert {metric.name for metric in REGISTRY if isinstance(metric, device_module.DeviceMetric)} == {
        "ssim", "psnr", "lpips"}


@pytest.mark.subprocess
def test_lpips_on_the_device_path_equals_the_host(stand_in_torch_home: Path) -> None:  # noqa: F811
    result = run_snippet(
        """
        from pytest_diffbench.judge.metrics import device
        host = compare(astronaut, noised, "required")["lpips"].value
        strip = Image.fromarray(np.concatenate([np.asarray(astronaut), np.asarray(coffee)], axis=1))
        other = Image.fromarray(np.concatenate([np.asarray(noised), np.asarray(astronaut)], axis=1))
        host_frames = score_images(strip, other, prompt="", device="cpu", modes={"lpips": "required"}, frames=2)
        device.TORCH_DEVICE_TYPES = ("cpu",)
        result["host"] = host
        result["device"] = compare(astronaut, noised, "required")["lpips"].value
        result["host_frames"] = list(host_frames["lpips"].frame_values)
        result["device_frames"] = list(score_images(strip, other, prompt="", device="cpu",
                                                    modes={"lpips": "required"}, frames=2)["lpips"].frame_values)
        """,
        stand_in_torch_home,
        with_images=True,
    )
    assert result["host"] > 0
    assert result["device"] == pytest.approx(result["host"], rel=1e-5)
    assert result["device_frames"] == pytest.approx(result["host_frames"], rel=1e-5)


@pytest.mark.subprocess
def test_the_metrics_benchmark_prints_a_row_per_path_with_the_same_ssim() -> None:
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "metrics.py"
    proc = run_python([str(script), "--sizes", "9", "--cpu-runs", "1", "--runs", "1", "--threads", "1"], preload=MODEL,
                      timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.split()[:1] == ["9"]]
    paths = [" ".join(row[1:-4]) for row in rows]
    assert paths[:2] == ["scikit-image", "torch cpu"]
    assert rows[0][-2] == "1.000x"
    assert all(float(row[-1]) < SSIM_TOLERANCE for row in rows)


def test_the_metrics_benchmark_refuses_bad_sizes_in_one_line() -> None:
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "metrics.py"
    proc = run_python([str(script), "--sizes", "2"], preload=MODEL, timeout=600)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("--sizes must be >= 3 px, --runs, --cpu-runs and --threads >= 1")


def test_cuda_metrics_run_on_one_stream_of_their_own_per_device(monkeypatch: pytest.MonkeyPatch, torch: ModuleType) -> None:
    """Scored from the background writer's thread, the metrics must not queue behind the next
    generation on the default stream: each CUDA device gets one stream, made once, entered for
    the block; the CPU gets none. (torch.cuda's stream API is faked: no GPU here.)"""
    made: list[str] = []
    entered: list[object] = []

    class FakeStream:
        def __init__(self, device: str) -> None:
            made.append(device)

    class Enter:
        def __init__(self, stream: object) -> None:
            self.stream = stream

        def __enter__(self) -> None:
            entered.append(self.stream)

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "stream", Enter)
    monkeypatch.setattr(device_module, "_STREAMS", {})
    for device in ("cuda:1", "cuda:1", "cpu", "cuda:2"):
        with device_module.metric_stream(device):
            pass
    assert made == ["cuda:1", "cuda:2"]
    assert len(entered) == 3 and entered[0] is entered[1] is not entered[2]
