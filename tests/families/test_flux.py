"""FluxPipeline (flow matching, a T5 text encoder with the tokenizer shipped in data/) end to end,
built tiny and offline (builders.py): baselines, a clean rerun in another process, the scheduler's
``shift`` and ``use_dynamic_shifting`` set in the fixture caught as stale baselines, the samplers
that can take Flux's ``mu`` accepted and the others refused in one line."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant, check_samplers, sampler_module

BODY = 'diffbench.generate("a red cube", width=64, height=64)'
SCHEDULER = "pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, {})"
ACCEPTED = ["Euler", "UniPC"]
REFUSED = ["Heun", "DPM++ 2M", "DDIM", "Euler a", "DPM++ SDE", "LCM"]


@pytest.mark.subprocess
@pytest.mark.model
def test_flux_lifecycle_scheduler_changes_and_samplers(family_lifecycle: Any) -> None:
    runs = family_lifecycle("flux", [
        Variant("plain", body=BODY),
        Variant("shift", field="scheduler.shift", body=BODY, change=SCHEDULER.format("shift=3.0")),
        Variant("dynamic", field="scheduler.use_dynamic_shifting", body=BODY,
                change=SCHEDULER.format("use_dynamic_shifting=True")),
    ], extra=(sampler_module(ACCEPTED, REFUSED, body=BODY),))
    plain = runs.result("plain")
    assert (plain.setting("workflow"), plain.setting("width"), plain.setting("height")) == ("FluxPipeline", 64, 64)
    for run in (runs.made, runs.again):
        check_samplers(run, "flow-matching", ACCEPTED, REFUSED)
