"""Time every stage of a run's session end for N cases: ssim_vs_most_steps, results.csv,
environment.json and ``latest``, grids, summary.md, plot.png, report.html and the bundle.

Synthesises a run folder of N cases (64x64 or --size images from scikit-image's astronaut, a
tenth of them failing; a sweep of 5 samplers x 4 step counts per seed, so every case has a
most-steps reference) and times the functions the pytest session calls at the end of a run,
stage by stage, in CPU seconds of this process (``time.process_time``: steady on a busy machine).
ssim_vs_most_steps is timed both ways: read back from the PNG files at the end
(:func:`~pytest_diffbench.judge.convergence.with_reference_ssim`, before issue 13) and as the
session does it now (:class:`~pytest_diffbench.judge.convergence.ReferenceScorer` fed each image as
its case finishes: its cost during the run is printed per case, its cost at the end is the
stage). Prints one line per stage and the session end's total (with the in-run scorer).

Usage: python benchmarks/artifacts.py [--cases 200] [--size 64] [--images failures]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from PIL import Image
from skimage import data

from pytest_diffbench.judge.convergence import ReferenceScorer, with_reference_ssim
from pytest_diffbench.judge.metrics.images import to_rgb_array
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.artifacts import write_artifacts
from pytest_diffbench.run.identity import run_environment
from pytest_diffbench.run.threads import machine_threads
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.spec.sweep import Case
from pytest_diffbench.store.files import atomic_write_bytes, atomic_write_text, encode_png
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import write_results
from pytest_diffbench.store.run_folder import RunFolder

SAMPLERS = ("Euler", "Euler a", "DDIM", "DPM++ 2M", "UniPC")


def synthesise(folder: RunFolder, rootdir: Path, cases: int, size: int,
               scorer: ReferenceScorer) -> tuple[list[CaseResult], float]:
    """The results of ``cases`` cases, each with its output image in ``folder``, and the seconds
    ``scorer`` took as they finished (collection told it of every case first, as the session does)."""
    base = Image.fromarray(data.astronaut()).resize((size, size))
    planned = []
    for i in range(cases):
        sampler, steps, seed = SAMPLERS[i % 5], (10, 20, 30, 40)[(i // 5) % 4], i // 20
        case = Case(seed=seed, sampler=sampler, steps=steps, cfg=7.5)
        planned.append((f"tests/test_sweep.py::test_sweep[{case.id}]", case))
        scorer.expect(*planned[-1])
    results, scoring = [], 0.0
    for i, (nodeid, case) in enumerate(planned):
        image = folder.image(case_path(nodeid))
        output = base.rotate(i % 360)
        atomic_write_bytes(image, encode_png(output))
        result = CaseResult(
            run_id=folder.run_id, timestamp="2026-11-28T00:00:00+00:00", nodeid=nodeid, case_id=case.id,
            outcome=Outcome.FAILED_QUALITY if i % 10 == 0 else Outcome.PASSED, config_hash=f"{i:064x}",
            config={"seed": case.seed, "sampler": case.sampler, "steps": case.steps, "cfg": 7.5,
                    "prompt": "an astronaut", "width": size, "height": size},
            scores={"ssim": 0.9 + (i % 10) / 100, "psnr": 30.0}, metric_status={"lpips": "off"},
            tolerances={"min_ssim": 0.95, "min_psnr": 25.0}, measurement=Measurement(0.01 * case.steps),
            machine=MachineInfo(device_name="bench"), pin="cpu-float32",
            output_path=image.relative_to(rootdir).as_posix(),
        )
        start = time.process_time()
        scorer.finished(result, to_rgb_array(output))
        scoring += time.process_time() - start
        results.append(result)
    return results, scoring


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", default="failures", choices=["failures", "all", "none"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rootdir = Path(tmp)
        folder = RunFolder.of(rootdir / ".diffbench", "20261128T000000Z-bench0")
        scorer = ReferenceScorer()
        results, during_run = synthesise(folder, rootdir, args.cases, args.size, scorer)

        def pixels(result: CaseResult) -> object:
            with Image.open(folder.image(case_path(result.nodeid))) as image:
                return to_rgb_array(image)

        stages: dict[str, float] = {}
        start = time.process_time()
        from_files = with_reference_ssim(results, pixels)  # type: ignore[arg-type]
        stages["ssim_vs_most_steps from the files (before)"] = time.process_time() - start
        start = time.process_time()
        scored = scorer.with_scores(results, pixels)  # type: ignore[arg-type]
        stages["ssim_vs_most_steps (in-run scorer)"] = time.process_time() - start
        assert [r.ssim_vs_most_steps for r in scored] == [r.ssim_vs_most_steps for r in from_files]
        start = time.process_time()
        write_results(folder.results, [result.to_row() for result in scored])
        stages["results.csv"] = time.process_time() - start
        start = time.process_time()
        environment = run_environment(run_id=folder.run_id, args=["--diffbench"], rootdir=rootdir,
                                      machines=[r.machine for r in scored], threads=machine_threads(1))
        atomic_write_text(folder.environment, json.dumps(environment, indent=2, sort_keys=True) + "\n")
        folder.mark_latest()
        stages["environment.json + latest"] = time.process_time() - start
        artifacts = write_artifacts(folder, scored, rootdir=rootdir, bundle_images=args.images, environment=environment)
        stages.update(artifacts.seconds)
        for warning in artifacts.warnings:
            print(warning)
        grids = len(list(folder.grids.rglob("*.png")))
        bundle = f"{artifacts.bundle.stat().st_size / 2**20:.2f} MiB" if artifacts.bundle else "not written"
        print(f"{args.cases} cases at {args.size}x{args.size}, {grids} grids, bundle ({args.images} images) {bundle}")
        print(f"  during the run: in-run scorer {1000 * during_run / args.cases:.1f} ms per case")
        for name, seconds in stages.items():
            print(f"  {name:45s} {seconds:7.2f} CPU-s")
        total = sum(seconds for name, seconds in stages.items() if "before" not in name)
        before = total - stages["ssim_vs_most_steps (in-run scorer)"] + stages["ssim_vs_most_steps from the files (before)"]
        print(f"session end: {total:.2f} CPU-s (with ssim_vs_most_steps read back from the files: {before:.2f} CPU-s)")


if __name__ == "__main__":
    main()
