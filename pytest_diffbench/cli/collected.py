"""Which cases the current test files still make: pytest's own collection, run in this process.

``diffbench accept`` promotes a run's images; a case the test files no longer collect (its test
was renamed or removed, its sweep changed) would get a baseline no run ever uses. The node ids
are pytest's, collected from the files the run's cases name, with the rootdir and ini file of the
command's settings and without ``--diffbench`` (so no torch is imported), before ``-k``, ``-m``
or ``addopts`` deselect anything.
"""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Iterable

import pytest

from pytest_diffbench.cli.settings import PLUGIN_NAME, CommandError


class _Collector:
    """A pytest plugin that keeps the node ids collected (before any deselection) and the first
    collection error."""

    def __init__(self) -> None:
        self.nodeids: set[str] = set()
        self.error = ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.nodeids.update(item.nodeid for item in items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and not self.error:
            self.error = f"{report.nodeid or 'the test files'}: {_last_line(report.longreprtext)}"


#: How a collection failure starts, and what it advises last.
CANNOT_COLLECT = "cannot collect the current test files to check the run's cases"
FIX = "fix it, or pass --allow-uncollected"


def collected_nodeids(rootdir: Path, inipath: Path | None, files: Iterable[str]) -> frozenset[str]:
    """The node ids pytest collects now from ``files`` (paths relative to ``rootdir``, as node
    ids begin); a file that does not exist is left out (it collects nothing).

    The project's modules it imports are forgotten afterwards (and ``sys.path`` restored), so a
    later collection in this process reads the files anew.

    Raises :class:`CommandError` with one line naming the file when a file cannot be collected
    (a syntax error, a failing import), or pytest refuses its command line.
    """
    paths = sorted({str(rootdir / name) for name in files if (rootdir / name).is_file()})
    if not paths:
        return frozenset()
    # A collection, not a test run: no cache, no capturing, no assertion rewriting, and no hunt for
    # unraisable or thread exceptions (a full garbage collection of this process at its end).
    args = ["--collect-only", "-q", "-p", PLUGIN_NAME, "-p", "no:cacheprovider", "-p", "no:unraisableexception",
            "-p", "no:threadexception", "--capture=no", "--assert=plain", f"--rootdir={rootdir}"]
    if inipath is not None:
        args += ["-c", str(inipath)]
    collector = _Collector()
    before, path = set(sys.modules), list(sys.path)
    output = io.StringIO()
    try:
        with redirect_stdout(output), redirect_stderr(output):
            status = pytest.main([*args, *paths], plugins=[collector])
    finally:
        _forget_project_modules(before, rootdir)
        sys.path[:] = path
    if collector.error:
        raise CommandError(f"{CANNOT_COLLECT}: {collector.error}; {FIX}")
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise CommandError(f"{CANNOT_COLLECT}: pytest exited with {status!s} ({_last_line(output.getvalue())}); {FIX}")
    return frozenset(collector.nodeids)


def _forget_project_modules(before: set[str], rootdir: Path) -> None:
    """Drop the modules imported since ``before`` whose file lies in the project (test modules,
    conftest.py files), not in an installed package (a virtual environment inside the project
    included): libraries such as numpy cannot be imported twice in one process."""
    root = rootdir.resolve()
    for name in set(sys.modules) - before:
        file = getattr(sys.modules.get(name), "__file__", None)
        if not file:
            continue
        where = Path(file).resolve()
        if root in where.parents and "site-packages" not in where.parts:
            del sys.modules[name]


def _last_line(text: str) -> str:
    """The line of pytest's report that says what failed: its last ``E ...`` line, else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return (errors or lines or ["no details"])[-1]
