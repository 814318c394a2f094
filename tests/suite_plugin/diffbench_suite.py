"""The suite's pytest plugin for the runs its tests start in child processes.

tests/conftest.py's :func:`child_environment` names this module in $PYTEST_PLUGINS (its folder on
$PYTHONPATH), so every pytest a test starts loads it: a child ``pytest --diffbench`` (the
subprocess tests, the kill tests), the xdist workers of an in-process ``-n 2`` run, and the
in-process runs themselves. In the test process ($DIFFBENCH_SUITE_PROCESS names it) it does
nothing: tests/conftest.py's fixtures do the same there. In any other process it spares what no
test of the process looks at, as the in-process runs already do:

- plot.png: a 1x1 stand-in (:data:`PLOT_STAND_IN`), not matplotlib's figure (importing matplotlib,
  building and drawing the figure is about 1.2 CPU-s of a 4 CPU-s child run), unless
  $DIFFBENCH_SUITE_PLOT is ``real`` (tests/conftest.py sets it for tests that look at the plot);
- ``os.fsync``: skipped (it guards against power loss, which no test can cause; a killed process's
  writes stay in the page cache), unless $DIFFBENCH_SUITE_FSYNC is ``real``. Every call is still a
  call of ``os.fsync``: a wrapper that counts them (tests/integration/test_kill.py's) counts the same.

It imports nothing at its top but ``os`` (a pytest run without ``--diffbench`` imports no
library: tests/integration/test_light_startup.py), and nothing of diffbench's until a diffbench run
starts.
"""

from __future__ import annotations

import os
from typing import Any

#: The pid of the test process (tests/conftest.py): there, this plugin does nothing.
PROCESS_ENV = "DIFFBENCH_SUITE_PROCESS"
#: ``real``: runs draw plot.png with matplotlib; anything else: :data:`PLOT_STAND_IN`.
PLOT_ENV = "DIFFBENCH_SUITE_PLOT"
#: ``real``: ``os.fsync`` syncs; anything else: it returns at once.
FSYNC_ENV = "DIFFBENCH_SUITE_FSYNC"
#: A 1x1 white PNG (what Pillow writes for ``Image.new("RGB", (1, 1), "white")``).
PLOT_STAND_IN = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
                 b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\r\xefF\xb8\x00\x00\x00\x00IEND\xaeB`\x82")

def skipped_fsync(fd: int) -> None:
    """``os.fsync`` that does not sync (the file descriptor is still checked, as fsync would)."""
    os.fstat(fd)


def in_child() -> bool:
    """Whether this process is one a test started (not the test process, nor a process outside the suite)."""
    process = os.environ.get(PROCESS_ENV)
    return bool(process) and process != str(os.getpid())


if in_child() and os.environ.get(FSYNC_ENV, "real") != "real":
    os.fsync = skipped_fsync


def _plot_stand_in(results: Any, title: str) -> bytes:
    return PLOT_STAND_IN


_PATCHED: list[tuple[Any, Any]] = []


def pytest_sessionstart(session: Any) -> None:
    """In a child diffbench run whose test does not look at plot.png, write the stand-in."""
    if not in_child() or os.environ.get(PLOT_ENV, "real") == "real":
        return
    try:
        from pytest_diffbench.plugin.keys import SESSION_KEY

        enabled = session.config.stash[SESSION_KEY].settings.enabled
    except (ImportError, KeyError, AttributeError):  # not diffbench's run (or another diffbench): the real plot
        return
    if enabled:
        from pytest_diffbench.report import artifacts

        _PATCHED.append((artifacts, artifacts.speed_quality_png))
        artifacts.speed_quality_png = _plot_stand_in


def pytest_unconfigure(config: Any) -> None:
    while _PATCHED:
        module, function = _PATCHED.pop()
        module.speed_quality_png = function

