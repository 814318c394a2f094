"""Tolerances of the quality, speed and memory gates, and where each applied value came from.

The names are derived: one per registered metric (``min_ssim``, ``min_psnr``, ``max_lpips``, ...,
see :mod:`pytest_diffbench.judge.metrics`) plus the budgets below. Precedence: the test's own
(``@diffbench.tolerance`` or ``sweep(tolerance=...)``) over the ini file's ``diffbench_<name>``
over the built-in defaults. ``None`` switches a check off.

With ``diffbench_tolerance_from = noise-floor`` a measured noise floor's suggested tolerances
(:func:`apply_floor`, see :mod:`pytest_diffbench.judge.noise_floor`) take the place of the ini
file's; the test's own still win. :class:`AppliedTolerances` says which applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterator, Mapping

from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry, tolerance_name

#: Switch values an ini file may use to turn a check off.
OFF_WORDS = ("off", "none", "")


@dataclass(frozen=True)
class Budget:
    """A tolerance on the measurement rather than on the image."""

    name: str
    help: str
    valid: str
    accepts: Callable[[float], bool]


#: Speed and memory budgets, off by default.
BUDGETS: tuple[Budget, ...] = (
    Budget("max_seconds", "absolute budget on seconds per image", "a number of seconds > 0", lambda v: v > 0),
    Budget("max_vram_mb", "absolute budget on peak VRAM in MiB (CUDA only)", "a number of MiB > 0", lambda v: v > 0),
    Budget("time_regression", "allowed slowdown against the baseline's own seconds per image (0.15 = 15% slower)",
           "a fraction >= 0 (0.15 allows 15% slower)", lambda v: v >= 0),
)


def tolerance_names(metrics: MetricRegistry = REGISTRY) -> tuple[str, ...]:
    """Every tolerance name: the metrics' in registry order, then the budgets'."""
    return tuple(tolerance_name(m) for m in metrics) + tuple(b.name for b in BUDGETS)


def default_tolerances(metrics: MetricRegistry = REGISTRY) -> dict[str, float | None]:
    return {**{tolerance_name(m): m.default_tolerance for m in metrics}, **{b.name: None for b in BUDGETS}}


def _ranges(metrics: MetricRegistry) -> dict[str, tuple[Callable[[float], bool], str]]:
    ranges: dict[str, tuple[Callable[[float], bool], str]] = {
        tolerance_name(m): (m.accepts, m.valid_tolerance) for m in metrics}
    ranges.update({b.name: (b.accepts, b.valid) for b in BUDGETS})
    return ranges


def tolerance_help(metrics: MetricRegistry = REGISTRY) -> dict[str, str]:
    """What each tolerance checks and its valid values in its unit (dB, MiB, seconds), by name:
    the help of its ini key ``diffbench_<name>``."""
    described = {tolerance_name(m): f"{m.label} {m.direction.value} the tolerance" for m in metrics}
    described.update({b.name: b.help for b in BUDGETS})
    return {name: f"{described[name]}: {valid}, or 'off'" for name, (_, valid) in _ranges(metrics).items()}


@dataclass(frozen=True)
class Tolerances(Mapping[str, "float | None"]):
    """The applied tolerances of one case, by name (see :func:`tolerance_names`); ``None`` is off.

    ``Tolerances()`` holds the built-in defaults of the registered metrics and budgets.
    """

    limits: Mapping[str, float | None] = field(default_factory=default_tolerances)

    def __getitem__(self, name: str) -> float | None:
        return self.limits[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.limits)

    def __len__(self) -> int:
        return len(self.limits)

    def merged(self, overrides: Mapping[str, Any], *, source: str, text: bool = False) -> "Tolerances":
        """A copy with ``overrides`` applied, each validated; ``source`` names them in errors;
        ``text``: the values are an ini file's strings (see :func:`check_tolerance`).

        Raises ValueError naming ``source``, the tolerance and what would be valid.
        """
        checked = {key: check_tolerance(key, value, source=source, text=text) for key, value in overrides.items()}
        return Tolerances({**self.limits, **checked})

    def as_dict(self) -> dict[str, float | None]:
        return dict(self.limits)


def check_tolerance(name: str, value: Any, *, source: str, text: bool = False,
                    metrics: MetricRegistry = REGISTRY) -> float | None:
    """Validate one tolerance. ``None`` and the off-words (:data:`OFF_WORDS`) give ``None``. With
    ``text`` (an ini file's values) other strings are parsed as numbers; otherwise (a test's own
    tolerances) it must be a number (int, float, ``Decimal``, numpy number), as sweep axes must.

    Raises ValueError naming ``source`` for an unknown name, a value that is not a number (a
    string in a test's tolerances), a value out of range, or one that is not finite (``inf``
    would switch a budget off in disguise, NaN would fail every case: ``None``/``off`` is the
    one way to switch a check off).
    """
    ranges = _ranges(metrics)
    if name not in ranges:
        raise ValueError(f"{source}: unknown tolerance {name!r}; valid names are {', '.join(tolerance_names(metrics))}")
    if value is None or (isinstance(value, str) and value.strip().lower() in OFF_WORDS):
        return None
    accepts, valid = ranges[name]
    if isinstance(value, (str, bytes)) and not text:
        raise ValueError(f"{source}: tolerance {name}={value!r} is text, not a number; it must be a number (0.9, "
                         "not '0.9'), or None/off to switch it off")
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or not accepts(number):
        raise ValueError(f"{source}: tolerance {name}={value!r} is not valid; it must be {valid} (finite), "
                         "or None/off to switch it off")
    return number


#: The source of tolerances that come from the ini file and the built-in defaults.
INI_SOURCE = "ini"


@dataclass(frozen=True)
class AppliedTolerances:
    """A case's tolerances and where they came from, on one line (results.csv's
    ``tolerance_source`` and every failure message): ``ini``, ``noise floor of the case (...)``,
    ``noise floor of the test (...)`` or ``ini: no noise floor ...``, followed by the tolerances
    the test sets itself (which always win)."""

    tolerances: Tolerances
    source: str = INI_SOURCE


def apply_floor(tolerances: Tolerances, suggested: Mapping[str, float], explicit: Collection[str],
                source: str) -> AppliedTolerances:
    """``tolerances`` (ini and the test's own, merged) with each ``suggested`` tolerance of a noise
    floor in place of the ini's, except those the test sets itself (``explicit``: names from
    ``sweep(tolerance=...)`` and ``@diffbench.tolerance``). ``source`` names the floor; the
    result's source adds the test's own tolerances, sorted. A floor only sets the value of a gate
    that is on: one the ini (or the built-in default, or the test) leaves off stays off, so a
    calibration never turns on a check (the speed gate, derived from one run's timing spread, would
    fail unchanged reruns on a busy machine)."""
    applied = {name: value for name, value in suggested.items()
               if name not in explicit and tolerances.limits.get(name) is not None}
    return AppliedTolerances(Tolerances({**tolerances.limits, **applied}), with_explicit(source, explicit))


def with_explicit(source: str, explicit: Collection[str]) -> str:
    """``source`` followed by the tolerances the test sets itself, when it sets any."""
    return f"{source}; the test's own: {', '.join(sorted(explicit))}" if explicit else source
