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
import threading
from pathlib import Path

import forked_pytest
import pytest
from forked_pytest import ForkedChild, run_python, start_pytest, start_python

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


def test_a_child_whose_import_time_environment_differs_forks_from_a_server_of_that_environment(tmp_path):
    """Children that differ in a variable read at import (OMP_NUM_THREADS) come from different
    servers, each started with that value; children that differ only in others share one."""
    code = "import json, os; print(json.dumps([os.getppid(), os.environ.get('OMP_NUM_THREADS'), os.environ.get('MARK')]))"

    def child(**env: str) -> list:
        done = run_python(["-c", code], cwd=tmp_path, env={**os.environ, **env}, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    one, other = child(OMP_NUM_THREADS="1", MARK="a"), child(OMP_NUM_THREADS="1", MARK="b")
    three = child(OMP_NUM_THREADS="3", MARK="c")
    assert one[0] == other[0] != three[0] != os.getpid()  # a server's children: its pid is their parent's
    assert [one[1:], other[1:], three[1:]] == [["1", "a"], ["1", "b"], ["3", "c"]]


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
import json, os, pickle, sys


def probe():
    """A function of __main__: pickled by reference, as a multiprocessing pool sends it."""


streams = {name: [getattr(stream, attribute, None) for attribute in ("name", "mode", "encoding", "errors", "line_buffering")]
           for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout), ("stderr", sys.stderr))}
print(json.dumps({"path0": sys.path[0] if sys.path else None, "argv": sys.argv, "name": __name__, "cwd": os.getcwd(),
                  "streams": streams, "orig_argv": sys.orig_argv[1:], "main": sys.modules["__main__"].__dict__ is globals(),
                  "file": globals().get("__file__"), "pickles": pickle.loads(pickle.dumps(probe)) is probe}))
'''


@pytest.mark.parametrize("form", ["-c", "-P -c", "script", "-m", "-c unbuffered"])
def test_python_argv_forms_see_what_a_new_interpreter_sees(tmp_path, form):
    """``-c CODE``, ``-P``, ``SCRIPT`` and ``-m MODULE``: the same sys.path[0], sys.argv,
    sys.orig_argv, ``__name__``, ``__main__`` module (its functions pickle), folder and standard
    streams as ``python`` started from scratch."""
    (tmp_path / "probe_module.py").write_text(SCRIPT)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "probe.py").write_text(SCRIPT)
    argv = {"-c": ["-c", SCRIPT, "one"], "-P -c": ["-P", "-c", SCRIPT, "one"], "script": [str(scripts / "probe.py"), "one"],
            "-m": ["-m", "probe_module", "one"], "-c unbuffered": ["-c", SCRIPT, "one"]}[form]
    env = {**os.environ, **({"PYTHONUNBUFFERED": "1"} if form.endswith("unbuffered") else {})}
    forked = run_python(argv, cwd=tmp_path, env=env, timeout=120)
    fresh = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert forked.returncode == fresh.returncode == 0, forked.stderr + fresh.stderr
    assert json.loads(forked.stdout) == json.loads(fresh.stdout)


def test_a_pool_of_a_forked_child_runs_functions_of_its_main():
    """multiprocessing pickles a ``-c`` child's function by reference to ``__main__``."""
    code = "import multiprocessing\n\ndef square(x):\n    return x * x\n\nwith multiprocessing.Pool(1) as pool:\n" \
           "    print(pool.map(square, [1, 2, 3]))\n"
    forked = run_python(["-c", code], cwd=Path.cwd(), env=dict(os.environ), timeout=120)
    assert (forked.returncode, forked.stdout) == (0, "[1, 4, 9]\n"), forked.stderr


def test_a_process_group_kill_right_after_the_start_reaches_the_child(tmp_path):
    """The pid comes back once the child has its own session: ``killpg`` at once does not miss it."""
    for _ in range(5):
        child = start_python(["-c", "import signal; signal.pause()"], cwd=tmp_path, env=dict(os.environ))
        assert isinstance(child, ForkedChild)
        os.killpg(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL


def test_communicate_keeps_its_timeout_after_output_and_returns_all_output_later(tmp_path):
    child = start_python(["-c", "import signal; print('first', flush=True); signal.pause()"], cwd=tmp_path,
                         env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert isinstance(child, ForkedChild)
    with pytest.raises(subprocess.TimeoutExpired):
        child.communicate(timeout=1)
    child.kill()
    assert child.communicate(timeout=60) == ("first\n", "")
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stdout, stderr", [(subprocess.PIPE, subprocess.PIPE), (None, subprocess.PIPE),
                                            (subprocess.DEVNULL, subprocess.PIPE), (subprocess.PIPE, subprocess.DEVNULL)])
def test_pipes_and_devnull_as_popen_takes_them(tmp_path, stdout, stderr):
    """More than a pipe's capacity to each output: the child neither blocks nor loses any of it."""
    code = "import sys\nsys.stdout.write('out\\r\\n' * 50000)\nsys.stderr.write('err\\n' * 50000)\n"
    forked = start_python(["-c", code], cwd=tmp_path, env=dict(os.environ), stdout=stdout, stderr=stderr)
    assert isinstance(forked, ForkedChild)
    fresh = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=stdout, stderr=stderr, text=True)
    assert forked.communicate(timeout=120) == fresh.communicate(timeout=120)
    assert forked.returncode == fresh.returncode == 0


def test_other_interpreter_options_start_from_scratch(tmp_path):
    argv = ["-X", "utf8", "-c", "import sys; print(sys.flags.utf8_mode)"]
    child = start_python(argv, cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE)
    assert isinstance(child, subprocess.Popen)
    assert child.communicate(timeout=120)[0] == "1\n"



@pytest.mark.parametrize("form", ["-c", "script", "-m"])
@pytest.mark.parametrize("error", ["ValueError('lost')", "KeyboardInterrupt"])
def test_an_uncaught_exception_reads_and_ends_as_in_a_new_interpreter(tmp_path, form, error):
    """The same traceback (no server frames), then the same return code: 1, or SIGINT's."""
    code = f"import atexit\natexit.register(print, 'at exit')\n\ndef fail():\n    raise {error}\n\nfail()\n"
    (tmp_path / "failing.py").write_text(code)
    argv = {"-c": ["-c", code], "script": [str(tmp_path / "failing.py")], "-m": ["-m", "failing"]}[form]
    forked = run_python(argv, cwd=tmp_path, env=dict(os.environ), timeout=120)
    fresh = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True,
                           timeout=120)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert fresh.returncode == (1 if error.startswith("ValueError") else -signal.SIGINT)


ECHO = "import sys\ndata = sys.stdin.buffer.read()\nsys.stdout.buffer.write(data[::-1])\nprint(len(data), sys.dont_write_bytecode)\n"


@pytest.mark.parametrize("options", [["-u"], ["-u", "-B"], ["-P", "-u"]])
def test_piped_stdin_binary_pipes_and_interpreter_options_as_popen_gives_them(tmp_path, options):
    """``-u``, ``-B`` and ``-P`` before ``-c``: forked, with bytes written to a piped stdin read
    back from a binary stdout, as from a child started from scratch."""
    argv = [*options, "-c", ECHO]
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    forked = start_python(argv, cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=False)
    assert isinstance(forked, ForkedChild)
    fresh = subprocess.Popen([sys.executable, *argv], cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    data = bytes(range(256)) * 1000
    for child in (forked, fresh):
        assert child.stdin is not None
        child.stdin.write(data)
    assert forked.communicate(timeout=120) == fresh.communicate(timeout=120)
    assert forked.returncode == fresh.returncode == 0


def test_children_at_once_fork_from_servers_of_their_own(tmp_path):
    """A second child while the first runs comes from a second server of the same imports and
    environment, not from scratch; once both ended, the next reuses a server."""
    code = "import os, sys; print(os.getppid(), flush=True); sys.stdin.read()"
    first, second = (start_python(["-c", code], cwd=tmp_path, env=dict(os.environ), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE) for _ in range(2))
    assert isinstance(first, ForkedChild) and isinstance(second, ForkedChild)
    (one, _), (two, _) = first.communicate(timeout=120), second.communicate(timeout=120)
    assert int(one) != int(two) and os.getpid() not in (int(one), int(two))
    done = run_python(["-c", "import os; print(os.getppid())"], cwd=tmp_path, env=dict(os.environ), timeout=120)
    assert int(done.stdout) in (int(one), int(two))


def test_the_xdist_workers_of_an_in_process_run_are_forked_and_run_the_tests(pytester):
    """``pytest -n 2`` in this process: execnet's workers are forked children of a server (their
    parent is not this process) and run every test."""
    pytester.makepyfile(test_workers='''
        import os
        import pytest


        @pytest.mark.parametrize("n", range(4))
        def test_parent(n, worker_id):
            with open(f"parent-of-{worker_id}", "w") as handle:
                handle.write(str(os.getppid()))
    ''')
    result = pytester.runpytest_inprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    parents = {path.name: int(path.read_text()) for path in pytester.path.glob("parent-of-*")}
    assert sorted(parents) == ["parent-of-gw0", "parent-of-gw1"] and os.getpid() not in parents.values(), parents


def test_communicate_writes_its_input_and_a_child_gone_before_reading_is_no_error(tmp_path):
    """``communicate(input)`` as Popen's: the input written (more than a pipe holds) while the
    output is read; and a write buffered for a child that ended without reading raises no
    :class:`BrokenPipeError`."""
    code = "import sys\ndata = sys.stdin.read()\nprint(len(data), data[-3:])\n"
    text = "abc" * 100000
    results = []
    for argv, data, late in ((["-c", code], text, None), (["-c", "pass"], None, "unread")):
        forked = start_python(argv, cwd=tmp_path, env=dict(os.environ), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert isinstance(forked, ForkedChild)
        fresh = subprocess.Popen([sys.executable, *argv], cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
        for child in (forked, fresh):
            if late is not None:
                assert child.stdin is not None
                child.wait(timeout=120)
                child.stdin.write(late)
            results.append((child.communicate(data, timeout=120), child.returncode))
    assert results == [(("300000 abc\n", None), 0)] * 2 + [(("", None), 0)] * 2


def test_a_wait_with_a_timeout_times_out_while_another_thread_waits(tmp_path):
    """As Popen's: one thread's ``wait()`` does not make another's ``wait(timeout)`` block past it."""
    argv = ["-c", "import sys; sys.stdin.read()"]
    forked = start_python(argv, cwd=tmp_path, env=dict(os.environ), stdin=subprocess.PIPE)
    assert isinstance(forked, ForkedChild)
    fresh = subprocess.Popen([sys.executable, *argv], cwd=tmp_path, stdin=subprocess.PIPE)
    for child in (forked, fresh):
        waiting = threading.Thread(target=child.wait)
        waiting.start()
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1)
        assert child.stdin is not None
        child.stdin.close()
        waiting.join(timeout=120)
        assert not waiting.is_alive() and child.returncode == 0


def test_threads_starting_children_at_once_each_get_a_server_of_their_own(tmp_path, monkeypatch):
    """Children started from several threads at once, with free servers already up: each is
    forked (no two requests on one server) and gets its own input and return code back. Room for
    three more servers whatever this process's earlier tests started (beyond MAX_SERVERS a child
    starts from scratch, which is not what this test is about)."""
    monkeypatch.setattr(forked_pytest, "MAX_SERVERS", sum(map(len, forked_pytest._servers.values())) + 3)
    code = "import sys; print(sys.stdin.read()); sys.exit(len(sys.argv))"
    for _ in range(3):  # servers started and free
        start_python(["-c", "pass"], cwd=tmp_path, env=dict(os.environ))
    starts = threading.Barrier(3)
    seen: dict[int, object] = {}

    def child(number: int) -> None:
        starts.wait(timeout=120)
        forked = start_python(["-c", code, *["x"] * number], cwd=tmp_path, env=dict(os.environ), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
        seen[number] = (type(forked), forked.communicate(f"from {number}", timeout=120), forked.returncode)

    threads = [threading.Thread(target=child, args=(number,)) for number in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert seen == {number: (ForkedChild, (f"from {number}\n", None), number + 1) for number in range(3)}


def test_without_cwd_and_env_a_child_has_this_process_s_folder_and_environment(tmp_path, monkeypatch):
    """As :class:`subprocess.Popen`'s defaults."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROBE_MARKER", "inherited")
    code = "import json, os; print(json.dumps([os.getcwd(), os.environ.get('PROBE_MARKER')]))"
    forked = run_python(["-c", code], timeout=120)
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(forked.stdout) == json.loads(fresh.stdout) == [str(tmp_path), "inherited"], forked.stderr
