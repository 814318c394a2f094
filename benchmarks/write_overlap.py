"""The per-case cost of diffbench's own writes, old code against new: do they overlap generation?

A stand-in pipeline (a FakePipeline subclass) returns a real photo (scikit-image's astronaut,
shifted by the seed) at each ``--sides`` size, after ``--generate`` seconds of waiting: a GPU's
generation, during which the Python thread waits and another thread can encode and write. Each
code tree (``--old``, e.g. a checkout of the commit before issue 13's writer, and this checkout)
runs ``pytest --diffbench`` over ``--cases`` cases in a child process: first with
``--diffbench-update=all`` (the baselines), then the measured run that compares against them.
Runs of the two trees are interleaved, ``--repeats`` times, and medians are printed:

* case: setup + call + teardown of each case as pytest reports it, less the generation wait
  (ms): what diffbench adds in the foreground per case (judging, and with the old code the PNG
  encode and the file writes);
* end: from the last case's teardown to the session's end (s): the drain of the writer, the
  results and every artifact.

Usage: python benchmarks/write_overlap.py --old /tmp/old-checkout [--sides 256 1024] [--cases 8] [--generate 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CONFTEST = '''
import json
import os
import time

import pytest

from pytest_diffbench.testing import FakePipeline

SIDE = int(os.environ["BENCH_SIDE"])
WAIT = float(os.environ["BENCH_GENERATE"])
TIMES = {"cases": {}, "last_teardown": 0.0}


class PhotoPipeline(FakePipeline):
    def draw(self, sampler, seed, call_kwargs):
        import numpy as np
        import skimage.data
        from PIL import Image

        time.sleep(WAIT)  # a GPU's generation: the Python thread waits
        photo = Image.fromarray(skimage.data.astronaut()).resize((SIDE, SIDE), Image.BICUBIC)
        return Image.fromarray(np.roll(np.asarray(photo), seed * 7, axis=1))


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return PhotoPipeline(width=SIDE, height=SIDE)


def pytest_runtest_logreport(report):
    TIMES["cases"][report.nodeid] = TIMES["cases"].get(report.nodeid, 0.0) + report.duration
    if report.when == "teardown":
        TIMES["last_teardown"] = time.perf_counter()


def pytest_unconfigure(config):
    TIMES["end"] = time.perf_counter() - TIMES["last_teardown"]
    with open(os.environ["BENCH_OUT"], "w") as handle:
        json.dump(TIMES, handle)
'''


def run(code: Path, root: Path, side: int, generate: float, cases: int, update: bool) -> dict:
    out = root / "times.json"
    env = {**os.environ, "PYTHONPATH": str(code), "BENCH_SIDE": str(side), "BENCH_GENERATE": str(generate),
           "BENCH_OUT": str(out), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--diffbench",
            "--diffbench-lpips=off", *(["--diffbench-update=all"] if update else [])]
    done = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{code}: pytest exited with {done.returncode}:\n{done.stdout[-2000:]}")
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--sides", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--generate", type=float, default=0.2, help="seconds each stand-in generation waits")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": Path(__file__).resolve().parent.parent}
    for side in args.sides:
        per_case: dict[str, list[float]] = {name: [] for name in trees}
        ends: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, code in trees.items():  # interleaved
                with tempfile.TemporaryDirectory() as tmp:
                    root = Path(tmp)
                    (root / "conftest.py").write_text(CONFTEST)
                    (root / "test_bench.py").write_text(textwrap.dedent(f"""
                        import pytest_diffbench as diffbench

                        @diffbench.sweep(seeds=list(range({args.cases})), steps=20)
                        def test_bench(diffbench):
                            diffbench.generate("an astronaut")
                    """))
                    run(code, root, side, args.generate, args.cases, update=True)
                    times = run(code, root, side, args.generate, args.cases, update=False)
                    seconds = sorted(times["cases"].values())[:-1]  # the first case's pipeline build aside
                    per_case[name] += [s - args.generate for s in seconds]
                    ends[name].append(times["end"])
        old, new = statistics.median(per_case["old"]), statistics.median(per_case["new"])
        print(f"{side}x{side} px, {args.cases} cases x {args.repeats} runs, generation {args.generate * 1000:.0f} ms:")
        print(f"  per case beyond generation: old {old * 1000:7.1f} ms   new {new * 1000:7.1f} ms   new/old {new / old:.2f}")
        print(f"  session end:                old {statistics.median(ends['old']):7.2f} s    "
              f"new {statistics.median(ends['new']):7.2f} s")


if __name__ == "__main__":
    main()
