"""Time a sweep's checks as its seeds grow: they must scale linearly (issue 13: 16,000 seeds took
1.5 s, in every xdist worker, since each worker expands every sweep at collection).

Times :func:`~pytest_diffbench.spec.sweep.expand_sweep` (every check of the axes, the duplicate
check of their values and of the case ids, and the cases themselves) for a seed plan of 16,000
seeds and for the most one axis holds (:data:`~pytest_diffbench.spec.sweep.MAX_AXIS_VALUES`),
and the duplicate check of an axis's values alone for 16,000 and 160,000 seeds; each the median
of --repeat runs, in CPU seconds. Prints microseconds per seed and the ratio of the per-seed
times, larger to smaller (1.0: linear; a quadratic check would show about the ratio of the sizes).

Usage: python benchmarks/sweep_checks.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

from pytest_diffbench.spec.seeds import seed_plan
from pytest_diffbench.spec.sweep import MAX_AXIS_VALUES, _check_unique, expand_sweep


def seconds(work: Callable[[], object], repeat: int) -> float:
    """Median CPU seconds of ``work()`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, int, int, Callable[[int], object]]] = [
        ("expand_sweep(seeds=seed_plan(...))", 16_000, MAX_AXIS_VALUES,
         lambda n: expand_sweep({"seeds": seed_plan("bench", n)}, max_cases=n)),
        ("duplicate check of the seeds", 16_000, 160_000, lambda n: _check_unique("seeds", list(range(n)))),
    ]
    for name, small, large, work in rows:
        per_seed = {}
        for n in (small, large):
            took = seconds(lambda: work(n), args.repeat)
            per_seed[n] = took / n
            print(f"{name:38s} {n:7d} seeds: {took:6.2f} CPU-s, {1e6 * took / n:5.1f} us per seed")
        print(f"{name:38s} per-seed ratio {large:d}/{small:d}: {per_seed[large] / per_seed[small]:.2f} (linear: 1.0)")


if __name__ == "__main__":
    main()
