"""plot.png: seconds per image against SSIM (and LPIPS when measured), one point per case.

The "sampling speed vs quality" figure. One panel per measure that any case has: SSIM against
the case's group's most-steps image (results.csv's ``ssim_vs_most_steps``, see
:mod:`pytest_diffbench.judge.convergence`), then each registered metric that is ``plotted`` (SSIM
and LPIPS) against the baseline. Drawn with matplotlib's Agg backend (no display needed) and
saved without metadata that would change between runs, so the same rows give the same PNG bytes.

What a reviewer reads at a glance, and the rules that keep it honest:

- Colour is the sampler, marker shape the step count, and a black ring marks a case that did not
  pass (any outcome but ``passed``); one legend under the panels says all three. No text is
  drawn next to points, so nothing there can overlap.
- Tick labels are plain decimals: no offset (``1e-6+9.9999e-1``) or scientific notation.
- The y-axis of a panel spans at least :func:`min_span` of it: 0.01 for SSIM and LPIPS (both
  on a 0..1 scale), a fifth of the distance between the perfect score and the default gates
  (``min_ssim = 0.95``, ``max_lpips = 0.05``), and far above the run-to-run noise of a CPU
  (about 1e-4). Values closer together than that are drawn flat; the span is extended from the
  best value towards the worse side. A metric without an entry gets 1% of the largest magnitude
  among its values and gates (0.01 when all are 0).
- Each tolerance applied to a plotted case is a dashed line (horizontal: the panel's metric;
  vertical: ``max_seconds``), and the axis limits include it, so the distance to failing is in view.
- The x-axis (seconds per image) starts just below 0 (:data:`MARGIN` of its span), so the
  distance between points reads as a ratio and a point at 0 s is not cut by the axis.
- Short axis labels, each panel's description as its title, constrained layout: labels, titles
  and the legend do not collide.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry, tolerance_name
from pytest_diffbench.judge.metrics.base import Direction
from pytest_diffbench.judge.result import CaseResult

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Panel name of the sweep score (results.csv's column).
SWEEP_PANEL = "ssim_vs_most_steps"
#: The smallest y span of a panel, by panel name (see the module docstring).
MIN_SPAN: dict[str, float] = {SWEEP_PANEL: 0.01, "ssim": 0.01, "lpips": 0.01}
#: Share of a panel's y span left free above and below its values and gates.
MARGIN = 0.05
#: Colours of the samplers, in name order (repeated after the ninth): matplotlib's ten without
#: its grey, which is the step-count markers' colour in the legend.
SAMPLER_COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")
#: Marker shapes of the step counts, in increasing step order (repeated after the twelfth).
MARKERS = ("o", "s", "^", "D", "v", "P", "*", "h", "<", ">", "p", "d")
#: Legend label of the ring around a case that did not pass.
FAILED_LABEL = "did not pass (ring)"
#: Title of the legend.
LEGEND_TITLE = "colour: sampler · shape: steps"
#: Legend label of the dashed tolerance lines.
TOLERANCE_LABEL = "tolerance (dashed)"


class Panel(NamedTuple):
    """One panel: its name (a results.csv column), its title, and the value of a case."""

    name: str
    title: str
    value: Callable[[CaseResult], "float | None"]


def all_panels(metrics: MetricRegistry = REGISTRY) -> list[Panel]:
    """Every panel plot.png can have: the sweep score, then each plotted metric against the baseline."""
    panels = [Panel(SWEEP_PANEL, "SSIM vs the most-steps image of its group\n(higher is closer)",
                    lambda r: r.ssim_vs_most_steps)]
    for metric in metrics:
        if metric.plotted:
            better = "higher" if metric.direction is Direction.HIGHER_IS_BETTER else "lower"
            panels.append(Panel(metric.name, f"{metric.label} vs baseline\n({better} is closer)", _score_of(metric.name)))
    return panels


def _score_of(name: str) -> Callable[[CaseResult], "float | None"]:
    def score(result: CaseResult) -> float | None:
        return result.scores.get(name)
    return score


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _seconds(result: CaseResult) -> float | None:
    return _finite(result.measurement.seconds_per_image) if result.measurement else None


def plottable(results: Sequence[CaseResult], value: Callable[[CaseResult], "float | None"]) -> list[CaseResult]:
    """Results that have both seconds per image and a finite ``value``."""
    return [r for r in results if _seconds(r) is not None and _finite(value(r)) is not None]


def panels(results: Sequence[CaseResult]) -> list[Panel]:
    """The panels the figure has for ``results``: those of :func:`all_panels` any case has a value for."""
    return [panel for panel in all_panels() if plottable(results, panel.value)]


def axis_label(name: str, metrics: MetricRegistry = REGISTRY) -> str:
    """The y-axis label of panel ``name``: the metric's label and unit (``SSIM``, ``LPIPS``)."""
    metric = metrics.get(name)
    if metric is None:
        return "SSIM"
    return f"{metric.label} ({metric.unit})" if metric.unit else metric.label


def _direction(name: str, metrics: MetricRegistry = REGISTRY) -> Direction:
    metric = metrics.get(name)
    return Direction.HIGHER_IS_BETTER if metric is None else metric.direction


def gates(name: str, results: Sequence[CaseResult], metrics: MetricRegistry = REGISTRY) -> list[float]:
    """The distinct finite tolerances of panel ``name`` applied to ``results``, ascending ([] for the sweep score)."""
    metric = metrics.get(name)
    if metric is None:
        return []
    key = tolerance_name(metric)
    return sorted({limit for r in results if (limit := _finite(r.tolerances.get(key))) is not None})


def seconds_gates(results: Sequence[CaseResult]) -> list[float]:
    """The distinct finite ``max_seconds`` budgets applied to ``results``, ascending: vertical dashed lines."""
    return sorted({limit for r in results if (limit := _finite(r.tolerances.get("max_seconds"))) is not None})


def min_span(name: str, values: Sequence[float]) -> float:
    """The smallest y span of panel ``name`` (see the module docstring); ``values`` are its values and gates."""
    if name in MIN_SPAN:
        return MIN_SPAN[name]
    largest = max((abs(v) for v in values), default=0.0)
    return 0.01 * largest if largest > 0 else 0.01


def y_limits(name: str, values: Sequence[float], gate_values: Sequence[float] = ()) -> tuple[float, float]:
    """(bottom, top) of panel ``name``'s y-axis: every value and gate, a span of at least
    :func:`min_span` extended from the best value towards the worse side, and :data:`MARGIN`
    of the span free on both sides. Raises ValueError when there is neither a value nor a gate."""
    points = [*values, *gate_values]
    if not points:
        raise ValueError(f"panel {name!r} has no value to set y-limits from")
    low, high = min(points), max(points)
    span = min_span(name, points)
    if high - low < span:
        if _direction(name) is Direction.HIGHER_IS_BETTER:
            low = high - span
        else:
            high = low + span
    margin = MARGIN * (high - low)
    return low - margin, high + margin


def x_limits(slowest: float) -> tuple[float, float]:
    """(left, right) of the seconds-per-image axis: from 0 to ``slowest`` (s, the largest time or
    budget drawn; 1 s when that is 0), with :data:`MARGIN` of that span free on both sides, so
    markers at 0 s and at ``slowest`` are drawn whole."""
    span = slowest if slowest > 0 else 1.0
    return -MARGIN * span, span * (1 + MARGIN)


def _steps_key(steps: str) -> tuple[bool, int, str]:
    return (not steps.isdigit(), int(steps) if steps.isdigit() else 0, steps)


def _sampler(result: CaseResult) -> str:
    return str(result.setting("sampler") or "?")


def _steps(result: CaseResult) -> str:
    steps = result.setting("steps")
    return "?" if steps is None else str(steps)


def _xy(results: Sequence[CaseResult], value: Callable[[CaseResult], "float | None"]) -> tuple[list[float], list[float]]:
    """Seconds per image and ``value`` of :func:`plottable` results (both finite there)."""
    return [_seconds(r) or 0.0 for r in results], [_finite(value(r)) or 0.0 for r in results]


class PanelPlan(NamedTuple):
    """What one panel shows, worked out from the results without matplotlib (see :func:`plan`)."""

    panel: Panel
    #: The cases with both numbers (seconds per image and the panel's value), in results order.
    measured: list[CaseResult]
    #: The measured cases that did not pass (ringed).
    failed: list[CaseResult]
    #: The panel metric's tolerances applied to its cases (dashed horizontal lines).
    limits: list[float]
    #: The ``max_seconds`` budgets applied to its cases, in seconds per image (dashed vertical lines).
    budgets: list[float]
    #: (bottom, top) of the y-axis (:func:`y_limits`).
    y_range: tuple[float, float]
    #: (left, right) of the x-axis in seconds per image (:func:`x_limits`).
    x_range: tuple[float, float]


def plan(results: Sequence[CaseResult]) -> list[PanelPlan]:
    """Each panel of the figure (:func:`panels` order) with its points, gates and axis ranges:
    everything the figure shows that depends on the results, without importing matplotlib."""
    plans = []
    for panel in panels(results):
        measured = plottable(results, panel.value)
        limits, budgets = gates(panel.name, measured), seconds_gates(measured)
        seconds, values = _xy(measured, panel.value)
        plans.append(PanelPlan(panel, measured, [r for r in measured if not r.passed], limits, budgets,
                               y_limits(panel.name, values, limits), x_limits(max([*seconds, *budgets]))))
    return plans


def speed_quality_figure(results: Sequence[CaseResult], title: str) -> "Figure":
    """The figure, drawn on an Agg canvas: one panel (Axes) per entry of :func:`plan` (call it only
    when :func:`panels` has one), and one legend under them."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    chosen = plan(results)
    samplers = sorted({_sampler(r) for r in results})
    colours = {s: SAMPLER_COLOURS[i % len(SAMPLER_COLOURS)] for i, s in enumerate(samplers)}
    step_values = sorted({_steps(r) for r in results}, key=_steps_key)
    markers = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(step_values)}
    figure = Figure(figsize=(6.4 * len(chosen), 5.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    for index, shown in enumerate(chosen, start=1):
        axes = figure.add_subplot(1, len(chosen), index)
        for sampler in samplers:
            for steps in step_values:
                points = [r for r in shown.measured if _sampler(r) == sampler and _steps(r) == steps]
                if points:
                    axes.scatter(*_xy(points, shown.panel.value), color=colours[sampler], marker=markers[steps], s=36,
                                 zorder=2)
        if shown.failed:
            axes.scatter(*_xy(shown.failed, shown.panel.value), s=170, facecolors="none", edgecolors="black",
                         linewidths=1.5, zorder=3)
        for limit in shown.limits:
            axes.axhline(limit, color="0.35", linestyle="--", linewidth=1, zorder=1)
        for budget in shown.budgets:
            axes.axvline(budget, color="0.35", linestyle="--", linewidth=1, zorder=1)
        _style_axes(axes, shown)
    handles = [Line2D([], [], color=colours[s], marker="o", linestyle="", label=s) for s in samplers]
    handles += [Line2D([], [], color="0.4", marker=markers[s], linestyle="", label=f"{s} steps") for s in step_values]
    if any(shown.failed for shown in chosen):
        handles.append(Line2D([], [], marker="o", markersize=11, markerfacecolor="none", markeredgecolor="black",
                              markeredgewidth=1.5, linestyle="", label=FAILED_LABEL))
    if any(shown.limits or shown.budgets for shown in chosen):
        handles.append(Line2D([], [], color="0.35", linestyle="--", linewidth=1, label=TOLERANCE_LABEL))
    figure.suptitle(title)
    _legend(figure, handles, min(len(handles), 4 * len(chosen)))
    return figure


def _legend(figure: "Figure", handles: Sequence["Artist"], columns: int) -> None:
    """The legend under the panels, in as many of ``columns`` as fit the figure's width."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    while True:
        legend = figure.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=8,
                               title=LEGEND_TITLE, title_fontsize=8)
        if columns == 1 or legend.get_window_extent(renderer).width <= figure.bbox.width:
            return
        legend.remove()
        columns -= 1


def _style_axes(axes: "Axes", shown: PanelPlan) -> None:
    """Plain tick labels, the plan's axis ranges, short labels."""
    from matplotlib.ticker import ScalarFormatter

    for axis in (axes.xaxis, axes.yaxis):
        formatter = ScalarFormatter(useOffset=False)
        formatter.set_scientific(False)
        axis.set_major_formatter(formatter)
    axes.set_ylim(*shown.y_range)
    axes.set_xlim(*shown.x_range)
    axes.set_xlabel("seconds per image")
    axes.set_ylabel(axis_label(shown.panel.name))
    axes.set_title(shown.panel.title, fontsize=10)
    axes.grid(True, alpha=0.3)


def speed_quality_png(results: Sequence[CaseResult], title: str) -> bytes:
    """The figure of :func:`speed_quality_figure` as PNG bytes.

    The constrained layout is computed once and then fixed, so saving draws the figure once:
    with the layout engine still set, ``savefig`` draws it twice (once to lay it out, once to
    render). Same bytes either way, in about 80% of the time."""
    import matplotlib

    figure = speed_quality_figure(results, title)
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.execute(figure)
        with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            figure.set_layout_engine(None)  # None under these rcParams: no engine at all
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
