"""What one diffbench case costs end to end, against the bare diffusers call it wraps.

Both are measured in the same process, on the same pipeline and device:

* bare: ``pipe(prompt, num_inference_steps=S, guidance_scale=G, generator=...)`` in a loop;
* diffbench: ``pytest --diffbench`` over a sweep of the same calls, each case's setup + call +
  teardown duration as pytest reports it (sampler swap, generation, config hash, fingerprint,
  PNG and config writes, baseline load, SSIM/PSNR/LPIPS, gates). The first case (pipeline build
  and warm-up) is reported separately.

The bare median is also the model's seconds per image (64x64, guidance on, batch of one).

Usage: python benchmarks/case_overhead.py [--cases 8] [--steps 20] [--model diffbench-tiny] [--device auto] [--lpips off]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch

from pytest_diffbench.run.pipelines import default_dtype, load_pipeline, resolve_device

PROMPT = "a red circle on a blue background"


class Durations:
    """Collects each test's setup + call + teardown seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration


def bare_seconds(model: str, device: torch.device, cases: int, steps: int) -> list[float]:
    pipe = load_pipeline(model, device=device, dtype=default_dtype(device))
    pipe(PROMPT, num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(0))  # warm-up
    out = []
    for seed in range(cases):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        pipe(PROMPT, negative_prompt="blurry", num_inference_steps=steps, guidance_scale=5.5,
             generator=torch.Generator("cpu").manual_seed(seed))
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - start)
    return out


def diffbench_seconds(model: str, device: torch.device, cases: int, steps: int, lpips: str) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "test_bench.py").write_text(textwrap.dedent(f"""
            import pytest_diffbench as diffbench

            @diffbench.sweep(seeds=list(range({cases} + 1)), samplers="Euler", steps={steps}, cfg=5.5)
            def test_bench(diffbench):
                diffbench.generate({PROMPT!r}, negative_prompt="blurry")
        """))
        args = [str(root), "-q", "-p", "no:cacheprovider", "--rootdir", str(root), "--diffbench",
                f"--diffbench-model={model}", f"--diffbench-device={device}", f"--diffbench-lpips={lpips}", "--diffbench-update"]
        durations = Durations()
        # Twice: the first run writes the baselines, the second compares against them.
        for _ in range(2):
            durations.seconds.clear()
            code = pytest.main(args if _ == 0 else args[:-1], plugins=[durations])
            if code != 0:
                sys.exit(f"pytest --diffbench exited with {code}")
        ordered = [durations.seconds[k] for k in sorted(durations.seconds, key=lambda n: int(n.split("[seed")[1].split("-")[0]))]
        return ordered[0], ordered[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--model", default="diffbench-tiny", help="as --diffbench-model (default: the shipped model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lpips", default="off", choices=["auto", "required", "off"])
    args = parser.parse_args()
    device = resolve_device(args.device)

    bare = bare_seconds(args.model, device, args.cases, args.steps)
    first, cases = diffbench_seconds(args.model, device, args.cases, args.steps, args.lpips)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    bare_median, case_median = statistics.median(bare), statistics.median(cases)
    print(f"device: {name}, torch threads {torch.get_num_threads()}, {args.model} 64x64, cfg 5.5, {args.steps} steps, {args.cases} cases, lpips={args.lpips}")
    print(f"bare diffusers call     median {bare_median * 1000:8.1f} ms  (min {min(bare) * 1000:.1f})")
    print(f"diffbench case, e2e     median {case_median * 1000:8.1f} ms  (min {min(cases) * 1000:.1f})")
    print(f"first case (pipeline build + warm-up) {first * 1000:.1f} ms")
    print(f"ratio diffbench/bare    {case_median / bare_median:.2f}x  (overhead {1000 * (case_median - bare_median):+.1f} ms per case)")


if __name__ == "__main__":
    main()
