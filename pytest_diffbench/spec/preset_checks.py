"""The sweep's checks of a preset's values, for :class:`~pytest_diffbench.spec.presets.PresetSource`
(``check=sweep_problems``): a preset is refused when read, every bad field at once, for what a sweep
of its values would refuse. A module of its own because the sweep imports the presets.

Nothing here imports torch.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from pytest_diffbench.spec.presets import sweep_defaults
from pytest_diffbench.spec.sweep import SweepError, expand_sweep


def sweep_problems(values: Mapping[str, Any]) -> list[str]:
    """What a sweep of a preset's normalised ``values`` alone refuses (every bad axis in one
    line, as the sweep says it: steps, cfg, samplers, width/height/size, pipeline keywords); none
    when it takes them. The case cap is left to the sweep that uses the preset."""
    try:
        expand_sweep(sweep_defaults(values), max_cases=sys.maxsize)
    except SweepError as exc:
        return [str(exc)]
    return []
