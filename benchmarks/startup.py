"""pytest start-up with pytest-diffbench installed and --diffbench off, against without the plugin.

Runs ``pytest -q <a one-test folder>`` N times each way in fresh processes, alternating, and
prints the medians. Also checks that none of torch, diffusers, transformers, scikit-image, pandas,
matplotlib, torchmetrics or lpips was imported with the plugin loaded.

Usage: python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST = '''
import sys

HEAVY = ("torch", "diffusers", "transformers", "skimage", "pandas", "matplotlib", "torchmetrics", "lpips")

def test_plain():
    assert [name for name in HEAVY if name in sys.modules] == []
'''


def run(folder: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder), *extra],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_plain.py").write_text(TEST)
        with_plugin, without = [], []
        run(folder, [])  # warm the file cache
        for _ in range(args.runs):
            with_plugin.append(run(folder, []))
            without.append(run(folder, ["-p", "no:diffbench"]))
    a, b = statistics.median(with_plugin), statistics.median(without)
    print(f"pytest start-up, median of {args.runs}: plugin loaded (--diffbench off) {a * 1000:.0f} ms, "
          f"without the plugin {b * 1000:.0f} ms, difference {1000 * (a - b):+.0f} ms")


if __name__ == "__main__":
    main()
