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
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from pytest_diffbench.judge.metrics.images import split_frames, to_rgb_array
from pytest_diffbench.judge.metrics.ssim import ssim
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.spec.samplers import sampler_slug
from pytest_diffbench.spec.sweep import Case
from pytest_diffbench.spec.video import config_frames

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from typing import TypeAlias

    from PIL.Image import Image as PILImage

    #: An (H, W, 3) uint8 image.
    RGB: TypeAlias = npt.NDArray[np.uint8]
#: Loads a case's output image as an (H, W, 3) uint8 array; None when the case has none.
PixelLoader = Callable[[CaseResult], "npt.NDArray[np.uint8] | None"]
#: Two (H, W, 3) uint8 arrays of one shape and the device to score them on -> their SSIM.
Score = Callable[["npt.NDArray[np.uint8]", "npt.NDArray[np.uint8]", str], float]
#: (test, the rest of the node id's parameters): a group of :func:`case_group`.
GroupKey = tuple[str, str]


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
    return group_key(result.nodeid, result.case_id, result.setting("sampler"), result.setting("steps"), *axes)


def group_key(nodeid: str, case_id: str, sampler: object, steps: object, *axes: str) -> tuple[str, str]:
    """:func:`case_group` of the case ``nodeid`` with its sweep's ``case_id``, ``sampler`` and
    ``steps`` (what collection knows before the case runs)."""
    parts = {"sampler": sampler_slug(str(sampler)), "steps": f"{steps}steps"}
    dropped = {parts[axis] for axis in axes}
    before, after = _around_case_id(nodeid, case_id)
    kept = [part for part in case_id.split("-") if part and part not in dropped]
    return nodeid.split("[")[0], " · ".join(part for part in (before, *kept, after) if part)


def _around_case_id(nodeid: str, case_id: str) -> tuple[str, str]:
    """The node id's parameter id before and after the sweep's case id (each without the ``-``
    pytest joins parameter ids with); the whole parameter id first when the case id is not part of it."""
    match = re.fullmatch(r"[^\[]*\[(.*)\]", nodeid, flags=re.DOTALL)
    param = match.group(1) if match else ""
    if not case_id or param == case_id:
        return ("", "") if param == case_id else (param, "")
    if param.startswith(f"{case_id}-"):
        return "", param[len(case_id) + 1:]
    if param.endswith(f"-{case_id}"):
        return param[: -len(case_id) - 1], ""
    before, found, after = param.partition(f"-{case_id}-")
    return (before, after) if found else (param, "")


def reference_ssim(results: Sequence[CaseResult], pixels: PixelLoader, score: Score = ssim) -> dict[str, float]:
    """Node id -> SSIM (``score``) against its group's most-steps image, for groups of two or more
    step counts (a video's: its worst frame's).

    Each image is loaded once, one group at a time: at most one group's images are held.
    """
    scores: dict[str, float] = {}
    for members in _groups(results).values():
        loaded = {m.nodeid: image for m in members if (image := pixels(m)) is not None}
        scores.update(_group_scores([m for m in members if m.nodeid in loaded], loaded, score))
    return scores


def with_reference_ssim(results: Sequence[CaseResult], pixels: PixelLoader) -> list[CaseResult]:
    """``results`` with ``ssim_vs_most_steps`` set where a case has a reference."""
    return _with_scores(results, reference_ssim(results, pixels))


def _with_scores(results: Sequence[CaseResult], scores: Mapping[str, float]) -> list[CaseResult]:
    return [r.with_changes(ssim_vs_most_steps=scores[r.nodeid]) if r.nodeid in scores else r for r in results]


def _groups(results: Sequence[CaseResult]) -> dict[GroupKey, list[CaseResult]]:
    """The results with a step count by :func:`case_group` over ``steps``, in their order; only
    groups of two or more step counts (the others have no reference)."""
    groups: dict[GroupKey, list[CaseResult]] = defaultdict(list)
    for result in results:
        if result.setting("steps") is not None:
            groups[case_group(result, "steps")].append(result)
    return {key: members for key, members in groups.items() if len({_steps(m) for m in members}) >= 2}


def _steps(result: CaseResult) -> int:
    return int(result.setting("steps"))


def _group_scores(members: Sequence[CaseResult], images: Mapping[str, RGB], score: Score) -> dict[str, float]:
    """The scores of one group's ``members`` (each with its image in ``images``) against the first
    member with the most steps; none when they have fewer than two step counts."""
    if len({_steps(m) for m in members}) < 2:
        return {}
    reference = images[max(members, key=_steps).nodeid]
    return {m.nodeid: value for m in members if (value := _score(m, images[m.nodeid], reference, score)) is not None}


def _score(member: CaseResult, image: RGB, reference: RGB, score: Score) -> float | None:
    """``member``'s score against ``reference``, on the device its config names (a CUDA
    pipeline's in torch there, see :func:`~pytest_diffbench.judge.metrics.ssim.ssim`); None when
    their shapes differ. A video's is its worst frame's, which the whole strip would average away."""
    if image.shape != reference.shape:
        return None
    frames, device = config_frames(member.config), str(member.setting("device") or "cpu")
    return min(score(a, b, device) for a, b in zip(split_frames(image, frames), split_frames(reference, frames)))


#: xdist workeroutput key: a worker's :meth:`ReferenceScorer.handover`.
REFERENCE_KEY = "diffbench_reference_ssim"
#: What :meth:`ReferenceScorer.handover` gives: per group (test and rest joined by a NUL), each member's score
#: (None: no score, as its shape differs or its group has one step count with an image) or :data:`NO_IMAGE`.
Handover = dict[str, dict[str, "float | str | None"]]
#: A member that finished without an image (an error before generate()).
NO_IMAGE = "no image"
#: The most MiB of images a :class:`ReferenceScorer` holds by default (see its docstring).
HELD_MIB = 512.0


@dataclass
class _Group:
    """A group of cases this process runs (see :class:`ReferenceScorer`)."""

    #: Node id -> step count of each member collection expects.
    steps: dict[str, int] = field(default_factory=dict)
    #: Node id -> (result, image) of the members that finished before their reference.
    waiting: dict[str, "tuple[CaseResult, RGB]"] = field(default_factory=dict)
    reference: "RGB | None" = None
    #: Node id -> score, None or NO_IMAGE of each finished member.
    finished: dict[str, "float | str | None"] = field(default_factory=dict)
    #: Scored from the files at the end instead (see :meth:`ReferenceScorer._give_up`).
    given_up: bool = False

    @property
    def reference_id(self) -> str | None:
        """The member with the most steps; None when two share them (or the group has one step count)."""
        most = max(self.steps.values())
        top = [nodeid for nodeid, steps in self.steps.items() if steps == most]
        return top[0] if len(top) == 1 and len(set(self.steps.values())) >= 2 else None

    def held_bytes(self) -> int:
        return sum(image.nbytes for _, image in self.waiting.values()) + (self.reference.nbytes if self.reference is not None else 0)


class ReferenceScorer:
    """``ssim_vs_most_steps`` scored while the run goes, from the images still in memory, so the
    session end decodes no PNG for the groups this process runs whole.

    Collection tells it which cases this process runs (:meth:`expect`), so it knows each group's
    reference (the member with the most steps); each finished case is fed with its image
    (:meth:`finished`). A member that finishes after its reference is scored at once; one that
    finishes before it waits, holding its (H, W, 3) uint8 array, until the reference comes; the
    group's images are released when its last member finishes, and the reference is scored
    against itself as :func:`reference_ssim` does.

    Memory, worst case: the images of the open groups' members that came before their reference,
    plus each open group's reference, and never more than ``held_mib`` MiB: a group that would
    take more is given up (its images released at once) and scored from the files at the end. In
    a sweep's order (seeds, samplers, steps, cfg, extra axes) the open groups are at most the cfg
    and extra-axis combinations of one seed and sampler, each holding its fewer-steps images.

    At the session end :meth:`with_scores` takes a group's in-memory scores only when this
    process (or, under xdist, one worker: :meth:`handover`, :meth:`take`) finished exactly the
    members the results hold; every other group (split across workers, with a resumed run's
    earlier cases, a case run again, an error outside ``generate()``, given up, a tie for the
    most steps) is scored from its PNG files by :func:`reference_ssim`, one group at a time. The
    scores are therefore :func:`with_reference_ssim`'s in every finishing order. Thread-safe:
    a background writer may feed it.
    """

    def __init__(self, score: Score = ssim, *, held_mib: float = HELD_MIB) -> None:
        """``score``: two (H, W, 3) uint8 arrays and a device -> SSIM (the file fallback uses the same)."""
        self._score = score
        self._held_limit = int(held_mib * 2**20)
        self._held = 0
        self._groups: dict[GroupKey, _Group] = {}
        self._group_of: dict[str, GroupKey] = {}
        #: Complete groups' members and scores (this process's and, on a controller, its workers').
        self._complete: dict[GroupKey, dict[str, float | str | None]] = {}
        self._lock = threading.Lock()

    @property
    def held_bytes(self) -> int:
        """Bytes of images held now (see the class docstring)."""
        return self._held

    def expect(self, nodeid: str, case: Case) -> None:
        """This process runs ``case`` as the test item ``nodeid`` (called at collection, after deselection)."""
        with self._lock:
            key = group_key(nodeid, case.id, case.sampler, case.steps, "steps")
            self._groups.setdefault(key, _Group()).steps[nodeid] = int(case.steps)
            self._group_of[nodeid] = key

    def finished(self, result: CaseResult, image: "PILImage | RGB | None") -> None:
        """The case of ``result`` finished with ``image`` (a PIL image or (H, W, 3) uint8 array;
        None: it made none). A case collection did not announce is left to the files."""
        with self._lock:
            key = self._group_of.get(result.nodeid)
            group = self._groups.get(key) if key is not None else None
            if key is None or group is None or group.given_up:
                return
            reference = group.reference_id
            steps = result.setting("steps")
            if (result.nodeid in group.finished or reference is None or steps is None
                    or int(steps) != group.steps[result.nodeid] or case_group(result, "steps") != key):
                return self._give_up(key, group)  # again (a rerun), a tie, or not the case collection announced
            if image is None:
                if result.nodeid == reference:
                    return self._give_up(key, group)  # the group's reference is another case now
                group.finished[result.nodeid] = NO_IMAGE
            else:
                from PIL import Image

                array = to_rgb_array(image) if isinstance(image, Image.Image) else image
                self._arrived(key, group, result, array, reference)
            if not group.given_up and len(group.finished) == len(group.steps):
                self._complete_group(key, group)

    def _arrived(self, key: GroupKey, group: _Group, result: CaseResult, image: RGB, reference: str) -> None:
        """Score ``result``'s ``image`` now (its reference is there, or it is the reference) or keep it waiting."""
        if result.nodeid != reference and group.reference is None:
            if not self._hold(key, group, image):
                return
            group.waiting[result.nodeid] = (result, image)
            group.finished[result.nodeid] = None
            return
        if result.nodeid == reference:
            if not self._hold(key, group, image):
                return
            group.reference = image
            for waiting, (member, held) in group.waiting.items():
                group.finished[waiting] = _score(member, held, image, self._score)
            self._held -= sum(held.nbytes for _, held in group.waiting.values())
            group.waiting.clear()
        assert group.reference is not None
        group.finished[result.nodeid] = _score(result, image, group.reference, self._score)

    def _hold(self, key: GroupKey, group: _Group, image: RGB) -> bool:
        """Count ``image`` as held; over the limit the group is given up instead (False)."""
        if self._held + image.nbytes > self._held_limit:
            self._give_up(key, group)
            return False
        self._held += image.nbytes
        return True

    def _complete_group(self, key: GroupKey, group: _Group) -> None:
        """Keep a finished group's scores and release its images. With fewer than two step counts
        among the members that made an image, none has a score (as :func:`reference_ssim`)."""
        with_image = {group.steps[n] for n, value in group.finished.items() if value != NO_IMAGE}
        self._complete[key] = (dict(group.finished) if len(with_image) >= 2 else
                               {n: (NO_IMAGE if value == NO_IMAGE else None) for n, value in group.finished.items()})
        self._release(key, group)

    def _give_up(self, key: GroupKey, group: _Group) -> None:
        """Leave the group to the files and release its images."""
        group.given_up = True
        self._complete.pop(key, None)
        self._release(key, group)

    def _release(self, key: GroupKey, group: _Group) -> None:
        self._held -= group.held_bytes()
        group.waiting.clear()
        group.reference = None

    def handover(self) -> Handover:
        """The complete groups' scores, for an xdist worker's ``workeroutput`` (:data:`REFERENCE_KEY`)."""
        with self._lock:
            return {"\0".join(key): dict(scores) for key, scores in self._complete.items()}

    def take(self, handed: Handover) -> None:
        """A worker's :meth:`handover` (on the xdist controller). A group two workers both
        finished whole (it cannot be) is left to the files."""
        with self._lock:
            for joined, scores in handed.items():
                test, _, rest = joined.partition("\0")
                key = (test, rest)
                if key in self._complete:
                    self._complete[key] = {}  # matches no results: scored from the files
                else:
                    self._complete[key] = dict(scores)

    def with_scores(self, results: Sequence[CaseResult], pixels: PixelLoader) -> list[CaseResult]:
        """``results`` with ``ssim_vs_most_steps`` set where a case has a reference: a group's
        in-memory scores when its members are exactly the ones scored (see the class docstring),
        else scored from the files (``pixels``) as :func:`with_reference_ssim` does."""
        scores: dict[str, float] = {}
        with self._lock:
            complete = dict(self._complete)
        for key, members in _groups(results).items():
            known = complete.get(key)
            if known is not None and set(known) == {m.nodeid for m in members}:
                scores.update({n: value for n, value in known.items() if isinstance(value, float)})
            else:
                scores.update(reference_ssim(members, pixels, self._score))
        return _with_scores(results, scores)
