"""The metric registry: every image metric diffbench scores, in column order.

Adding a metric is one module (a class following :class:`~.base.Metric`) plus one line in
:data:`REGISTRY`, or ``REGISTRY.register(metric)`` from a plugin. Its tolerance
(``min_``/``max_<name>``, ini ``diffbench_<tolerance>``), its gate, its results.csv columns, its
report and grid labels, its plot panel and its JUnit property follow from the declaration.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Mapping

from pytest_diffbench.judge.metrics.base import (
    Direction,
    Metric,
    MetricInputs,
    MetricKind,
    MetricUnavailable,
    status_column,
    tolerance_name,
)
from pytest_diffbench.judge.metrics.images import ImageSizeMismatch, check_pair, to_rgb_array
from pytest_diffbench.judge.metrics.lpips import LPIPS
from pytest_diffbench.judge.metrics.psnr import PSNR
from pytest_diffbench.judge.metrics.ssim import SSIM

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Direction", "Metric", "MetricInputs", "MetricKind", "MetricRegistry", "MetricUnavailable", "REGISTRY",
           "Score", "score_images", "status_column", "tolerance_name", "unavailable_advice"]

#: How a metric's status starts when it could not run (then the short reason).
UNAVAILABLE = "unavailable: "

#: What ``diffbench_<metric>`` style switches may say: use it when it can run, require it, skip it.
METRIC_MODES = ("auto", "required", "off")


class MetricRegistry:
    """An ordered set of metrics, keyed by name."""

    def __init__(self, metrics: tuple[Metric, ...]) -> None:
        self._metrics: dict[str, Metric] = {}
        for metric in metrics:
            self.register(metric)

    def __iter__(self) -> Iterator[Metric]:
        return iter(list(self._metrics.values()))

    def __len__(self) -> int:
        return len(self._metrics)

    def get(self, name: str) -> Metric | None:
        return self._metrics.get(name)

    def register(self, metric: Metric) -> None:
        """Add ``metric``; ValueError when one of that name (or tolerance) is registered."""
        if not isinstance(metric, Metric):
            raise TypeError(f"{metric!r} does not follow the Metric protocol (see pytest_diffbench.judge.metrics.base)")
        taken = {tolerance_name(m) for m in self._metrics.values()} | set(self._metrics)
        if metric.name in taken or tolerance_name(metric) in taken:
            raise ValueError(f"a metric named {metric.name!r} is already registered")
        self._metrics[metric.name] = metric

    def unregister(self, name: str) -> None:
        self._metrics.pop(name, None)

    @contextlib.contextmanager
    def registered(self, metric: Metric) -> Iterator[Metric]:
        """``metric`` registered for the ``with`` block (tests, temporary plugins)."""
        self.register(metric)
        try:
            yield metric
        finally:
            self.unregister(metric.name)


#: The metrics every run scores, in results.csv's column order.
REGISTRY = MetricRegistry((SSIM(), PSNR(), LPIPS()))


@dataclass(frozen=True)
class Score:
    """One metric's result: ``value`` is None unless ``status`` is ``ok``; otherwise ``status`` is
    ``off`` or ``unavailable: <reason>``."""

    value: float | None
    status: str = "ok"


def score_images(output: "Image.Image", baseline: "Image.Image | None", *, prompt: str, device: str,
                 modes: Mapping[str, str], tolerances: Mapping[str, float | None] | None = None,
                 metrics: MetricRegistry = REGISTRY) -> dict[str, Score]:
    """Score ``output`` with every registered metric that applies.

    Full-reference metrics run only when ``baseline`` is given; both images are compared at their
    own size (:class:`ImageSizeMismatch` when they differ). ``modes`` maps a metric name to
    ``auto`` (the default: record why a metric could not run), ``required`` (raise
    :class:`MetricUnavailable`, its ``metric`` naming the metric, instead) or ``off`` (skip it). In ``auto`` a metric whose
    tolerance in ``tolerances`` is None (its gate is off) is skipped too, as ``off``: it is
    neither loaded nor warned about.
    """
    out = to_rgb_array(output)
    base = to_rgb_array(baseline) if baseline is not None else None
    if base is not None:
        check_pair(out, base)  # the message names the sizes in this order: output, then baseline
    scores: dict[str, Score] = {}
    for metric in metrics:
        if metric.kind is MetricKind.FULL_REFERENCE and base is None:
            continue
        mode = modes.get(metric.name, "auto")
        if mode not in METRIC_MODES:
            raise ValueError(f"{metric.name} mode {mode!r} is not valid; valid modes are {', '.join(METRIC_MODES)}")
        gate_off = tolerances is not None and tolerances.get(tolerance_name(metric), 0.0) is None
        if mode == "off" or (mode == "auto" and gate_off):
            scores[metric.name] = Score(None, "off")
            continue
        inputs = MetricInputs(out, base if metric.kind is MetricKind.FULL_REFERENCE else None, prompt, device)
        try:
            metric.check_available(inputs)
            scores[metric.name] = Score(metric.compute(inputs))
        except MetricUnavailable as exc:
            exc.metric = metric.name
            if mode == "required":
                raise
            scores[metric.name] = Score(None, UNAVAILABLE + exc.reason)
    return scores


def unavailable_advice(name: str, status: str, metrics: MetricRegistry = REGISTRY) -> str:
    """What to print once per run for metric ``name``'s status ``unavailable: <reason>`` (as
    results.csv's ``<name>_status`` holds it): the metric's whole advice (LPIPS: which file is
    missing and where to put it) when it has one (an ``advice(reason)`` method), else the reason."""
    reason = status.removeprefix(UNAVAILABLE)
    advice = getattr(metrics.get(name), "advice", None)
    return str(advice(reason)) if callable(advice) else reason
