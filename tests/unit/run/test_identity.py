"""environment.json's contents: the command, git state, versions and the devices of the results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pytest_diffbench.run.identity import git_state, run_environment
from pytest_diffbench.run.threads import ThreadPolicy
from pytest_diffbench.spec.machine import RESULT_FIELDS, MachineInfo


def test_run_environment_collects_devices_from_the_results(tmp_path: Path):
    h200 = MachineInfo(device_name="NVIDIA H200", driver="580.1", cuda="13.0")
    machines = [h200, h200, MachineInfo(device_name="Intel Xeon")]
    threads = ThreadPolicy(threads=1, cores=4, workers=2, load=2.456, source="load")
    env = run_environment(run_id="r1", args=["--diffbench", "-n", "2"], rootdir=tmp_path, machines=machines,
                          threads=threads)
    assert env["command"] == "pytest --diffbench -n 2"
    assert env["run_id"] == "r1"
    assert [d["device_name"] for d in env["devices"]] == ["Intel Xeon", "NVIDIA H200"]
    assert set(env["devices"][0]) == set(RESULT_FIELDS)
    assert env["versions"]["pytest"] == pytest.__version__
    assert env["git"] == {"commit": "", "dirty": None}  # tmp_path is no repository
    assert env["threads"] == {"threads": 1, "cores": 4, "workers": 2, "load": 2.46, "source": "load"}
    assert json.loads(json.dumps(env)) == env  # plain JSON values only


def test_git_state_names_the_commit_and_whether_tracked_files_changed(tmp_path: Path):
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    assert git_state(tmp_path) == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "untracked.txt").write_text("x\n")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "a.txt").write_text("two\n")
    assert git_state(tmp_path)["dirty"] is True
