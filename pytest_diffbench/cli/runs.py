"""Finding finished runs and reading what they recorded, for the commands.

A run is named by its id, by ``latest`` or by its folder; every path inside it comes from
:class:`~pytest_diffbench.store.run_folder.RunFolder`. Anything the user can fix (no run yet, an
unknown id, an unreadable results.csv) is a :class:`~pytest_diffbench.cli.settings.CommandError`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from pytest_diffbench.cli.settings import CommandError
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import LATEST_FILE, RUNS_DIR, RunFolder, read_latest

LATEST = "latest"


def list_runs(output_dir: Path) -> list[RunFolder]:
    """The run folders under ``output_dir`` that hold a results.csv, by id: oldest first (an id starts
    with the second its run started; runs of the same second are in no particular order)."""
    runs = Path(output_dir) / RUNS_DIR
    if not runs.is_dir():
        return []
    folders = (RunFolder(path) for path in sorted(runs.iterdir()) if path.is_dir())
    return [folder for folder in folders if folder.results.is_file()]


def resolve_run(output_dir: Path, run: str) -> RunFolder:
    """The run folder ``run`` names: a run id under ``output_dir``, ``latest``, or a folder path."""
    if run == LATEST:
        run_id = read_latest(output_dir)
        if run_id is None:
            raise CommandError(f"no run yet: {Path(output_dir) / LATEST_FILE} does not exist (run pytest --diffbench first)")
        folder = RunFolder.of(output_dir, run_id)
        if not folder.results.is_file():
            raise CommandError(f"{folder.latest} names run {run_id!r}, but {folder.results} does not exist")
        return folder
    by_id = RunFolder.of(output_dir, run)
    if by_id.results.is_file():
        return by_id
    by_path = RunFolder(Path(run).resolve())
    if by_path.results.is_file():
        return by_path
    raise CommandError(f"no run folder {run!r}: looked for results.csv in {by_id.path} and {by_path.path}")


def load_results(folder: RunFolder) -> list[CaseResult]:
    """The results of the run. Raises CommandError naming the file when it cannot be read."""
    try:
        return read_results(folder.results)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise CommandError(f"cannot read {folder.results}: {' '.join(str(exc).split())}") from None
    except KeyError as exc:
        raise CommandError(f"cannot read {folder.results}: it has no column {exc}") from None


def load_environment(folder: RunFolder) -> tuple[dict[str, Any], list[str]]:
    """The run's environment.json ({} when absent) and a warning when it exists but is unreadable."""
    if not folder.environment.is_file():
        return {}, []
    try:
        data = json.loads(folder.environment.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, [f"WARNING: {folder.environment} is not readable ({exc}); the report shows no environment"]
    if not isinstance(data, dict):
        return {}, [f"WARNING: {folder.environment} is not a JSON object; the report shows no environment"]
    return data, []
