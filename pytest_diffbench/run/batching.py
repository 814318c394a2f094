"""The images a batched call made for cases that have not run yet (``--diffbench-batch``).

The first case of a chunk (:class:`~pytest_diffbench.spec.batches.Chunk`) to run makes the whole
chunk's images in one call; it keeps its own, and the others wait here until their case takes
them, keyed by the call's keywords (everything the config records but the seed): a later case
whose ``generate()`` keywords differ from the batch's finds nothing and runs the chunk again
with its own. An image is dropped as soon as its case takes it, and a chunk's images as soon
as the chunk (its session's plan) is gone; at most :data:`MAX_CALLS` calls' images are kept, the
oldest dropped first (a case whose image was dropped runs its chunk again: same images, more
time), so memory stays flat whatever the run's length, also when ``-k``, a resume or xdist
leaves some of a chunk's cases to run elsewhere or never.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

from pytest_diffbench.spec.batches import Chunk
from pytest_diffbench.spec.measurement import Measurement

if TYPE_CHECKING:
    from PIL import Image

#: The most batched calls whose untaken images are kept at once (a run goes chunk after chunk:
#: the one running, and one more for a case that ran out of order).
MAX_CALLS = 2


class BatchCache:
    """Untaken outputs (image, per-image measurement) of batched calls, by chunk, keywords and seed."""

    def __init__(self, max_calls: int = MAX_CALLS) -> None:
        self.max_calls = max_calls
        #: (id of the chunk, keywords) -> (the chunk, weakly; its untaken outputs by seed), oldest first.
        self._calls: OrderedDict[tuple[int, str], tuple[weakref.ref[Chunk], dict[int, tuple[Image.Image, Measurement]]]] = \
            OrderedDict()

    def take(self, chunk: Chunk, keywords: str, seed: int) -> "tuple[Image.Image, Measurement] | None":
        """The output the chunk's call with ``keywords`` made for ``seed``, removed from the cache;
        None when there is none (not made yet, made with other keywords, taken, or dropped)."""
        key = (id(chunk), keywords)
        entry = self._calls.get(key)
        if entry is None or entry[0]() is not chunk:
            return None
        output = entry[1].pop(seed, None)
        if not entry[1]:
            del self._calls[key]
        return output

    def put(self, chunk: Chunk, keywords: str, outputs: "dict[int, tuple[Image.Image, Measurement]]") -> None:
        """Keep ``outputs`` (by seed) of the chunk's call with ``keywords`` until their cases take
        them, dropping the oldest call's beyond :attr:`max_calls`."""
        key = (id(chunk), keywords)
        self._calls.pop(key, None)
        if not outputs:
            return
        self._calls[key] = (weakref.ref(chunk, lambda _: self._forget(key[0])), dict(outputs))
        while len(self._calls) > self.max_calls:
            self._calls.popitem(last=False)

    def _forget(self, chunk_id: int) -> None:
        """A chunk is gone (its session ended): drop what its calls left."""
        for key in [key for key in self._calls if key[0] == chunk_id]:
            del self._calls[key]

    def __len__(self) -> int:
        """How many untaken outputs are kept."""
        return sum(len(outputs) for _, outputs in self._calls.values())


#: The process's cache: chunks are per session, so sessions never share an entry.
BATCHES = BatchCache()


class BatchUnsupported(Exception):
    """A runner cannot make this case's images in one batched call (its message says why, e.g.
    ``a two-stage pipeline``); the case runs alone, recorded as batch 1."""
