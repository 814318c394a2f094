""":class:`RunFolder`: every path of one run, spelled once.

A run folder is ``<output_dir>/runs/<run_id>/``; ``<output_dir>/latest`` names the newest run::

    results.csv  environment.json  summary.md  plot.png  report.html  diffbench-<run_id>.zip
    images/<case>.png   configs/<case>.json   grids/cases/<case>.png   grids/sheets/<test>/<axes>.png
    replaced-baselines/<case>.png|.json

``<case>`` is :func:`~pytest_diffbench.store.paths.case_path` of the node id. No other module
joins these names.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pytest_diffbench.store.files import atomic_write_bytes, atomic_write_text
from pytest_diffbench.store.paths import path_segment

RESULTS_FILE = "results.csv"
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


def new_run_id(now: datetime | None = None) -> str:
    """UTC timestamp plus a random suffix, e.g. ``20261128T041500Z-3fa9c1``; sorts by time."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run, ``<output_dir>/runs/<run_id>``, and the names of its files."""

    path: Path

    @classmethod
    def create(cls, output_dir: Path) -> "RunFolder":
        """Claim a new run folder; the exclusive mkdir makes concurrent runs pick distinct ids."""
        runs = Path(output_dir) / RUNS_DIR
        runs.mkdir(parents=True, exist_ok=True)
        while True:
            path = runs / new_run_id()
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path)

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

    def mark_latest(self) -> None:
        atomic_write_text(self.latest, self.run_id + "\n")

    def is_empty(self) -> bool:
        return not self.path.is_dir() or not any(self.path.iterdir())


def read_latest(output_dir: Path) -> str | None:
    """The run id ``<output_dir>/latest`` names, None when there is none yet."""
    latest = Path(output_dir) / LATEST_FILE
    return latest.read_text(encoding="utf-8").strip() if latest.is_file() else None
