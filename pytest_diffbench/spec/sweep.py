"""``@diffbench.sweep``: the cartesian product of settings, validated at collection time.

Nothing here imports torch: sweeps expand while pytest collects, also without ``--diffbench``,
so ``pytest --collect-only`` lists every case cheaply.
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
import itertools
import math
import numbers
import re
from collections.abc import Iterator, Set
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import pytest

from pytest_diffbench.spec.config import FLOAT_SIGNIFICANT_DIGITS, canonical_json, normalise, short_repr
from pytest_diffbench.spec.samplers import UnknownSamplerError, resolve_sampler, sampler_slug
from pytest_diffbench.spec.presets import Preset, PresetError, PresetSource
from pytest_diffbench.spec.seeds import SeedPlan

SWEEP_MARK = "diffbench_sweep"
TOLERANCE_MARK = "diffbench_tolerance"

DEFAULT_SEED = 0
DEFAULT_SAMPLER = "Euler"
DEFAULT_STEPS = 20
DEFAULT_CFG = 7.5

#: Keywords diffbench sets in every pipeline call (from the core axes or itself), with what to do
#: instead: as extra axes or generate() keywords they would clash or be ignored.
RESERVED_AXES: dict[str, str] = {
    "seed": "use seeds instead",
    "sampler": "use samplers instead",
    "scheduler": "use samplers instead",
    "num_inference_steps": "use steps instead",
    "guidance_scale": "use cfg instead",
    "generator": "use seeds instead",
    "prompt": "use diffbench.generate(prompt) instead",
    "negative_prompt": "use diffbench.generate(negative_prompt=...) instead",
    "output_type": "diffbench always asks for PIL images (output_type='pil')",
    "num_images_per_prompt": "diffbench compares one image per case; use seeds for more images",
    "return_dict": "diffbench reads the pipeline's output itself; return_dict changes nothing in the image",
    "latents": ("the starting noise comes from the case's seed, and latents would replace it (the seed would then "
                "change nothing); use seeds instead"),
    "prompt_embeds": ("diffbench passes the prompt text, and diffusers takes a prompt or prompt_embeds, not both; "
                      "use diffbench.generate(prompt) instead"),
    "negative_prompt_embeds": ("diffbench passes the negative prompt text, and diffusers takes a negative_prompt or "
                               "negative_prompt_embeds, not both; use diffbench.generate(negative_prompt=...) instead"),
    "pooled_prompt_embeds": ("diffbench passes the prompt text, and diffusers takes a prompt or pooled_prompt_embeds, "
                             "not both; use diffbench.generate(prompt) instead"),
    "negative_pooled_prompt_embeds": ("diffbench passes the negative prompt text, and diffusers takes a "
                                      "negative_prompt or negative_pooled_prompt_embeds, not both; use "
                                      "diffbench.generate(negative_prompt=...) instead"),
    "callback_on_step_end": "a callback changes nothing in the config and runs inside the timed call",
    "callback_on_step_end_tensor_inputs": "a callback changes nothing in the config and runs inside the timed call",
}
#: Pipeline keywords whose values diffbench checks before diffusers sees them (see keyword_problem).
GUIDANCE_RESCALE = "guidance_rescale"
CLIP_SKIP = "clip_skip"
#: Extra axes that must be positive integers.
SIZE_AXES = ("width", "height")
#: Keywords that set the denoising schedule outright: diffusers runs one step per value and ignores
#: ``num_inference_steps``, so they must hold as many values as the case's steps (see run.case).
SCHEDULE_KEYWORDS = ("timesteps", "sigmas")
#: The extra axis routed to the pipeline's attention keywords as ``{"scale": value}`` (see run.case).
LORA_SCALE_AXIS = "lora_scale"


class SweepError(ValueError):
    """An invalid sweep; raised at collection with the field and what would be valid."""


@dataclass(frozen=True)
class Case:
    """One point of a sweep: the core axes plus any extra axes (pipeline keywords).

    ``seed_plan`` and ``seed_index`` say where the seed came from when the sweep's seeds were a
    :class:`~pytest_diffbench.spec.seeds.SeedPlan` (its label and the seed's index there; ``""``
    and None otherwise). They are provenance: not in the id, the config or its hash, so one seed
    has one baseline however it was given."""

    seed: int = DEFAULT_SEED
    sampler: str = DEFAULT_SAMPLER
    steps: int = DEFAULT_STEPS
    cfg: float = DEFAULT_CFG
    extra: tuple[tuple[str, Any], ...] = ()
    seed_plan: str = ""
    seed_index: int | None = None
    #: The preset of the sweep (``sweep(preset=...)``), checked against its lock; None without one.
    preset: Preset | None = None
    #: The workflow version the preset sets (its ``workflow``) when the sweep sets none; "" otherwise.
    workflow_version: str = ""
    #: The axes (``sampler``, ``steps``, ``cfg``, extra axes) whose value the preset sets and the
    #: sweep does not override, so that messages name the preset, not the sweep, as their setter.
    preset_axes: tuple[str, ...] = ()

    def setter(self, axis: str) -> str:
        """Who sets ``axis`` for this case: ``preset 'NAME'`` or ``the sweep``."""
        return f"preset {self.preset.name!r}" if self.preset is not None and axis in self.preset_axes else "the sweep"

    @functools.cached_property
    def id(self) -> str:
        """Readable test id, e.g. ``seed0-euler_a-20steps-cfg5.5-width96`` (made once per case:
        collection, the job list and the sweep's checks all ask for it)."""
        parts = [f"seed{self.seed}", sampler_slug(self.sampler), f"{self.steps}steps", f"cfg{_format_number(self.cfg)}"]
        parts += [f"{name}{_slug_value(value)}" for name, value in self.extra]
        return "-".join(parts)

    @property
    def axes(self) -> dict[str, Any]:
        """Every axis of this case by name, core axes first."""
        return {"seed": self.seed, "sampler": self.sampler, "steps": self.steps, "cfg": self.cfg, **dict(self.extra)}


def sweep(
    *,
    seeds: int | Iterable[int] | SeedPlan | None = None,
    samplers: str | Iterable[str] | None = None,
    steps: int | Iterable[int] | None = None,
    cfg: float | Iterable[float] | None = None,
    tolerance: Mapping[str, float | None] | None = None,
    workflow_version: str | None = None,
    preset: str | None = None,
    **axes: Any,
) -> pytest.MarkDecorator:
    """Parametrize a diffbench test over the cartesian product of its axes.

    An axis is a scalar (one value) or any iterable that is not a string, bytes or mapping: a
    list, tuple, range, generator, numpy array, ... (a mapping is one value, e.g. a dict-valued
    pipeline keyword). A set is taken in sorted order, as it has no order of its own. Iterators
    are read here, once, so a sweep on a class serves each of its tests. ``seeds`` may be a
    :func:`~pytest_diffbench.spec.seeds.seed_plan` (its label and each seed's index are recorded
    per case), a list, a ``range`` or one int; seeds are integers from 0 to 2**63 - 1. A core axis
    left out (None) is the preset's, else its default (seed 0, Euler, 20 steps, cfg 7.5).
    ``preset`` names a preset of the project (see :mod:`pytest_diffbench.spec.presets`): its values
    are the sweep's defaults, which the sweep's own keywords override or extend. Extra keyword axes
    (``width``, ``height``, ``lora_scale`` or any pipeline keyword) sweep the same way and land in
    the case's config. ``tolerance`` sets this test's tolerances (a mapping, see
    :func:`tolerance`); ``workflow_version`` overrides the ini ``diffbench_workflow_version`` for
    this test. Validation happens at collection (see :func:`expand_sweep`), so a bad sweep is a
    collection error that names the field.
    """
    kwargs: dict[str, Any] = {"tolerance": {}}
    if preset is not None:
        kwargs["preset"] = preset
    if isinstance(tolerance, Mapping):
        kwargs["tolerance"] = dict(tolerance)
    elif tolerance is not None:  # refused by expand_sweep, as one line at collection
        kwargs[_BAD_TOLERANCE] = tolerance
    return getattr(pytest.mark, SWEEP_MARK)(
        seeds=_read_once(seeds),
        samplers=_read_once(samplers),
        steps=_read_once(steps),
        cfg=_read_once(cfg),
        workflow_version=workflow_version,
        axes={name: _read_once(raw) for name, raw in axes.items()},
        **kwargs,
    )


#: The mark keyword that carries a ``sweep(tolerance=...)`` that is not a mapping.
_BAD_TOLERANCE = "invalid_tolerance"


#: The most values one axis may have; more (an endless iterator, a huge range) is refused
#: without reading them all.
MAX_AXIS_VALUES = 100_000


def _read_once(raw: Any) -> Any:
    """An iterator (a generator, ``map``, ...) as a tuple of its values (at most one more than
    :data:`MAX_AXIS_VALUES`, so an endless one ends); anything else as it is."""
    return tuple(itertools.islice(raw, MAX_AXIS_VALUES + 1)) if isinstance(raw, Iterator) else raw


def tolerance(**tolerances: float | None) -> pytest.MarkDecorator:
    """Per-test tolerances: ``min_ssim``, ``min_psnr``, ``max_lpips``, ``max_seconds``,
    ``max_vram_mb``, ``time_regression``. ``None`` switches a check off for this test."""
    return getattr(pytest.mark, TOLERANCE_MARK)(**tolerances)


def expand_sweep(mark_kwargs: Mapping[str, Any], *, max_cases: int, presets: PresetSource | None = None) -> list[Case]:
    """Validate a sweep mark's axes and expand them into cases, in a deterministic order.

    The order is the product of seeds, samplers, steps, cfg, then extra axes in the order
    they were written, each in the order its values were given (a set's in sorted order, so
    every xdist worker collects the same cases).

    Raises SweepError naming each bad axis (all of them, joined by "; ") and its bad value: a value of the wrong type or range,
    a non-finite number anywhere in an extra axis, a value that cannot go into a frozen config,
    an empty axis, an unordered set that cannot be sorted, two values that are one (equal after
    the config hash's rounding to 12 significant digits, or two sampler names for one
    scheduler), a reserved axis name, ``tolerance=`` that is not a mapping, or more cases than
    ``max_cases``. What needs the pipeline (sizes against its ``vae_scale_factor``, extra axes
    against its call's keywords) is checked when the case starts (see run.case).

    ``sweep(preset=NAME)`` takes the preset from ``presets``: its values are checked as a sweep of
    their own (a SweepError naming the preset) and are the defaults of this one. Raises SweepError
    for an unknown preset (naming the presets there are), one edited without a version bump or not
    locked (see :func:`~pytest_diffbench.spec.presets.lock_problem`), or without ``presets``.
    """
    own = mark_kwargs
    preset, mark_kwargs = _with_preset(mark_kwargs, presets, max_cases)
    cases = _expand(mark_kwargs, max_cases)
    if preset is None:
        return cases
    workflow = "" if mark_kwargs.get("workflow_version") is not None else preset.text("workflow")
    defaults = preset.sweep_defaults()
    core = {"samplers": "sampler", "steps": "steps", "cfg": "cfg"}
    from_preset = tuple([core[key] for key in core if key in defaults and own.get(key) is None]
                        + [name for name in defaults.get("axes", {}) if name not in (own.get("axes") or {})])
    return [dataclasses.replace(case, preset=preset, workflow_version=workflow, preset_axes=from_preset)
            for case in cases]


def _with_preset(mark_kwargs: Mapping[str, Any], presets: PresetSource | None,
                 max_cases: int) -> tuple[Preset | None, Mapping[str, Any]]:
    """The sweep's preset (None without one) and its mark keywords over the preset's defaults."""
    name = mark_kwargs.get("preset")
    if name is None:
        return None, mark_kwargs
    if not isinstance(name, str) or not name.strip():
        raise SweepError(f"sweep(preset={name!r}) is not valid; give the name of a preset, e.g. preset=\"portrait\"")
    if presets is None:
        raise SweepError(f"sweep(preset={name!r}): this session reads no presets")
    try:
        preset = presets.get(name)
    except PresetError as exc:
        raise SweepError(str(exc)) from None
    defaults = preset.sweep_defaults()
    try:
        _expand(defaults, max_cases)
    except SweepError as exc:
        raise SweepError(f"preset {name!r} ({preset.source}): {exc}") from None
    merged = {**defaults, **{key: value for key, value in mark_kwargs.items() if value is not None}}
    merged["axes"] = {**defaults.get("axes", {}), **(mark_kwargs.get("axes") or {})}
    return preset, merged


def _expand(mark_kwargs: Mapping[str, Any], max_cases: int) -> list[Case]:
    """:func:`expand_sweep` of the mark keywords without a preset."""
    problems: list[str] = []

    def checked(check: Callable[[], list[Any]]) -> list[Any]:
        """``check()``'s values, or none with its problem noted: every bad axis is reported at once."""
        try:
            return check()
        except SweepError as exc:
            problems.append(str(exc))
            return []

    if _BAD_TOLERANCE in mark_kwargs:
        bad = mark_kwargs[_BAD_TOLERANCE]
        problems.append(f"sweep(tolerance=...) got {type(bad).__name__} {bad!r}; give a mapping of tolerance "
                        'names to numbers, e.g. tolerance={"min_ssim": 0.97}')
    version = mark_kwargs.get("workflow_version")
    if version is not None and (not isinstance(version, str) or not version.strip()):
        problems.append(f"sweep(workflow_version={version!r}) is not valid; give the version of your workflow as a "
                        "non-empty string, e.g. \"2\", or leave it out to use the ini's diffbench_workflow_version")
    raw_seeds = _given(mark_kwargs, "seeds", DEFAULT_SEED)
    seeds = checked(lambda: [_check_seed(v) for v in _values("seeds", raw_seeds)])
    origins = ([raw_seeds.origin(i) for i in range(len(raw_seeds))] if isinstance(raw_seeds, SeedPlan)
               else [("", None)] * len(seeds))
    samplers = checked(lambda: [_check_sampler(v) for v in _values("samplers", _given(mark_kwargs, "samplers", DEFAULT_SAMPLER))])
    steps = checked(lambda: [_check_positive_int("steps", v) for v in _values("steps", _given(mark_kwargs, "steps", DEFAULT_STEPS))])
    cfgs = checked(lambda: [_check_cfg(v) for v in _values("cfg", _given(mark_kwargs, "cfg", DEFAULT_CFG))])
    extra = [(name, checked(functools.partial(_extra_axis, name, raw))) for name, raw in (mark_kwargs.get("axes") or {}).items()]
    if problems:
        raise SweepError("; ".join(problems))
    extra_names = [name for name, _ in extra]
    extra_values = [values for _, values in extra]
    _check_unique_samplers(samplers)
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
        Case(seed=seeds[i], sampler=sa, steps=st, cfg=c, extra=tuple(zip(extra_names, rest)),
             seed_plan=origins[i][0], seed_index=origins[i][1])
        for i, sa, st, c, *rest in itertools.product(range(len(seeds)), samplers, steps, cfgs, *extra_values)
    ]
    seen_ids: set[str] = set()
    for case_id in (case.id for case in cases):  # one pass: a clash is found as it happens, never by counting
        if case_id in seen_ids:
            raise SweepError(f"two cases of the sweep get the same id {case_id!r}; use axis values that differ in "
                             "letters or digits")
        seen_ids.add(case_id)
    return cases


def _given(mark_kwargs: Mapping[str, Any], name: str, default: Any) -> Any:
    """The mark's value of the core axis ``name``; ``default`` when it is absent or None (left out)."""
    value = mark_kwargs.get(name)
    return default if value is None else value


def _extra_axis(name: str, raw: Any) -> list[Any]:
    """The values of the extra axis ``name``, each checked (SweepError naming the axis)."""
    _check_axis_name(name)
    values = _values(name, raw)
    if name in SIZE_AXES:
        values = [_check_positive_int(name, v) for v in values]
    for value in values:
        _check_serialisable(name, value)
        problem = keyword_problem(name, value)
        if problem:
            raise SweepError(f"sweep axis {name!r}: {problem}")
    return values


def _values(name: str, raw: Any) -> list[Any]:
    """The values of one axis: a scalar is one value, a string, bytes or mapping too; any other
    iterable (list, tuple, range, numpy array, ...) gives its items, a set its items sorted.
    numpy scalars become Python numbers."""
    if isinstance(raw, (str, bytes, Mapping)) or getattr(raw, "ndim", None) == 0:  # a 0-d array is a scalar
        values = [raw]
    elif isinstance(raw, Set):
        try:
            values = sorted(raw)
        except TypeError:
            raise SweepError(f"sweep axis {name!r} is a set of values that cannot be sorted ({raw!r}); a set has "
                             "no order, so give a list in the order the cases should run") from None
    else:
        try:
            values = list(itertools.islice(raw, MAX_AXIS_VALUES + 1))
        except TypeError:  # not iterable: one value
            values = [raw]
    if not values:
        raise SweepError(f"sweep axis {name!r} is empty; give at least one value")
    if len(values) > MAX_AXIS_VALUES:
        raise SweepError(f"sweep axis {name!r} has more than {MAX_AXIS_VALUES} values (an endless iterator?); "
                         "give a finite list")
    return [_plain(value) for value in values]


def _plain(value: Any) -> Any:
    """A numpy scalar or 0-d array as the Python number it holds (so messages and configs show
    ``-1``, not ``np.int64(-1)``); anything else as it is."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "ndim", None) == 0 else value


def _check_unique(name: str, values: list[Any]) -> None:
    """Refuse two values that make one case: equal once normalised as the config hash does it
    (floats to 12 significant digits, ``1`` and ``1.0`` alike). Linear in the number of values:
    an integer (every seed) is its own key, anything else its canonical JSON."""
    seen: dict[int | str, Any] = {}
    for value in values:
        equal = _equality_key(value)
        key = equal if type(equal) is int else canonical_json({"value": equal})
        if key in seen:
            first = seen[key]
            if repr(first) == repr(value):
                raise SweepError(f"sweep axis {name!r} lists {value!r} twice; each value may appear once")
            raise SweepError(
                f"sweep axis {name!r} lists {first!r} and {value!r}, which are one value in a config (numbers "
                f"are compared at {FLOAT_SIGNIFICANT_DIGITS} significant digits); each value may appear once")
        seen[key] = value


def _equality_key(value: Any) -> Any:
    """``value`` as the config hash sees it, with integral numbers as integers (``5 == 5.0``)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        rounded = normalise(float(value))
        return int(rounded) if isinstance(rounded, float) and rounded.is_integer() else rounded
    if isinstance(value, Mapping):
        return {str(key): _equality_key(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_equality_key(item) for item in value]
    return normalise(value)


def _check_unique_samplers(samplers: list[str]) -> None:
    """Refuse two sampler names of one scheduler (``Euler`` and ``EulerDiscreteScheduler``):
    they would make the same images under two configs."""
    seen: dict[tuple[str, tuple[tuple[str, object], ...]], str] = {}
    for name in samplers:
        spec = resolve_sampler(name)
        first = seen.setdefault((spec.class_name, spec.kwargs), name)
        if first != name:
            raise SweepError(f"sweep axis 'samplers' lists {first!r} and {name!r}, which are one scheduler "
                             f"({spec.class_name}{_kwargs_text(spec.kwargs)}); list it once")


def _kwargs_text(kwargs: tuple[tuple[str, object], ...]) -> str:
    return "(" + ", ".join(f"{key}={value!r}" for key, value in kwargs) + ")" if kwargs else ""


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
    if isinstance(value, decimal.Decimal):  # a number, though not a numbers.Real
        value = float(value)
    if not _is_finite_nonnegative(value):
        raise SweepError(f"sweep axis 'cfg': {value!r} is not valid; cfg (guidance scale) must be a finite number >= 0")
    return float(value)


def _check_axis_name(name: str) -> None:
    if name in RESERVED_AXES:
        raise SweepError(f"sweep axis {name!r} is reserved; {RESERVED_AXES[name]}")
    if name.startswith("_"):
        raise SweepError(f"sweep axis {name!r}: axis names may not start with an underscore")


def _check_serialisable(name: str, value: Any) -> None:
    """A value a frozen config can hold, with finite numbers only (NaN or inf would be stored as
    a string, and a pipeline given one makes NaN images)."""
    try:
        normalise(value, where=f"sweep axis {name!r}", finite=True)
    except (TypeError, ValueError) as exc:
        raise SweepError(str(exc)) from None


def keyword_problem(name: str, value: Any) -> str:
    """Why ``value`` cannot be the pipeline keyword ``name`` (one a diffusers pipeline would fail
    on deep inside), on one line; "" when it can or diffbench does not check it.
    ``guidance_rescale`` must be a finite number >= 0 (not None); ``clip_skip`` an integer >= 0
    (its upper bound, the text encoder's layer count, is checked when the case starts)."""
    if name == GUIDANCE_RESCALE and not _is_finite_nonnegative(value):
        return f"{name}={short_repr(value)} is not valid; {name} must be a finite number >= 0 (0 switches it off)"
    if name == CLIP_SKIP and not (_is_integer(value) and int(value) >= 0):
        return (f"{name}={short_repr(value)} is not valid; {name} must be an integer >= 0 (the layers of the text "
                "encoder to skip)")
    return ""


def _is_real(value: Any) -> bool:
    """A real number: int, float, Fraction, numpy number, ... (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_finite_nonnegative(value: Any) -> bool:
    """A real number (see :func:`_is_real`), finite and >= 0: a guidance scale or rescale."""
    return _is_real(value) and math.isfinite(value) and value >= 0


def _format_number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _slug_value(value: Any) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _format_number(float(value))
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_") or "_"
