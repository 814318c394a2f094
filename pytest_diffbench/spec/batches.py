"""Seed batching: which cases run as one pipeline call (``--diffbench-batch=N``).

Cases of one test that differ only in their seed (same test function, same parametrize and
fixture params, same sweep values but the seed; a seed plan's seeds too) form a *group*; each
group's seeds, in collection order, are cut into *chunks* of at most N. A chunk runs as one
pipeline call with one CPU generator per seed, and each of its cases still gets its own image,
row, comparison and verdict (see :mod:`pytest_diffbench.run.batching`).

The plan is a pure function of the collection (the node ids and cases in collection order, and
N), taken before ``-k``, ``-m`` or a resume deselect anything: a case's chunk, and so its image
and its config's ``batch``, is the same whichever cases are selected and whichever xdist worker
runs it. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from pytest_diffbench.spec.sweep import Case

#: The text that stands for the seed in a group's name (see :func:`group_of`).
ANY_SEED = "seed*"


@dataclass(frozen=True, eq=False)
class Chunk:
    """The seeds of one group that run as one pipeline call, in collection order.

    ``group`` names the group (the node id with its seed made :data:`ANY_SEED`), ``index`` is the
    chunk's place in its group (0, 1, ...). Chunks compare and hash by identity: each session's
    plan has its own, so what one session made for a chunk never serves another's."""

    group: str
    index: int
    seeds: tuple[int, ...]

    @property
    def size(self) -> int:
        """How many images the chunk's call makes: the ``batch`` its cases' configs record."""
        return len(self.seeds)


class BatchPlan:
    """Each batched case's chunk, by node id. Empty (``BatchPlan()``): every case runs alone."""

    def __init__(self, chunks: Mapping[str, Chunk] | None = None) -> None:
        self._chunks: dict[str, Chunk] = dict(chunks or {})

    def get(self, nodeid: str) -> Chunk | None:
        """The chunk of the case ``nodeid``; None when it runs alone (batch 1, a chunk of one seed,
        a case not planned)."""
        return self._chunks.get(nodeid)

    @property
    def chunks(self) -> list[Chunk]:
        """Every chunk of the plan once, in collection order."""
        return list(dict.fromkeys(self._chunks.values()))

    def __len__(self) -> int:
        """How many cases run batched."""
        return len(self._chunks)


def group_of(nodeid: str, case: Case) -> str | None:
    """The group of the case ``nodeid`` runs: its node id with the case id's seed part made
    :data:`ANY_SEED` (``t.py::test_a[seed*-euler-20steps-cfg7.5]``), so two cases share a group
    exactly when everything but the seed is the same; None when the node id does not hold the case
    id (a test without a sweep: it has nothing to batch with)."""
    seed_part = f"seed{case.seed}"
    case_id = case.id
    at = nodeid.rfind(case_id)
    end = at + len(case_id)
    if at < 0 or not case_id.startswith(seed_part) or nodeid[end:end + 1] not in ("-", "]"):
        return None
    return nodeid[:at] + ANY_SEED + nodeid[at + len(seed_part):]


def plan_batches(cases: Iterable[tuple[str, Case]], size: int) -> BatchPlan:
    """The chunks of ``cases`` (node id and case, in collection order) at batch ``size``
    (``--diffbench-batch``): each group's seeds in collection order, cut into chunks of ``size``
    (the last one may be smaller). A chunk of one seed, and every case at ``size`` 1, runs alone.
    Raises ValueError for a ``size`` below 1 (the option's check refuses it first)."""
    if size < 1:
        raise ValueError(f"--diffbench-batch must be a positive integer, got {size}")
    groups: dict[str, list[tuple[str, int]]] = {}
    if size > 1:
        for nodeid, case in cases:
            group = group_of(nodeid, case)
            if group is not None:
                groups.setdefault(group, []).append((nodeid, case.seed))
    planned: dict[str, Chunk] = {}
    for group, members in groups.items():
        for index, start in enumerate(range(0, len(members), size)):
            part = members[start:start + size]
            if len(part) < 2:
                continue
            chunk = Chunk(group, index, tuple(seed for _, seed in part))
            planned.update((nodeid, chunk) for nodeid, _ in part)
    return BatchPlan(planned)
