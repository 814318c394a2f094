"""The frozen config of one case, its canonical JSON and its SHA-256 hash.

The hash names baselines and files, so it must be the same in every process and on every
machine: canonical JSON (sorted keys, fixed separators, ASCII), floats normalised to 12
significant digits, and never Python's salted ``hash()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import PurePath
from typing import Any, Mapping

SHORT_HASH_LENGTH = 12
FLOAT_SIGNIFICANT_DIGITS = 12


@dataclass(frozen=True)
class FrozenConfig:
    """Everything that decides the pixels of one case; two equal configs must give one image."""

    model: str
    model_fingerprint: str
    vae: str
    loras: tuple[str, ...]
    controlnets: tuple[str, ...]
    prompt: str
    negative_prompt: str | None
    seed: int
    sampler: str
    steps: int
    cfg: float
    width: int
    height: int
    workflow: str
    workflow_version: str
    dtype: str
    device: str
    pipeline_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: The scheduler the case ran with, after the sampler swap: ``{"class": name, key: value}`` for
    #: every config key that differs from the class's defaults.
    scheduler: Mapping[str, Any] = field(default_factory=dict)
    #: The pipeline's own config flags (``force_zeros_for_empty_prompt``, ``requires_aesthetics_score``, ...).
    pipeline_config: Mapping[str, Any] = field(default_factory=dict)
    #: LoRA adapters: names, file digests, the active ones with their weights, the scale, fused or not.
    adapters: Mapping[str, Any] = field(default_factory=dict)
    #: The second stage of a two-stage case (a refiner): its description and the handoff.
    refiner: Mapping[str, Any] = field(default_factory=dict)
    #: A case whose output is frames (video): their count and rate.
    video: Mapping[str, Any] = field(default_factory=dict)
    #: Made with ``--diffbench-deterministic`` (deterministic algorithms can change the numerics, so
    #: a baseline made with it is compared with cases made with it).
    deterministic: bool = False
    #: The preset of the case's sweep: ``{"name": ..., "version": ...}`` (see spec.presets); its
    #: version pins the preset's values, so a bumped preset makes its baselines stale.
    preset: Mapping[str, Any] = field(default_factory=dict)
    #: How many images the pipeline call that made this one made (``--diffbench-batch``: the
    #: case's chunk of seeds, see spec.batches); batching changes the numerics slightly, so a
    #: baseline made alone (1, left out of the dict and hash) is stale for a batched case.
    batch: int = 1

    def __post_init__(self) -> None:
        # cfg 5 and 5.0 are one guidance scale: store it as a float so both hash alike.
        if isinstance(self.cfg, (int, float)) and not isinstance(self.cfg, bool):
            object.__setattr__(self, "cfg", float(self.cfg))

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-ready values (tuples become lists, floats normalised). An
        :data:`OPTIONAL_KEYS` field that is empty or at its default (``batch`` 1) is left out, so
        configs made before it existed (and pipelines it says nothing about) keep their hash."""
        return normalise({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                          if f.name not in OPTIONAL_KEYS or not _at_default(f, getattr(self, f.name))})

    def canonical_json(self) -> str:
        return canonical_json(self.to_dict())

    @property
    def hash(self) -> str:
        """Full SHA-256 hex digest of the canonical JSON."""
        return config_hash(self.to_dict())

    @property
    def short_hash(self) -> str:
        """The first 12 hex digits of :attr:`hash`, used in file names and labels."""
        return self.hash[:SHORT_HASH_LENGTH]


#: Fields left out of :meth:`FrozenConfig.to_dict` (and its hash) when empty.
OPTIONAL_KEYS: tuple[str, ...] = ("scheduler", "pipeline_config", "adapters", "refiner", "video", "deterministic",
                                  "preset", "batch")
#: Fields every config has.
REQUIRED_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FrozenConfig) if f.name not in OPTIONAL_KEYS)
#: Every field, in order: the config's columns of results.csv.
CONFIG_KEYS: tuple[str, ...] = REQUIRED_KEYS + OPTIONAL_KEYS


def _at_default(spec: "dataclasses.Field[Any]", value: Any) -> bool:
    """Whether an optional field's ``value`` says nothing: empty (``{}``, False) or its default."""
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    return not value or value == default


def normalise(value: Any, *, where: str = "config", finite: bool = False) -> Any:
    """Turn ``value`` into JSON values whose serialisation does not depend on the machine.

    Floats are rounded to 12 significant digits (so ``0.1 + 0.2`` and ``0.3`` hash alike),
    ``-0.0`` becomes ``0.0``, non-finite floats become the strings ``"nan"``/``"inf"``/``"-inf"``
    (with ``finite``, they raise ValueError naming the field instead: for inputs, where NaN or
    inf is a mistake), tuples become lists, numpy scalars and arrays become Python values, paths
    become strings. Anything else raises TypeError naming the field.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return normalise(value.value, where=where, finite=finite)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if finite and not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number; NaN and infinities cannot be compared or "
                             "reproduced, give a finite number")
        return _normalise_float(value)
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {key!r}")
            out[key] = normalise(item, where=f"{where}.{key}", finite=finite)
        return out
    if isinstance(value, (list, tuple)):
        return [normalise(item, where=f"{where}[{i}]", finite=finite) for i, item in enumerate(value)]
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(value, "ndim", None) == 0:
        return normalise(item(), where=where, finite=finite)
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return normalise(tolist(), where=where, finite=finite)
    raise TypeError(
        f"{where}: {type(value).__name__} value {short_repr(value)} cannot go into a frozen config; "
        "use str, int, float, bool, None, or lists and dicts of them (images, arrays and tensors only as "
        "generate() keywords of their own, or lists of them)"
    )


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line (runs of whitespace made one space), cut to ``limit``
    characters with ``...``: an object in a message, however large its repr (a tensor's is
    thousands of characters over many lines)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _normalise_float(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    rounded = float(f"{value:.{FLOAT_SIGNIFICANT_DIGITS}g}")
    return 0.0 if rounded == 0 else rounded


def canonical_json(data: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, ASCII only: one text per config on every machine."""
    return json.dumps(normalise(data), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def config_hash(data: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``data`` without its :data:`APPROX_KEY` summaries (see
    :func:`exact_part`): values compared within a tolerance never change a hash."""
    return hashlib.sha256(canonical_json(exact_part(normalise(data))).encode("ascii")).hexdigest()


#: The keys of an input image's record in ``pipeline_kwargs`` (see :mod:`pytest_diffbench.run.inputs`).
IMAGE_RECORD_KEYS = frozenset({"sha256", "size", "mode", "name"})


def input_images(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(keyword, file name) of each input image recorded in ``config["pipeline_kwargs"]``, sorted by
    keyword: ``image``, or ``image[1]`` for an item of a list. Other values are passed over."""
    kwargs = config.get("pipeline_kwargs")
    found: list[tuple[str, str]] = []
    if not isinstance(kwargs, Mapping):
        return found
    for keyword in sorted(kwargs):
        value = kwargs[keyword]
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        found += [(keyword if i is None else f"{keyword}[{i}]", item["name"]) for i, item in items
                  if isinstance(item, Mapping) and set(item) == IMAGE_RECORD_KEYS and isinstance(item["name"], str)]
    return found


#: The key of a summary compared by value within a relative tolerance, never by its last bits: a
#: float tensor's ``{"mean", "rms", "sketch", "rtol"}`` (see :mod:`pytest_diffbench.run.inputs`).
#: It is left out of the config hash; :func:`diff_configs` reports it only when
#: :func:`values_distance` exceeds its ``rtol``.
APPROX_KEY = "~values"
#: A side of a :func:`diff_configs` difference where the field is missing.
ABSENT = "<absent>"


def exact_part(value: Any) -> Any:
    """``value`` (normalised JSON values) without the :data:`APPROX_KEY` entries of its mappings,
    at any depth: the part of a config compared bit for bit."""
    if isinstance(value, Mapping):
        return {key: exact_part(item) for key, item in value.items() if key != APPROX_KEY}
    if isinstance(value, list):
        return [exact_part(item) for item in value]
    return value


def values_distance(old: Any, new: Any) -> float:
    """The relative distance of two :data:`APPROX_KEY` summaries: ``|a - b| / max(|a|, |b|)`` (L2)
    over their ``mean``, ``rms`` and ``sketch`` numbers, which estimates the relative L2 distance
    of the tensors they summarise. 0 when both are zero; inf when either is malformed (a missing
    number, sketches of other lengths)."""
    a, b = _summary_numbers(old), _summary_numbers(new)
    if a is None or b is None or len(a) != len(b):
        return math.inf
    scale = max(math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b)))
    distance = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    return 0.0 if distance == 0 else distance / scale if scale > 0 else math.inf


def _summary_numbers(summary: Any) -> list[float] | None:
    if not isinstance(summary, Mapping) or not isinstance(summary.get("sketch"), list):
        return None
    numbers = [summary.get("mean"), summary.get("rms"), *summary["sketch"]]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in numbers):
        return None
    return [float(x) for x in numbers]


def values_tolerance(summary: Any) -> float:
    """The relative tolerance an :data:`APPROX_KEY` summary carries (``rtol``), else
    :data:`DEFAULT_VALUES_RTOL`."""
    rtol = summary.get("rtol") if isinstance(summary, Mapping) else None
    if isinstance(rtol, (int, float)) and not isinstance(rtol, bool) and math.isfinite(rtol) and rtol >= 0:
        return float(rtol)
    return DEFAULT_VALUES_RTOL


#: The relative tolerance of a summary that names none.
DEFAULT_VALUES_RTOL = 1e-3


def diff_configs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """The leaves whose normalised values differ, key by key, as ``(path, old, new)``: a nested
    field reads ``pipeline_kwargs.strength``, a list item ``loras[1]`` (lists of equal length
    holding lists or mappings are compared item by item; other lists whole). Sorted by key at
    every level.

    A field missing on one side is reported with :data:`ABSENT` there (each key of a mapping
    present on one side only, so an empty mapping and a missing one do not differ, as in the
    hash of :class:`FrozenConfig`'s optional fields). An :data:`APPROX_KEY`
    summary is reported (path ``....~values``, both summaries) only when
    :func:`values_distance` exceeds the new summary's :func:`values_tolerance`.
    """
    changes: list[tuple[str, Any, Any]] = []
    _diff("", normalise(old), normalise(new), changes)
    return changes


def _diff(path: str, old: Any, new: Any, changes: list[tuple[str, Any, Any]]) -> None:
    if isinstance(old, dict) and new == ABSENT or isinstance(new, dict) and old == ABSENT:
        # a mapping on one side only (an optional field, a new record) is shown key by key too
        old, new = ({} if old == ABSENT else old), ({} if new == ABSENT else new)
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            where = f"{path}.{key}" if path else key
            before, after = old.get(key, ABSENT), new.get(key, ABSENT)
            if key == APPROX_KEY and before != ABSENT and after != ABSENT:
                if values_distance(before, after) > values_tolerance(after):
                    changes.append((where, before, after))
            else:
                _diff(where, before, after, changes)
    elif (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
          and any(isinstance(item, (dict, list)) for item in old + new)):
        for i, (before, after) in enumerate(zip(old, new)):
            _diff(f"{path}[{i}]", before, after, changes)
    elif old != new:
        changes.append((path, old, new))
