"""plot.png: seconds per image against SSIM (and LPIPS when measured), one point per case.

The "sampling speed vs quality" figure: colour by sampler, each point annotated with its step
count. One panel per measure that any case has: SSIM against the case's group's most-steps
image (results.csv's ``ssim_vs_most_steps``, see :mod:`pytest_diffbench.convergence`), then
SSIM and LPIPS against the baseline. Drawn with matplotlib's Agg backend (no display needed)
and saved without metadata that would change between runs, so the same rows give the same
PNG bytes.
"""

from __future__ import annotations

import io
import math
from typing import Any, Mapping, Sequence

from pytest_diffbench.results import REFERENCE_SSIM_COLUMN
from pytest_diffbench.summary import cell_number

PLOT_FILE = "plot.png"
_PANELS = (
    (REFERENCE_SSIM_COLUMN, "SSIM vs the most-steps image of its group (higher is closer)"),
    ("ssim", "SSIM vs baseline (higher is closer)"),
    ("lpips", "LPIPS vs baseline (lower is closer)"),
)


def _finite(value: Any) -> float | None:
    number = cell_number(value)
    return number if number is not None and math.isfinite(number) else None


def plottable(records: Sequence[Mapping[str, Any]], metric: str) -> list[Mapping[str, Any]]:
    """Records that have both seconds per image and ``metric``."""
    return [r for r in records if _finite(r.get("seconds_per_image")) is not None and _finite(r.get(metric)) is not None]


def panels(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(metric, axis label) of each panel the figure has for ``records``: the measures any case has."""
    return [(metric, label) for metric, label in _PANELS if plottable(records, metric)]


def speed_quality_png(records: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """The figure as PNG bytes, one panel per entry of :func:`panels` (call it only when there is one)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    metrics = panels(records)
    samplers = sorted({str(r.get("sampler", "")) for r in records})
    colours = {s: f"C{i % 10}" for i, s in enumerate(samplers)}
    figure = Figure(figsize=(6.4 * len(metrics), 4.8), dpi=100)
    for index, (metric, label) in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), index)
        measured = plottable(records, metric)
        for sampler in samplers:
            points = [r for r in measured if str(r.get("sampler", "")) == sampler]
            xs = [_finite(r["seconds_per_image"]) for r in points]
            ys = [_finite(r[metric]) for r in points]
            axes.scatter(xs, ys, color=colours[sampler], label=sampler or "?", s=36)
            for x, y, r in zip(xs, ys, points):
                axes.annotate(f"{r.get('steps', '')}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        axes.set_xlabel("seconds per image")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
        if samplers:
            axes.legend(title="sampler (labels: steps)", fontsize=8, title_fontsize=8)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
