"""The noise floor of a case: how far repeats of the same case fall from each other, and the
tolerances that follow from it.

``pytest --diffbench --diffbench-calibrate=N`` runs each case N times plus once per
perturbation that should not matter (a cold pipeline, another CPU thread count, see
:mod:`pytest_diffbench.plugin.calibrate`). :func:`measure_case` scores every pair of those
images with each registered metric and keeps the worst: the lowest SSIM and PSNR, the highest
LPIPS. Seconds per image of the N plain repeats give the coefficient of variation (standard
deviation over mean, population form); the perturbed repeats' timings are kept as notes only
(a cold call and another thread count are slower or faster on purpose).

Suggested tolerances (:func:`suggest`) allow twice the measured distance from identical, since
a gate compares two noisy draws (the baseline and the new image), with a least slack:

* ``min_ssim = 1 - max(2 * (1 - floor), 0.005)``
* ``min_psnr = min(floor, 48.13) - 3.01`` dB: twice the mean squared error is 3.01 dB less,
  and identical repeats count as one grey level off on every pixel (48.13 dB)
* ``max_lpips = max(2 * floor, 0.01)``
* ``time_regression = max(0.05, 3 * sqrt(2) * cv)`` rounded up to 0.01: the slowdown is a ratio
  of two timings, each with the measured ``cv``, so its spread is ``sqrt(2) * cv``; three of
  those, at least 5%.

A metric without a rule here (a plugin's), or whose suggestion would be out of its range, gets
no suggestion: its ini tolerance applies.
Pure: no files, no torch beyond the metrics the registry loads.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from pytest_diffbench.judge.metrics import REGISTRY, Direction, MetricRegistry, score_images, tolerance_name

if TYPE_CHECKING:
    from PIL import Image

#: The label of an unperturbed repeat (its timing counts towards the coefficient of variation).
PLAIN = "repeat"
#: PSNR of two 8-bit images one grey level apart on every pixel: 20 * log10(255) dB.
ONE_LEVEL_PSNR = 20 * math.log10(255)
#: Doubling the mean squared error lowers PSNR by this many dB: 10 * log10(2).
DOUBLED_MSE_DB = 10 * math.log10(2)
#: The least time_regression suggested, and the multiple of the slowdown's spread it allows.
MIN_TIME_REGRESSION = 0.05
TIME_SIGMAS = 3.0

#: Per metric name: the suggested tolerance from its floor (see the module docstring).
MARGINS: dict[str, Callable[[float], float]] = {
    "ssim": lambda floor: 1.0 - max(2.0 * (1.0 - floor), 0.005),
    "psnr": lambda floor: min(floor, ONE_LEVEL_PSNR) - DOUBLED_MSE_DB,
    "lpips": lambda floor: max(2.0 * floor, 0.01),
}


@dataclass(frozen=True)
class Repeat:
    """One run of a case: ``label`` is :data:`PLAIN` or the perturbation's name (``cold``,
    ``threads``), ``seconds`` its seconds per image."""

    label: str
    image: "Image.Image"
    seconds: float


@dataclass(frozen=True)
class Floor:
    """The noise floor of a case or a test.

    ``figures``: tolerance name (``min_ssim``, ``min_psnr``, ``max_lpips``) -> the worst value
    between any two repeats (``inf`` PSNR: every pair identical), None where the metric did not
    run; ``seconds_cv``: coefficient of variation of the plain repeats' seconds per image (None
    with fewer than two, or a mean of 0); ``seconds_mean``: their mean in seconds; ``repeats``:
    the images compared; ``perturbations``: name -> what was done, or why not (one line);
    ``cases``: how many cases a test's floor combines (1 for a case).
    """

    figures: Mapping[str, float | None]
    seconds_cv: float | None
    seconds_mean: float | None
    repeats: int
    perturbations: Mapping[str, str] = field(default_factory=dict)
    cases: int = 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, ``inf`` as the string ``"inf"`` (JSON has no infinity)."""
        return {**{name: _to_json(value) for name, value in self.figures.items()},
                "seconds_cv": self.seconds_cv, "seconds_mean": self.seconds_mean, "repeats": self.repeats,
                "cases": self.cases, "perturbations": dict(self.perturbations)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], metrics: MetricRegistry = REGISTRY) -> "Floor":
        """The floor :meth:`as_dict` wrote. Raises ValueError naming the field that is missing or
        not a number."""
        figures = {tolerance_name(m): _number(data, tolerance_name(m), optional=True) for m in metrics
                   if tolerance_name(m) in data}
        perturbations = data.get("perturbations", {})
        if not isinstance(perturbations, Mapping) or not all(isinstance(v, str) for v in perturbations.values()):
            raise ValueError("'perturbations' is not a mapping of names to text")
        return cls(figures, _number(data, "seconds_cv", optional=True), _number(data, "seconds_mean", optional=True),
                   int(_number(data, "repeats") or 0), dict(perturbations), int(_number(data, "cases") or 1))


def _to_json(value: float | None) -> float | str | None:
    return "inf" if value is not None and math.isinf(value) else value


def _number(data: Mapping[str, Any], name: str, *, optional: bool = False) -> float | None:
    if name not in data and not optional:
        raise ValueError(f"field {name!r} is missing")
    value = data.get(name)
    if value is None and optional:
        return None
    if value == "inf":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"field {name!r} holds {value!r}, not a number")
    return float(value)


def coefficient_of_variation(values: Iterable[float]) -> float | None:
    """Population standard deviation over mean; None for fewer than two values or a mean of 0."""
    numbers = list(values)
    if len(numbers) < 2:
        return None
    mean = math.fsum(numbers) / len(numbers)
    if mean == 0:
        return None
    return math.sqrt(math.fsum((value - mean) ** 2 for value in numbers) / len(numbers)) / mean


def measure_case(repeats: list[Repeat], *, prompt: str, device: str, modes: Mapping[str, str], frames: int = 1,
                 perturbations: Mapping[str, str] | None = None, metrics: MetricRegistry = REGISTRY) -> Floor:
    """The floor of one case from its ``repeats`` (at least two): every pair scored with every
    registered metric (``modes`` as :func:`~pytest_diffbench.judge.metrics.score_images` takes
    them; a metric that could not run has None), the worst value of each kept.

    Raises ValueError with fewer than two repeats, ImageSizeMismatch when two repeats differ in
    size, MetricUnavailable for a ``required`` metric that cannot run.
    """
    if len(repeats) < 2:
        raise ValueError(f"a noise floor needs at least two repeats, got {len(repeats)}")
    worst: dict[str, float | None] = {tolerance_name(m): None for m in metrics}
    for first, second in itertools.combinations(repeats, 2):
        scores = score_images(first.image, second.image, prompt=prompt, device=device, modes=modes,
                              metrics=metrics, frames=frames)
        for metric in metrics:
            score = scores.get(metric.name)
            if score is None or score.value is None:
                continue
            name = tolerance_name(metric)
            pick = min if metric.direction is Direction.HIGHER_IS_BETTER else max
            earlier = worst.get(name)
            worst[name] = score.value if earlier is None else pick(earlier, score.value)
    plain = [repeat.seconds for repeat in repeats if repeat.label == PLAIN]
    mean = math.fsum(plain) / len(plain) if plain else None
    return Floor(worst, coefficient_of_variation(plain), mean, len(repeats), dict(perturbations or {}))


def combine(floors: Iterable[Floor]) -> Floor:
    """A test's floor from its cases': the worst of each figure, the largest coefficient of
    variation, the fewest repeats, the mean of the means. Raises ValueError without floors."""
    cases = list(floors)
    if not cases:
        raise ValueError("a test's noise floor needs at least one case's")
    names = sorted({name for floor in cases for name in floor.figures})
    figures: dict[str, float | None] = {}
    for name in names:
        values = [v for floor in cases if (v := floor.figures.get(name)) is not None]
        figures[name] = (min(values) if name.startswith("min_") else max(values)) if values else None
    spreads = [floor.seconds_cv for floor in cases if floor.seconds_cv is not None]
    means = [floor.seconds_mean for floor in cases if floor.seconds_mean is not None]
    return Floor(figures, max(spreads) if spreads else None, math.fsum(means) / len(means) if means else None,
                 min(floor.repeats for floor in cases), {}, sum(floor.cases for floor in cases))


def suggest(floor: Floor, metrics: MetricRegistry = REGISTRY) -> dict[str, float]:
    """The suggested tolerances of ``floor`` by tolerance name (see the module docstring): one per
    metric with a rule and a figure, and ``time_regression`` when the timing spread is known."""
    suggested: dict[str, float] = {}
    for metric in metrics:
        value = floor.figures.get(tolerance_name(metric))
        rule = MARGINS.get(metric.name)
        if value is None or rule is None or math.isnan(value):
            continue
        limit = round(rule(value), 4)
        if metric.accepts(limit):  # a floor so low that no tolerance below it is valid gets none
            suggested[tolerance_name(metric)] = limit
    if floor.seconds_cv is not None:
        spread = TIME_SIGMAS * math.sqrt(2) * floor.seconds_cv
        suggested["time_regression"] = max(MIN_TIME_REGRESSION, math.ceil(spread * 100 - 1e-9) / 100)
    return suggested
