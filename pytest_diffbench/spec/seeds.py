"""Seed plans: named, deterministic lists of seeds (``diffbench.seed_plan("portraits", n=8)``).

A plan's seeds are derived from its name (and an optional salt) by SHA-256, never by Python's
salted ``hash()`` or the ``random`` module, so one name gives the same seeds in every process, on
every machine and under every Python version. Each seed is the first 4 bytes (big-endian) of
``SHA-256("diffbench.seed_plan/1\\0" + label + "\\0" + counter)``: an integer from 0 to
2**32 - 1, a range every backend takes (``torch.Generator.manual_seed``, ``numpy.random.seed``
and ``numpy.random.default_rng``, JAX's ``PRNGKey``). A counter that would repeat an earlier seed
of the plan is skipped, so a plan's seeds are distinct.

A plan remembers, per seed, its own label and the seed's index in it; a sweep over a plan records
both per case (``seed_plan``, ``seed_index``). They are provenance, not pixels: they stay out of
the config hash, so a seed given in a plain list or by a plan has one baseline. Plans concatenate
with ``+`` (each seed keeping its plan and index), also with a list or tuple of plain seeds (which
have no plan, as in a plain list): the "three fixed seeds plus a wild card" pattern is
``seed_plan("portraits", n=3) + seed_plan("portraits-wild", n=1, salt=...)`` or
``[0, 1, 2] + seed_plan("portraits-wild", n=1, salt=...)``.

Names and salts are put in Unicode NFC before hashing, so the two spellings of "é" (one code
point, or "e" and a combining accent), which print alike, give one plan. A name may not contain
"@": the label ``name@salt`` would otherwise not say where the name ends.

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import numbers
import unicodedata
from collections.abc import Iterator, Sequence
from typing import overload

#: Seeds of a plan are below this: 4 bytes of the digest (what numpy's legacy seeding takes, the narrowest backend).
SEED_LIMIT = 2**32
#: The most seeds one plan may hold (the most values of one sweep axis).
MAX_PLAN_SEEDS = 100_000
#: The format tag hashed before every label: a change of the derivation is a change of this tag.
_FORMAT = b"diffbench.seed_plan/1"


class SeedPlanError(ValueError):
    """A seed plan with an invalid name, salt or size; one line naming the argument."""


#: One seed of a plan: ``(label, index, seed)``; a plain seed (no plan) is ``("", None, seed)``.
Entry = tuple[str, "int | None", int]


class SeedPlan(Sequence[int]):
    """An immutable sequence of seeds, each with the label of the plan it came from and its index
    there (see :func:`seed_plan`). ``plan[i]`` is an int; ``plan.origin(i)`` is ``(label, index)``
    (``("", None)`` for a plain seed); ``plan_a + plan_b``, ``plan + [5]`` and ``[0, 1] + plan``
    join them (a list or tuple of seeds that are not integers from 0 to 2**63 - 1 raises
    :class:`SeedPlanError`)."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Sequence[Entry]) -> None:
        """``entries``: ``(label, index, seed)`` per seed, in order. Use :func:`seed_plan` to make one."""
        self._entries: tuple[Entry, ...] = tuple(entries)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> "SeedPlan": ...

    def __getitem__(self, index: int | slice) -> "int | SeedPlan":
        if isinstance(index, slice):
            return SeedPlan(self._entries[index])
        return self._entries[index][2]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[int]:
        return (seed for _, _, seed in self._entries)

    def __add__(self, other: object) -> "SeedPlan":
        __tracebackhide__ = True
        entries = _entries_of(other)
        return NotImplemented if entries is None else SeedPlan(self._entries + entries)

    def __radd__(self, other: object) -> "SeedPlan":
        __tracebackhide__ = True
        entries = _entries_of(other)
        return NotImplemented if entries is None else SeedPlan(entries + self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeedPlan) and self._entries == other._entries

    def __hash__(self) -> int:
        return hash(self._entries)

    def __repr__(self) -> str:
        labels = list(dict.fromkeys(label or "plain seeds" for label, _, _ in self._entries))
        return f"SeedPlan({' + '.join(labels) or 'empty'}: {list(self)})"

    def origin(self, position: int) -> tuple[str, int | None]:
        """``(plan label, index in that plan)`` of the seed at ``position``; ``("", None)`` for a plain seed."""
        label, index, _ = self._entries[position]
        return label, index

    @property
    def entries(self) -> tuple[Entry, ...]:
        """``(label, index, seed)`` per seed, in order."""
        return self._entries


def _entries_of(other: object) -> tuple[Entry, ...] | None:
    """The entries of a plan, or of a list or tuple of plain seeds, to join to a plan; None for
    anything else (``+`` then raises TypeError). Raises SeedPlanError for a list holding a value
    that is not a seed."""
    __tracebackhide__ = True
    if isinstance(other, SeedPlan):
        return other._entries
    if not isinstance(other, (list, tuple, range)):
        return None
    for seed in other:
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= int(seed) < 2**63:
            raise SeedPlanError(f"seed_plan(...) + {_short_list(other)}: {seed!r} is not a seed; seeds are integers "
                                "from 0 to 2**63 - 1")
    return tuple(("", None, int(seed)) for seed in other)


def _short_list(values: "list[object] | tuple[object, ...] | range") -> str:
    """``values`` as Python writes them, cut to 60 characters."""
    text = repr(values)
    return text if len(text) <= 60 else text[:57] + "..."


def seed_plan(name: str, n: int = 8, *, salt: str = "") -> SeedPlan:
    """The ``n`` seeds of the plan ``name``: integers from 0 to 2**32 - 1, distinct, derived from
    ``name`` (and ``salt``) by SHA-256 (see the module docstring), the same on every machine.

    ``salt`` (a string, e.g. a date or a ticket) gives the plan other seeds under the same name;
    the plan's recorded label is then ``name@salt``, so the salt is what replays it. Name and salt
    are put in Unicode NFC first. Raises :class:`SeedPlanError` (a ValueError, one line naming
    ``name``, ``salt`` or ``n``) when the name is not a non-empty string of printable characters
    without "@", the salt not a string of printable characters,
    or ``n`` not an integer from 1 to 100000 (pytest then shows the user's line, not this frame).
    """
    __tracebackhide__ = True  # a collection error points at the test module's call, with the one-line reason
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise SeedPlanError(f"seed_plan(name={name!r}) is not valid; give a non-empty name of printable characters, "
                            'e.g. seed_plan("portraits", n=8)')
    if "@" in name:
        raise SeedPlanError(f"seed_plan(name={name!r}) is not valid; a name may not contain '@', which separates the "
                            f"salt in the plan's label: write seed_plan({name.split('@', 1)[0]!r}, "
                            f"salt={name.split('@', 1)[1]!r}) for that salt, or another name")
    if not isinstance(salt, str) or not salt.isprintable():
        raise SeedPlanError(f"seed_plan(salt={salt!r}) is not valid; give a string of printable characters "
                            '(e.g. salt="2026-11-30"), or leave it out')
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or not 1 <= int(n) <= MAX_PLAN_SEEDS:
        raise SeedPlanError(f"seed_plan(n={n!r}) is not valid; n (the number of seeds) must be an integer from 1 to "
                            f"{MAX_PLAN_SEEDS}")
    name, salt = unicodedata.normalize("NFC", name), unicodedata.normalize("NFC", salt)
    label = f"{name}@{salt}" if salt else name
    seeds: list[int] = []
    seen: set[int] = set()
    counter = 0
    while len(seeds) < int(n):
        seed = derive_seed(label, counter)
        counter += 1
        if seed not in seen:
            seen.add(seed)
            seeds.append(seed)
    return SeedPlan([(label, index, seed) for index, seed in enumerate(seeds)])


def derive_seed(label: str, counter: int) -> int:
    """The seed of ``label`` at ``counter``: the first 4 bytes, big-endian, of the SHA-256 of the
    format tag, the label (UTF-8) and the counter (decimal), NUL-separated."""
    digest = hashlib.sha256(b"\0".join([_FORMAT, label.encode("utf-8"), str(counter).encode("ascii")])).digest()
    return int.from_bytes(digest[:4], "big")
