"""The run's labeled figures: a comparison grid per case worth a look, a sweep sheet per test.

``grids/cases/<case>.png`` (baseline | output | difference, then the case's input images from
``inputs/``, with the case's settings, every metric and set speed or memory budget against its
tolerance, and its compute trace) for every case that did not pass or whose baseline was
written, and ``grids/sheets/<test>/<other axes>.png``: one sweep sheet per test and combination
of the axes other than sampler and steps (rows = sampler, columns = steps), where a case that
did not pass is framed in red over its outcome. Drawing is
:mod:`pytest_diffbench.report.draw`'s.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

from PIL import Image

from pytest_diffbench.judge.checks import Check, budget_checks, quality_checks
from pytest_diffbench.judge.convergence import case_group
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.bundle import in_run
from pytest_diffbench.report.draw import comparison_grid, sweep_sheet
from pytest_diffbench.report.summary import badges, case_order
from pytest_diffbench.spec.config import input_images
from pytest_diffbench.store.files import PathEscapeError, atomic_write_bytes, encode_png
from pytest_diffbench.store.paths import case_path, case_folder
from pytest_diffbench.store.run_folder import RunFolder


def grid_labels(result: CaseResult) -> list[str]:
    """The lines printed under a case's comparison grid: the outcome and node id, the settings,
    every metric against its tolerance (:func:`~pytest_diffbench.judge.checks.quality_checks`),
    every speed and memory budget that is set or failed
    (:func:`~pytest_diffbench.judge.checks.budget_checks`), why the case failed when no check
    says so, and the compute trace (one per stage of a two-stage case). A check reads word for
    word as in the failure message: ``seconds/image 0.4 s <= 0.3 s FAIL``, ``slowdown +300% <= +50% FAIL (...)``, ``lpips - off``."""
    short_hash = result.config_hash[:12] or "-"
    lines = [f"{result.outcome.value} · {result.nodeid}",
             f"sampler {result.setting('sampler')} · steps {result.setting('steps')} · cfg {result.setting('cfg')} · "
             f"{seed_label(result)} · config {short_hash}{preset_label(result, ' · ')}"]
    quality = quality_checks(result)
    lines.append(" · ".join(f"{name} -" if check is None else _one_line(check) for name, check in quality))
    budgets = budget_checks(result)
    if budgets:
        lines.append(" · ".join(_one_line(check) for check in budgets))
    failed = [c for _, c in quality if c is not None and c.passed is False] + [c for c in budgets if c.passed is False]
    if not result.passed and not failed and result.message:
        lines.append(f"why: {result.message}")
    lines += badges(result)
    return lines


def seed_label(result: CaseResult) -> str:
    """``seed 42``, with the seed plan and the seed's index there when it came from one:
    ``seed 560774914 (plan portraits #0)``."""
    seed = f"seed {result.setting('seed')}"
    return f"{seed} (plan {result.seed_plan} #{result.seed_index})" if result.seed_plan else seed


def preset_label(result: CaseResult, before: str = "") -> str:
    """``preset NAME@VERSION`` of the case's config after ``before``; "" without a preset."""
    preset = result.setting("preset")
    if not isinstance(preset, Mapping) or "name" not in preset:
        return ""
    return f"{before}preset {preset['name']}@{preset.get('version')}"


def _one_line(check: Check) -> str:
    """The check as the failure message renders it, on one line (value and limit with as many
    digits as tell them apart, see :func:`~pytest_diffbench.judge.checks.format_number`)."""
    return " ".join(check.render().split())


def _open(path: Path) -> Image.Image | None:
    if not path.is_file():
        return None
    with Image.open(path) as image:
        return image.convert("RGB")


def _inputs(folder: RunFolder, result: CaseResult) -> list[tuple[str, Image.Image | None]]:
    """(keyword, image) of each input image the case's config records, read from the run
    folder's ``inputs/``; None for one that is not there (or whose recorded name would leave
    ``inputs/``: a crafted results.csv is never followed out of the run folder)."""
    found: list[tuple[str, Image.Image | None]] = []
    for keyword, name in input_images(result.config):
        try:
            found.append((keyword, _open(in_run(folder, folder.input(name)))))
        except PathEscapeError:
            found.append((keyword, None))
    return found


def write_grids(folder: RunFolder, rootdir: Path, results: Sequence[CaseResult],
                warnings: list[str] | None = None) -> list[Path]:
    """The comparison grids and sweep sheets of a run, drawn anew: grids are derived from the run's
    images, so an older set is removed first. ``rootdir`` resolves the results' baseline paths,
    which the caller vouches for (the session made them; ``diffbench report`` checks them against
    the baseline folder). Every file of the run is read and written through :func:`in_run`.

    A case whose grid, or a sheet that, cannot be written is skipped with a warning line appended
    to ``warnings``: one case's bad path never costs the other cases their grids. Raises
    PathEscapeError when grids/ itself is a symbolic link (nothing is then removed or written).
    """
    shutil.rmtree(in_run(folder, folder.grids), ignore_errors=True)
    written: list[Path] = []
    #: Each sheet's cells as the paths of their output images: a sheet reads its images as it is
    #: drawn, one at a time, so no output is held from its case until the sheets (memory stays flat).
    sheets: dict[tuple[str, str], dict[tuple[str, str], Path]] = defaultdict(dict)
    marks: dict[tuple[str, str], dict[tuple[str, str], str]] = defaultdict(dict)
    axes: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    #: The preset of each sheet's cases (its title shows it; a preset is one per test).
    presets: dict[tuple[str, str], str] = {}

    def skipped(what: str, exc: Exception) -> None:
        if warnings is not None:
            warnings.append(f"WARNING: diffbench could not write the {what}: {type(exc).__name__}: {exc}")

    for result in sorted(results, key=case_order):
        try:
            case = case_path(result.nodeid)
            output_path = in_run(folder, folder.image(case))
            if not output_path.is_file():  # the case errored before it made an image
                continue
            wrote = result.baseline_action.wrote
            with Image.open(output_path):  # not an image: this case's warning, not its sheet's
                pass
            if not result.passed or wrote:
                output = _open(output_path)
                assert output is not None
                baseline = _open(in_run(folder, folder.replaced(case)))
                if baseline is None and result.baseline_path and not wrote:
                    baseline = _open(rootdir / result.baseline_path)
                path = in_run(folder, folder.case_grid(case))
                grid = comparison_grid(output, baseline, grid_labels(result), _inputs(folder, result))
                atomic_write_bytes(path, encode_png(grid))
                written.append(path)
        except Exception as exc:  # one case's grid; the others are still drawn
            skipped(f"grid of {result.nodeid}", exc)
            continue
        sampler, steps = str(result.setting("sampler")), f"{result.setting('steps')}"
        key = case_group(result, "sampler", "steps")  # the sheet holds the cases that differ only there
        sheets[key][(sampler, steps)] = output_path
        presets.setdefault(key, preset_label(result, " · "))
        if not result.passed:
            marks[key][(sampler, steps)] = result.outcome.value
        row_values, column_values = axes[key]
        if sampler not in row_values:
            row_values.append(sampler)
        if steps not in column_values:
            column_values.append(steps)
    for (test, rest), cells in sorted(sheets.items()):
        row_values, column_values = axes[(test, rest)]
        columns = sorted(column_values, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
        try:
            sheet = sweep_sheet(cells, row_values, columns, f"{test.split('::')[-1]} · {rest}{presets[(test, rest)]}", "sampler", "steps",
                                marks[(test, rest)])
            path = in_run(folder, folder.sheet(case_folder(test), rest.replace(" · ", "-")))
            atomic_write_bytes(path, encode_png(sheet))
        except Exception as exc:  # one sheet; the others are still drawn
            skipped(f"sweep sheet of {test} ({rest or 'all cases'})", exc)
            continue
        written.append(path)
    return written
