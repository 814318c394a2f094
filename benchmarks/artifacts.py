"""Time to write a run's artifacts (results.csv, grids, summary.md, plot.png, bundle) for N cases.

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

from pytest_diffbench.baselines import case_path
from pytest_diffbench.files import encode_png
from pytest_diffbench.reports import write_reports
from pytest_diffbench.results import image_relpath, write_results
from pytest_diffbench.sweep import Case

SAMPLERS = ("Euler", "Euler a", "DDIM", "DPM++ 2M", "UniPC")


def synthesise(run_dir: Path, cases: int, size: int) -> list[dict]:
    base = Image.fromarray(data.astronaut()).resize((size, size))
    records = []
    for i in range(cases):
        sampler, steps, seed = SAMPLERS[i % 5], (10, 20, 30, 40)[(i // 5) % 4], i // 20
        case_id = Case(seed=seed, sampler=sampler, steps=steps, cfg=7.5).id
        nodeid = f"tests/test_sweep.py::test_sweep[{case_id}]"
        image_path = run_dir / image_relpath(case_path(nodeid))
        image_path.parent.mkdir(parents=True, exist_ok=True)
        image_path.write_bytes(encode_png(base.rotate(i % 360)))
        records.append({"run_id": run_dir.name, "nodeid": nodeid, "test": nodeid.split("[")[0], "case_id": case_id,
                        "outcome": "failed-quality" if i % 10 == 0 else "passed", "sampler": sampler, "steps": steps,
                        "seed": seed, "cfg": 7.5, "ssim": 0.9 + (i % 10) / 100, "min_ssim": 0.95, "psnr": 30.0, "min_psnr": 25.0,
                        "seconds_per_image": 0.01 * steps, "config_hash": f"{i:064x}", "device_name": "bench",
                        "output_path": f"runs/{run_dir.name}/images/{case_path(nodeid)}.png"})
    return records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", default="failures", choices=["failures", "all", "none"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "runs" / "20261128T000000Z-bench0"
        records = synthesise(run_dir, args.cases, args.size)
        start = time.perf_counter()
        write_results(run_dir, records)
        middle = time.perf_counter()
        reports = write_reports(run_dir, run_dir.name, records, args.images, Path(tmp))
        end = time.perf_counter()
        grids = len(list((run_dir / "grids").rglob("*.png")))
        print(f"{args.cases} cases at {args.size}x{args.size}: results.csv {1000 * (middle - start):.0f} ms, "
              f"grids ({grids} files) + summary + plot + bundle {end - middle:.2f} s, total {end - start:.2f} s; "
              f"bundle ({args.images} images) {reports.bundle.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
