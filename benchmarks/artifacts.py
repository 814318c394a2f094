"""Time to write a run's artifacts (results.csv, grids, summary.md, plot.png, report.html, bundle) for N cases.

Synthesises a run folder of N cases (64x64 or --size images from scikit-image's astronaut, a
tenth of them failing) and times the same functions the pytest session calls at the end of a
run. Usage: python benchmarks/artifacts.py [--cases 200] [--size 64] [--images failures]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image
from skimage import data

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.artifacts import write_artifacts
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.spec.sweep import Case
from pytest_diffbench.store.files import atomic_write_bytes, encode_png
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import write_results
from pytest_diffbench.store.run_folder import RunFolder

SAMPLERS = ("Euler", "Euler a", "DDIM", "DPM++ 2M", "UniPC")


def synthesise(folder: RunFolder, rootdir: Path, cases: int, size: int) -> list[CaseResult]:
    """The results of ``cases`` cases, each with its output image in ``folder``."""
    base = Image.fromarray(data.astronaut()).resize((size, size))
    results = []
    for i in range(cases):
        sampler, steps, seed = SAMPLERS[i % 5], (10, 20, 30, 40)[(i // 5) % 4], i // 20
        case_id = Case(seed=seed, sampler=sampler, steps=steps, cfg=7.5).id
        nodeid = f"tests/test_sweep.py::test_sweep[{case_id}]"
        image = folder.image(case_path(nodeid))
        atomic_write_bytes(image, encode_png(base.rotate(i % 360)))
        results.append(CaseResult(
            run_id=folder.run_id, timestamp="2026-11-28T00:00:00+00:00", nodeid=nodeid, case_id=case_id,
            outcome=Outcome.FAILED_QUALITY if i % 10 == 0 else Outcome.PASSED, config_hash=f"{i:064x}",
            config={"seed": seed, "sampler": sampler, "steps": steps, "cfg": 7.5, "prompt": "an astronaut",
                    "width": size, "height": size},
            scores={"ssim": 0.9 + (i % 10) / 100, "psnr": 30.0}, metric_status={"lpips": "off"},
            tolerances={"min_ssim": 0.95, "min_psnr": 25.0}, measurement=Measurement(0.01 * steps),
            machine=MachineInfo(device_name="bench"), pin="cpu-float32",
            output_path=image.relative_to(rootdir).as_posix(),
        ))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", default="failures", choices=["failures", "all", "none"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rootdir = Path(tmp)
        folder = RunFolder.of(rootdir / ".diffbench", "20261128T000000Z-bench0")
        results = synthesise(folder, rootdir, args.cases, args.size)
        start = time.perf_counter()
        write_results(folder.results, [result.to_row() for result in results])
        middle = time.perf_counter()
        artifacts = write_artifacts(folder, results, rootdir=rootdir, bundle_images=args.images, environment={})
        end = time.perf_counter()
        for warning in artifacts.warnings:
            print(warning)
        grids = len(list(folder.grids.rglob("*.png")))
        bundle = f"{artifacts.bundle.stat().st_size / 1e6:.2f} MB" if artifacts.bundle else "not written"
        print(f"{args.cases} cases at {args.size}x{args.size}: results.csv {1000 * (middle - start):.0f} ms, "
              f"grids ({grids} files) + summary + plot + report + bundle {end - middle:.2f} s, total {end - start:.2f} s; "
              f"bundle ({args.images} images) {bundle}")


if __name__ == "__main__":
    main()
