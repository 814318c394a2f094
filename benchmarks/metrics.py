"""SSIM + PSNR of one image pair: scikit-image/numpy on the host against torch on a device.

Times ``score_images`` (LPIPS off) as a case runs it: the host path (``device="cpu"``:
scikit-image SSIM, numpy PSNR), the torch path on the CPU for each ``--threads`` count (taken by
adding ``cpu`` to ``TORCH_DEVICE_TYPES``), and on CUDA when present: from host arrays (the
upload of both images included) and on tensors already there (``ssim_on_device`` +
``psnr_on_device``). Each variant runs once to warm up, then the variants take turns
(interleaved) for ``--runs`` rounds on CUDA (synchronised before and after each call) and
``--cpu-runs`` rounds on the CPU; the table gives median ms, the ratio to scikit-image on the
CPU, and the largest SSIM difference from scikit-image. The pair is scikit-image's astronaut
photo resized to each size and the same with Gaussian noise (sigma 8 levels).

The issue's target: SSIM + PSNR of a 1024x1024 pair <= 5 ms on an H100/H200 (the ``cuda``
rows). Usage: python benchmarks/metrics.py [--sizes 1024 512 64] [--runs 50] [--cpu-runs 5]
[--threads 1 2] [--no-cpu-torch]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from PIL import Image
from skimage import data

from pytest_diffbench.judge.metrics import device as device_module
from pytest_diffbench.judge.metrics import score_images
from pytest_diffbench.judge.metrics.device import DeviceImage
from pytest_diffbench.judge.metrics.psnr import psnr_on_device
from pytest_diffbench.judge.metrics.ssim import ssim_on_device


@dataclass
class Variant:
    """One way of scoring the pair: a call returning (SSIM, PSNR), and its timings in s."""

    name: str
    threads: str
    call: Callable[[], tuple[float, float]]
    cuda: bool = False
    seconds: list[float] = field(default_factory=list)
    ssim: float = float("nan")

    def time_once(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        self.ssim = self.call()[0]
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - start)


def pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo at ``size`` x ``size`` px and a copy with Gaussian noise (sigma 8)."""
    image = np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS))
    noisy = image + np.random.default_rng(0).normal(0.0, 8.0, image.shape)
    return image, np.clip(noisy, 0, 255).astype(np.uint8)


def scored(output: np.ndarray, baseline: np.ndarray, device: str, torch_types: tuple[str, ...]) -> tuple[float, float]:
    """SSIM and PSNR from ``score_images`` on ``device`` with metrics in torch on ``torch_types``."""
    device_module.TORCH_DEVICE_TYPES = torch_types
    scores = score_images(output, baseline, prompt="", device=device, modes={"lpips": "off"})
    assert scores["ssim"].value is not None and scores["psnr"].value is not None
    return scores["ssim"].value, scores["psnr"].value


def on_device(output: DeviceImage, baseline: DeviceImage) -> tuple[float, float]:
    """SSIM and PSNR of a pair already on the device, one host sync."""
    values = torch.stack([ssim_on_device(baseline, output)[0], psnr_on_device(baseline, output)[0]]).tolist()
    return values[0], values[1]


def with_threads(threads: int, call: Callable[[], tuple[float, float]]) -> Callable[[], tuple[float, float]]:
    def run() -> tuple[float, float]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return call()
        finally:
            torch.set_num_threads(before)
    return run


def variants(size: int, args: argparse.Namespace) -> tuple[list[Variant], list[Variant]]:
    """(CPU variants, CUDA variants) for a pair of ``size`` px."""
    output, baseline = pair(size)
    cpu = [Variant("scikit-image", "-", lambda: scored(output, baseline, "cpu", ()))]
    if not args.no_cpu_torch:
        cpu += [Variant("torch cpu", str(n), with_threads(n, lambda: scored(output, baseline, "cpu", ("cpu",))))
                for n in args.threads]
    gpu: list[Variant] = []
    if torch.cuda.is_available():
        gpu.append(Variant("cuda from arrays", "-", lambda: scored(output, baseline, "cuda", ("cuda",)), cuda=True))
        there = (DeviceImage.upload(output, "cuda"), DeviceImage.upload(baseline, "cuda"))
        gpu.append(Variant("cuda on device", "-", lambda: on_device(*there), cuda=True))
    return cpu, gpu


def measure(group: list[Variant], rounds: int) -> None:
    for variant in group:
        variant.call()  # warm-up: imports, kernels, caches
    for _ in range(rounds):
        for variant in group:  # interleaved, so load on a shared machine hits every variant alike
            variant.time_once()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512, 64], help="square sides in px")
    parser.add_argument("--runs", type=int, default=50, help="timed rounds on CUDA (default 50)")
    parser.add_argument("--cpu-runs", type=int, default=5, help="timed rounds on the CPU (default 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU thread counts")
    parser.add_argument("--no-cpu-torch", action="store_true", help="skip torch on the CPU (slow at 1024 px)")
    args = parser.parse_args()
    if min(args.sizes) < 3 or min(args.runs, args.cpu_runs) < 1 or min(args.threads) < 1:
        parser.error("--sizes must be >= 3 px, --runs, --cpu-runs and --threads >= 1")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"torch {torch.__version__}, CUDA device: {device}, CPU rounds {args.cpu_runs}, CUDA rounds {args.runs}")
    print(f"{'size':>6} {'path':<18} {'threads':>7} {'median ms':>10} {'vs skimage':>10} {'|dSSIM|':>9}")
    for size in args.sizes:
        cpu, gpu = variants(size, args)
        measure(cpu, args.cpu_runs)
        measure(gpu, args.runs)
        reference_ms = statistics.median(cpu[0].seconds) * 1000
        for variant in cpu + gpu:
            ms = statistics.median(variant.seconds) * 1000
            print(f"{size:>6} {variant.name:<18} {variant.threads:>7} {ms:>10.2f} {ms / reference_ms:>9.3f}x "
                  f"{abs(variant.ssim - cpu[0].ssim):>9.1e}")


if __name__ == "__main__":
    main()
