"""A 20-case sweep killed again and again, each time resumed with ``--diffbench-resume``; and Ctrl-C.

Child pytest processes run a FakePipeline sweep whose cases take a moment each (the test body
waits :data:`CASE_PAUSE` after generating, so a kill can land inside a case). The parent watches the run's
journal and, at points drawn with a fixed seed (a line count to reach, then a delay within the
next case), kills the whole process group with SIGKILL; the next child resumes the run. After the
last kill a resume completes the run, and its results.csv must equal an uninterrupted run's apart
from the timing and run columns. Counted and asserted 0: finished cases lost (a case journaled
before a kill that is missing, or run again, afterwards) and corrupt files (a PNG that does not
decode, a CSV or JSON file that does not parse, a temporary file left). The figures are printed
(``-s`` shows them) for the release note.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from forked_pytest import start_pytest  # tests/suite_plugin: a child pytest forked from a warm server
from PIL import Image

from pytest_diffbench.store.journal import TEMP_NAME, read_journal
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import RunFolder
from pytest_diffbench.testing import FAKE_PIPELINE_ENV

pytestmark = pytest.mark.subprocess

#: Seconds each case of the child's sweep waits after generating: room for a kill inside a case.
CASE_PAUSE = 0.05
SWEEP = f'''import time

import pytest_diffbench as diffbench


@diffbench.sweep(seeds=list(range(10)), steps=[2, 3])
def test_case(diffbench):
    diffbench.generate("a red cube")
    time.sleep({CASE_PAUSE})  # room for a kill inside the case
'''
CASES = 20
KILLS = 10
#: How long a child may take before the test gives up on it (seconds).
CHILD_LIMIT = 180


class Child:
    """One child ``pytest --diffbench`` in its own process group."""

    def __init__(self, root: Path, *args: str) -> None:
        self.args = ["-p", "no:cacheprovider", "-p", "no:xdist", "--diffbench", "--diffbench-lpips=off", *args]
        # SIGINT as a terminal's: a KeyboardInterrupt in the child (start_pytest's children do not inherit it ignored)
        self.process = start_pytest(self.args, cwd=root, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait(self) -> tuple[int, str]:
        out, _ = self.process.communicate(timeout=CHILD_LIMIT)
        return self.process.returncode, out

    def signal_when(self, journal: Path, lines: int, delay: float, signum: int) -> bool:
        """Send ``signum`` (to the process group for SIGKILL, to the process for SIGINT, as a
        terminal's Ctrl-C reaches a single pytest) ``delay`` seconds after ``journal`` holds
        ``lines`` complete lines; False when the child ended first."""
        deadline = time.monotonic() + CHILD_LIMIT
        while journal_lines(journal) < lines:
            if self.process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise TimeoutError(f"the journal never reached {lines} lines")
            time.sleep(0.005)
        time.sleep(delay)
        if self.process.poll() is not None:
            return False
        if signum == signal.SIGKILL:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            os.kill(self.process.pid, signum)
        return True


def child_env() -> dict[str, str]:
    """The environment of a child run: one torch thread, nothing of this pytest's xdist or options
    ($PYTEST_ADDOPTS is the suite's: tests/conftest.py's child_environment)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for name in ("PYTEST_XDIST_WORKER", FAKE_PIPELINE_ENV):
        env.pop(name, None)
    return env


def run_journal(root: Path, child: Child) -> Path:
    """The journal of the one run in ``root``, once the child has claimed its folder."""
    runs = root / ".diffbench" / "runs"
    while not runs.is_dir() or not any(runs.iterdir()):
        assert child.process.poll() is None, child.wait()[1][-3000:]
        time.sleep(0.005)
    return only_run(root).journal


def journal_lines(journal: Path) -> int:
    try:
        return journal.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def corrupt_files(root: Path, *, killed: bool = False) -> list[str]:
    """Files under ``root`` that a kill spoiled: a PNG that does not decode, a CSV or JSON file that
    does not parse, a temporary file of an atomic write. Right after a kill (``killed``) a temporary
    file is what a write cut short leaves (the background writer may be writing while the next
    case generates); the next run removes it, so only files under their final names count then."""
    bad = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            if TEMP_NAME.fullmatch(path.name) or path.name.endswith(".tmp"):
                if killed:
                    continue
                raise ValueError("temporary file left")
            if path.suffix == ".png":
                with Image.open(path) as image:
                    image.load()
            elif path.suffix == ".csv":
                list(csv.reader(path.read_text(encoding="utf-8").splitlines(), strict=True))
            elif path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.name == "journal.jsonl":
                read_journal(path)
        except Exception as exc:  # any failure to read counts
            bad.append(f"{path.relative_to(root)}: {type(exc).__name__}: {exc}")
    return bad


def only_run(root: Path) -> RunFolder:
    (folder,) = sorted((root / ".diffbench" / "runs").iterdir())
    return RunFolder(folder)


@pytest.fixture
def sweep_project(project):
    (project.path / "test_gen.py").write_text(SWEEP, encoding="utf-8")
    return project


def test_sigkill_at_ten_random_points_then_resume_loses_no_finished_case(sweep_project, tmp_path):
    root = sweep_project.path
    sweep_project.run(update="all").outcome.assert_outcomes(passed=CASES)  # the baselines, in this process
    shutil.rmtree(root / ".diffbench")
    code, out = Child(root).wait()  # the uninterrupted run
    assert code == 0, out[-3000:]
    reference = [sweep_project.stable_row(r) for r in read_results(only_run(root).results)]
    assert len(reference) == CASES
    os.rename(root / ".diffbench", tmp_path / "reference-output")

    draw = random.Random(20261130)
    kills, lost, rerun, corrupt = 0, 0, 0, []
    finished: set[str] = set()
    child = Child(root)
    journal = run_journal(root, child)
    while kills < KILLS:
        now = journal_lines(journal)  # a line or two more, leaving room for the kills still to come
        target = max(now + 1, min(now + draw.randint(1, 2), CASES - (KILLS - kills)))
        killed = child.signal_when(journal, target, draw.uniform(0.0, CASE_PAUSE), signal.SIGKILL)
        code, out = child.wait()
        assert killed and code == -signal.SIGKILL, f"the child ended before kill {kills + 1}: {out[-3000:]}"
        kills += 1
        journaled = [r.nodeid for r in read_journal(journal)]
        lost += len(finished - set(journaled))
        rerun += len(journaled) - len(set(journaled))
        finished = set(journaled)
        corrupt += corrupt_files(root / ".diffbench", killed=True)
        if len(finished) >= CASES - 1 or kills == KILLS:
            break
        child = Child(root, "--diffbench-resume")
    code, out = Child(root, "--diffbench-resume").wait()  # the last kill's child is reaped: nothing else runs
    assert code == 0, out[-3000:]
    folder = only_run(root)
    final = read_journal(folder.journal)
    lost += len(finished - {r.nodeid for r in final})
    rerun += journal_lines(folder.journal) - len(final)  # a finished case journaled twice ran twice
    corrupt += corrupt_files(root / ".diffbench")
    print(f"\ndiffbench kill test: {kills} kills (SIGKILL), {lost} finished cases lost, {rerun} run again, "
          f"{len(corrupt)} corrupt files")
    assert kills == KILLS
    assert (lost, rerun, corrupt) == (0, 0, [])
    assert [sweep_project.stable_row(r) for r in read_results(folder.results)] == reference
    assert {r.run_id for r in read_results(folder.results)} == {folder.run_id}


def test_ctrl_c_writes_what_finished_and_prints_the_resume_command_that_completes_the_run(sweep_project):
    root = sweep_project.path
    child = Child(root, "-rA")
    assert child.signal_when(run_journal(root, child), 5, CASE_PAUSE / 2, signal.SIGINT)
    code, out = child.wait()
    assert code == pytest.ExitCode.INTERRUPTED, out[-3000:]
    folder = only_run(root)
    paused = [r.nodeid for r in read_results(folder.results)]  # the artifacts of what finished
    assert 5 <= len(paused) < CASES and folder.summary.is_file() and folder.report.is_file()
    assert sorted(paused) == sorted(r.nodeid for r in read_journal(folder.journal))
    found = re.search(r"paused with (\d+) of 20 cases not run; resume it with: (pytest .*)", out)
    assert found is not None, out[-3000:]
    assert int(found.group(1)) == CASES - len(paused)
    command = shlex.split(found.group(2))
    assert command == ["pytest", *child.args, f"--diffbench-resume={folder.run_id}"]
    resumed = start_pytest(command[1:], cwd=root, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    printed, _ = resumed.communicate(timeout=CHILD_LIMIT)
    assert resumed.returncode == 1, printed[-3000:]  # no baselines: every case is missing-baseline
    assert f"{len(paused)} deselected" in printed
    results = read_results(folder.results)
    assert len(results) == CASES and only_run(root) == folder
    assert corrupt_files(root / ".diffbench") == []
