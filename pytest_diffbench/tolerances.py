"""Tolerances for the quality, speed and memory gates, and where each applied value came from.

Precedence: the test's own (``@diffbench.tolerance`` or ``sweep(tolerance=...)``) over the ini
file's ``diffbench_<name>`` over the built-in defaults below. ``None`` switches a check off.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

#: Switch values an ini file may use to turn a check off.
OFF_WORDS = ("off", "none", "")


@dataclass(frozen=True)
class Tolerances:
    """The applied tolerances of one case. ``None`` means the check is off."""

    #: Structural similarity on RGB, 1.0 for identical images.
    min_ssim: float | None = 0.95
    #: Peak signal-to-noise ratio in dB (infinite for identical images).
    min_psnr: float | None = 25.0
    #: LPIPS (AlexNet) perceptual distance, 0.0 for identical images.
    max_lpips: float | None = 0.05
    #: Absolute budget on seconds per image.
    max_seconds: float | None = None
    #: Absolute budget on peak VRAM in MiB (CUDA only).
    max_vram_mb: float | None = None
    #: Allowed slowdown against the baseline's own seconds per image (0.15 = 15% slower).
    time_regression: float | None = None

    def merged(self, overrides: Mapping[str, Any], *, source: str) -> "Tolerances":
        """A copy with ``overrides`` applied, each validated; ``source`` names them in errors."""
        return dataclasses.replace(self, **{key: check_tolerance(key, value, source=source) for key, value in overrides.items()})

    def as_dict(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)


TOLERANCE_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Tolerances))

_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "min_ssim": (lambda v: -1.0 <= v <= 1.0, "a number from -1 to 1"),
    "min_psnr": (lambda v: v >= 0, "a number of dB >= 0"),
    "max_lpips": (lambda v: v >= 0, "a number >= 0"),
    "max_seconds": (lambda v: v > 0, "a number of seconds > 0"),
    "max_vram_mb": (lambda v: v > 0, "a number of MiB > 0"),
    "time_regression": (lambda v: v >= 0, "a fraction >= 0 (0.15 allows 15% slower)"),
}


def check_tolerance(name: str, value: Any, *, source: str) -> float | None:
    """Validate one tolerance; strings (from ini files) are parsed, off-words give ``None``."""
    if name not in _RANGES:
        raise ValueError(f"{source}: unknown tolerance {name!r}; valid names are {', '.join(TOLERANCE_NAMES)}")
    if value is None or (isinstance(value, str) and value.strip().lower() in OFF_WORDS):
        return None
    accepts, valid = _RANGES[name]
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number) or not accepts(number):
        raise ValueError(f"{source}: tolerance {name}={value!r} is not valid; it must be {valid}, or None/off to switch it off")
    return number
