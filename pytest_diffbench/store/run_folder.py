""":class:`RunFolder`: every path of one run, spelled once.

A run folder is ``<output_dir>/runs/<run_id>/``; ``<output_dir>/latest`` names the newest finished
run (by run id, which sorts by start time)::

    jobs.json (the job list, at collection)  journal.jsonl (each case as it finishes)  results.csv (a finished run's)  environment.json  summary.md  plot.png  report.html  diffbench-<run_id>.zip
    images/<case>.png   configs/<case>.json   grids/cases/<case>.png   grids/sheets/<test>/<axes>.png
    replaced-baselines/<case>.png|.json   inputs/<digest>.png (each input image of generate(), once)

``<case>`` is :func:`~pytest_diffbench.store.paths.case_path` of the node id. No other module
joins these names.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from pytest_diffbench.store.files import atomic_write_bytes, atomic_write_text, encode_png, inside
from pytest_diffbench.store.jobs import JOBS_FILE, Job, read_jobs, still_to_run
from pytest_diffbench.store.journal import JournalEntries, folder_lock, journal_is_locked, read_journal_entries, remove_temp_files
from pytest_diffbench.store.paths import case_path, path_segment

RESULTS_FILE = "results.csv"
JOURNAL_FILE = "journal.jsonl"
ENVIRONMENT_FILE = "environment.json"
SUMMARY_FILE = "summary.md"
PLOT_FILE = "plot.png"
REPORT_FILE = "report.html"
LATEST_FILE = "latest"
RUNS_DIR = "runs"
IMAGES_DIR = "images"
CONFIGS_DIR = "configs"
GRIDS_DIR = "grids"
REPLACED_DIR = "replaced-baselines"
#: Seconds :func:`remove_stale_temp_files` waits for another run's baseline write to end.
BASELINE_LOCK_WAIT = 5.0
#: A run id as :func:`new_run_id` makes it; ``latest`` may name nothing else.
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
INPUTS_DIR = "inputs"

if TYPE_CHECKING:
    from PIL import Image

    from pytest_diffbench.judge.result import CaseResult


class LatestError(ValueError):
    """``<output_dir>/latest`` names no run folder; the message names the file and what is valid."""


class ResumeError(ValueError):
    """A run that cannot be resumed (unknown, still running, without a job list, complete); one line saying why."""


def new_run_id(now: datetime | None = None) -> str:
    """The UTC time to the second, then 6 hex digits: the microsecond times 16 plus a random digit,
    e.g. ``20261128T041500Z-3fa9c1``. Ids sort by time to the microsecond (``latest`` relies on
    it); two runs claiming a folder in the same microsecond draw distinct ids with odds 15 in 16
    (:meth:`RunFolder.create` draws again otherwise)."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{now.microsecond * 16 + secrets.randbelow(16):06x}"


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run, ``<output_dir>/runs/<run_id>``, and the names of its files."""

    path: Path
    #: The folders above :attr:`path` that :meth:`create` made (``runs/``, the output folder),
    #: innermost first: :meth:`remove_empty` removes those left empty, so a run that leaves no
    #: folder leaves nothing.
    made: tuple[Path, ...] = field(default=(), compare=False)

    @classmethod
    def create(cls, output_dir: Path) -> "RunFolder":
        """Claim a new run folder; the exclusive mkdir makes concurrent runs pick distinct ids."""
        runs = Path(output_dir) / RUNS_DIR
        made = tuple(folder for folder in (runs, *runs.parents) if not folder.exists())
        while True:
            runs.mkdir(parents=True, exist_ok=True)  # again after another run removed it empty
            path = runs / new_run_id()
            try:
                path.mkdir()
            except (FileExistsError, FileNotFoundError):
                continue
            return cls(path, made)

    @classmethod
    def of(cls, output_dir: Path, run_id: str) -> "RunFolder":
        return cls(Path(output_dir) / RUNS_DIR / run_id)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def output_dir(self) -> Path:
        return self.path.parent.parent

    # -- files of the run -------------------------------------------------------------------

    @property
    def results(self) -> Path:
        return self.path / RESULTS_FILE

    @property
    def journal(self) -> Path:
        """Each finished case's result, appended as it finishes (see :mod:`pytest_diffbench.store.journal`)."""
        return self.path / JOURNAL_FILE

    @property
    def jobs(self) -> Path:
        """The run's job list, written when collection ends (see :mod:`pytest_diffbench.store.jobs`)."""
        return self.path / JOBS_FILE

    def worker_jobs(self, worker: str) -> Path:
        """Where an xdist worker leaves the jobs it collected for the controller (removed once read)."""
        return self.path / f"jobs-{path_segment(worker)}.json"

    def jobs_left(self) -> tuple[list[Job], list[Job]]:
        """The run's job list and its jobs without a journal line (not finished), both in order.

        Raises FileNotFoundError when the run has no job list, JobsError or JournalError when
        one of them cannot be read."""
        jobs = read_jobs(self.jobs)
        if not self.journal.is_file():
            return jobs, list(jobs)
        finished = self.finished_entries()
        return jobs, still_to_run(jobs, [*(result.nodeid for result in finished.results), *finished.skipped])

    def finished_results(self) -> "list[CaseResult]":
        """:meth:`finished_entries`' results."""
        return self.finished_entries().results

    def finished_entries(self) -> JournalEntries:
        """The results of the run's finished cases: its journal's (see
        :func:`~pytest_diffbench.store.journal.read_journal`), less each case journaled with an
        output image (its ``output_path`` set) whose image is not in ``images/``. Such a case did
        not finish: under xdist the controller journals a case while its worker's background
        writer (:mod:`pytest_diffbench.store.writer`) may still hold its image, and a kill then
        loses the image; ``--diffbench-resume`` runs it again.

        The cases pytest skipped are finished too (see :mod:`pytest_diffbench.store.journal`).

        Raises FileNotFoundError when there is no journal, JournalError naming the file and line
        when a complete line is not a case result."""
        entries = read_journal_entries(self.journal)
        return JournalEntries([result for result in entries.results
                               if not result.output_path or self.image(case_path(result.nodeid)).is_file()],
                              entries.skipped)

    @property
    def finished(self) -> bool:
        """Whether the run reached its end (its results.csv is written); a killed run has only its journal."""
        return self.results.is_file()

    @property
    def running(self) -> bool:
        """Whether a pytest process is running this run now (it holds the journal's lock)."""
        return journal_is_locked(self.journal)

    @property
    def environment(self) -> Path:
        return self.path / ENVIRONMENT_FILE

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def plot(self) -> Path:
        return self.path / PLOT_FILE

    @property
    def report(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def bundle(self) -> Path:
        return self.path / f"diffbench-{self.run_id}.zip"

    @property
    def latest(self) -> Path:
        return self.output_dir / LATEST_FILE

    @property
    def grids(self) -> Path:
        return self.path / GRIDS_DIR

    @property
    def sheets(self) -> Path:
        return self.grids / "sheets"

    # -- files of one case (``case`` from store.paths.case_path) --------------------------

    def image(self, case: str) -> Path:
        return self.path / IMAGES_DIR / f"{case}.png"

    def config(self, case: str) -> Path:
        return self.path / CONFIGS_DIR / f"{case}.json"

    def case_grid(self, case: str) -> Path:
        return self.grids / "cases" / f"{case}.png"

    def sheet(self, test_folder: str, axes: str) -> Path:
        """The sweep sheet of one test (``test_folder`` from store.paths.case_folder) and one
        combination of its other axes (``axes``, made one :func:`~pytest_diffbench.store.paths.path_segment`)."""
        return self.sheets / test_folder / f"{path_segment(axes)}.png"

    @property
    def inputs(self) -> Path:
        """The input images of the run's cases, one file per digest (see :mod:`pytest_diffbench.run.inputs`)."""
        return self.path / INPUTS_DIR

    def input(self, name: str) -> Path:
        """The file of one input image, ``name`` as its config record says (``<16 hex>.png``).

        Raises :class:`~pytest_diffbench.store.files.PathEscapeError` when ``name`` would leave
        ``inputs/`` (a crafted record: ``../x``, an absolute path, a symbolic link on the way).
        """
        return inside(self.inputs, name)

    def replaced(self, case: str, suffix: str = ".png") -> Path:
        """Where the baseline file an update replaced is kept."""
        return self.path / REPLACED_DIR / f"{case}{suffix}"

    @property
    def replaced_dir(self) -> Path:
        return self.path / REPLACED_DIR

    def relative(self, path: Path) -> str:
        """``path`` as a POSIX path relative to the run folder (links in report.html, bundle entries)."""
        return Path(path).relative_to(self.path).as_posix()

    # -- writing ----------------------------------------------------------------------------

    def write_case(self, case: str, png: bytes, sidecar_json: str) -> Path:
        """The case's output image and its record (the sidecar a baseline of it would get)."""
        atomic_write_bytes(self.image(case), png)
        atomic_write_text(self.config(case), sidecar_json)
        return self.image(case)

    def write_inputs(self, images: "Mapping[str, Image.Image]") -> list[Path]:
        """Save each input image (file name -> image, see :mod:`pytest_diffbench.run.inputs`) once:
        a name is a digest of the pixels, so a file already there holds them and is not written
        again. The paths written now. Raises PathEscapeError for a name that would leave
        ``inputs/``, OSError when a file cannot be written."""
        written = []
        for name, image in sorted(images.items()):
            path = self.input(name)
            if not path.is_file():
                atomic_write_bytes(path, encode_png(image))
                written.append(path)
        return written

    def mark_latest(self) -> bool:
        """Make ``latest`` name this run unless it names a newer one (a run started later that
        finished first); atomically, holding a lock on ``runs/`` against a concurrent run doing the
        same. Whether ``latest`` now names this run. A ``latest`` naming no run is replaced.

        Raises OSError when the output folder cannot be written.
        """
        with folder_lock(self.path.parent):
            try:
                current = read_latest(self.output_dir)
            except LatestError:
                current = None
            if current is not None and current > self.run_id:
                return False
            atomic_write_text(self.latest, self.run_id + "\n")
            return True

    def is_empty(self) -> bool:
        """Whether the run left nothing: no folder, or one holding at most an empty journal."""
        if not self.path.is_dir():
            return True
        files = list(self.path.iterdir())
        return not files or (files == [self.journal] and self.journal.stat().st_size == 0)

    def remove_empty(self) -> None:
        """Remove the folder of a run that left nothing (see :meth:`is_empty`), so ``latest`` and
        ``diffbench list`` keep to real runs, then each folder above it that :meth:`create` made
        and that is empty (another run's folder keeps it). Raises OSError when the run's folder is not empty."""
        self.journal.unlink(missing_ok=True)
        self.path.rmdir()
        for folder in self.made:
            try:
                folder.rmdir()
            except OSError:  # not empty: another run uses it
                return


def remove_stale_temp_files(output_dir: Path, baseline_dir: Path) -> list[Path]:
    """Delete the temporary files killed runs left (see
    :func:`pytest_diffbench.store.journal.remove_temp_files`); the paths deleted.

    Only diffbench's own folders are looked in: ``runs/`` of ``output_dir`` (the folders of runs
    still going passed over) and the file names directly in ``output_dir`` (``latest``'s), and the
    pin folders of ``baseline_dir`` (its folders not starting with ``.``, links not followed), so a
    baseline dir that holds other things (``.git``, a docs folder) loses nothing. Under
    ``baseline_dir``, files go only while this process holds the baselines' pair-write lock
    (:func:`pytest_diffbench.store.baselines.pair_lock`), so no write in progress loses its file;
    when another run holds it for :data:`BASELINE_LOCK_WAIT` seconds, or the lock cannot be taken
    (each case then names why), the baselines are left for the next run to clean. Raises OSError
    when a folder cannot be listed.
    """
    from pytest_diffbench.store.baselines import BaselineError, pair_lock

    output_dir, baseline_dir = Path(output_dir), Path(baseline_dir)
    runs = output_dir / RUNS_DIR
    running = [path for path in sorted(runs.iterdir()) if RunFolder(path).running] if runs.is_dir() else []
    removed = remove_temp_files([runs], skip=[*running, baseline_dir])
    removed += remove_temp_files([output_dir], recursive=False)
    if baseline_dir.is_dir():
        pins = [path for path in sorted(baseline_dir.iterdir())
                if not path.name.startswith(".") and not path.is_symlink() and path.is_dir()]
        try:
            with pair_lock(baseline_dir, BASELINE_LOCK_WAIT):
                removed += remove_temp_files(pins, skip=[output_dir])
        except BaselineError:
            pass
    return sorted(removed)


def resumable_run(output_dir: Path, name: str) -> RunFolder:
    """The run ``--diffbench-resume`` names: a run id, or ``latest``: the newest run folder
    (by id, so the last one started, finished, paused or killed).

    Raises :class:`ResumeError`, one line, when there is no such run, when it is still running
    (a process holds its journal), when it has no job list, or when every job of it finished."""
    runs = Path(output_dir) / RUNS_DIR
    if name == "latest":
        found = sorted(path.name for path in runs.iterdir() if RUN_ID.fullmatch(path.name)) if runs.is_dir() else []
        if not found:
            raise ResumeError(f"there is no run to resume in {runs}")
        name = found[-1]
    folder = RunFolder(runs / name)
    if not RUN_ID.fullmatch(name) or folder.path.is_symlink() or not folder.path.is_dir():
        raise ResumeError(f"there is no run {name[:60]!r} in {runs} to resume; name a run id such as "
                          "20261128T041500Z-3fa9c1 (diffbench list shows them), or give the flag alone for the newest run")
    if folder.running:
        raise ResumeError(f"run {name} is still running: another pytest process holds {folder.journal}")
    try:
        jobs, left = folder.jobs_left()
    except FileNotFoundError:
        raise ResumeError(f"run {name} has no job list ({folder.jobs}): it ended before its collection did, or was "
                          "made by an older diffbench; start a new run") from None
    except ValueError as exc:  # JobsError, JournalError: they name the file
        raise ResumeError(f"run {name} cannot be resumed: {exc}") from None
    if not left:
        raise ResumeError(f"run {name} is already complete: all {len(jobs)} cases of its job list finished; "
                          f"nothing to resume (diffbench show {name} shows it)")
    return folder


def read_latest(output_dir: Path) -> str | None:
    """The run id ``<output_dir>/latest`` names, None when there is no ``latest`` yet.

    Only a plain run id (see :data:`RUN_ID`) of a real folder under ``runs/`` (not a symbolic
    link) is accepted: a crafted ``latest`` (``../../../x``) is never followed. Raises
    :class:`LatestError`, one line naming the file and what it should hold, otherwise.
    """
    latest = Path(output_dir) / LATEST_FILE
    if not latest.exists() and not latest.is_symlink():
        return None
    if latest.is_symlink() or not latest.is_file():
        raise LatestError(f"{latest} is not a plain file; delete it, the next run rewrites it")
    try:
        text = latest.read_bytes()[:200].decode("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LatestError(f"{latest} cannot be read ({type(exc).__name__}); delete it, the next run rewrites it") from None
    folder = Path(output_dir) / RUNS_DIR / text
    if not RUN_ID.fullmatch(text) or folder.is_symlink() or not folder.is_dir():
        raise LatestError(f"{latest} names {text[:60]!r}, which is not a run folder under {folder.parent} (it must hold "
                          "a run id such as 20261128T041500Z-3fa9c1); delete it, the next run rewrites it")
    return text
