"""SIGKILL a run while its background writer still holds finished cases (store/writer.py).

The child pytest's writer thread, at its K-th file rename, first waits until its queue is full
(the cases after it were reported and their files and journal lines wait behind it), then kills
the process with SIGKILL between a temporary file's write and its rename. Afterwards: every
journaled case has its image (the journal line comes after the files), some reported cases are
not journaled (the kill found the queue non-empty), and ``--diffbench-resume`` completes the run
running only those: no journaled case runs again, none is lost, every file reads whole and no
temporary file is left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest
from forked_pytest import run_python  # tests/suite_plugin: a child pytest forked from a warm server
from PIL import Image

from pytest_diffbench.store.journal import TEMP_NAME, read_journal
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import RunFolder
from pytest_diffbench.testing import FAKE_PIPELINE_ENV, use_fake_pipeline

pytestmark = pytest.mark.subprocess

#: Environment of the child: the writer's rename (1-based) before which it waits for a full queue and is killed.
KILL_AT_ENV = "DIFFBENCH_TEST_WRITER_KILL_AT"

KILLER = f'''
import os
import signal
import threading

from pytest_diffbench.store import writer

_RENAMES = [0]
_WRITERS = []
_init = writer.BackgroundWriter.__init__


def _remember(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    _WRITERS.append(self)


def _rename(real):
    kill_at = int(os.environ.get("{KILL_AT_ENV}") or 0)

    def rename(*args, **kwargs):
        if threading.current_thread().name == "diffbench-writer":
            _RENAMES[0] += 1
            if _RENAMES[0] == kill_at:
                while not any(w._queue.full() for w in _WRITERS):  # the next cases' jobs wait behind this one
                    threading.Event().wait(0.001)
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    return rename


def pytest_configure(config):
    writer.BackgroundWriter.__init__ = _remember
    os.replace = _rename(os.replace)
'''

SWEEP = '''import pytest_diffbench as diffbench


@diffbench.sweep(seeds=list(range(8)), steps=2)
def test_case(diffbench):
    diffbench.generate("a red cube")
'''
CASES = 8
REPORTED = re.compile(r"(test_gen\.py::\S+) (?:PASSED|FAILED|ERROR)")


def child(project, *args: str, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", KILL_AT_ENV: str(kill_at)}
    for name in ("PYTEST_XDIST_WORKER", FAKE_PIPELINE_ENV):  # $PYTEST_ADDOPTS: the suite's (tests/conftest.py)
        env.pop(name, None)
    return run_python(["-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-v", "--diffbench", "--diffbench-lpips=off", *args],
                      cwd=project.path, env=env, timeout=180)


def unreadable_files(root) -> list[str]:
    bad = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if TEMP_NAME.fullmatch(path.name):
            bad.append(f"{path}: temporary file left")
        elif path.suffix == ".png":
            try:
                with Image.open(path) as image:
                    image.load()
            except Exception as exc:
                bad.append(f"{path}: {exc}")
    return bad


def test_sigkill_while_the_writer_holds_finished_cases_loses_none_and_resume_completes_the_run(project):
    project.write_tests(SWEEP)
    project.run(update="all").outcome.assert_outcomes(passed=CASES)  # the baselines, in this process (no killer yet)
    use_fake_pipeline(project.pytester, extra=KILLER)
    killed = child(project, kill_at=3)  # the writer's 3rd rename: the second case's image
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    folder = RunFolder(project.runs()[-1])
    journaled = [result.nodeid for result in read_journal(folder.journal)]
    reported = REPORTED.findall(killed.stdout)
    assert journaled == reported[:len(journaled)]  # in order, each after its files
    assert len(reported) > len(journaled), "the kill found no finished case waiting in the writer's queue"
    assert all(folder.image(case_path(nodeid)).is_file() for nodeid in journaled)
    assert [path.name for path in folder.path.rglob("*") if TEMP_NAME.fullmatch(path.name)]  # killed mid-write

    resumed = child(project, f"--diffbench-resume={folder.run_id}")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"{len(journaled)} deselected" in resumed.stdout
    final = read_journal(folder.journal)
    assert len(final) == CASES and len(folder.journal.read_bytes().splitlines()) == CASES  # none ran twice
    assert {result.nodeid for result in final} >= set(journaled)
    assert len(read_results(folder.results)) == CASES
    assert all(folder.image(case_path(result.nodeid)).is_file() for result in final)
    assert unreadable_files(project.path) == []
