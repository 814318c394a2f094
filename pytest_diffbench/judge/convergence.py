"""How close each case comes to the image of its sweep group with the most steps.

Against its baseline, every case of a healthy run scores SSIM 1.0, so that axis says nothing
about a speed-against-quality sweep. What such a sweep asks is how far fewer steps fall from
more: each case is scored against its *reference*, the case of the same test whose node id
differs only in the step count and that has the most steps (so the cases of one
``pytest.mark.parametrize`` value or fixture parameter are never scored against another's). Groups with one step count have no
reference; the reference scores 1.0 against itself. The scores become results.csv's
``ssim_vs_most_steps`` column, which plot.png and report.html show.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Sequence

from pytest_diffbench.judge.metrics.images import split_frames
from pytest_diffbench.judge.metrics.ssim import ssim
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.spec.samplers import sampler_slug
from pytest_diffbench.spec.video import config_frames

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Loads a case's output image as an (H, W, 3) uint8 array; None when the case has none.
PixelLoader = Callable[[CaseResult], "npt.NDArray[np.uint8] | None"]


def case_group(result: CaseResult, *axes: str) -> tuple[str, str]:
    """(test, the node id's parameter id without the parts named by ``axes``): the cases that
    differ only there.

    ``axes`` are among ``"sampler"`` and ``"steps"``, whose parts of a sweep's case id are the
    sampler's slug and ``<n>steps``. The other parts are kept and joined with `` · ``: the rest of
    the sweep's case id and every other parameter in the node id (a ``pytest.mark.parametrize``
    value, a fixture parameter), so ``test_g[seed0-euler-50steps-cfg7.5-a red cube]`` is grouped
    by ``steps`` as ``a red cube`` and ``seed0 · euler · cfg7.5`` apart from the ``a blue sphere``
    cases. A test without a sweep has the default case id, which its node id lacks: its other
    parameters come first.
    """
    parts = {"sampler": sampler_slug(str(result.setting("sampler"))), "steps": f"{result.setting('steps')}steps"}
    dropped = {parts[axis] for axis in axes}
    before, after = _around_case_id(result)
    kept = [part for part in result.case_id.split("-") if part and part not in dropped]
    return result.test, " · ".join(part for part in (before, *kept, after) if part)


def _around_case_id(result: CaseResult) -> tuple[str, str]:
    """The node id's parameter id before and after the sweep's case id (each without the ``-``
    pytest joins parameter ids with); the whole parameter id first when the case id is not part of it."""
    match = re.fullmatch(r"[^\[]*\[(.*)\]", result.nodeid, flags=re.DOTALL)
    param, case_id = (match.group(1) if match else ""), result.case_id
    if not case_id or param == case_id:
        return ("", "") if param == case_id else (param, "")
    if param.startswith(f"{case_id}-"):
        return "", param[len(case_id) + 1:]
    if param.endswith(f"-{case_id}"):
        return param[: -len(case_id) - 1], ""
    before, found, after = param.partition(f"-{case_id}-")
    return (before, after) if found else (param, "")


def reference_ssim(results: Sequence[CaseResult], pixels: PixelLoader) -> dict[str, float]:
    """Node id -> SSIM against its group's most-steps image, for groups of two or more step counts
    (a video's: its worst frame's).

    Each image is loaded once.
    """
    loaded = {r.nodeid: image for r in results if r.setting("steps") is not None and (image := pixels(r)) is not None}
    groups: dict[tuple[str, str], list[CaseResult]] = defaultdict(list)
    for result in results:
        if result.nodeid in loaded:
            groups[case_group(result, "steps")].append(result)
    scores: dict[str, float] = {}
    for members in groups.values():
        if len({int(m.setting("steps")) for m in members}) < 2:
            continue
        reference = loaded[max(members, key=lambda m: int(m.setting("steps"))).nodeid]
        for member in members:
            image = loaded[member.nodeid]
            if image.shape == reference.shape:  # a video: its worst frame, which the whole strip would average away
                frames = config_frames(member.config)
                scores[member.nodeid] = min(ssim(a, b) for a, b in zip(split_frames(image, frames),
                                                                       split_frames(reference, frames)))
    return scores


def with_reference_ssim(results: Sequence[CaseResult], pixels: PixelLoader) -> list[CaseResult]:
    """``results`` with ``ssim_vs_most_steps`` set where a case has a reference."""
    scores = reference_ssim(results, pixels)
    return [r.with_changes(ssim_vs_most_steps=scores[r.nodeid]) if r.nodeid in scores else r for r in results]
