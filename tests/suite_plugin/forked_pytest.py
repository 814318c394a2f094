"""Child processes (``python -m pytest``, ``python -m MODULE``, ``python SCRIPT``) forked from a
warm server, not started from scratch.

A child ``python -m pytest --diffbench`` spends most of its CPU time before its first test:
starting Python and importing pytest, its plugins and pytest_diffbench (about 0.6 CPU-s), and, on
the built-in models or the family builders, torch, diffusers and transformers (about 12 CPU-s).
The suite starts about a hundred such children. A fork server is a Python process that has
imported those modules once (:data:`LIGHT` or :data:`MODEL`); each child is a ``fork()`` of it
that runs the module's ``__main__`` (``runpy``) as ``python -m`` does: in its own session
(``setsid``, as ``start_new_session=True``: killing its process group ends it and its xdist
workers), in the given folder, with the given environment, arguments, input and output files
(stdin ``/dev/null`` unless given), and ``sys.path`` built as a new interpreter builds it (the
folder, or the script's, unless ``-P``; then $PYTHONPATH; then the interpreter's own), and a new
``__main__`` module (functions defined there pickle by reference, as multiprocessing's pool
needs). It ends as the interpreter ends (``SystemExit``: atexit handlers run, threads joined,
streams flushed); a signal shows as a negative return code, as in :mod:`subprocess`. Of the
interpreter's options, ``-P``, ``-u`` (unbuffered stdout and stderr) and ``-B`` (no bytecode
written) are applied in the child, though ``sys.flags`` stays the server's; any other (``-X``,
``-W``, ...) starts the child from scratch.

The xdist workers of the suite's in-process ``pytest -n`` runs are such children too
(:func:`forked_execnet_workers`): execnet's ``python -u -c BOOTSTRAP`` with piped stdin and stdout.

What a forked child shares with its siblings, where a process started from scratch would not:

- the modules the server imported (never state left by using them: the server only imports);
- the modules' import-time side effects: their warnings filters (numpy's), their loggers (PIL's),
  and no import-time warning of theirs in the child's run;
- the parent process (``os.getppid()`` is the server's pid, not the test process's);
- the environment those modules read when imported. So a child is forked from a server that
  imported them with the child's own values of the variables read then (:data:`IMPORT_PREFIXES`:
  ``OMP_NUM_THREADS``, ``CUDA_VISIBLE_DEVICES``, ``HF_*``, ...): each such environment gets a
  server of its own (at most :data:`MAX_SERVERS`; beyond, children start from scratch). $HOME is the server's own empty folder while it imports (what the libraries
  derive from it then, huggingface's default cache folder, lies there), the child's after;
- str hashing's seed: siblings hash strings alike (config hashes are guarded across interpreters
  by the golden-hash tests, tests/unit/spec/test_config.py, not by comparing children);
- NumPy's legacy global random state, which each child re-seeds from ``os.urandom`` as a new
  process does (Python's ``random`` re-seeds itself after a fork).

A server runs one child at a time; a child asked for meanwhile comes from another server of the
same imports and environment (two xdist workers at once: two servers), started then, within
:data:`MAX_SERVERS`. Linux only (children reach the test's pipes through /proc); elsewhere every
child starts from scratch.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import functools
import gc
import importlib
import importlib.machinery
import io
import json
import os
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from types import TracebackType
from typing import IO, Callable, Iterator, Mapping, Sequence, Union

#: What a child ``pytest --diffbench`` on a FakePipeline imports.
#: Not the modules of pytest plugins' distributions (xdist's): pytest rewrites their asserts at import
#: and warns when one is imported already.
LIGHT = ("pytest", "execnet", "numpy", "PIL.Image", "PIL.PngImagePlugin", "pytest_diffbench.plugin.hooks",
         "pytest_diffbench.plugin.session", "pytest_diffbench.testing")
#: What a child on the built-in models or the family builders imports besides.
MODEL = (*LIGHT, "torch", "diffusers", "transformers", "pytest_diffbench.run.pipelines",
         "pytest_diffbench.run.generation")

#: Variables that the interpreter or the preloaded libraries read when they start or are imported
#: (threads, devices, caches, encodings, allocators): a child is forked from a server that has the
#: child's values of these. Every other variable (pytest's, diffbench's, a test's own) is
#: read at run time; so are the ones the server applies to each child (:data:`APPLIED`).
IMPORT_PREFIXES = ("PYTHON", "OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "NUMEXPR_", "CUDA_", "NVIDIA_", "TORCH",
                   "PYTORCH_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DIFFUSERS_", "TOKENIZERS_", "NUMPY_", "LD_",
                   "MALLOC_", "LC_", "LANG")
APPLIED = frozenset({"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "TORCH_HOME"})

#: The interpreter options a forked child takes (see the module docstring), before ``-m``, ``-c`` or a script.
FORKABLE_OPTIONS = frozenset({"-P", "-u", "-B"})

Child = Union[subprocess.Popen, "ForkedChild"]
#: A child's stdin, stdout or stderr, as :class:`subprocess.Popen` takes it (``PIPE``, ``DEVNULL``, a file, a descriptor).
Stream = Union[int, IO[str], IO[bytes], None]


def read_at_run_time(name: str) -> bool:
    """Whether the environment variable ``name`` may differ between a server and its child."""
    return name in APPLIED or not name.startswith(IMPORT_PREFIXES)


class ForkedChild:
    """A forked child, used as :class:`subprocess.Popen` is: ``pid``, ``returncode``, ``stdin``,
    ``stdout`` and ``stderr`` (files with ``PIPE``: text, or binary as Popen's ``text=False``),
    :meth:`poll`, :meth:`wait`, :meth:`communicate`, :meth:`kill`. Threads may wait on it at once."""

    def __init__(self, server: ForkServer, pid: int, args: list[str], pipes: Mapping[int, IO]) -> None:
        self.server = server
        self.pid = pid
        self.args = args
        self.stdin: IO | None = pipes.get(0)
        self.stdout: IO | None = pipes.get(1)
        self.stderr: IO | None = pipes.get(2)
        self.returncode: int | None = None
        #: What :meth:`communicate` has read from each pipe so far (kept across its timeouts, as Popen keeps it).
        self._read: dict[IO, list[bytes]] = {pipe: [] for pipe in (self.stdout, self.stderr) if pipe is not None}
        #: Held while reading the exit status from the server (execnet waits on its workers from other threads).
        self._status = threading.Lock()
        #: What :meth:`communicate` has yet to write to stdin (kept across its timeouts, as Popen keeps it).
        self._input: memoryview | None = None

    def poll(self) -> int | None:
        """The return code, or None while the child runs."""
        return self._returncode(0)

    def wait(self, timeout: float | None = None) -> int:
        """The return code (negative: the signal that ended it). Raises
        :class:`subprocess.TimeoutExpired` after ``timeout`` seconds; the child keeps running."""
        code = self._returncode(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def _returncode(self, timeout: float | None) -> int | None:
        # another thread's wait holds the lock: this one's timeout still counts (as Popen's)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._status.acquire(timeout=-1 if timeout is None else timeout):
            return self.returncode
        try:
            if self.returncode is None:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if self.server.ended(left):
                    self.returncode = self.server.exit_code()
            return self.returncode
        finally:
            self._status.release()

    def communicate(self, input: str | bytes | None = None,  # noqa: A002 (Popen's name)
                    timeout: float | None = None) -> tuple[str | bytes | None, str | bytes | None]:
        """Write ``input`` to stdin, close it (a child gone already: no :class:`BrokenPipeError`,
        as Popen's), read the pipes to their ends (every writer, xdist workers included, gone), then
        :meth:`wait`; all within ``timeout`` seconds, else :class:`subprocess.TimeoutExpired` (the
        child keeps running; a later call returns all the output). As Popen's with a timeout, it
        reads the pipes' descriptors: what the caller already read through ``stdout`` is not in it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.stdin is not None and not self.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.stdin.flush()
            if input and self._input is None:
                encoded = input.encode(self.stdin.encoding, self.stdin.errors) if isinstance(input, str) else input
                self._input = memoryview(encoded)  # type: ignore[union-attr,arg-type]
            if not self._input:
                with contextlib.suppress(BrokenPipeError):
                    self.stdin.close()
        left = {pipe.fileno(): pipe for pipe in self._read if not pipe.closed}
        while left or (self.stdin is not None and not self.stdin.closed):
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            writing = [self.stdin.fileno()] if self.stdin is not None and not self.stdin.closed else []
            readable, writable, _ = select.select(list(left), writing, [], wait)
            if not readable and not writable:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            if writable:
                assert self.stdin is not None and self._input is not None
                try:
                    self._input = self._input[os.write(writable[0], self._input[:select.PIPE_BUF]):]
                except BrokenPipeError:
                    self._input = self._input[:0]
                if not self._input:
                    with contextlib.suppress(BrokenPipeError):
                        self.stdin.close()
            for fd in readable:
                chunk = os.read(fd, 65536)
                if chunk:
                    self._read[left[fd]].append(chunk)
                else:
                    left.pop(fd).close()
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self._text(self.stdout), self._text(self.stderr)

    def _text(self, pipe: IO | None) -> str | bytes | None:
        """A pipe's output as Popen gives it: bytes, or with ``text=True`` decoded (universal newlines)."""
        if pipe is None:
            return None
        data = b"".join(self._read[pipe])
        if not isinstance(pipe, io.TextIOBase):
            return data
        text = data.decode(pipe.encoding, pipe.errors)  # type: ignore[arg-type]
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def kill(self) -> None:
        """SIGKILL the child's process group (it and the processes it started)."""
        if self.returncode is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class ForkServer:
    """A process that has imported ``preload`` with the environment ``env``, and forks children."""

    def __init__(self, preload: Sequence[str], env: Mapping[str, str]) -> None:
        self.preload = tuple(preload)
        self.home = tempfile.mkdtemp(prefix="fork-server-")
        # its sys.path is the interpreter's; what the libraries derive from $HOME when imported (huggingface's
        # cache folder) is a folder of its own, not the folder of the test that happened to start it
        own = {**{name: value for name, value in env.items() if name != "PYTHONPATH"}, "HOME": self.home}
        # unbuffered: a reply already read into a buffer would hide from select()
        self.process = subprocess.Popen([sys.executable, __file__, *self.preload], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=own, cwd="/", bufsize=0)
        self.child: ForkedChild | None = None
        if self._reply() != "ready":
            raise RuntimeError(f"the fork server for {self.preload} did not start")

    def _reply(self) -> object:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server for {self.preload} ended (exit status {self.process.wait()})")
        return json.loads(line)

    def ended(self, timeout: float | None) -> bool:
        """Whether the running child's exit status arrives within ``timeout`` seconds."""
        assert self.process.stdout is not None
        return bool(select.select([self.process.stdout], [], [], timeout)[0])

    def exit_code(self) -> int:
        """The running child's return code, once :meth:`ended`."""
        code = self._reply()
        assert isinstance(code, int)
        self.child = None
        return code

    def can_fork(self) -> bool:
        """Whether the server is up and has no child running."""
        return self.process.poll() is None and (self.child is None or self.child.poll() is not None)

    def start(self, argv: list[str], cwd: Path, env: Mapping[str, str], stdin: Stream, stdout: Stream, stderr: Stream,
              text: bool) -> ForkedChild:
        """Fork ``python *argv`` (see :func:`start_python`)."""
        assert self.process.stdin is not None
        pipes: dict[int, tuple[int, int]] = {}  # the child's fd: the pipe's read and write ends here

        def path_of(target: Stream, fd: int) -> str:
            if target is None:
                return os.devnull if fd == 0 else f"/proc/{os.getpid()}/fd/{fd}"
            if target == subprocess.DEVNULL:
                return os.devnull
            if target == subprocess.PIPE:
                pipes[fd] = os.pipe()
                return f"/proc/{os.getpid()}/fd/{pipes[fd][0 if fd == 0 else 1]}"
            return f"/proc/{os.getpid()}/fd/{target if isinstance(target, int) else target.fileno()}"

        out = path_of(stdout, 1)
        err = out if stderr == subprocess.STDOUT else path_of(stderr, 2)
        request = {"argv": argv, "cwd": str(cwd), "env": dict(env), "stdin": path_of(stdin, 0), "stdout": out, "stderr": err}
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        pid = self._reply()  # the server has opened the files, forked, seen the child's setsid(), closed its copies
        assert isinstance(pid, int)
        piped: dict[int, IO] = {}
        for fd, (read, write) in pipes.items():  # this side's ends, as Popen's pipes (buffered; text=True: text)
            os.close(read if fd == 0 else write)
            binary = io.open(write, "wb") if fd == 0 else io.open(read, "rb")
            piped[fd] = io.TextIOWrapper(binary, write_through=fd == 0) if text else binary
        self.child = ForkedChild(self, pid, [sys.executable, *argv], piped)
        return self.child

    def close(self) -> None:
        """End the running child, if any, and the server."""
        if self.child is not None:
            self.child.kill()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)


#: This process's servers, by what they imported and the environment they imported it with.
_servers: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], list[ForkServer]] = {}
#: At most this many servers per process (a MODEL server holds torch and diffusers in memory);
#: a child that would need another starts from scratch.
MAX_SERVERS = 8
#: Held while a thread picks (or starts) a free server and forks its child.
_starting = threading.Lock()


def import_environment(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables of ``env`` read at import (not :func:`read_at_run_time`), sorted."""
    return tuple(sorted((name, value) for name, value in env.items() if not read_at_run_time(name)))


def split_options(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv``'s leading :data:`FORKABLE_OPTIONS`, and the rest."""
    count = next((i for i, arg in enumerate(argv) if arg not in FORKABLE_OPTIONS), len(argv))
    return list(argv[:count]), list(argv[count:])


def forkable(argv: Sequence[str], cwd: Path) -> bool:
    """Whether the server can run ``python *argv``: ``[OPTIONS] -m MODULE``, ``[OPTIONS] -c CODE`` or
    ``[OPTIONS] SCRIPT`` (a file), the options among :data:`FORKABLE_OPTIONS`; any other option
    changes the interpreter itself."""
    rest = split_options(argv)[1]
    if rest[:1] in (["-m"], ["-c"]):
        return len(rest) > 1
    return bool(rest) and not rest[0].startswith("-") and os.path.isfile(os.path.join(cwd, rest[0]))


def _server(preload: Sequence[str], env: Mapping[str, str]) -> ForkServer | None:
    """A free server of this process that has imported ``preload`` with the variables of ``env``
    read at import; started when each such server has a child running (at most
    :data:`MAX_SERVERS` in all); None when the child must start from scratch (not Linux, or no
    server free and no more may start)."""
    if not sys.platform.startswith("linux"):
        return None
    same = _servers.setdefault((tuple(preload), import_environment(env)), [])
    free = next((server for server in same if server.can_fork()), None)
    if free is None and sum(map(len, _servers.values())) < MAX_SERVERS:
        if not any(_servers.values()):
            atexit.register(lambda: [server.close() for servers in _servers.values() for server in servers])
        free = ForkServer(preload, env)
        same.append(free)
    return free


def start_python(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                 preload: Sequence[str] = LIGHT, stdin: Stream = subprocess.DEVNULL, stdout: Stream = None,
                 stderr: Stream = None, text: bool = True) -> Child:
    """``python *argv`` (``[OPTIONS] -m MODULE ARGS``, ``[OPTIONS] -c CODE ARGS`` or ``[OPTIONS]
    SCRIPT ARGS``) in ``cwd`` with ``env`` (as :class:`subprocess.Popen`'s, this process's folder
    and environment when None), in its own session: forked from a server of this process that
    imported ``preload`` when it may be (see the module docstring), else started from scratch
    (:class:`subprocess.Popen`). ``stdin``, ``stdout``, ``stderr`` and ``text`` (the pipes' kind)
    as :class:`subprocess.Popen` takes them, but stdin is ``/dev/null`` unless given."""
    cwd = Path.cwd() if cwd is None else cwd
    env = dict(os.environ) if env is None else env
    if forkable(argv, cwd):
        with _starting:  # threads starting children at once: each its own free server, its own replies
            server = _server(preload, env)
            if server is not None:
                return server.start(list(argv), cwd, env, stdin, stdout, stderr, text)
    return subprocess.Popen([sys.executable, *argv], cwd=cwd, env=dict(env), stdin=stdin, stdout=stdout, stderr=stderr,
                            text=text, start_new_session=True)


@contextlib.contextmanager
def forked_execnet_workers(preload: Callable[[], Sequence[str]]) -> Iterator[None]:
    """Within the block, the xdist workers of this process's ``pytest -n`` runs (execnet's popen
    gateways: ``python -u -c BOOTSTRAP`` talking over piped stdin and stdout) are forked from a
    server that imported ``preload()`` (:func:`start_python`), in the folder and with the
    environment this process has when they start, as execnet's :class:`subprocess.Popen` would
    run them. A gateway of another interpreter (``--tx popen//python=...``) starts as execnet
    starts it. Without execnet, nothing changes."""
    try:
        from execnet import gateway_io
    except ImportError:
        yield
        return
    original = gateway_io.Popen2IOMaster.__init__

    def forked(io_master: gateway_io.Popen2IOMaster, args: list[str], execmodel: object) -> None:
        if args[:1] != [sys.executable]:
            original(io_master, args, execmodel)  # type: ignore[arg-type]
            return
        io_master.popen = child = start_python(args[1:], preload=preload(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                               text=False)
        gateway_io.Popen2IO.__init__(io_master, child.stdin, child.stdout, execmodel=execmodel)  # type: ignore[arg-type]

    gateway_io.Popen2IOMaster.__init__ = forked  # type: ignore[method-assign]
    try:
        yield
    finally:
        gateway_io.Popen2IOMaster.__init__ = original  # type: ignore[method-assign]


def start_pytest(args: Sequence[str], **options: object) -> Child:
    """``python -m pytest *args``: :func:`start_python`."""
    return start_python(["-m", "pytest", *args], **options)  # type: ignore[arg-type]


def run_python(argv: Sequence[str], *, timeout: float | None, **options: object) -> subprocess.CompletedProcess[str]:
    """:func:`start_python` to its end, as :func:`subprocess.run` with ``capture_output=True``:
    the return code, stdout and stderr. Raises :class:`subprocess.TimeoutExpired` (the child
    killed) after ``timeout`` seconds (None: no limit)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        child = start_python(argv, stdout=out, stderr=err, **options)  # type: ignore[arg-type]
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess([sys.executable, *argv], code, out.read(), err.read())


# -- the server ---------------------------------------------------------------------------------


def _main_module(**attributes: object) -> dict:
    """A new ``__main__`` module, as the interpreter makes it, with ``attributes``; its namespace."""
    module = types.ModuleType("__main__")
    module.__dict__.update({"__builtins__": builtins, "__loader__": importlib.machinery.BuiltinImporter, **attributes})
    sys.modules["__main__"] = module
    return module.__dict__


def _stdio(fd: int, template: io.TextIOWrapper, unbuffered: bool) -> io.TextIOWrapper:
    """The standard stream on ``fd`` as the interpreter makes it (``create_stdio``): the
    server's own stream's encoding and errors; unbuffered writes with -u; line-buffered on a
    terminal and for stderr; named ``<stdout>``."""
    write = fd != 0
    buffered = not (unbuffered and write)
    raw = io.FileIO(fd, "wb" if write else "rb", closefd=False)
    raw.name = template.name  # type: ignore[misc]
    binary = (io.BufferedWriter(raw) if write else io.BufferedReader(raw)) if buffered else raw
    stream = io.TextIOWrapper(binary, encoding=template.encoding, errors=template.errors, newline="\n",
                              line_buffering=buffered and (os.isatty(fd) or fd == 2), write_through=unbuffered)
    stream.mode = "w" if write else "r"  # type: ignore[misc]
    return stream


def _run_child(request: dict, base_path: list[str], stdio: list[io.TextIOWrapper]) -> None:
    """In the forked child (in its own session already): become ``python *argv`` as the request
    describes, then run it; its SystemExit (or its end) ends the process as an interpreter's end does."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    sys.orig_argv = [sys.executable, *request["argv"]]
    options, argv = split_options(request["argv"])
    safe_path = "-P" in options
    if "-B" in options:
        sys.dont_write_bytecode = True
    if argv[0] == "-m":  # as the interpreter runs it: its __main__, its traceback frames, its "No module named"
        first, run = os.getcwd(), lambda: runpy._run_module_as_main(argv[1], alter_argv=True)  # type: ignore[attr-defined]
        sys.argv = ["-m", *argv[2:]]
        _main_module(__spec__=None, __package__=None)
    elif argv[0] == "-c":
        namespace = _main_module(__spec__=None, __package__=None)
        first, run = "", lambda: exec(compile(argv[1], "<string>", "exec"), namespace)
        sys.argv = ["-c", *argv[2:]]
    else:
        namespace = _main_module(__spec__=None, __package__=None, __file__=argv[0], __cached__=None,
                                 __loader__=importlib.machinery.SourceFileLoader("__main__", argv[0]))
        first, run = os.path.dirname(os.path.abspath(argv[0])), lambda: exec(
            compile(Path(argv[0]).read_bytes(), argv[0], "exec"), namespace)
        sys.argv = argv
    extra = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:] = [*([] if safe_path else [first]), *extra, *base_path]
    importlib.invalidate_caches()
    unbuffered = "-u" in options or bool(os.environ.get("PYTHONUNBUFFERED"))
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        stream = _stdio(fd, stdio[fd], unbuffered)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(int.from_bytes(os.urandom(4), "little"))
    try:
        run()
    except BaseException as error:
        if not isinstance(error, SystemExit):  # the interpreter prints it (KeyboardInterrupt: then ends by SIGINT)
            sys.excepthook = functools.partial(_from_the_childs_code, sys.excepthook)
        raise
    raise SystemExit(0)


def _from_the_childs_code(hook: Callable[[type[BaseException], BaseException, TracebackType | None], object],
                          kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    """``hook``, on a child's uncaught exception's traceback without the server's frames: as a new
    interpreter prints it, from the code's first frame (``-m``: runpy's)."""
    while trace is not None and trace.tb_frame.f_code.co_filename == _run_child.__code__.co_filename:
        trace = trace.tb_next
    hook(kind, error.with_traceback(trace), trace)  # the interpreter's hook prints the exception's own traceback


def serve(preload: Sequence[str]) -> None:
    """The server's loop: import ``preload``, answer ``"ready"``, then for each request (a JSON
    line on stdin) fork a child, answer its pid once it has its own session (a kill of its
    process group reaches it from then on), wait for it, answer its return code."""
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # what an import prints must not reach the replies
    stdio = [sys.__stdin__, sys.__stdout__, sys.__stderr__]  # the children's streams are made as these were
    base_path = [entry for entry in sys.path if entry != os.path.dirname(os.path.abspath(__file__))]
    for name in preload:
        importlib.import_module(name)
    gc.freeze()  # the children's collections skip what the server imported (and copy none of its pages)
    replies.write(b'"ready"\n')
    for line in sys.stdin.buffer:
        request = json.loads(line)
        into = os.open(request["stdin"], os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_APPEND)
        err = out if request["stderr"] == request["stdout"] else os.open(request["stderr"], os.O_WRONLY | os.O_APPEND)
        session, in_session = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.setsid()
            replies.close()
            os.dup2(into, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            for fd in {into, out, err, session, in_session}:
                os.close(fd)
            _run_child(request, base_path, stdio)  # raises SystemExit
        for fd in {into, out, err, in_session}:
            os.close(fd)
        os.read(session, 1)  # the end of file: the child is in its session (or has ended)
        os.close(session)
        replies.write(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        replies.write(f"{os.waitstatus_to_exitcode(status)}\n".encode())


if __name__ == "__main__":
    serve(sys.argv[1:])
