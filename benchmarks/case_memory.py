"""Peak RSS of a diffbench run as its sweep grows: does a finished case's image stay alive?

The stand-in pipeline of ``benchmarks/write_overlap.py`` (scikit-image's astronaut at ``--side``
px, no generation wait) runs ``pytest --diffbench`` in a child over each ``--cases`` count, for
each code tree (``--old``, a checkout to compare with, and this checkout): the baselines first,
then the measured run. The child's peak RSS (MiB, ``getrusage``) is printed per tree and count,
with the ratio of the largest count to the smallest (1.00: memory flat as the run grows).

Usage: python benchmarks/case_memory.py --old /tmp/old-checkout [--side 1024] [--cases 4 24]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from write_overlap import CONFTEST

RSS_CONFTEST = CONFTEST.replace('''def pytest_unconfigure(config):
''', '''def pytest_unconfigure(config):
    import resource

    TIMES["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
''')


def peak_rss(code: Path, side: int, cases: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "conftest.py").write_text(RSS_CONFTEST)
        (root / "test_bench.py").write_text(textwrap.dedent(f"""
            import pytest_diffbench as diffbench

            @diffbench.sweep(seeds=list(range({cases})), steps=20)
            def test_bench(diffbench):
                diffbench.generate("an astronaut")
        """))
        out = root / "times.json"
        env = {**os.environ, "PYTHONPATH": str(code), "BENCH_SIDE": str(side), "BENCH_GENERATE": "0",
               "BENCH_OUT": str(out), "OMP_NUM_THREADS": "1"}
        for update in (["--diffbench-update=all"], []):
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                                   "--diffbench", "--diffbench-lpips=off", *update], cwd=root, env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{code}: pytest exited with {done.returncode}:\n{done.stdout[-2000:]}")
        return float(json.loads(out.read_text())["rss_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--cases", type=int, nargs="+", default=[4, 24])
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": Path(__file__).resolve().parent.parent}
    for name, code in trees.items():
        rss = {cases: peak_rss(code, args.side, cases) for cases in args.cases}
        shown = ", ".join(f"{cases} cases {mib:.0f} MiB" for cases, mib in rss.items())
        print(f"{name}: {args.side}x{args.side} px: peak RSS {shown}; "
              f"{max(args.cases)}/{min(args.cases)} cases: {rss[max(args.cases)] / rss[min(args.cases)]:.2f}")


if __name__ == "__main__":
    main()
