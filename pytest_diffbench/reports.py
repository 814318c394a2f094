"""Everything a run folder shows a reviewer, made from its results rows.

Shared by the pytest session (at the end of a run) and ``diffbench report`` (from a finished
run folder's results.csv), so both give the same files: labeled grids, summary.md, plot.png,
report.html and the bundle.

Grids: ``grids/cases/<case>.png`` (baseline | output | difference, with the case's settings,
metrics against tolerances and compute trace) for every case that did not pass or whose
baseline was written, and ``grids/sheets/<test>/<other axes>.png``: one sweep sheet per test
and combination of the axes other than sampler and steps (rows = sampler, columns = steps).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from pytest_diffbench.baselines import REPLACED_DIR, case_path, safe_segment
from pytest_diffbench.bundle import bundle_name, write_bundle
from pytest_diffbench.convergence import case_group
from pytest_diffbench.files import atomic_write_bytes, atomic_write_text, encode_png
from pytest_diffbench.grids import comparison_grid, sweep_sheet
from pytest_diffbench.html_report import REPORT_FILE, render_report
from pytest_diffbench.plot import PLOT_FILE, panels, speed_quality_png
from pytest_diffbench.results import ENVIRONMENT_FILE, image_relpath
from pytest_diffbench.summary import SUMMARY_FILE, badge, cell_number, summary_markdown

#: Baseline actions after which a case gets a comparison grid even when it passed.
WRITTEN = ("created", "refreshed", "rewritten")
#: (metric column, comparison, tolerance column, unit) as printed on a grid.
METRIC_LABELS = (("ssim", ">=", "min_ssim", ""), ("psnr", ">=", "min_psnr", " dB"), ("lpips", "<=", "max_lpips", ""))


@dataclass(frozen=True)
class Reports:
    summary_markdown: str
    bundle: Path


def _fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.4g}"


def grid_labels(record: Mapping[str, Any]) -> list[str]:
    """The lines printed under a case's comparison grid."""
    short_hash = str(record.get("config_hash") or "")[:12] or "-"
    lines = [f"{record['outcome']} · {record['nodeid']}",
             f"sampler {record.get('sampler')} · steps {record.get('steps')} · cfg {record.get('cfg')} · "
             f"seed {record.get('seed')} · config {short_hash}"]
    metrics = []
    for column, op, tolerance, unit in METRIC_LABELS:
        value, limit = cell_number(record.get(column)), cell_number(record.get(tolerance))
        if value is None:
            metrics.append(f"{column} -")
            continue
        verdict = "" if limit is None else (" ok" if (value >= limit if op == ">=" else value <= limit) else " FAIL")
        metrics.append(f"{column} {_fmt(value)}{unit}" + ("" if limit is None else f" {op} {_fmt(limit)}{unit}") + verdict)
    lines.append(" · ".join(metrics))
    trace = badge(record)
    if trace:
        lines.append(trace)
    return lines


def _open(path: Path) -> Image.Image | None:
    if not path.is_file():
        return None
    with Image.open(path) as image:
        return image.convert("RGB")


def write_grids(run_dir: Path, rootdir: Path, rows: Sequence[Mapping[str, Any]]) -> list[Path]:
    """The comparison grids and sweep sheets of a run (see the module docstring), drawn anew:
    grids are derived from the run's images, so an older set is removed first."""
    shutil.rmtree(run_dir / "grids", ignore_errors=True)
    written = []
    sheets: dict[tuple[str, str], dict[tuple[str, str], Image.Image]] = defaultdict(dict)
    axes: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for record in rows:
        case = case_path(str(record["nodeid"]))
        output = _open(run_dir / image_relpath(case))
        if output is None:  # the case errored before it made an image
            continue
        if record["outcome"] != "passed" or record.get("baseline_action") in WRITTEN:
            baseline = _open(run_dir / REPLACED_DIR / f"{case}.png")
            if baseline is None and record.get("baseline_path") and record.get("baseline_action") not in WRITTEN:
                baseline = _open(rootdir / str(record["baseline_path"]))
            path = run_dir / "grids" / "cases" / f"{case}.png"
            atomic_write_bytes(path, encode_png(comparison_grid(output, baseline, grid_labels(record))))
            written.append(path)
        sampler, steps = str(record.get("sampler")), f"{record.get('steps')}"
        key = case_group(record, "sampler", "steps")  # the sheet holds the cases that differ only there
        sheets[key][(sampler, steps)] = output
        row_values, column_values = axes[key]
        if sampler not in row_values:
            row_values.append(sampler)
        if steps not in column_values:
            column_values.append(steps)
    for (test, rest), cells in sorted(sheets.items()):
        row_values, column_values = axes[(test, rest)]
        columns = sorted(column_values, key=lambda v: (cell_number(v) is None, cell_number(v) or 0.0, v))
        sheet = sweep_sheet(cells, row_values, columns, f"{test.split('::')[-1]} · {rest}", "sampler", "steps")
        test_path = case_path(test).rsplit("/", 1)[0]
        path = run_dir / "grids" / "sheets" / test_path / f"{safe_segment(rest.replace(' · ', '-'))}.png"
        atomic_write_bytes(path, encode_png(sheet))
        written.append(path)
    return written


def write_reports(run_dir: Path, run_id: str, records: Sequence[Mapping[str, Any]], bundle_images: str,
                  rootdir: Path, environment: Mapping[str, Any] | None = None) -> Reports:
    """Write the grids, summary.md, plot.png (when any case has timing and an SSIM against its
    baseline or its group's most-steps image), report.html and the bundle.

    ``rootdir`` resolves the baseline paths that the records hold relative to it. ``environment``
    is the run's environment.json, read from the folder when not given.
    """
    run_dir = Path(run_dir)
    rows = sorted(records, key=lambda record: str(record["nodeid"]))
    write_grids(run_dir, Path(rootdir), rows)
    markdown = summary_markdown(rows, run_id, bundle_name(run_id))
    atomic_write_text(run_dir / SUMMARY_FILE, markdown)
    if panels(rows):
        atomic_write_bytes(run_dir / PLOT_FILE, speed_quality_png(rows, f"diffbench run {run_id}"))
    if environment is None:
        environment_file = run_dir / ENVIRONMENT_FILE
        environment = json.loads(environment_file.read_text(encoding="utf-8")) if environment_file.is_file() else {}
    atomic_write_text(run_dir / REPORT_FILE, render_report(run_dir, run_id, rows, environment))
    return Reports(markdown, write_bundle(run_dir, run_id, bundle_images, rows))
