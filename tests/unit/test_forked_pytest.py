"""The suite's forked child pytest (tests/suite_plugin/forked_pytest.py) behaves as ``python -m
pytest`` started from scratch: folder, sys.path, environment, arguments, output, exit status,
signals; and a child whose environment differs in what libraries read at import starts from
scratch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from forked_pytest import ForkedChild, run_python, start_pytest

pytestmark = pytest.mark.subprocess

PROBE = '''
import json, os, sys


def test_probe():
    print("PROBE " + json.dumps({"cwd": os.getcwd(), "path0": sys.path[0], "argv": sys.argv[1:],
                                 "marker": os.environ.get("PROBE_MARKER"), "stdin": sys.stdin.read(),
                                 "session": os.getsid(0) == os.getpid()}))


def test_fails():
    assert 1 == 2
'''


def probe(out: str) -> dict:
    (line,) = [line for line in out.splitlines() if line.startswith("PROBE ")]
    return json.loads(line[len("PROBE "):])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "test_child.py").write_text(PROBE)
    return tmp_path


def run(folder: Path, *args: str, **env: str) -> tuple[ForkedChild | subprocess.Popen, str]:
    child = start_pytest(["-p", "no:cacheprovider", "-s", "-q", *args], cwd=folder, env={**os.environ, **env},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = child.communicate(timeout=120)
    return child, out


def test_a_forked_child_runs_as_python_m_pytest_in_its_folder_with_its_environment(folder):
    forked, out = run(folder, "-k", "probe or fails", PROBE_MARKER="one")
    assert isinstance(forked, ForkedChild)
    assert forked.returncode == pytest.ExitCode.TESTS_FAILED, out
    seen = probe(out)
    assert seen == {"cwd": str(folder), "path0": str(folder), "argv": ["-p", "no:cacheprovider", "-s", "-q", "-k", "probe or fails"],
                    "marker": "one", "stdin": "", "session": True}
    assert "1 failed, 1 passed" in out and "assert 1 == 2" in out
    again, out = run(folder, "-k", "probe", PROBE_MARKER="two")  # the same server, another child
    assert isinstance(again, ForkedChild) and again.pid != forked.pid
    assert again.returncode == pytest.ExitCode.OK and probe(out)["marker"] == "two"


def test_a_child_whose_import_time_environment_differs_starts_from_scratch(folder):
    run(folder, "-k", "probe")  # the server exists
    child, out = run(folder, "-k", "probe", OMP_NUM_THREADS="3")
    assert isinstance(child, subprocess.Popen)
    assert child.returncode == pytest.ExitCode.OK and probe(out)["path0"] == str(folder)


def test_a_killed_child_reports_the_signal_and_its_output_ends(folder):
    (folder / "test_child.py").write_text("import signal\n\ndef test_wait():\n    print('waiting', flush=True)\n"
                                          "    signal.pause()\n")
    child = start_pytest(["-p", "no:cacheprovider", "-s"], cwd=folder, env=dict(os.environ), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    assert isinstance(child, ForkedChild) and child.stdout is not None
    while "waiting" not in child.stdout.readline():
        pass
    assert child.poll() is None
    os.killpg(child.pid, signal.SIGKILL)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, out


SCRIPT = '''
import json, os, sys

print(json.dumps({"path0": sys.path[0] if sys.path else None, "argv": sys.argv, "name": __name__, "cwd": os.getcwd(),
                  "stdout": [sys.stdout.encoding, sys.stdout.line_buffering], "stderr": sys.stderr.errors}))
'''


@pytest.mark.parametrize("form", ["-c", "-P -c", "script", "-m"])
def test_python_argv_forms_see_what_a_new_interpreter_sees(tmp_path, form):
    """``-c CODE``, ``-P``, ``SCRIPT`` and ``-m MODULE``: the same sys.path[0], sys.argv,
    ``__name__``, folder and standard streams as ``python`` started from scratch."""
    (tmp_path / "probe_module.py").write_text(SCRIPT)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "probe.py").write_text(SCRIPT)
    argv = {"-c": ["-c", SCRIPT, "one"], "-P -c": ["-P", "-c", SCRIPT, "one"], "script": [str(scripts / "probe.py"), "one"],
            "-m": ["-m", "probe_module", "one"]}[form]
    forked = run_python(argv, cwd=tmp_path, env=dict(os.environ), timeout=120)
    fresh = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True,
                           timeout=120)
    assert forked.returncode == fresh.returncode == 0, forked.stderr + fresh.stderr
    assert json.loads(forked.stdout) == json.loads(fresh.stdout)
