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

    def __post_init__(self) -> None:
        # cfg 5 and 5.0 are one guidance scale: store it as a float so both hash alike.
        if isinstance(self.cfg, (int, float)) and not isinstance(self.cfg, bool):
            object.__setattr__(self, "cfg", float(self.cfg))

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-ready values (tuples become lists, floats normalised). An
        :data:`OPTIONAL_KEYS` field that is empty is left out, so configs made before it existed
        (and pipelines it says nothing about) keep their hash."""
        return normalise({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                          if f.name not in OPTIONAL_KEYS or getattr(self, f.name)})

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
OPTIONAL_KEYS: tuple[str, ...] = ("scheduler", "pipeline_config", "adapters", "refiner", "video")
#: Fields every config has.
REQUIRED_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FrozenConfig) if f.name not in OPTIONAL_KEYS)
#: Every field, in order: the config's columns of results.csv.
CONFIG_KEYS: tuple[str, ...] = REQUIRED_KEYS + OPTIONAL_KEYS


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
        f"{where}: {type(value).__name__} value {value!r} cannot go into a frozen config; "
        "use str, int, float, bool, None, or lists and dicts of them"
    )


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
    return hashlib.sha256(canonical_json(data).encode("ascii")).hexdigest()


def diff_configs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Fields whose normalised values differ, as ``(field, old, new)`` sorted by field name.

    A field missing on one side is reported with ``"<absent>"`` there.
    """
    absent = "<absent>"
    old_n, new_n = normalise(old), normalise(new)
    return [
        (key, old_n.get(key, absent), new_n.get(key, absent))
        for key in sorted(set(old_n) | set(new_n))
        if old_n.get(key, absent) != new_n.get(key, absent)
    ]
