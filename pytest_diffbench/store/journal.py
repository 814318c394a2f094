"""The journal of a run (``<run>/journal.jsonl``): every finished case's result, kept as it finishes.

Each line is one :meth:`~pytest_diffbench.judge.result.CaseResult.to_transport` object as ASCII
JSON, appended, flushed and fsynced, so a run killed at any moment keeps every case that
finished. The session appends a case's line on its background writer's thread after the case's
files (:mod:`pytest_diffbench.store.writer`), so a journaled case's image is on disk; a kill can
cost the last cases pytest reported whose lines still waited, which a resume runs again. A case
run again (pytest-rerunfailures) has a line per attempt; the last one is its result. A last line
without its newline was cut by a kill and is ignored.

A case pytest skipped (a skip mark, ``pytest.skip()`` in the test or a fixture, an
``xfail(run=False)``) finished without a result: its line is ``{"skipped": {"nodeid": ..., "reason":
...}}`` (:meth:`Journal.append_skip`), so the run's job list counts it done, and it has no
results.csv row. A node id's last line, of either kind, says how it ended.

While its run is going, the process writing the journal holds an exclusive lock on it
(``flock``, where the platform has it): :func:`journal_is_locked` tells a running run from a
killed one, whose journal no process holds. :func:`folder_lock` serialises short updates of a
folder (``latest``) between processes without leaving a lock file.

:func:`remove_temp_files` removes what a killed writer left: the temporary files of
:func:`~pytest_diffbench.store.files.atomic_write_bytes`, whose names end in diffbench's own
:data:`~pytest_diffbench.store.files.TMP_SUFFIX` (no other program's ``.*.tmp`` file is taken).
"""

from __future__ import annotations

import json
import os
import re
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Iterable, Iterator

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.store.files import TMP_SUFFIX

try:
    import fcntl
except ImportError:  # Windows: no flock; a run there is never told from a killed one
    fcntl = None  # type: ignore[assignment]

#: The name of :func:`~pytest_diffbench.store.files.atomic_write_bytes`' temporary files:
#: ``.<file name>.<8 random characters of tempfile.mkstemp><TMP_SUFFIX>``.
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TMP_SUFFIX))
#: The key of a skipped case's journal line (see the module docstring).
SKIPPED_KEY = "skipped"


class JournalError(ValueError):
    """A journal line that is complete but not a case result; the message names file and line."""


class Journal:
    """The open journal of a running run: :meth:`append` each finished case, :meth:`close` at the end.

    Opening it takes the run's lock (see the module docstring). Raises OSError when the file
    cannot be opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: IO[bytes] | None = open(self.path, "ab")
        if fcntl is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def append(self, result: CaseResult) -> None:
        """Add ``result`` as one line and make it durable (flush and fsync) before returning."""
        self._append_line(result.to_transport())

    def append_skip(self, nodeid: str, reason: str) -> None:
        """Add the line of a case pytest skipped (see the module docstring), durable as :meth:`append`'s."""
        self._append_line({SKIPPED_KEY: {"nodeid": nodeid, "reason": reason}})

    def _append_line(self, data: dict[str, Any]) -> None:
        if self._handle is None:
            raise ValueError(f"the journal {self.path} is closed")
        line = json.dumps(data, sort_keys=True, ensure_ascii=True, separators=(",", ":")) + "\n"
        self._handle.write(line.encode("ascii"))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the file, which releases the run's lock; closing twice does nothing."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class JournalEntries:
    """What a journal holds: each node id's result, and the reason of each case pytest skipped."""

    results: list[CaseResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def read_journal(path: Path) -> list[CaseResult]:
    """The results a journal holds: one per node id (its last line wins), in the order each node id
    first appears. A last line cut short by a kill is ignored; so are skipped cases' lines.

    Raises FileNotFoundError when there is no journal, :class:`JournalError` naming the file and
    line when a complete line is not a case result.
    """
    return read_journal_entries(path).results


def read_journal_entries(path: Path) -> JournalEntries:
    """The results and skipped cases a journal holds (see :func:`read_journal`): a node id's last
    line wins, a skip after a result too. Raises as :func:`read_journal`."""
    path = Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    lines.pop()  # the text after the last newline: empty, or a line a kill cut short
    results: dict[str, CaseResult] = {}
    skipped: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
            if isinstance(entry, dict) and SKIPPED_KEY in entry:
                nodeid, reason = str(entry[SKIPPED_KEY]["nodeid"]), str(entry[SKIPPED_KEY].get("reason") or "")
                results.pop(nodeid, None)
                skipped[nodeid] = reason
                continue
            result = CaseResult.from_transport(entry)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise JournalError(f"{path} line {number} is not a diffbench case result "
                               f"({' '.join(str(exc).split())[:200]})") from None
        skipped.pop(result.nodeid, None)
        results[result.nodeid] = result
    return JournalEntries(list(results.values()), skipped)


def journal_is_locked(path: Path) -> bool:
    """Whether a running process holds the journal at ``path`` (False when it does not exist, or on
    a platform without ``flock``)."""
    if fcntl is None:
        return False
    try:
        handle = open(path, "rb")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        return False


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the folder itself while the block runs (waits for another
    holder; no lock file is made). Without ``flock`` (Windows) the block runs unlocked.
    Raises OSError when the folder cannot be opened."""
    if fcntl is None:
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def remove_temp_files(roots: Iterable[Path], *, skip: Iterable[Path] = (), recursive: bool = True) -> list[Path]:
    """Delete the temporary files a killed write left under each of ``roots``; the paths deleted.

    Only regular files named like :data:`TEMP_NAME` (diffbench's own temporary names) are deleted;
    symbolic links are neither deleted nor followed, and folders in ``skip`` (those of runs still
    going) are not entered. Without ``recursive`` only the files directly in each root are looked at.
    A root that is not a folder is passed over (a root that is a link, chosen by the user, is followed).
    """
    skipped = {os.path.normpath(folder) for folder in skip}
    removed: list[Path] = []
    for root in roots:
        if not Path(root).is_dir() or os.path.normpath(root) in skipped:
            continue
        for folder, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = [name for name in dirs if recursive and os.path.normpath(os.path.join(folder, name)) not in skipped]
            for name in files:
                path = Path(folder) / name
                if TEMP_NAME.fullmatch(name) and _is_regular_file(path):
                    path.unlink(missing_ok=True)
                    removed.append(path)
    return sorted(removed)


def _is_regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file itself (not a link to one); False when it is gone."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
