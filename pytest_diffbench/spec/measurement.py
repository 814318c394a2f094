"""What one timed generation measured."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The stages of a two-stage case (``diffbench.two_stage``), in the order they run; each has its
#: own results.csv columns (:func:`stage_column`).
STAGE_NAMES = ("base", "refiner")
#: The figures of a stage, each a results.csv column ``<stage>_<figure>``.
STAGE_FIGURES = ("seconds_per_image", "peak_vram_mb")


def stage_column(stage: str, figure: str) -> str:
    """The results.csv column of one stage's figure, e.g. ``refiner_seconds_per_image``."""
    return f"{stage}_{figure}"


@dataclass(frozen=True)
class StageMeasurement:
    """One stage of a multi-stage case, timed on its own: ``name`` (one of :data:`STAGE_NAMES`),
    wall-clock seconds of its pipeline call, and its peak VRAM in MiB (None off CUDA)."""

    name: str
    seconds_per_image: float
    peak_vram_mb: float | None = None


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
    ``stages`` holds each stage's own figures for a two-stage case (base, then refiner), empty for
    one pipeline call; ``seconds_per_image`` is then their sum and ``peak_vram_mb`` their maximum.
    ``frames`` is how many frames the image holds: 1 for a still, n for a video stored as a strip
    of n frames left to right (spec.video). Not stored in a sidecar (the config's ``video`` has it).
    """

    seconds_per_image: float
    peak_vram_mb: float | None = None
    warmup_seconds: float | None = None
    warnings: tuple[str, ...] = ()
    stages: tuple[StageMeasurement, ...] = ()
    frames: int = 1

    def stage(self, name: str) -> StageMeasurement | None:
        """The figures of the stage ``name``, None when the case has no such stage."""
        return next((stage for stage in self.stages if stage.name == name), None)


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
    :data:`FIGURE_RULE`; ``peak_vram_mb`` and ``warmup_seconds`` that or None; each stage's
    figures alike, its name one of :data:`STAGE_NAMES`, each name once; ``frames`` an int >= 1."""
    if not isinstance(measurement, Measurement):
        return f"the pipeline returned a {type(measurement).__name__} as its measurement, not a Measurement"
    frames = measurement.frames
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        return (f"the pipeline's Measurement.frames = {frames!r} is not valid; it must be an int >= 1 (how many "
                "frames the image holds: 1 for a still)")
    figures: list[tuple[str, object, bool]] = [(name, getattr(measurement, name), name == "seconds_per_image")
                                               for name in ("seconds_per_image", "peak_vram_mb", "warmup_seconds")]
    names: list[str] = []
    for stage in measurement.stages:
        if not isinstance(stage, StageMeasurement) or stage.name not in STAGE_NAMES or stage.name in names:
            return (f"the pipeline's Measurement.stages holds {stage!r}; each stage must be a StageMeasurement named "
                    f"one of {', '.join(STAGE_NAMES)}, each name once")
        names.append(stage.name)
        figures += [(f"stages[{stage.name}].seconds_per_image", stage.seconds_per_image, True),
                    (f"stages[{stage.name}].peak_vram_mb", stage.peak_vram_mb, False)]
    for name, value, required in figures:
        if value is None and not required:
            continue
        if not is_valid_figure(value):
            optional = "" if required else " or None"
            return (f"the pipeline's Measurement.{name} = {value!r} is not valid; it must be {FIGURE_RULE}{optional} "
                    "(a baseline stores it, and every later run is timed against it)")
    return ""
