"""Run identity: what a run folder needs so that its figures can be replayed.

environment.json holds the command line, the tested repository's git commit, the OS, Python,
the versions of the libraries that decide the pixels, every device the cases ran on (taken
from the results rows, so the xdist controller never has to import torch), the thread policy
of torch's CPU pool (:mod:`pytest_diffbench.run.threads`) and whether the run was deterministic
(``--diffbench-deterministic``, with the settings :mod:`pytest_diffbench.run.determinism` left).
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_diffbench.run.machine import distribution_version
from pytest_diffbench.run.threads import ThreadPolicy
from pytest_diffbench.spec.machine import MachineInfo

DISTRIBUTIONS = ("pytest-diffbench", "pytest", "pytest-xdist", "torch", "diffusers", "transformers", "lpips",
                 "scikit-image", "numpy", "pillow")


def _git(rootdir: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=rootdir, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def git_state(rootdir: Path) -> dict[str, Any]:
    """The commit of the repository holding ``rootdir`` and whether tracked files differ from it."""
    commit = _git(rootdir, "rev-parse", "HEAD")
    if not commit:
        return {"commit": "", "dirty": None}
    return {"commit": commit, "dirty": bool(_git(rootdir, "status", "--porcelain", "--untracked-files=no"))}


def run_environment(*, run_id: str, args: Sequence[str], rootdir: Path, machines: Iterable[MachineInfo],
                    threads: ThreadPolicy, determinism: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """environment.json: the command line, the git state of ``rootdir``, OS, Python, the versions of
    :data:`DISTRIBUTIONS`, every device the cases ran on (its results fields and the fields
    ``pytest_diffbench_machine_info`` hooks added), sorted, ``threads``, the thread policy of
    the run's pytest processes (under xdist, what the controller decided for its workers), and
    ``deterministic``: whether ``--diffbench-deterministic`` was on, with ``determinism``, the
    settings it left (:meth:`~pytest_diffbench.run.determinism.DeterminismState.as_dict`), when it was."""
    devices = {tuple(sorted(machine.device_fields().items())) for machine in machines}
    switch: dict[str, Any] = {"deterministic": determinism is not None}
    if determinism is not None:
        switch["determinism"] = dict(determinism)
    return {
        "run_id": run_id,
        "command": " ".join(["pytest", *args]),
        "git": git_state(rootdir),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: distribution_version(name) for name in DISTRIBUTIONS},
        "devices": [dict(device) for device in sorted(devices)],
        "threads": threads.as_dict(),
        **switch,
    }
