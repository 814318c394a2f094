"""How many threads torch's CPU thread pool gets in each pytest process of a run.

torch's default is one thread per core of the machine, in every process. On a CPU that other
work (another test run, a second xdist worker, a build) also uses, those threads wait on each
other: a run measured 7.8 times slower than on the idle machine, and 1.4 times slower even on
an idle 2-core machine, against one thread per process. The policy:

* ``OMP_NUM_THREADS`` (or ``MKL_NUM_THREADS``) set by the user to a positive integer wins.
* Otherwise the cores this process may run on (``os.sched_getaffinity``, else
  ``os.cpu_count()``), less the cores the 1-minute load average shows busy with other work,
  divided among the run's pytest processes (xdist's workers), and never below one thread.
  The load average is the whole machine's: where the process may run on fewer cores than the
  machine has (``taskset``, a container's CPU set) only its share counts, ``load * cores /
  os.cpu_count()``.
* The busy cores are the load rounded half up, so a load showing half a core busy costs a
  thread: on purpose, since two runs started together must not both take every core (measured:
  273 s against 38 s), and the small built-in model runs faster on one thread than on two even
  on an idle 2-core machine (the examples: 24.6 s against 34.7 s).

:func:`decide_threads` is the decision alone (its inputs are arguments); :func:`machine_threads`
reads this machine for it; :func:`apply_threads` hands a decision to torch. Nothing here imports
torch until :func:`apply_threads` does.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

#: Environment variables through which a user sets torch's CPU threads; the first one set wins.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class ThreadPolicy:
    """The threads of torch's CPU pool in each pytest process of a run, and why.

    ``threads``: threads per process; ``cores``: cores the process may run on; ``workers``:
    pytest processes sharing them (xdist's workers, else 1); ``load``: the 1-minute load average
    when decided, on the process's cores (the machine's load scaled by ``cores / machine_cores``;
    None where the OS has none); ``source``: what decided, ``"cores"`` (the cores' share),
    ``"load"`` (fewer, the load showed other work) or the environment variable's name;
    ``machine_cores``: the machine's cores (None: the same as ``cores``).
    """

    threads: int
    cores: int
    workers: int
    load: float | None
    source: str
    machine_cores: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """environment.json's ``threads`` entry (the load on the process's cores, rounded to 2 decimals)."""
        return {"threads": self.threads, "cores": self.cores, "workers": self.workers,
                "load": None if self.load is None else round(self.load, 2), "source": self.source}

    def note(self) -> str | None:
        """One line for the terminal when the load average was above the cores, else None."""
        if self.load is None or self.load <= self.cores:
            return None
        where = f"load average {self.load:.1f} on {_cores(self.cores)}"
        if self.machine_cores is not None and self.machine_cores > self.cores:
            where = (f"load average {self.load * self.machine_cores / self.cores:.1f} on the machine's "
                     f"{_cores(self.machine_cores)}, {self.load:.1f} on the {_cores(self.cores)} this process may use")
        return (f"note: the CPU was busy ({where}); "
                f"torch ran {self.threads} thread{'s' * (self.threads != 1)} per pytest process and seconds per image "
                "are slower than on an idle machine")


def _cores(count: int) -> str:
    return f"{count} core{'s' * (count != 1)}"


def decide_threads(*, cores: int, workers: int, load: float | None, environ: Mapping[str, str],
                   machine_cores: int | None = None) -> ThreadPolicy:
    """The thread policy for ``workers`` pytest processes on ``cores`` cores at ``load`` (the
    machine's 1-minute load average, None where unknown) on a machine of ``machine_cores`` cores
    (None, or fewer than ``cores``: ``cores``), with ``environ`` the process environment.

    A thread variable of ``environ`` holding a positive integer wins (see :data:`THREAD_VARIABLES`).
    Otherwise the cores not busy with other work, shared among the workers, at least 1 thread:
    the busy cores are the process's share of the load (``load * cores / machine_cores``)
    rounded half up, so half a core busy costs a thread (see the module's docstring for why).
    ``cores`` and ``workers`` below 1 count as 1.
    """
    cores, workers = max(1, cores), max(1, workers)
    machine = max(cores, machine_cores or cores)
    share = None if load is None else max(0.0, load) * cores / machine
    recorded = None if machine == cores else machine
    for name in THREAD_VARIABLES:
        value = environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return ThreadPolicy(int(value), cores, workers, share, name, recorded)
    busy = 0 if share is None else min(cores, math.floor(share + 0.5))
    threads = max(1, (cores - busy) // workers)
    source = "load" if threads < max(1, cores // workers) else "cores"
    return ThreadPolicy(threads, cores, workers, share, source, recorded)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average, or None where the OS has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_threads(workers: int) -> ThreadPolicy:
    """:func:`decide_threads` for ``workers`` pytest processes on this machine, now."""
    return decide_threads(cores=available_cores(), workers=workers, load=load_average(), environ=os.environ,
                          machine_cores=os.cpu_count())


def apply_threads(policy: ThreadPolicy) -> None:
    """Set torch's CPU threads to the policy's, a user's thread variable included (torch itself
    caps ``OMP_NUM_THREADS`` at the cores and ignores ``MKL_NUM_THREADS`` for its count).
    Imports torch."""
    import torch

    if torch.get_num_threads() != policy.threads:
        torch.set_num_threads(policy.threads)


def planned_workers(numprocesses: object, maxprocesses: object, dist: object) -> int:
    """The pytest processes that will run the cases, from xdist's ``numprocesses``,
    ``maxprocesses`` and ``dist`` options as the controller holds them (``-n auto`` already
    resolved to a number by xdist): 1 without xdist, with ``-n 0`` or ``--dist no``."""
    if dist in (None, "no") or not isinstance(numprocesses, int) or numprocesses < 1:
        return 1
    if isinstance(maxprocesses, int) and maxprocesses > 0:
        return min(numprocesses, maxprocesses)
    return numprocesses
