"""Peak memory of a run as it grows: a 64-case sweep at 1024x1024 against a 4-case one.

Writes a project into a temporary folder: a conftest.py whose ``diffbench_pipeline`` is a
FakePipeline that returns a photo (scikit-image's astronaut at 1024x1024, turned by the seed),
and a test sweeping seeds x steps [10, 20] (so ssim_vs_most_steps, the sweep sheets and the
bundle all have work). Each run is its own child process, which reports its peak resident set
(``ru_maxrss``, MiB): first a ``--diffbench-update=all`` run that writes the baselines, then a
run that compares with them; the bundle holds every output image (``--diffbench-bundle-images
all``), so a bundle built in memory would show. Prints each run's peak RSS and the ratio of the
64-case run's to the 4-case run's, per phase (issue 13's target: within 5%, ratio <= 1.05).

Usage: python benchmarks/memory.py [--cases 4 64] [--size 1024]
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

CONFTEST = '''
import dataclasses

import pytest
from PIL import Image
from skimage import data

from pytest_diffbench.testing import FakePipeline


@dataclasses.dataclass
class PhotoPipeline(FakePipeline):
    """A stand-in pipeline that returns a photo at its size, turned by the seed."""

    def draw(self, sampler, seed, call_kwargs):
        photo = Image.fromarray(data.astronaut()).resize((self.width, self.height))
        return photo.rotate(seed % 360)


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return PhotoPipeline(width={size}, height={size})
'''

TEST = '''
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=range({seeds}), steps=[10, 20])
def test_photo(diffbench):
    diffbench.generate("a photo")
'''

#: The child: runs pytest in-process and prints its exit status and peak RSS (MiB) as JSON.
CHILD = textwrap.dedent('''
    import json, resource, sys
    import pytest
    code = pytest.main(sys.argv[1:])
    print(json.dumps({"exit": int(code), "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
''')


def run(project: Path, *args: str) -> dict[str, float]:
    """One pytest run in a child process: its exit status and peak RSS in MiB."""
    command = [sys.executable, "-c", CHILD, "-q", "-p", "no:cacheprovider", "--diffbench",
               "--diffbench-bundle-images", "all", *args]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["exit"] != 0:
        raise SystemExit(f"pytest {' '.join(args)} in {project} exited with {report['exit']}:\n{done.stdout[-3000:]}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, nargs=2, default=[4, 64], metavar=("SMALL", "LARGE"))
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    peaks: dict[str, dict[int, float]] = {"update": {}, "compare": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for cases in args.cases:
            project = Path(tmp) / f"cases{cases}"
            project.mkdir()
            (project / "conftest.py").write_text(CONFTEST.format(size=args.size))
            (project / "test_photo.py").write_text(TEST.format(seeds=max(1, cases // 2)))
            (project / "pytest.ini").write_text("[pytest]\n")
            peaks["update"][cases] = run(project, "--diffbench-update=all")["peak_mib"]
            peaks["compare"][cases] = run(project)["peak_mib"]
    small, large = args.cases
    for phase, by_cases in peaks.items():
        print(f"{phase:8s} peak RSS: {small} cases {by_cases[small]:.0f} MiB, {large} cases {by_cases[large]:.0f} MiB, "
              f"ratio {by_cases[large] / by_cases[small]:.3f}")
    print(f"ratio: {peaks['compare'][large] / peaks['compare'][small]:.3f}")


if __name__ == "__main__":
    main()
