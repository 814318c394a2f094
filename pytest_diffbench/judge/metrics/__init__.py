"""The metric registry: every image metric diffbench scores, in column order.

Adding a metric is one module (a class following :class:`~.base.Metric`) plus one line in
:data:`REGISTRY`, or ``REGISTRY.register(metric)`` from a plugin. Its tolerance
(``min_``/``max_<name>``, ini ``diffbench_<tolerance>``), its gate, its results.csv columns, its
report and grid labels, its plot panel and its JUnit property follow from the declaration.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

from pytest_diffbench.judge.metrics.base import (
    Direction,
    Metric,
    MetricInputs,
    MetricKind,
    MetricUnavailable,
    status_column,
    tolerance_name,
)
from pytest_diffbench.judge.metrics.device import DeviceImage, DeviceMetric, metric_stream, runs_on_torch
from pytest_diffbench.judge.metrics.images import ImageSizeMismatch, check_pair, split_frames, to_rgb_array
from pytest_diffbench.judge.metrics.lpips import LPIPS
from pytest_diffbench.judge.metrics.psnr import PSNR
from pytest_diffbench.judge.metrics.ssim import SSIM

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch
    from PIL import Image

__all__ = ["Direction", "LateRegistration", "Metric", "MetricInputs", "MetricKind",
           "MetricRegistrationError", "MetricRegistry", "MetricUnavailable", "REGISTRY", "Score",
           "claimed_names", "refused_metrics", "reserve", "score_images", "status_column", "tolerance_name",
           "take_unavailable_messages", "unavailable_advice", "unavailable_messages"]

#: How a metric's status starts when it could not run (then the short reason).
UNAVAILABLE = "unavailable: "

#: What ``diffbench_<metric>`` style switches may say: use it when it can run, require it, skip it.
METRIC_MODES = ("auto", "required", "off")


#: What a metric's name may be: it becomes results.csv columns (``<name>``, ``<name>_status``, its
#: tolerance ``min_``/``max_<name>``), a JUnit property and an ini key (``diffbench_<tolerance>``).
NAME_RULE = "lowercase letters, digits and underscores, starting with a letter, e.g. mean_abs_diff"
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

#: Names no metric may claim (a built-in results.csv column, an ini key), each with what it is;
#: filled by the modules that own those names (see :func:`reserve`).
_RESERVED: dict[str, str] = {}
#: Metrics registered before diffbench reserved a name they claim (see :func:`reserve`).
_REFUSED: list[str] = []


class MetricRegistrationError(ValueError):
    """:meth:`MetricRegistry.register` refused a metric: the message is one line saying why and
    what would be valid (the pytest plugin prints it alone, not the traceback of the conftest.py
    or plugin that registered it)."""


class LateRegistration(MetricRegistrationError):
    """A metric was registered after a pytest run read diffbench's settings (a conftest.py below the
    rootdir, imported at collection, or a test of a ``--diffbench`` run): its tolerance, ini key and
    columns would be missing from that run."""


def claimed_names(metric: Metric) -> dict[str, str]:
    """Every name ``metric`` takes, each with what it is: its results.csv columns (value, status,
    tolerance) and its tolerance's ini key."""
    tolerance = tolerance_name(metric)
    return {metric.name: "its value column", status_column(metric): "its status column",
            tolerance: "its tolerance column", f"diffbench_{tolerance}": "its ini key"}


def describe(metric: Metric) -> str:
    """``'meandiff' (conftest.MeanDiff)``: a metric by name and qualified class name, for errors."""
    kind = type(metric)
    return f"{metric.name!r} ({kind.__module__}.{kind.__qualname__})"


def same_metric(one: Metric, other: Metric) -> bool:
    """Whether ``other`` is ``one`` registered again: equal, or of the same qualified class name
    with the same declaration (a conftest.py imported twice defines its class twice)."""
    if one == other:
        return True
    declared = ("name", "label", "kind", "direction", "unit", "default_tolerance", "valid_tolerance",
                "reports_status", "plotted")
    return ((type(one).__module__, type(one).__qualname__) == (type(other).__module__, type(other).__qualname__)
            and all(getattr(one, field) == getattr(other, field) for field in declared))


def reserve(names: Iterable[str], what: str) -> None:
    """Keep ``names`` (``what`` they are: "a results.csv column", "an ini key") from every metric.

    A metric registered before (a ``-p`` plugin imported ahead of diffbench's modules) that claims
    one is unregistered, and the refusal kept for :func:`refused_metrics`: raising here would break
    the import of diffbench's own plugin with a traceback."""
    for name in names:
        _RESERVED[name] = what
        for metric in REGISTRY:
            if name in claimed_names(metric):
                REGISTRY.unregister(metric.name)
                _REFUSED.append(f"metric {describe(metric)} cannot be registered: {name!r}, "
                                f"{claimed_names(metric)[name]}, is {what} of diffbench; give the metric another name")


def refused_metrics() -> list[str]:
    """The refusals :func:`reserve` kept (one line each): the pytest plugin reports the first as a
    usage error when it configures."""
    return list(_REFUSED)


class MetricRegistry:
    """An ordered set of metrics, keyed by name."""

    def __init__(self, metrics: tuple[Metric, ...]) -> None:
        self._metrics: dict[str, Metric] = {}
        self._locks: dict[object, str] = {}
        for metric in metrics:
            self.register(metric)

    def __iter__(self) -> Iterator[Metric]:
        return iter(list(self._metrics.values()))

    def __len__(self) -> int:
        return len(self._metrics)

    def get(self, name: str) -> Metric | None:
        return self._metrics.get(name)

    def register(self, metric: Metric) -> None:
        """Add ``metric``. Registering it again (the same metric, see :func:`same_metric`: a
        conftest.py imported twice) changes nothing but the instance kept.

        :class:`MetricRegistrationError`, one line saying what would be valid, when its name is not valid
        (:data:`NAME_RULE`), when one of its names (:func:`claimed_names`) is a built-in column or
        ini key or is taken by another registered metric; :class:`LateRegistration` while the
        registry is locked (see :meth:`lock`).
        """
        if not isinstance(metric, Metric):
            raise TypeError(f"{metric!r} does not follow the Metric protocol (see pytest_diffbench.judge.metrics.base)")
        existing = self._metrics.get(metric.name)
        if existing is not None and same_metric(existing, metric):
            self._metrics[metric.name] = metric  # the same place in the column order
            return
        if not isinstance(metric.name, str) or not _NAME.match(metric.name):
            raise MetricRegistrationError(f"metric name {metric.name!r} is not valid: it becomes results.csv columns "
                                          f"and an ini key, so it must be {NAME_RULE}")
        if existing is not None:
            raise MetricRegistrationError(f"metric {describe(metric)} cannot be registered: another metric of that name, "
                                          f"{describe(existing)}, is already registered; give it another name")
        if self._locks:
            raise LateRegistration(
                f"metric {describe(metric)} was registered after pytest read diffbench's settings "
                f"({next(iter(self._locks.values()))}), so this run would lack its tolerance, ini key and columns; "
                "register it in the rootdir's conftest.py or in a plugin, which pytest loads before it configures")
        for name, role in claimed_names(metric).items():
            if name in _RESERVED:
                raise MetricRegistrationError(f"metric {describe(metric)} cannot be registered: {role} {name!r} is "
                                              f"{_RESERVED[name]} of diffbench; give the metric another name")
            owner = next((m for m in self._metrics.values() if name in claimed_names(m)), None)
            if owner is not None:
                raise MetricRegistrationError(f"metric {describe(metric)} cannot be registered: {role} {name!r} is "
                                              f"taken by metric {describe(owner)}; give it another name")
        self._metrics[metric.name] = metric

    def unregister(self, name: str) -> None:
        self._metrics.pop(name, None)

    def lock(self, why: str) -> object:
        """Refuse new metrics (:class:`LateRegistration`, naming ``why``) until :meth:`unlock` with
        the returned token: a pytest run holds it from the moment it read its settings. Registering
        a metric that is already registered stays allowed."""
        token = object()
        self._locks[token] = why
        return token

    def unlock(self, token: object) -> None:
        """Undo one :meth:`lock` (again: nothing)."""
        self._locks.pop(token, None)

    @contextlib.contextmanager
    def registered(self, metric: Metric) -> Iterator[Metric]:
        """``metric`` registered for the ``with`` block (tests, temporary plugins); afterwards the
        registry holds what it held before (the metric it replaced, or none of that name)."""
        previous = self._metrics.get(metric.name)
        self.register(metric)
        try:
            yield metric
        finally:
            if previous is None:
                self.unregister(metric.name)
            else:
                self._metrics[metric.name] = previous


#: The metrics every run scores, in results.csv's column order.
REGISTRY = MetricRegistry((SSIM(), PSNR(), LPIPS()))


@dataclass(frozen=True)
class Score:
    """One metric's result: ``value`` is None unless ``status`` is ``ok``; otherwise ``status`` is
    ``off`` or ``unavailable: <reason>``.

    For a video (an image of several frames, see :mod:`pytest_diffbench.spec.video`)
    ``frame_values`` holds the metric of each frame, frame 1 first, and ``value`` is the worst of
    them (the one the gate judges); ``frame_values`` is empty for a still.
    """

    value: float | None
    status: str = "ok"
    frame_values: tuple[float, ...] = ()

    @property
    def mean(self) -> float | None:
        """The mean over the frames (None for a still): inf when a frame is identical under PSNR,
        NaN when a frame scored NaN."""
        return math.fsum(self.frame_values) / len(self.frame_values) if self.frame_values else None

    @property
    def worst_frame(self) -> int | None:
        """The 1-based number of the frame whose value is :attr:`value` (the first of equals; a
        NaN frame is the worst), None for a still or a metric that did not run."""
        if self.value is None:
            return None
        same = math.isnan if math.isnan(self.value) else self.value.__eq__
        return next((number for number, value in enumerate(self.frame_values, 1) if same(value)), None)

    @property
    def detail(self) -> str:
        """``worst frame 3 of 8, mean 0.9712``: what a video's check says beside its value; "" for a still."""
        if self.mean is None:
            return ""
        return f"worst frame {self.worst_frame} of {len(self.frame_values)}, mean {self.mean:.4g}"


def _worst(values: tuple[float, ...], direction: Direction) -> int:
    """The index of the worst of ``values`` in ``direction``: a NaN first, else the lowest (higher
    is better) or the highest (lower is better), the first of equals."""
    for index, value in enumerate(values):
        if math.isnan(value):
            return index
    pick = min if direction is Direction.HIGHER_IS_BETTER else max
    return values.index(pick(values))


def score_images(output: "Image.Image | npt.NDArray[np.uint8]", baseline: "Image.Image | npt.NDArray[np.uint8] | None",
                 *, prompt: str, device: str, modes: Mapping[str, str],
                 tolerances: Mapping[str, float | None] | None = None, metrics: MetricRegistry = REGISTRY,
                 frames: int = 1) -> dict[str, Score]:
    """Score ``output`` with every registered metric that applies.

    ``output`` and ``baseline`` are images, or (H, W, 3) uint8 arrays as :func:`to_rgb_array`
    makes them (then they are not converted again). Full-reference metrics run only when
    ``baseline`` is given; both images are compared at their
    own size (:class:`ImageSizeMismatch` when they differ). ``modes`` maps a metric name to
    ``auto`` (the default: record why a metric could not run), ``required`` (raise
    :class:`MetricUnavailable`, its ``metric`` naming the metric, instead) or ``off`` (skip it). In ``auto`` a metric whose
    tolerance in ``tolerances`` is None (its gate is off) is skipped too, as ``off``: it is
    neither loaded nor warned about.

    ``frames`` is how many frames the images hold (a video's strip, frames left to right: the
    frozen config's ``video.frames``). With more than 1, each metric scores every frame against
    the baseline's frame of the same number and its :class:`Score` holds each frame's value,
    the worst as ``value`` (see :attr:`Score.detail`); a metric that cannot score one frame is
    unavailable for the video. :class:`ImageSizeMismatch` when the images are not strips of
    ``frames`` frames.

    On a ``device`` where metrics run in torch (:func:`~.device.runs_on_torch`: CUDA) the pair
    is uploaded once (:class:`~.device.DeviceImage`, every frame as one batch), each metric with
    a ``compute_on_device`` (SSIM, PSNR, LPIPS) scores it there, and all their values come back
    in one host sync; elsewhere each metric scores the arrays on the host.
    """
    import numpy as np

    out = output if isinstance(output, np.ndarray) else to_rgb_array(output)
    base = baseline if baseline is None or isinstance(baseline, np.ndarray) else to_rgb_array(baseline)
    if base is not None:
        check_pair(out, base)  # the message names the sizes in this order: output, then baseline
    out_frames = split_frames(out, frames) if frames > 1 else []  # ImageSizeMismatch when no strip of them
    base_frames = split_frames(base, frames) if frames > 1 and base is not None else []
    on_device = _DevicePair(out, base, device, frames) if base is not None and runs_on_torch(device) else None
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
        reference = base if metric.kind is MetricKind.FULL_REFERENCE else None
        try:
            if on_device is not None and reference is not None and isinstance(metric, DeviceMetric):
                first = MetricInputs(out_frames[0] if out_frames else out, base_frames[0] if base_frames else reference,
                                     prompt, device)
                metric.check_available(first)
                on_device.add(metric, first)
                scores[metric.name] = Score(None, "pending")  # keeps the registry's order; set below
            else:
                scores[metric.name] = _score(metric, out, reference, prompt, device, out_frames,
                                             base_frames if reference is not None else [])
        except MetricUnavailable as exc:
            exc.metric = metric.name
            if mode == "required":
                raise
            if str(exc) != exc.reason:  # the warning says the message; the results cell only the reason
                _UNAVAILABLE_MESSAGES.setdefault((metric.name, exc.reason), str(exc))
            scores[metric.name] = Score(None, UNAVAILABLE + exc.reason)
    if on_device is not None:
        scores.update(on_device.scores(video=frames > 1))
    return scores


class _DevicePair:
    """An output and its baseline on a torch device (uploaded when the first metric needs them),
    and the metrics' values there, brought to the host together; all of it on the metrics' own
    stream (:func:`~.device.metric_stream`)."""

    def __init__(self, output: "npt.NDArray[np.uint8]", baseline: "npt.NDArray[np.uint8]", device: str,
                 frames: int) -> None:
        self._arrays = (output, baseline)
        self._device, self._frames = device, frames
        self._images: tuple[DeviceImage, DeviceImage] | None = None
        self._pending: list[tuple[Metric, "torch.Tensor"]] = []

    def add(self, metric: DeviceMetric, inputs: MetricInputs) -> None:
        """Score the pair with ``metric`` on the device (no host sync)."""
        assert isinstance(metric, Metric)
        with metric_stream(self._device):
            if self._images is None:
                output, baseline = self._arrays
                self._images = (DeviceImage.upload(output, self._device, self._frames),
                                DeviceImage.upload(baseline, self._device, self._frames))
            self._pending.append((metric, metric.compute_on_device(inputs, *self._images)))

    def scores(self, video: bool) -> dict[str, Score]:
        """Each added metric's :class:`Score` (per frame for a ``video``): one host sync for all."""
        if not self._pending:
            return {}
        import torch

        with metric_stream(self._device):
            rows = torch.stack([values.to(torch.float64) for _, values in self._pending]).tolist()
        return {metric.name: _frame_score(tuple(row), metric.direction) if video else Score(row[0])
                for (metric, _), row in zip(self._pending, rows)}


def _score(metric: Metric, output: "npt.NDArray[np.uint8]", baseline: "npt.NDArray[np.uint8] | None", prompt: str,
           device: str, output_frames: "list[npt.NDArray[np.uint8]]",
           baseline_frames: "list[npt.NDArray[np.uint8]]") -> Score:
    """``metric`` of the whole image (no ``output_frames``), or of each frame against the
    baseline's frame of the same number (none for a metric that reads no baseline), with the
    worst as the value."""
    if not output_frames:
        inputs = MetricInputs(output, baseline, prompt, device)
        metric.check_available(inputs)
        return Score(metric.compute(inputs))
    values: list[float] = []
    for index, frame in enumerate(output_frames):
        inputs = MetricInputs(frame, baseline_frames[index] if baseline_frames else None, prompt, device)
        metric.check_available(inputs)
        values.append(metric.compute(inputs))
    return _frame_score(tuple(values), metric.direction)


def _frame_score(frame_values: tuple[float, ...], direction: Direction) -> Score:
    """A video's score: each frame's value, the worst as the value."""
    return Score(frame_values[_worst(frame_values, direction)], frame_values=frame_values)


#: The message of each :class:`MetricUnavailable` that this process (or an xdist worker that
#: handed it over, see :func:`take_unavailable_messages`) caught with a shorter ``reason``, by
#: (metric name, reason): the warning of a metric without an ``advice`` method says it.
_UNAVAILABLE_MESSAGES: dict[tuple[str, str], str] = {}


def unavailable_messages() -> list[list[str]]:
    """The messages :func:`score_images` kept (metric name, reason, message), as an xdist worker
    hands them to the controller (lists of strings, which execnet carries)."""
    return [[name, reason, message] for (name, reason), message in _UNAVAILABLE_MESSAGES.items()]


def take_unavailable_messages(messages: Iterable[Iterable[str]]) -> None:
    """Keep the (metric name, reason, message) triples of :func:`unavailable_messages` (an xdist
    worker's), so this process's warning says them."""
    for name, reason, message in messages:
        _UNAVAILABLE_MESSAGES.setdefault((name, reason), message)


def unavailable_advice(name: str, status: str, metrics: MetricRegistry = REGISTRY) -> str:
    """What to print once per run for metric ``name``'s status ``unavailable: <reason>`` (as
    results.csv's ``<name>_status`` holds it): the metric's whole advice (LPIPS: which file is
    missing and where to put it) when it has one (an ``advice(reason)`` method), else the message
    of the :class:`MetricUnavailable` that gave the reason (when this process or a worker of it
    caught it), else the reason."""
    reason = status.removeprefix(UNAVAILABLE)
    advice = getattr(metrics.get(name), "advice", None)
    return str(advice(reason)) if callable(advice) else _UNAVAILABLE_MESSAGES.get((name, reason), reason)
