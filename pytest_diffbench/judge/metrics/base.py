"""The :class:`Metric` protocol: what the registry knows of a metric, and how it is scored.

A metric declares its name (results.csv's column), label, kind, direction, unit, default
tolerance and the range a tolerance may take; tolerances, gates, results columns, report
columns, plot panels and JUnit fields are all derived from these declarations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class MetricKind(str, Enum):
    #: Scores the output against its baseline image (SSIM, PSNR, LPIPS).
    FULL_REFERENCE = "full-reference"
    #: Scores the output alone (NIQE, MUSIQ).
    NO_REFERENCE = "no-reference"
    #: Scores the output against its prompt (CLIP score).
    TEXT_IMAGE = "text-image"


class Direction(str, Enum):
    """Which way is better; the value is the comparison a tolerance makes."""

    HIGHER_IS_BETTER = ">="
    LOWER_IS_BETTER = "<="

    @property
    def prefix(self) -> str:
        """``min`` or ``max``: the tolerance of metric ``ssim`` is ``min_ssim``."""
        return "min" if self is Direction.HIGHER_IS_BETTER else "max"


class MetricUnavailable(RuntimeError):
    """The metric cannot run here (missing weights, image too small); the message says why and
    what to do, ``reason`` says why in a few words (a results cell, a failure line).

    A metric whose message is advice too long to repeat per case gives a short ``reason`` and
    an ``advice(reason) -> str`` method that rebuilds the message from it, so a run prints the
    advice once (see :func:`pytest_diffbench.judge.metrics.unavailable_advice`).
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message
        #: The name of the metric that could not run (set by ``score_images``).
        self.metric = ""


@dataclass(frozen=True)
class MetricInputs:
    """What a metric may look at.

    ``output`` and ``baseline`` are RGB uint8 arrays of shape (H, W, 3); ``baseline`` is None for
    metrics that are not full-reference. ``device`` is the pipeline's device (``"cpu"``,
    ``"cuda:0"``), for metrics that run a network; on a CUDA device ``score_images`` gives the
    metrics that have ``compute_on_device`` the pair on the device instead (see
    :mod:`~pytest_diffbench.judge.metrics.device`).
    """

    output: "npt.NDArray[np.uint8]"
    baseline: "npt.NDArray[np.uint8] | None"
    prompt: str
    device: str


@runtime_checkable
class Metric(Protocol):
    """One image metric. Implementations are small frozen dataclasses; see ``ssim.py``."""

    @property
    def name(self) -> str:
        """results.csv column and registry key, e.g. ``"ssim"``."""
        ...

    @property
    def label(self) -> str:
        """Shown in reports and on grids, e.g. ``"SSIM"``."""
        ...

    @property
    def kind(self) -> MetricKind: ...

    @property
    def direction(self) -> Direction: ...

    @property
    def unit(self) -> str:
        """Unit printed after values, e.g. ``"dB"``; "" for none."""
        ...

    @property
    def default_tolerance(self) -> float | None:
        """The built-in tolerance (``None``: the check is off unless a user sets one)."""
        ...

    @property
    def valid_tolerance(self) -> str:
        """Words for the error when a tolerance is out of range, e.g. ``"a number from -1 to 1"``."""
        ...

    @property
    def reports_status(self) -> bool:
        """Whether results.csv has a ``<name>_status`` column (``ok``, ``off``, ``unavailable: ...``)."""
        ...

    @property
    def plotted(self) -> bool:
        """Whether plot.png gets a panel of this metric against seconds per image."""
        ...

    def accepts(self, tolerance: float) -> bool:
        """Whether ``tolerance`` is in the metric's range (see :attr:`valid_tolerance`)."""
        ...

    def check_available(self, inputs: MetricInputs) -> None:
        """Raise :class:`MetricUnavailable` when the metric cannot score ``inputs`` here."""
        ...

    def compute(self, inputs: MetricInputs) -> float:
        """The score. May raise :class:`MetricUnavailable`."""
        ...


def tolerance_name(metric: Metric) -> str:
    """``min_<name>`` or ``max_<name>``: the tolerance key, ini ``diffbench_<that>``, results column."""
    return f"{metric.direction.prefix}_{metric.name}"


def status_column(metric: Metric) -> str:
    return f"{metric.name}_status"


def passes(direction: Direction, value: float, limit: float) -> bool:
    """Whether ``value`` meets ``limit`` in ``direction`` (NaN never does)."""
    if math.isnan(value):
        return False
    return value >= limit if direction is Direction.HIGHER_IS_BETTER else value <= limit
