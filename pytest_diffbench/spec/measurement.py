"""What one timed generation measured."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """The figures of one case's timed pipeline call.

    ``seconds_per_image`` is wall-clock seconds around the pipeline call alone
    (``time.perf_counter``; on CUDA with ``torch.cuda.synchronize()`` before and after).
    ``peak_vram_mb`` is ``torch.cuda.max_memory_allocated()`` during that call in MiB (2**20
    bytes; the ``_mb`` spelling is the results.csv column's), ``None`` off CUDA.
    ``warmup_seconds`` is the warm-up generation run before the case, ``None`` when none ran.
    ``warnings`` say, one line each, that non-finite values (NaN or inf) were seen while the
    image was made (``numpy: <its RuntimeWarning>`` when they were cast to pixels, or a note that
    a float image held them); a non-empty tuple makes the output invalid. Never stored in a sidecar.
    """

    seconds_per_image: float
    peak_vram_mb: float | None = None
    warmup_seconds: float | None = None
    warnings: tuple[str, ...] = ()


#: What a measured figure (seconds, MiB) may be; the one rule of the pipeline's measurement and
#: of a sidecar's (spec.sidecar reads by it too).
FIGURE_RULE = "a finite number >= 0"


def is_valid_figure(value: object) -> bool:
    """Whether ``value`` is a measured figure: an int or float (not a bool), finite and >= 0."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value >= 0)


def measurement_problem(measurement: object) -> str:
    """Why ``measurement`` (what a pipeline returned beside its image) cannot be recorded, on one
    line naming the figure and what is valid; "" when it can. ``seconds_per_image`` must be
    :data:`FIGURE_RULE`; ``peak_vram_mb`` and ``warmup_seconds`` that or None."""
    if not isinstance(measurement, Measurement):
        return f"the pipeline returned a {type(measurement).__name__} as its measurement, not a Measurement"
    for name in ("seconds_per_image", "peak_vram_mb", "warmup_seconds"):
        value = getattr(measurement, name)
        if value is None and name != "seconds_per_image":
            continue
        if not is_valid_figure(value):
            optional = "" if name == "seconds_per_image" else " or None"
            return (f"the pipeline's Measurement.{name} = {value!r} is not valid; it must be {FIGURE_RULE}{optional} "
                    "(a baseline stores it, and every later run is timed against it)")
    return ""
