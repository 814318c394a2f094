"""How close each case comes to the image of its sweep group with the most steps.

Against its baseline, every case of a healthy run scores SSIM 1.0, so that axis says nothing
about a speed-against-quality sweep. What such a sweep asks is how far fewer steps fall from
more: each case is scored against its *reference*, the case of the same test whose case id
differs only in the step count and that has the most steps. Groups with one step count have
no reference; the reference scores 1.0 against itself. Scores come from the run's own images
(``images/``) when the session ends, into results.csv's ``ssim_vs_most_steps`` column, which
plot.png and report.html show.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from pytest_diffbench.baselines import case_path
from pytest_diffbench.metrics import ssim, to_rgb_array
from pytest_diffbench.results import REFERENCE_SSIM_COLUMN, image_relpath
from pytest_diffbench.samplers import sampler_slug
from pytest_diffbench.summary import cell_number


def case_group(record: Mapping[str, Any], *axes: str) -> tuple[str, str]:
    """(test, the case id without the parts named by ``axes``): the cases that differ only there.

    ``axes`` are among ``"sampler"`` and ``"steps"``, whose parts of a sweep's case id are the
    sampler's slug and ``<n>steps``; the remaining parts are joined with `` · ``.
    """
    parts = {"sampler": sampler_slug(str(record.get("sampler"))), "steps": f"{record.get('steps')}steps"}
    dropped = {parts[axis] for axis in axes}
    rest = [part for part in str(record.get("case_id", "")).split("-") if part not in dropped]
    return str(record.get("test") or str(record["nodeid"]).split("[")[0]), " · ".join(rest)


def reference_ssim(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Node id -> SSIM against its group's most-steps image, for groups of two or more step counts."""
    groups: dict[tuple[str, str], list[tuple[float, Mapping[str, Any]]]] = defaultdict(list)
    for record in rows:
        steps = cell_number(record.get("steps"))
        if steps is not None and _image_path(run_dir, record).is_file():
            groups[case_group(record, "steps")].append((steps, record))
    scores: dict[str, float] = {}
    for members in groups.values():
        if len({steps for steps, _ in members}) < 2:
            continue
        _, reference = max(members, key=lambda member: member[0])
        target = _pixels(run_dir, reference)
        for _, record in members:
            image = target if record is reference else _pixels(run_dir, record)
            if image.shape == target.shape:
                scores[str(record["nodeid"])] = ssim(image, target)
    return scores


def add_reference_ssim(run_dir: Path, records: Sequence[dict[str, Any]]) -> None:
    """Set each record's ``ssim_vs_most_steps`` (results.csv's column) where it has one."""
    scores = reference_ssim(run_dir, records)
    for record in records:
        if record["nodeid"] in scores:
            record[REFERENCE_SSIM_COLUMN] = scores[record["nodeid"]]


def _image_path(run_dir: Path, record: Mapping[str, Any]) -> Path:
    return Path(run_dir) / image_relpath(case_path(str(record["nodeid"])))


def _pixels(run_dir: Path, record: Mapping[str, Any]) -> np.ndarray:
    with Image.open(_image_path(run_dir, record)) as image:
        return to_rgb_array(image)
