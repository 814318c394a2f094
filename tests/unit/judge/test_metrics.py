"""The metrics (judge.metrics) on real photos from scikit-image, and score_images.

LPIPS tests run in subprocesses: torch.hub's cache directory ($TORCH_HOME) and
the module's scorer cache are per-process state. A randomly initialised
AlexNet stands in for the real checkpoint, so the real loading path runs
without any download; the subprocess records any attempt to reach the network.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from forked_pytest import LIGHT, MODEL, run_python  # tests/suite_plugin: a child forked from a warm server
from PIL import Image, ImageFilter
from skimage import data

from pytest_diffbench.judge.metrics import REGISTRY, ImageSizeMismatch, MetricUnavailable, Score, score_images
from pytest_diffbench.judge.metrics.images import to_rgb_array
from pytest_diffbench.judge.metrics.lpips import ALEXNET_CHECKPOINT
from pytest_diffbench.judge.metrics.psnr import psnr
from pytest_diffbench.judge.metrics.ssim import ssim

REPO_ROOT = Path(__file__).resolve().parents[3]


def compare_images(output, baseline, lpips_mode: str = "auto") -> dict[str, Score]:
    return score_images(output, baseline, prompt="", device="cpu", modes={"lpips": lpips_mode})


def photo(name: str, width: int, height: int | None = None) -> Image.Image:
    array = getattr(data, name)()
    return Image.fromarray(array).resize((width, height or width), Image.LANCZOS)


def add_noise(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.fixture(params=[64, 256], ids=lambda n: f"{n}px")
def astronaut(request: pytest.FixtureRequest) -> np.ndarray:
    return to_rgb_array(photo("astronaut", request.param))


# --- conversion -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "RGB"])
def test_to_rgb_array_converts_any_mode_to_uint8_rgb(mode: str) -> None:
    image = photo("astronaut", 40, 30).convert(mode)
    array = to_rgb_array(image)
    assert array.shape == (30, 40, 3)
    assert array.dtype == np.uint8


def test_to_rgb_array_replicates_grayscale_and_drops_alpha() -> None:
    rgb = photo("astronaut", 32)
    gray = np.asarray(rgb.convert("L"))
    from_gray = to_rgb_array(rgb.convert("L"))
    assert all(np.array_equal(from_gray[..., c], gray) for c in range(3))

    rgba = rgb.copy()
    rgba.putalpha(0)
    assert np.array_equal(to_rgb_array(rgba), np.asarray(rgb))


# --- SSIM / PSNR ------------------------------------------------------------


def test_identical_images_score_perfectly_without_warnings(astronaut: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ssim(astronaut, astronaut.copy()) == 1.0
        assert psnr(astronaut, astronaut.copy()) == math.inf


def test_noise_lowers_scores_monotonically(astronaut: np.ndarray) -> None:
    light = add_noise(astronaut, 5)
    heavy = add_noise(astronaut, 20)
    assert 1.0 > ssim(astronaut, light) > ssim(astronaut, heavy)
    assert math.isfinite(psnr(astronaut, light))
    assert psnr(astronaut, light) > psnr(astronaut, heavy)


def test_blur_lowers_scores(astronaut: np.ndarray) -> None:
    blurred = to_rgb_array(
        Image.fromarray(astronaut).filter(ImageFilter.GaussianBlur(1))
    )
    assert ssim(astronaut, blurred) < 0.95
    assert math.isfinite(psnr(astronaut, blurred))


def test_different_photos_score_far_lower_than_a_noised_copy(astronaut: np.ndarray) -> None:
    size = astronaut.shape[1]
    coffee = to_rgb_array(photo("coffee", size))
    noised = add_noise(astronaut, 20)
    assert ssim(astronaut, coffee) < 0.2
    assert ssim(astronaut, coffee) < ssim(astronaut, noised) - 0.3
    assert psnr(astronaut, coffee) < psnr(astronaut, noised) - 10


def test_psnr_of_constant_offset_matches_formula() -> None:
    base = np.clip(to_rgb_array(photo("astronaut", 64)), 0, 245)
    shifted = base + 10
    assert psnr(base, shifted) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    assert psnr(shifted, base) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)


@pytest.mark.parametrize("metric", [ssim, psnr])
def test_size_mismatch_names_both_sizes(metric) -> None:
    a = to_rgb_array(photo("astronaut", 64, 48))
    b = to_rgb_array(photo("astronaut", 48, 64))
    with pytest.raises(ImageSizeMismatch, match="64x48.*48x64"):
        metric(a, b)
    with pytest.raises(ValueError, match="64x48.*48x64"):  # callers that catch ValueError see it too
        metric(a, b)


def test_compare_images_never_resizes() -> None:
    with pytest.raises(ImageSizeMismatch, match="64x64.*32x32"):
        compare_images(photo("astronaut", 64), photo("astronaut", 32), lpips_mode="off")


def test_non_rgb_arrays_are_rejected() -> None:
    gray = np.zeros((16, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        ssim(gray, gray)


@pytest.mark.parametrize("side", [3, 4, 6])
def test_tiny_images_work(side: int) -> None:
    a = to_rgb_array(photo("astronaut", side))
    b = add_noise(a, 30)
    assert ssim(a, a) == 1.0
    assert ssim(a, b) < 1.0
    assert math.isfinite(psnr(a, b))


def test_images_below_three_pixels_raise_clearly() -> None:
    a = to_rgb_array(photo("astronaut", 2, 8))
    with pytest.raises(ValueError, match=r"at least 3x3 px, got 2x8"):
        ssim(a, a)


# --- compare_images -----------------------------------------------------------


def test_compare_images_with_lpips_off_converts_inputs() -> None:
    rgb = photo("astronaut", 64)
    scores = compare_images(rgb.convert("RGBA"), rgb, lpips_mode="off")
    assert scores == {"ssim": Score(1.0), "psnr": Score(math.inf), "lpips": Score(None, "off")}

    gray = compare_images(rgb.convert("L"), rgb.convert("L").convert("RGB"), lpips_mode="off")
    assert gray["ssim"].value == 1.0


def test_compare_images_rejects_unknown_lpips_mode() -> None:
    image = photo("astronaut", 16)
    with pytest.raises(ValueError, match="auto, required, off") as excinfo:
        compare_images(image, image, lpips_mode="on")
    assert "'on'" in str(excinfo.value)


def test_full_reference_metrics_need_a_baseline() -> None:
    assert score_images(photo("astronaut", 16), None, prompt="", device="cpu", modes={}) == {}


def test_required_metric_that_cannot_run_raises() -> None:
    image = photo("astronaut", 16)  # below LPIPS's 31 px: unavailable before any weights are looked for
    with pytest.raises(MetricUnavailable, match="31x31"):
        compare_images(image, image, lpips_mode="required")
    status = compare_images(image, image, lpips_mode="auto")["lpips"]
    assert status.value is None and status.status.startswith("unavailable: ") and "16x16" in status.status


def test_the_registry_scores_in_column_order() -> None:
    assert [metric.name for metric in REGISTRY] == ["ssim", "psnr", "lpips"]
    REGISTRY.register(next(iter(REGISTRY)))  # the same metric again: nothing changes
    with pytest.raises(ValueError, match=r"another metric of that name, 'ssim' \(.*SSIM\), is already registered"):
        REGISTRY.register(dataclasses.replace(next(iter(REGISTRY)), label="other"))
    assert [metric.name for metric in REGISTRY] == ["ssim", "psnr", "lpips"]


# --- LPIPS, each in a fresh interpreter -----------------------------------------

_PRELUDE = """
import json, socket, sys
network_calls = []

def refuse(name):
    def refuse_call(*args, **kwargs):
        network_calls.append(name)
        raise OSError(f"tests forbid network access ({name})")
    return refuse_call

socket.getaddrinfo = refuse("socket.getaddrinfo")
socket.create_connection = refuse("socket.create_connection")
if GUARD_HUB:
    import torch.hub
    torch.hub.download_url_to_file = refuse("torch.hub.download_url_to_file")
result = {}
"""

_EPILOGUE = """
result["network_calls"] = network_calls
print(json.dumps(result))
"""


_IMAGES = """
import numpy as np
from PIL import Image
from skimage import data
from pytest_diffbench.judge.metrics import lpips as metrics, score_images

def compare(a, b, mode):
    return score_images(a, b, prompt="", device="cpu", modes={"lpips": mode})

def photo(name, size):
    return Image.fromarray(getattr(data, name)()).resize((size, size), Image.LANCZOS)

astronaut = photo("astronaut", 64)
coffee = photo("coffee", 64)
rng = np.random.default_rng(0)
noised = Image.fromarray(np.clip(
    np.asarray(astronaut) + rng.normal(0, 5, (64, 64, 3)), 0, 255).astype(np.uint8))
"""


def run_snippet(
    code: str, torch_home: Path, *, with_images: bool = False, guard_hub: bool = True, preload: tuple[str, ...] = MODEL
) -> dict:
    """Run ``code`` in a child with $TORCH_HOME set; return its ``result`` dict.

    The child is forked from a server that has imported ``preload`` (torch and diffusers by
    default; :data:`~forked_pytest.LIGHT` for a snippet that checks what gets imported:
    tests/suite_plugin/forked_pytest.py).

    The snippet fills the dict ``result``; with ``with_images`` it can use the
    photos defined in ``_IMAGES``. The prelude makes every network path raise
    and the helper fails the test if any was taken.
    """
    script = "".join(
        [
            f"GUARD_HUB = {guard_hub}\n",
            _PRELUDE,
            _IMAGES if with_images else "",
            textwrap.dedent(code),
            _EPILOGUE,
        ]
    )
    env = dict(os.environ)
    env["TORCH_HOME"] = str(torch_home)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    proc = run_python(["-c", script], env=env, preload=preload, timeout=600)
    assert proc.returncode == 0, f"snippet failed:\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.pop("network_calls") == []
    return result


def checkpoint_in(torch_home: Path) -> Path:
    return torch_home / "hub" / "checkpoints" / ALEXNET_CHECKPOINT


@pytest.fixture(scope="module")
def stand_in_torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A $TORCH_HOME whose hub cache holds a randomly initialised AlexNet checkpoint."""
    torch_home = tmp_path_factory.mktemp("torch_home")
    run_snippet(
        """
        import os, torch, torchvision
        torch.manual_seed(0)
        path = os.path.join(torch.hub.get_dir(), "checkpoints", "alexnet-owt-7be5be79.pth")
        os.makedirs(os.path.dirname(path))
        torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
        """,
        torch_home,
    )
    assert checkpoint_in(torch_home).is_file()
    return torch_home


@pytest.mark.subprocess
@pytest.mark.model
def test_lpips_loads_local_checkpoint_and_ranks_images(stand_in_torch_home: Path) -> None:
    result = run_snippet(
        """
        import math, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scorer = metrics.load_lpips("cpu")
        result["load_warnings"] = [str(w.message) for w in caught]
        result["cached"] = metrics.load_lpips("cpu") is scorer
        result["path"] = str(metrics.alexnet_checkpoint_path())
        warnings.simplefilter("error")  # scoring must not warn either

        def score(a, b, mode="required"):
            s = compare(a, b, mode)["lpips"]
            assert s.status == "ok", s.status
            assert isinstance(s.value, float) and math.isfinite(s.value)
            return s.value

        result["identical"] = score(astronaut, astronaut.copy())
        result["noised"] = score(astronaut, noised)
        result["coffee"] = score(astronaut, coffee)
        result["auto"] = score(astronaut, coffee, mode="auto")
        result["big"] = score(photo("astronaut", 256), photo("coffee", 256))

        # lpips's own conversion of uint8 HxWx3 to NCHW in [-1, 1] as the reference.
        import lpips, torch
        with torch.no_grad():
            result["reference"] = scorer.model(
                lpips.im2tensor(np.asarray(astronaut)), lpips.im2tensor(np.asarray(coffee))
            ).item()
        """,
        stand_in_torch_home,
        with_images=True,
    )
    assert result["path"] == str(checkpoint_in(stand_in_torch_home))
    assert result["load_warnings"] == []
    assert result["cached"] is True
    assert abs(result["identical"]) < 1e-6
    assert 0 < result["noised"] < result["coffee"]
    assert result["auto"] == result["coffee"]
    assert result["coffee"] == pytest.approx(result["reference"], rel=1e-5)
    assert result["big"] > 0


@pytest.mark.subprocess
@pytest.mark.model
def test_lpips_rejects_images_below_alexnet_minimum(stand_in_torch_home: Path) -> None:
    result = run_snippet(
        """
        small, smallest = photo("astronaut", 31), photo("astronaut", 30)
        result["at_minimum"] = compare(small, small, "required")["lpips"].value
        auto = compare(smallest, smallest, "auto")["lpips"]
        result["auto"] = [auto.value, auto.status]
        try:
            compare(smallest, smallest, "required")
        except metrics.LpipsUnavailable as exc:
            result["required"] = str(exc)
        try:
            metrics.load_lpips("cpu")(np.asarray(smallest), np.asarray(smallest))
        except metrics.LpipsUnavailable as exc:
            result["scorer"] = str(exc)
        """,
        stand_in_torch_home,
        with_images=True,
    )
    assert abs(result["at_minimum"]) < 1e-6
    lpips_value, status = result["auto"]
    assert lpips_value is None
    assert status.startswith("unavailable: ") and "31x31" in status and "30x30" in status
    assert "31x31" in result["required"]
    assert "31x31" in result["scorer"]


@pytest.mark.subprocess
@pytest.mark.model
def test_missing_checkpoint_is_reported_without_download(tmp_path: Path) -> None:
    result = run_snippet(
        """
        result["path"] = str(metrics.alexnet_checkpoint_path())
        auto = compare(astronaut, coffee, "auto")
        result["auto"] = [auto["lpips"].value, auto["lpips"].status, auto["ssim"].value]
        from pytest_diffbench.judge.metrics import unavailable_advice
        result["advice"] = unavailable_advice("lpips", auto["lpips"].status)
        try:
            compare(astronaut, coffee, "required")
        except metrics.LpipsUnavailable as exc:
            result["required"] = str(exc)
        """,
        tmp_path,
        with_images=True,
    )
    missing = str(checkpoint_in(tmp_path))
    assert result["path"] == missing
    lpips_value, status, ssim_value = result["auto"]
    assert lpips_value is None
    # the status cell is short; the advice naming the file is printed once per run
    assert status == "unavailable: no AlexNet weights, see the run's warning"
    assert ssim_value < 0.2
    for message in (result["required"], result["advice"]):
        for needle in (
            missing,
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "TORCH_HOME",
            "diffbench_lpips = off",
        ):
            assert needle in message
    assert not checkpoint_in(tmp_path).exists()


@pytest.mark.subprocess
@pytest.mark.model
def test_unreadable_checkpoint_raises_naming_the_file(tmp_path: Path) -> None:
    path = checkpoint_in(tmp_path)
    path.parent.mkdir(parents=True)
    result = run_snippet(
        """
        import os, torch
        path = str(metrics.alexnet_checkpoint_path())
        errors = {}
        for kind in ("random bytes", "wrong keys", "auto"):
            if kind == "random bytes":
                with open(path, "wb") as f:
                    f.write(os.urandom(4096))
            elif kind == "wrong keys":
                torch.save({"not_alexnet.weight": torch.zeros(1)}, path)
            if kind == "auto":
                scores = compare(astronaut, coffee, "auto")["lpips"]
                errors[kind] = [scores.value, scores.status]
                continue
            try:
                compare(astronaut, coffee, "required")
            except metrics.LpipsUnavailable as exc:
                errors[kind] = [str(exc), type(exc.__cause__).__name__]
        result.update(errors)
        """,
        tmp_path,
        with_images=True,
    )
    for kind in ("random bytes", "wrong keys"):
        message, cause = result[kind]
        assert str(path) in message
        assert "could not load" in message
        assert cause not in ("NoneType", "URLError")
    lpips_value, status = result["auto"]
    assert lpips_value is None
    assert status == "unavailable: the AlexNet weights do not load, see the run's warning"


@pytest.mark.subprocess
def test_lpips_off_imports_neither_lpips_nor_torch(tmp_path: Path) -> None:
    result = run_snippet(
        """
        import pytest_diffbench
        torch_before = "torch" in sys.modules
        from pytest_diffbench.judge.metrics import score_images
        from PIL import Image
        from skimage import data
        image = Image.fromarray(data.astronaut())
        scores = score_images(image, image, prompt="", device="cpu", modes={"lpips": "off"})
        result["status"] = scores["lpips"].status
        result["lpips_imported"] = "lpips" in sys.modules
        result["torch_imported_by_metrics"] = not torch_before and "torch" in sys.modules
        """,
        tmp_path,
        guard_hub=False,
        preload=LIGHT,  # torch not imported before the snippet
    )
    assert result == {
        "status": "off",
        "lpips_imported": False,
        "torch_imported_by_metrics": False,
    }
