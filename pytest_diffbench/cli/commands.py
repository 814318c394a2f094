"""``diffbench list``, ``show`` and ``report``: look at finished runs and rebuild their artifacts.

The artifacts are rebuilt by :func:`~pytest_diffbench.report.artifacts.write_artifacts`, the
same code the pytest session runs; it (and with it matplotlib and scikit-image) is imported only
by the commands that rebuild, so ``diffbench list`` stays quick.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pytest_diffbench.cli.runs import list_runs, load_environment, load_results, resolve_run
from pytest_diffbench.cli.settings import CliSettings, CommandError
from pytest_diffbench.report.escape import terminal_text
from pytest_diffbench.report.summary import outcome_counts
from pytest_diffbench.store.run_folder import RUNS_DIR, read_latest

if TYPE_CHECKING:
    from pytest_diffbench.report.artifacts import Artifacts
    from pytest_diffbench.store.run_folder import RunFolder


def command_list(settings: CliSettings) -> int:
    """Print each run, oldest first, with its outcome counts; ``(latest)`` marks the newest.

    A run whose results.csv cannot be read is listed with the reason, not skipped.
    """
    runs = list_runs(settings.output_dir)
    if not runs:
        print(f"no runs in {settings.output_dir / RUNS_DIR}")
        return 0
    latest = read_latest(settings.output_dir)
    for folder in runs:
        try:
            counts = ", ".join(f"{count} {outcome}" for outcome, count in outcome_counts(load_results(folder))) or "no cases"
        except CommandError as exc:
            counts = f"unreadable: {exc}"
        print(terminal_text(f"{folder.run_id}{'  (latest)' if folder.run_id == latest else ''}  {counts}"))
    return 0


def command_show(settings: CliSettings, run: str) -> int:
    """Print the run's summary.md; rebuild the run's artifacts first when it has none. Control
    characters in it (an ANSI escape in a summary.md that came with a bundle) are shown escaped."""
    folder = resolve_run(settings.output_dir, run)
    if folder.summary.is_file():
        print(terminal_text(folder.summary.read_text(encoding="utf-8"), keep_newlines=True), end="")
        return 0
    artifacts = rebuild(settings, folder)
    print(terminal_text(artifacts.summary_markdown, keep_newlines=True), end="")
    return 0


def command_report(settings: CliSettings, run: str) -> int:
    """Rebuild the grids, summary.md, plot.png, report.html and the bundle of the run from its
    results.csv, environment.json and images; exit status 1 when one of them could not be written."""
    folder = resolve_run(settings.output_dir, run)
    artifacts = rebuild(settings, folder)
    for path in artifacts.written:
        print(f"rebuilt {path}")
    return 1 if artifacts.warnings else 0


def rebuild(settings: CliSettings, folder: "RunFolder") -> "Artifacts":
    """Write every derived artifact of ``folder``; its warnings go to stderr."""
    from pytest_diffbench.report.artifacts import write_artifacts

    results = load_results(folder)
    environment, warnings = load_environment(folder)
    artifacts = write_artifacts(folder, results, rootdir=settings.rootdir, bundle_images=settings.bundle_images,
                                environment=environment)
    for warning in warnings + artifacts.warnings:
        print(terminal_text(warning), file=sys.stderr)
    return artifacts
