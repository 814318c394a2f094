"""``@diffbench.sweep``: the cartesian product of settings, validated at collection time.

Nothing here imports torch: sweeps expand while pytest collects, also without ``--diffbench``,
so ``pytest --collect-only`` lists every case cheaply.
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pytest

from pytest_diffbench.spec.config import normalise
from pytest_diffbench.spec.samplers import UnknownSamplerError, resolve_sampler, sampler_slug

SWEEP_MARK = "diffbench_sweep"
TOLERANCE_MARK = "diffbench_tolerance"

DEFAULT_SEED = 0
DEFAULT_SAMPLER = "Euler"
DEFAULT_STEPS = 20
DEFAULT_CFG = 7.5

#: Keywords the pipeline call receives from the core axes; as extra axes they would clash.
RESERVED_AXES: dict[str, str] = {
    "seed": "seeds",
    "sampler": "samplers",
    "scheduler": "samplers",
    "num_inference_steps": "steps",
    "guidance_scale": "cfg",
    "generator": "seeds",
    "prompt": "diffbench.generate(prompt)",
    "negative_prompt": "diffbench.generate(negative_prompt=...)",
}
#: Extra axes that must be positive integers.
SIZE_AXES = ("width", "height")


class SweepError(ValueError):
    """An invalid sweep; raised at collection with the field and what would be valid."""


@dataclass(frozen=True)
class Case:
    """One point of a sweep: the core axes plus any extra axes (pipeline keywords)."""

    seed: int = DEFAULT_SEED
    sampler: str = DEFAULT_SAMPLER
    steps: int = DEFAULT_STEPS
    cfg: float = DEFAULT_CFG
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        """Readable test id, e.g. ``seed0-euler_a-20steps-cfg5.5-width96``."""
        parts = [f"seed{self.seed}", sampler_slug(self.sampler), f"{self.steps}steps", f"cfg{_format_number(self.cfg)}"]
        parts += [f"{name}{_slug_value(value)}" for name, value in self.extra]
        return "-".join(parts)

    @property
    def axes(self) -> dict[str, Any]:
        """Every axis of this case by name, core axes first."""
        return {"seed": self.seed, "sampler": self.sampler, "steps": self.steps, "cfg": self.cfg, **dict(self.extra)}


def sweep(
    *,
    seeds: int | Iterable[int] = DEFAULT_SEED,
    samplers: str | Iterable[str] = DEFAULT_SAMPLER,
    steps: int | Iterable[int] = DEFAULT_STEPS,
    cfg: float | Iterable[float] = DEFAULT_CFG,
    tolerance: Mapping[str, float | None] | None = None,
    workflow_version: str | None = None,
    **axes: Any,
) -> pytest.MarkDecorator:
    """Parametrize a diffbench test over the cartesian product of its axes.

    Scalars are accepted where lists are. Extra keyword axes (``width``, ``height``,
    ``lora_scale`` or any pipeline keyword) sweep the same way and land in the case's config.
    ``tolerance`` sets this test's tolerances (see :func:`tolerance`); ``workflow_version``
    overrides the ini ``diffbench_workflow_version`` for this test. Validation happens at
    collection, so a bad sweep is a collection error that names the field.
    """
    return getattr(pytest.mark, SWEEP_MARK)(
        seeds=seeds,
        samplers=samplers,
        steps=steps,
        cfg=cfg,
        tolerance=dict(tolerance or {}),
        workflow_version=workflow_version,
        axes=axes,
    )


def tolerance(**tolerances: float | None) -> pytest.MarkDecorator:
    """Per-test tolerances: ``min_ssim``, ``min_psnr``, ``max_lpips``, ``max_seconds``,
    ``max_vram_mb``, ``time_regression``. ``None`` switches a check off for this test."""
    return getattr(pytest.mark, TOLERANCE_MARK)(**tolerances)


def expand_sweep(mark_kwargs: Mapping[str, Any], *, max_cases: int) -> list[Case]:
    """Validate a sweep mark's axes and expand them into cases, in a deterministic order.

    The order is the product of seeds, samplers, steps, cfg, then extra axes in the order
    they were written, each in the order its values were given (never a set's order, so
    every xdist worker collects the same cases).
    """
    seeds = [_check_seed(v) for v in _values("seeds", mark_kwargs["seeds"])]
    samplers = [_check_sampler(v) for v in _values("samplers", mark_kwargs["samplers"])]
    steps = [_check_positive_int("steps", v) for v in _values("steps", mark_kwargs["steps"])]
    cfgs = [_check_cfg(v) for v in _values("cfg", mark_kwargs["cfg"])]
    extra_names: list[str] = []
    extra_values: list[list[Any]] = []
    for name, raw in mark_kwargs["axes"].items():
        _check_axis_name(name)
        values = _values(name, raw)
        if name in SIZE_AXES:
            values = [_check_positive_int(name, v) for v in values]
        for value in values:
            _check_serialisable(name, value)
        extra_names.append(name)
        extra_values.append(values)
    axes: list[list[Any]] = [seeds, samplers, steps, cfgs, *extra_values]
    for name, axis_values in zip(["seeds", "samplers", "steps", "cfg", *extra_names], axes):
        _check_unique(name, axis_values)

    count = math.prod(len(axis_values) for axis_values in axes)
    if count > max_cases:
        raise SweepError(
            f"sweep has {count} cases, more than the cap of {max_cases}; "
            "reduce the axes or raise the ini option diffbench_max_cases"
        )
    cases = [
        Case(seed=s, sampler=sa, steps=st, cfg=c, extra=tuple(zip(extra_names, rest)))
        for s, sa, st, c, *rest in itertools.product(seeds, samplers, steps, cfgs, *extra_values)
    ]
    ids = [case.id for case in cases]
    if len(set(ids)) != len(ids):
        clash = next(i for i in ids if ids.count(i) > 1)
        raise SweepError(f"two cases of the sweep get the same id {clash!r}; use axis values that differ in letters or digits")
    return cases


def _values(name: str, raw: Any) -> list[Any]:
    values = list(raw) if isinstance(raw, (list, tuple, range)) else [raw]
    if not values:
        raise SweepError(f"sweep axis {name!r} is empty; give at least one value")
    return values


def _check_unique(name: str, values: list[Any]) -> None:
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise SweepError(f"sweep axis {name!r} lists {value!r} twice; each value may appear once")
        seen.append(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_seed(value: Any) -> int:
    if not _is_integer(value) or not 0 <= int(value) < 2**63:
        raise SweepError(f"sweep axis 'seeds': {value!r} is not a valid seed; seeds are integers from 0 to 2**63 - 1")
    return int(value)


def _check_sampler(value: Any) -> str:
    if not isinstance(value, str):
        raise SweepError(f"sweep axis 'samplers': {value!r} is not a sampler name (a string)")
    try:
        return resolve_sampler(value).name
    except UnknownSamplerError as exc:
        raise SweepError(f"sweep axis 'samplers': {exc}") from None


def _check_positive_int(name: str, value: Any) -> int:
    if not _is_integer(value) or int(value) <= 0:
        raise SweepError(f"sweep axis {name!r}: {value!r} is not valid; {name} must be a positive integer")
    return int(value)


def _check_cfg(value: Any) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise SweepError(f"sweep axis 'cfg': {value!r} is not valid; cfg (guidance scale) must be a finite number >= 0")
    return float(value)


def _check_axis_name(name: str) -> None:
    if name in RESERVED_AXES:
        raise SweepError(f"sweep axis {name!r} is reserved; use {RESERVED_AXES[name]} instead")
    if name.startswith("_"):
        raise SweepError(f"sweep axis {name!r}: axis names may not start with an underscore")


def _check_serialisable(name: str, value: Any) -> None:
    try:
        normalise(value, where=f"sweep axis {name!r}")
    except TypeError as exc:
        raise SweepError(str(exc)) from None


def _format_number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _slug_value(value: Any) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _format_number(float(value))
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_") or "_"
