"""Finding runs and reading what they recorded, for the commands.

A run is named by its id, by ``latest`` or by its folder, which must lie directly in
``<output_dir>/runs``: a name such as ``../../x`` or a folder elsewhere is refused, and so is a
symbolic link on the way. Every file of a run is read through
:func:`~pytest_diffbench.store.files.inside` its folder, so a crafted run folder (a linked
``results.csv``, ``summary.md`` or ``environment.json``) cannot make the command read elsewhere.

A finished run has its results.csv; a run killed before its end has only its journal
(``journal.jsonl``), which :func:`load_results` reads instead; a run still going holds its
journal's lock. Anything the user can fix (no run yet, an unknown id, an unreadable file) is a
:class:`~pytest_diffbench.cli.settings.CommandError` naming the file.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from pytest_diffbench.cli.settings import CommandError, read_error
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.bundle import in_run
from pytest_diffbench.store.files import PathEscapeError, inside, letter_case_twin
from pytest_diffbench.store.journal import JournalError, read_journal
from pytest_diffbench.store.paths import case_path, path_segment
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import LATEST_FILE, RUNS_DIR, LatestError, RunFolder, read_latest

LATEST = "latest"
#: Columns without which a results.csv row means nothing.
REQUIRED_COLUMNS = ("nodeid", "outcome", "schema_version")
#: Config columns that hold whole numbers.
INT_CONFIG = ("seed", "steps", "width", "height")
T = TypeVar("T")


def runs_dir(output_dir: Path) -> Path:
    """``<output_dir>/runs``, where every run folder lies."""
    return Path(output_dir) / RUNS_DIR


def list_runs(output_dir: Path) -> list[RunFolder]:
    """Every entry of ``<output_dir>/runs`` that is a folder or a link, finished or not, by id:
    oldest first (a run id sorts by the time its run started, to the microsecond). Links are listed so that :func:`run_file` can refuse them by name."""
    runs = runs_dir(output_dir)
    if not runs.is_dir():
        return []
    return [RunFolder(path) for path in sorted(runs.iterdir()) if path.is_dir() or path.is_symlink()]


def resolve_run(output_dir: Path, run: str) -> RunFolder:
    """The run folder ``run`` names: ``latest``, a run id, or the path of a folder directly in
    ``<output_dir>/runs``.

    Raises CommandError naming what was looked for when there is no such run, when ``run`` leads
    out of ``<output_dir>/runs`` (``../../x``, an absolute path elsewhere) or through a symbolic
    link, or when ``latest`` is not a run id.
    """
    runs = runs_dir(output_dir)
    if run == LATEST:
        try:
            run_id = read_latest(output_dir)
        except LatestError as exc:
            raise CommandError(str(exc)) from None
        if run_id is None:
            raise CommandError(f"no run yet: {Path(output_dir) / LATEST_FILE} does not exist (run pytest --diffbench first)")
        return _run_folder(runs, run_id, run)
    path = Path(run)
    if len(path.parts) == 1:
        return _run_folder(runs, run, run)
    if path.parent.resolve() != runs.resolve():
        raise CommandError(f"run {run!r} is not a folder in {runs}: name a run by its id, 'latest' or its folder "
                           "there (diffbench list shows them)")
    return _run_folder(runs, path.name, run)


def _run_folder(runs: Path, name: str, given: str) -> RunFolder:
    """The folder ``runs/<name>``, checked to be a real folder there (``given``: what the user typed)."""
    if name in ("", ".", "..") or "/" in name or os.sep in name:
        raise CommandError(f"run {given!r} is not a run id: an id is one folder name in {runs} (diffbench list shows them)")
    try:
        path = inside(runs, name)
    except PathEscapeError as exc:
        raise CommandError(f"run {given!r} is refused: {exc}") from None
    if not path.is_dir():
        raise CommandError(f"no run folder {given!r}: {path} does not exist (diffbench list shows the runs)")
    return RunFolder(path)


def run_file(folder: RunFolder, path: Path) -> Path:
    """``path`` (a file of ``folder``), checked to lie inside it without a symbolic link on the way.

    Raises CommandError naming the file when it would leave the run folder.
    """
    try:
        return in_run(folder, path)
    except PathEscapeError as exc:
        raise CommandError(str(exc)) from None


def reading(path: Path, read: Callable[[], T]) -> T:
    """``read()``, with an error reading the user's file ``path`` (it cannot be opened, is not UTF-8
    text, or does not parse) made one CommandError naming it."""
    try:
        return read()
    except JournalError as exc:  # it names the file and the line already
        raise CommandError(str(exc)) from None
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:  # ValueError: JSON, a row of another schema
        raise read_error(path, exc) from None


def is_finished(folder: RunFolder) -> bool:
    """Whether the run's results.csv holds what it recorded: it has its results.csv (checked inside
    the folder) and its journal holds no case that results.csv lacks (:func:`journal_ahead`)."""
    return run_file(folder, folder.results).is_file() and not journal_ahead(folder)


def journal_ahead(folder: RunFolder) -> bool:
    """Whether the journal holds more cases than the run's results.csv, which holds some of them: a
    paused run whose resume was then killed wrote its results.csv at the pause, and its journal
    went on. False while the run is going, without a job list or journal, when results.csv has no
    row or a case the journal has not (a results.csv edited by hand is read as it is), or when
    either file cannot be read (reading it says why)."""
    journal, results = run_file(folder, folder.journal), run_file(folder, folder.results)
    if not run_file(folder, folder.jobs).is_file() or not journal.is_file() or not results.is_file() or folder.running:
        return False
    try:
        recorded = {row.get("nodeid") for row in csv.DictReader(results.read_text(encoding="utf-8").splitlines())}
        journaled = {result.nodeid for result in read_journal(journal)}
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return False
    return bool(recorded) and recorded < journaled


def load_results(folder: RunFolder) -> list[CaseResult]:
    """The results of the run: its results.csv, or for a run killed before its end (or killed
    while a resume of it ran: see :func:`journal_ahead`), its journal.

    Raises CommandError naming the file when it cannot be read (a missing column, a cell of the
    wrong type, text that is not UTF-8, a link), when the run is still going, or when the run
    recorded no case at all (neither file).
    """
    if is_finished(folder):
        results = run_file(folder, folder.results)
        header = reading(results, lambda: _header(results))
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise CommandError(f"cannot read {results}: it has no column {', '.join(missing)} (is it a diffbench "
                               "results.csv? rerun pytest --diffbench to make the run anew)")
        return [_typed(results, result) for result in reading(results, lambda: read_results(results))]
    journal = run_file(folder, folder.journal)
    if not journal.is_file():
        raise CommandError(f"run {folder.run_id} recorded no case: {folder.path} has no {folder.results.name} "
                           f"and no {journal.name} (its pytest run ended or was killed before its first case)")
    if folder.running:
        raise CommandError(f"run {folder.run_id} is still going: its pytest process holds {journal}; "
                           "try again when it ends")
    return [_typed(journal, result) for result in reading(journal, lambda: read_journal(journal))]


def _typed(path: Path, result: CaseResult) -> CaseResult:
    """``result``, checked to hold numbers where its config must (a cell that does not parse is
    kept as text by :meth:`~pytest_diffbench.judge.result.CaseResult.from_row`).

    Raises CommandError naming the file, the row and the column otherwise.
    """
    for key in (*INT_CONFIG, "cfg"):
        value, whole = result.config.get(key), key in INT_CONFIG
        if value is not None and (isinstance(value, bool) or not isinstance(value, int if whole else (int, float))):
            raise CommandError(f"cannot read {path}: the row of {result.nodeid!r} has {key} {value!r}, which is not "
                               f"{'a whole number' if whole else 'a number'}")
    return result


def _header(path: Path) -> list[str]:
    """The column names of the CSV file at ``path`` ([] when it is empty)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def load_environment(folder: RunFolder) -> tuple[dict[str, Any], list[str]]:
    """The run's environment.json ({} when absent) and a warning when it exists but cannot be used
    (unreadable, not a JSON object, a link)."""
    try:
        path = run_file(folder, folder.environment)
        if not path.exists():
            return {}, []
        if not path.is_file():
            raise CommandError(f"{path} is not a plain file")
        data = reading(path, lambda: json.loads(path.read_text(encoding="utf-8")))
    except CommandError as exc:
        return {}, [f"WARNING: {exc}; the report shows no environment"]
    if not isinstance(data, dict):
        return {}, [f"WARNING: {folder.environment} is not a JSON object; the report shows no environment"]
    return data, []


def baseline_image(baseline_dir: Path, result: CaseResult) -> Path:
    """Where the case's baseline PNG lies under the pin its row records, checked: the pin must be
    one folder name as ``pytest --diffbench`` makes it (:func:`~pytest_diffbench.store.paths.path_segment`:
    so no ``..``, no leading ``-``, no Windows device name), no symbolic link may lie on the way
    from ``baseline_dir``, and no part of the way may differ only in letter case from an existing
    folder or file there (``CPU-FLOAT32`` next to ``cpu-float32``): macOS and Windows take the two
    for one, so the row would write into another pin's or case's baseline there.

    Raises PathEscapeError naming the pin, the link or the existing name otherwise.
    """
    if not result.pin or path_segment(result.pin) != result.pin:
        raise PathEscapeError(f"results.csv gives it the pin {result.pin!r}, which is not one folder name of "
                              "letters, digits, '.', '_' and '-' as pytest --diffbench writes it")
    relative = f"{result.pin}/{case_path(result.nodeid)}.png"
    path = inside(baseline_dir, relative)
    twin = letter_case_twin(Path(baseline_dir), relative)
    if twin is not None:
        name, existing = twin
        raise PathEscapeError(f"results.csv puts it under {name!r}, but {existing} differs from it only in letter "
                              "case (one name on macOS and Windows); rename one of them or accept a run made with "
                              f"{existing.name!r}")
    return path
