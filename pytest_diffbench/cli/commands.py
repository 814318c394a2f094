"""``diffbench list``, ``show`` and ``report``: look at runs and rebuild their artifacts.

The artifacts are rebuilt by :func:`~pytest_diffbench.report.artifacts.write_artifacts`, the
same code the pytest session runs; it (and with it matplotlib and scikit-image) is imported only
by the commands that rebuild, so ``diffbench list`` stays quick. A run killed before its end has
no results.csv: ``report`` (and ``show``) write it from the run's journal first, then the rest.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pytest_diffbench.cli.runs import (baseline_image, is_finished, journal_ahead, list_runs, load_environment,
                                       load_results, reading, resolve_run, run_file)
from pytest_diffbench.cli.settings import CliSettings, CommandError
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.escape import terminal_text
from pytest_diffbench.report.summary import outcome_counts
from pytest_diffbench.store.files import PathEscapeError
from pytest_diffbench.store.run_folder import RUNS_DIR, LatestError, RunFolder, read_latest

if TYPE_CHECKING:
    from pytest_diffbench.report.artifacts import Artifacts


def run_state(folder: RunFolder) -> str:
    """What ``list`` says of a run: its outcome counts, or why it has none (still going, killed
    before its end, empty, unreadable); a run stopped with cases of its job list left says so and
    how to resume it. Raises CommandError when a file of it is refused (a link)."""
    finished = is_finished(folder)
    paused = run_file(folder, folder.results).is_file()  # it wrote its files when it stopped
    if not finished and not run_file(folder, folder.journal).is_file():
        return "unfinished: no case finished (it has no results.csv and no journal.jsonl)"
    if not finished and folder.running:
        return "running"
    try:
        results = load_results(folder)
    except CommandError as exc:
        return f"unreadable: {exc}"
    counts = ", ".join(f"{count} {outcome}" for outcome, count in outcome_counts(results)) or "no cases"
    left = resumable(folder)
    if left:  # stopped (Ctrl-C, -x: it wrote its files) or killed (only its journal) with jobs left
        how = "paused" if finished and paused else "killed"
        return f"{how}: {left}; {counts} (resume: pytest <its arguments> --diffbench-resume={folder.run_id})"
    if finished:
        return counts
    return f"unfinished: {counts} in its journal (diffbench report {folder.run_id} writes its results.csv)"


def resumable(folder: RunFolder) -> str:
    """How many cases of the run's job list have no journal line (``2 of 20 cases left``), or ""
    when none (or the run has no readable job list: it cannot be resumed). Raises CommandError
    when the job list is a link (see :func:`~pytest_diffbench.cli.runs.run_file`)."""
    run_file(folder, folder.jobs)
    try:
        jobs, left = folder.jobs_left()
    except (OSError, ValueError):
        return ""
    return f"{len(left)} of {len(jobs)} cases left" if left else ""


def command_list(settings: CliSettings) -> int:
    """Print each run, oldest first, with its outcome counts; ``(latest)`` marks the newest
    finished one. Runs that did not finish, and runs that cannot be read, are listed as such."""
    runs = list_runs(settings.output_dir)
    if not runs:
        print(f"no runs in {settings.output_dir / RUNS_DIR}")
        return 0
    try:
        latest = read_latest(settings.output_dir)
    except LatestError as exc:
        latest = None
        print(terminal_text(f"WARNING: {exc}"), file=sys.stderr)
    for folder in runs:
        try:
            state = run_state(folder)
        except CommandError as exc:
            state = f"unreadable: {exc}"
        print(terminal_text(f"{folder.run_id}{'  (latest)' if folder.run_id == latest else ''}  {state}"))
    return 0


def command_show(settings: CliSettings, run: str) -> int:
    """Print the run's summary.md; rebuild the run's artifacts first when it has none, or when its
    journal holds more than its results.csv (a paused run whose resume was killed: its summary.md
    is the pause's). Control characters in it (an ANSI escape in a summary.md that came with a
    bundle) are shown escaped by the command's output stream (see :mod:`pytest_diffbench.cli.main`)."""
    folder = resolve_run(settings.output_dir, run)
    summary = run_file(folder, folder.summary)
    if summary.is_file() and not journal_ahead(folder):
        text = reading(summary, lambda: summary.read_text(encoding="utf-8"))
        print(text, end="")
        return 0
    artifacts = rebuild(settings, folder)
    print(artifacts.summary_markdown, end="")
    return 0


def command_report(settings: CliSettings, run: str) -> int:
    """Rebuild the grids, summary.md, plot.png, report.html and the bundle of the run from its
    results.csv (written from its journal first for a run killed before its end), environment.json
    and images; exit status 1 when one of them could not be written or a path was refused."""
    folder = resolve_run(settings.output_dir, run)
    artifacts = rebuild(settings, folder)
    for path in artifacts.written:
        print(f"rebuilt {path}")
    return 1 if artifacts.warnings else 0


def rebuild(settings: CliSettings, folder: RunFolder) -> "Artifacts":
    """Write every derived artifact of ``folder`` (and its results.csv when the run was killed before
    writing it); the warnings go to stderr and into the returned artifacts' warnings."""
    from pytest_diffbench.report.artifacts import write_artifacts
    from pytest_diffbench.store.results import write_results

    finished = is_finished(folder)
    results = load_results(folder)
    written = []
    if not finished:
        path = run_file(folder, folder.results)
        try:
            write_results(path, [result.to_row() for result in results])
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    environment, warnings = load_environment(folder)
    shown, refused = checked_baselines(settings, results)
    artifacts = write_artifacts(folder, shown, rootdir=settings.rootdir, bundle_images=settings.bundle_images,
                                environment=environment)
    artifacts.written[:0] = written
    artifacts.warnings[:0] = warnings + refused
    for warning in artifacts.warnings:
        print(terminal_text(warning), file=sys.stderr)
    return artifacts


def checked_baselines(settings: CliSettings, results: list[CaseResult]) -> tuple[list[CaseResult], list[str]]:
    """``results`` with each ``baseline_path`` replaced by the case's baseline under the baseline
    folder and the pin its row records (see :func:`~pytest_diffbench.cli.runs.baseline_image`), as
    an absolute path: the grids draw that baseline, never a path results.csv names elsewhere.

    A row whose path is another is given the checked one, and a row whose pin or path is refused
    gets none (its grid shows no baseline); either is a warning naming the case and why.
    """
    shown, warnings = [], []
    for result in results:
        if not result.baseline_path:
            shown.append(result)
            continue
        try:
            path = baseline_image(settings.baseline_dir, result)
        except PathEscapeError as exc:
            warnings.append(f"WARNING: the grid of {result.nodeid} shows no baseline: {exc}")
            shown.append(result.with_changes(baseline_path=""))
            continue
        if (settings.rootdir / result.baseline_path).resolve() != path.resolve():
            warnings.append(f"WARNING: results.csv gives {result.nodeid} the baseline {result.baseline_path}, which "
                            f"is not its baseline under {settings.baseline_dir}; the grid shows {path}")
        shown.append(result.with_changes(baseline_path=str(path)))
    return shown, warnings
