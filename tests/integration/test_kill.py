"""SIGKILL a sweep run with ``--diffbench-update`` at many points: nothing finished is lost.

The child pytest counts its file-system commits (every ``os.replace``, the rename of an atomic
write, and every ``os.fsync``: an atomic write's data and each journal line) and kills itself with
SIGKILL right before the N-th one; N is drawn with a fixed seed from the commits a whole run
makes, so the kills fall at the same places every time: between a temporary file's write and its
rename, between a baseline's PNG and its sidecar, between a case and its journal line, during the
session's end (results.csv, grids, summary, bundle, ``latest``). The FakePipeline alternates its
drift between runs, so every run really replaces every baseline pair. The children's fsyncs sync
(the suite plugin skips them elsewhere) and their plot.png is the suite's stand-in, written as
plot.png is: the same commits.

After each kill: every line of the run's journal is a case result; every case pytest reported
(``-v``'s PASSED/FAILED line) is in it but for the few the background writer still held (at most
:data:`~pytest_diffbench.store.writer.QUEUE_DEPTH`), each journaled case with its image in the run
folder (under xdist: or counted as not finished, so a resume runs it again) and its baseline pair
whole; no baseline pair is ever used mixed (a PNG its sidecar does not vouch for reads as broken).
After the next run, which is not killed: no temporary file is left and every pair reads whole.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess

import pytest
from forked_pytest import start_pytest  # tests/suite_plugin: a child pytest forked from a warm server

from pytest_diffbench.store.baselines import BaselineError, BaselineStore
from pytest_diffbench.store.files import sha256_bytes
from pytest_diffbench.store.journal import TEMP_NAME, read_journal
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder
from pytest_diffbench.store.writer import QUEUE_DEPTH
from pytest_diffbench.testing import FAKE_PIPELINE_ENV, use_fake_pipeline

pytestmark = pytest.mark.subprocess

#: Environment of the child: kill before this commit (1-based; unset: never), and where to write
#: how many commits the run made.
KILL_AT_ENV = "DIFFBENCH_TEST_KILL_AT"
COMMITS_ENV = "DIFFBENCH_TEST_COMMITS"
#: The suite plugin's switch (tests/suite_plugin/diffbench_suite.py): these children's fsyncs sync,
#: as the commits they count.
REAL_FSYNC = {"DIFFBENCH_SUITE_FSYNC": "real"}

KILLER = f'''
import os
import signal

_COMMITS = [0]


def _counted(name):
    real = getattr(os, name)
    kill_at = int(os.environ.get("{KILL_AT_ENV}") or 0)

    def commit(*args, **kwargs):
        _COMMITS[0] += 1
        if _COMMITS[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(os, name, commit)


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or the one process) is killed
        _counted("replace")
        _counted("fsync")


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and os.environ.get("{COMMITS_ENV}"):
        with open(os.environ["{COMMITS_ENV}"], "w") as handle:
            handle.write(str(_COMMITS[0]))
'''

SWEEP = '''import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1, 2, 3], steps=[2, 3, 4])
def test_case(diffbench):
    diffbench.generate("a red cube")
'''
CASES = 12
#: pytest's verbose verdict of a case: ``<nodeid> PASSED``, or under xdist ``PASSED <nodeid>``.
VERDICT = re.compile(r"(test_gen\.py::\S+) (?:PASSED|FAILED|ERROR)|(?:PASSED|FAILED|ERROR) (test_gen\.py::\S+)")


class KilledProject:
    """The project and its child runs."""

    def __init__(self, project, *args: str, baselines: bool = False) -> None:
        """``baselines``: first create the baselines with a run in this process (cheaper than a
        child; before the killer is in the conftest, which would wrap this process's ``os.replace``
        for good), counted as the first run of the drift's alternation."""
        self.project = project
        self.args = args
        self.runs = 0
        project.write_ini()
        project.write_tests(SWEEP)
        if baselines:
            project.run(update="all").outcome.assert_outcomes(passed=CASES)
            self.runs += 1
        use_fake_pipeline(project.pytester, extra=KILLER)

    def run(self, kill_at: int = 0) -> tuple[subprocess.CompletedProcess[str], RunFolder | None, int]:
        """One child run (its own process group, all of which a kill ends); its process, the run
        folder it made and the commits it counted."""
        before = set(self.project.runs())
        commits = self.project.path / "commits.txt"
        commits.unlink(missing_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", KILL_AT_ENV: str(kill_at),
               COMMITS_ENV: str(commits), FAKE_PIPELINE_ENV: json.dumps({"drift": 0.3 * (self.runs % 2)}), **REAL_FSYNC}
        env.pop("PYTEST_XDIST_WORKER", None)  # $PYTEST_ADDOPTS is the suite's (tests/conftest.py), not this pytest's
        self.runs += 1
        args = ["-p", "no:cacheprovider", "-v", "--diffbench", "--diffbench-update=all", "--diffbench-lpips=off", *self.args]
        child = start_pytest(args, cwd=self.project.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = child.communicate(timeout=120)
        try:
            os.killpg(child.pid, signal.SIGKILL)  # xdist workers of a killed controller
        except ProcessLookupError:
            pass
        done = subprocess.CompletedProcess(child.args, child.returncode, out)
        new = sorted(set(self.project.runs()) - before)
        assert len(new) <= 1, new
        return done, (RunFolder(new[0]) if new else None), int(commits.read_text()) if commits.exists() else 0

    def pairs(self) -> dict[str, str]:
        """Each baseline case's state: ``whole`` (its sidecar vouches for its PNG), ``broken``
        (refused with a BaselineError) or ``MIXED`` (read as a baseline that its PNG is not)."""
        root = self.project.baselines
        states = {}
        for png in sorted(root.rglob("*.png")):
            pin, *parts = png.relative_to(root).with_suffix("").parts
            case = "/".join(parts)
            try:
                baseline = BaselineStore(root, pin).load(case)
            except BaselineError:
                states[case] = "broken"
                continue
            vouched = baseline is not None and baseline.sidecar.image_sha256 == sha256_bytes(png.read_bytes())
            states[case] = "whole" if vouched else "MIXED"
        return states

    def temp_files(self) -> list[str]:
        return sorted(str(p) for p in self.project.path.rglob("*") if TEMP_NAME.fullmatch(p.name) or p.suffix == ".tmp")


def check_killed_run(killed: KilledProject, done, folder: RunFolder | None) -> None:
    """The checks of one killed run (see the module docstring)."""
    assert done.returncode == -signal.SIGKILL, done.stdout[-3000:]
    reported = {first or second for first, second in VERDICT.findall(done.stdout)}
    if folder is None or not folder.journal.exists():
        assert not reported, "cases were reported but the run left no journal"
        return
    journaled = {result.nodeid: result for result in read_journal(folder.journal)}  # every complete line parses
    lines = folder.journal.read_bytes().split(b"\n")
    assert len(lines[:-1]) == len(journaled)  # one line per case (no reruns here)
    # the background writer journals a reported case after its files: a kill costs at most a queue's worth
    missing = sorted(nodeid for nodeid in reported if nodeid not in journaled)
    assert len(missing) <= QUEUE_DEPTH, f"reported but not journaled: {missing}"
    finished = {result.nodeid for result in folder.finished_results()}
    for nodeid, result in journaled.items():
        if "no:xdist" in killed.args:  # one process: the writer journals a case after its files
            assert folder.image(case_path(nodeid)).is_file(), nodeid
        elif nodeid not in finished:  # xdist (the controller journals, a worker writes): a resume runs it again
            continue
        if result.baseline_action.wrote:
            store = BaselineStore(killed.project.baselines, result.pin)
            baseline = store.load(case_path(nodeid))
            assert baseline is not None
            assert baseline.sidecar.image_sha256 == sha256_bytes(folder.image(case_path(nodeid)).read_bytes()), nodeid
    assert "MIXED" not in killed.pairs().values()


def kill_runs(killed: KilledProject, total: int, kills: int, seed: int) -> list[int]:
    """Runs killed at commits drawn with ``seed`` from a run of ``total`` commits until ``kills``
    of them were killed (a run after a kill may make fewer commits: a pair the kill left broken
    has nothing to keep in replaced-baselines/; a draw past its end is a run that finishes); the
    points of the kills."""
    draw = random.Random(seed)
    points: list[int] = []
    for _ in range(kills * 2):
        point = draw.randint(1, total)
        done, folder, _ = killed.run(kill_at=point)
        if done.returncode == 0:
            continue
        check_killed_run(killed, done, folder)
        points.append(point)
        if len(points) == kills:
            return points
    raise AssertionError(f"only {len(points)} of {kills} runs were killed")


def test_sigkill_at_many_points_loses_no_finished_case(project):
    killed = KilledProject(project, "-p", "no:xdist", baselines=True)
    done, folder, total = killed.run()  # a refresh of every pair: a refresh makes the most commits
    assert done.returncode == 0, done.stdout[-3000:]
    assert folder is not None and len(read_journal(folder.journal)) == CASES
    points = kill_runs(killed, total, 10, seed=20261129)
    assert max(points) > total - 40  # one kill, at least, during the session's end
    done, folder, _ = killed.run()
    assert done.returncode == 0, done.stdout[-3000:]
    assert folder is not None and folder.finished and len(read_journal(folder.journal)) == CASES
    assert killed.temp_files() == []
    assert set(killed.pairs().values()) == {"whole"} and len(killed.pairs()) == CASES


def test_sigkill_of_an_xdist_controller_loses_no_finished_case(project):
    """The controller journals the cases and writes the run's files; killing it ends its workers
    too. Its commits are a journal line per case, then the session's end (over 20 commits: results,
    environment, ``latest``, a grid per case, ...), so the kill points need no counting run."""
    killed = KilledProject(project, "-n", "2")
    for point in random.Random(7).sample(range(1, CASES + 20), 3):
        done, folder, _ = killed.run(kill_at=point)
        check_killed_run(killed, done, folder)
    done, folder, _ = killed.run()
    assert done.returncode == 0, done.stdout[-3000:]
    assert folder is not None and folder.finished and len(read_journal(folder.journal)) == CASES
    assert killed.temp_files() == []
    assert set(killed.pairs().values()) == {"whole"} and len(killed.pairs()) == CASES
