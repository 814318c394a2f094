"""The background writer: a case's files are written while the next case generates.

A run's per-case writes (the PNG encode and the files of the run folder, the journal line) are
not needed for the case's verdict, which the session judges in the foreground from the image in
memory. :class:`BackgroundWriter` runs them on one thread, in the order they were submitted,
through a bounded queue: at most :data:`QUEUE_DEPTH` jobs wait, so a pipeline faster than the
disk waits at :meth:`BackgroundWriter.submit` instead of piling images up in memory.

The order is the journal invariant's guard: a case's journal line is submitted after its image
and record, so on one thread a journaled case's files are always on disk. Under xdist the journal
is the controller's while a worker writes the images, so a kill can leave a case journaled
whose image was still waiting: :meth:`~pytest_diffbench.store.run_folder.RunFolder.finished_results`
counts such a case as not finished, and ``--diffbench-resume`` runs it again.

A job that raises (a full disk, a folder where the file goes) does not stop the writer: the
error is kept as a :class:`WriteFailure` naming the case and the file, the case's later jobs still
run (its journal line says the failure), and the session turns the case's result into an error
when it drains the writer (:meth:`BackgroundWriter.drain`), which it does before anything reads
the run folder: at session end (also after Ctrl-C or ``pytest.exit``), at an xdist worker's end,
before the noise-floor calibration and the artifacts.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable

#: How many jobs may wait for the writer thread; :meth:`BackgroundWriter.submit` blocks beyond.
#: A case submits two or three jobs (its files, its input images, its journal line), so about
#: two cases' images are held in memory at most.
QUEUE_DEPTH = 6


@dataclass(frozen=True)
class WriteFailure:
    """A background write that failed: the case (its node id), the file, and the error in one line."""

    nodeid: str
    path: str
    error: str

    def message(self) -> str:
        """The line a case's result and the terminal summary show."""
        return f"diffbench could not write {self.path} for {self.nodeid}: {self.error}"


@dataclass(frozen=True)
class _Job:
    nodeid: str
    path: str
    work: Callable[[], object]


class BackgroundWriter:
    """One thread that runs submitted jobs in order; see the module docstring.

    ``depth``: how many jobs may wait (:data:`QUEUE_DEPTH`). The thread starts with the first
    job and is a daemon: a process that ends without :meth:`close` (a crash) does not hang on it;
    what it had not written is what a kill would lose, which the journal invariant covers.
    """

    def __init__(self, depth: int = QUEUE_DEPTH) -> None:
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failures: list[WriteFailure] = []

    def submit(self, nodeid: str, path: str, work: Callable[[], object]) -> None:
        """Queue ``work`` (writing ``path`` for the case ``nodeid``); waits while the queue is full."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="diffbench-writer", daemon=True)
            self._thread.start()
        self._queue.put(_Job(nodeid, path, work))

    def failure(self, nodeid: str) -> WriteFailure | None:
        """The first failed write of the case ``nodeid`` so far (None: none failed). Safe from any thread."""
        with self._lock:
            return next((failure for failure in self._failures if failure.nodeid == nodeid), None)

    def drain(self) -> list[WriteFailure]:
        """Wait until every submitted job ran; the failures since the last drain, in order."""
        if self._thread is not None:
            self._queue.join()
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    def close(self) -> list[WriteFailure]:
        """:meth:`drain`, then end the thread; the writer may be used again (a new thread starts)."""
        failures = self.drain()
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._thread = None
        return failures

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                try:
                    job.work()
                except Exception as exc:  # kept for the case's result; the next jobs still run
                    reason = getattr(exc, "strerror", None) or str(exc)
                    with self._lock:
                        self._failures.append(WriteFailure(job.nodeid, job.path, f"{type(exc).__name__}: {reason}"))
            finally:
                self._queue.task_done()
