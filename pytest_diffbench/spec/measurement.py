"""What one timed generation measured."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """The figures of one case's timed pipeline call.

    ``seconds_per_image`` is wall-clock seconds around the pipeline call alone
    (``time.perf_counter``; on CUDA with ``torch.cuda.synchronize()`` before and after).
    ``peak_vram_mb`` is ``torch.cuda.max_memory_allocated()`` during that call in MiB (2**20
    bytes; the ``_mb`` spelling is the results.csv column's), ``None`` off CUDA.
    ``warmup_seconds`` is the warm-up generation run before the case, ``None`` when none ran.
    ``warnings`` are the numpy warnings about non-finite values (NaN or inf cast to pixels) seen
    while the image was made; a non-empty tuple makes the output invalid. Never stored in a sidecar.
    """

    seconds_per_image: float
    peak_vram_mb: float | None = None
    warmup_seconds: float | None = None
    warnings: tuple[str, ...] = ()
