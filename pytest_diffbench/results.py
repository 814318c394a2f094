"""Run folders and results.csv.

A run folder is ``<output_dir>/runs/<run_id>/``; ``<output_dir>/latest`` names the newest run.
results.csv has one row per case, sorted by node id so that runs with and without xdist give
the same rows in the same order. It is written once, by the controller, atomically.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from pytest_diffbench.config import REQUIRED_KEYS
from pytest_diffbench.files import atomic_write_bytes, atomic_write_text

IDENTITY_COLUMNS = ("run_id", "timestamp", "nodeid", "test", "case_id", "config_hash")
CONFIG_COLUMNS = REQUIRED_KEYS
VERDICT_COLUMNS = (
    "outcome", "message",
    "ssim", "min_ssim", "psnr", "min_psnr", "lpips", "max_lpips", "lpips_status",
    "seconds_per_image", "max_seconds", "baseline_seconds_per_image", "slowdown", "time_regression", "time_check",
    "peak_vram_mb", "max_vram_mb", "warmup_seconds",
)
#: What a figure was measured on, per case (also the devices of environment.json).
ENVIRONMENT_FIELDS = ("device_name", "driver", "cuda", "torch", "diffusers", "transformers", "python")
ENVIRONMENT_COLUMNS = ENVIRONMENT_FIELDS + ("worker", "workers", "env_diff")
FILE_COLUMNS = ("pin", "baseline_action", "baseline_path", "output_path")
#: SSIM against the image of the case's sweep group with the most steps (see convergence.py).
REFERENCE_SSIM_COLUMN = "ssim_vs_most_steps"
SWEEP_COLUMNS = (REFERENCE_SSIM_COLUMN,)
COLUMNS: tuple[str, ...] = (
    IDENTITY_COLUMNS + CONFIG_COLUMNS + VERDICT_COLUMNS + SWEEP_COLUMNS + ENVIRONMENT_COLUMNS + FILE_COLUMNS
)

RESULTS_FILE = "results.csv"
ENVIRONMENT_FILE = "environment.json"
LATEST_FILE = "latest"


def new_run_id(now: datetime | None = None) -> str:
    """UTC timestamp plus a random suffix, e.g. ``20261128T041500Z-3fa9c1``; sorts by time."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def create_run_folder(output_dir: Path) -> tuple[str, Path]:
    """Claim a new run folder; the exclusive mkdir makes concurrent runs pick distinct ids."""
    runs = Path(output_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_run_id()
        try:
            (runs / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id, runs / run_id


def _cell(value: Any) -> Any:
    """Lists and dicts as canonical JSON text, so a CSV cell round-trips."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return value


def write_results(run_dir: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write results.csv (all :data:`COLUMNS`, one row per case, sorted by node id)."""
    import pandas as pd

    rows = sorted(records, key=lambda r: r["nodeid"])
    frame = pd.DataFrame([{column: _cell(row.get(column)) for column in COLUMNS} for row in rows],
                         columns=list(COLUMNS), dtype=object)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    path = Path(run_dir) / RESULTS_FILE
    atomic_write_text(path, buffer.getvalue())
    return path


def mark_latest(output_dir: Path, run_id: str) -> None:
    atomic_write_text(Path(output_dir) / LATEST_FILE, run_id + "\n")


def image_relpath(case: str) -> str:
    """Where a case's output image lies in its run folder (``case`` from baselines.case_path)."""
    return f"images/{case}.png"


def write_case_files(run_dir: Path, case: str, png: bytes, config_json: str) -> Path:
    """The case's output image under images/ and its frozen config under configs/."""
    image_path = Path(run_dir) / image_relpath(case)
    atomic_write_bytes(image_path, png)
    atomic_write_text(Path(run_dir) / "configs" / f"{case}.json", config_json)
    return image_path


def read_records(run_dir: Path) -> list[dict[str, str]]:
    """The rows of a run folder's results.csv (cells as text)."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a diffbench run folder?")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
