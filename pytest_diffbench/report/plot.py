"""plot.png: seconds per image against SSIM (and LPIPS when measured), one point per case.

The "sampling speed vs quality" figure: colour by sampler, each point annotated with its step
count. One panel per measure that any case has: SSIM against the case's group's most-steps
image (results.csv's ``ssim_vs_most_steps``, see :mod:`pytest_diffbench.judge.convergence`), then
each registered metric that is ``plotted`` (SSIM and LPIPS) against the baseline. Drawn with matplotlib's Agg backend (no display needed)
and saved without metadata that would change between runs, so the same rows give the same
PNG bytes.
"""

from __future__ import annotations

import io
import math
from typing import Callable, Sequence

from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry
from pytest_diffbench.judge.result import CaseResult

#: (name, axis label, value of a case) of one panel.
Panel = tuple[str, str, Callable[[CaseResult], "float | None"]]


def all_panels(metrics: MetricRegistry = REGISTRY) -> list[Panel]:
    """Every panel plot.png can have: the sweep score, then each plotted metric against the baseline."""
    panels: list[Panel] = [("ssim_vs_most_steps", "SSIM vs the most-steps image of its group (higher is closer)",
                            lambda r: r.ssim_vs_most_steps)]
    for metric in metrics:
        if metric.plotted:
            better = "higher" if metric.direction.value == ">=" else "lower"
            panels.append((metric.name, f"{metric.label} vs baseline ({better} is closer)", _score_of(metric.name)))
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
    return [panel for panel in all_panels() if plottable(results, panel[2])]


def speed_quality_png(results: Sequence[CaseResult], title: str) -> bytes:
    """The figure as PNG bytes, one panel per entry of :func:`panels` (call it only when there is one)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    chosen = panels(results)
    samplers = sorted({str(r.setting("sampler") or "") for r in results})
    colours = {s: f"C{i % 10}" for i, s in enumerate(samplers)}
    figure = Figure(figsize=(6.4 * len(chosen), 4.8), dpi=100)
    for index, (_, label, value) in enumerate(chosen, start=1):
        axes = figure.add_subplot(1, len(chosen), index)
        measured = plottable(results, value)
        for sampler in samplers:
            points = [r for r in measured if str(r.setting("sampler") or "") == sampler]
            xs = [_seconds(r) or 0.0 for r in points]  # plottable() kept only cases with both
            ys = [_finite(value(r)) or 0.0 for r in points]
            axes.scatter(xs, ys, color=colours[sampler], label=sampler or "?", s=36)
            for x, y, r in zip(xs, ys, points):
                axes.annotate(f"{r.setting('steps') or ''}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        axes.set_xlabel("seconds per image")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
        if samplers:
            axes.legend(title="sampler (labels: steps)", fontsize=8, title_fontsize=8)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
