"""Run identity: what a run folder needs so that its figures can be replayed.

environment.json holds the command line, the tested repository's git commit, the OS, Python,
the versions of the libraries that decide the pixels, and every device the cases ran on (taken
from the results rows, so the xdist controller never has to import torch).
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_diffbench.results import ENVIRONMENT_FIELDS

DISTRIBUTIONS = ("pytest-diffbench", "pytest", "pytest-xdist", "torch", "diffusers", "transformers", "lpips",
                 "scikit-image", "numpy", "pillow")


def distribution_version(distribution: str) -> str:
    """The installed version of ``distribution``, or "" when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


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


def run_environment(*, run_id: str, args: Sequence[str], rootdir: Path, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    devices = {tuple(str(r.get(field) or "") for field in ENVIRONMENT_FIELDS) for r in records}
    return {
        "run_id": run_id,
        "command": " ".join(["pytest", *args]),
        "git": git_state(rootdir),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: distribution_version(name) for name in DISTRIBUTIONS},
        "devices": [dict(zip(ENVIRONMENT_FIELDS, device)) for device in sorted(devices)],
    }
