"""StableDiffusion3Pipeline (flow matching) end to end, built tiny and offline (builders.py):
baselines, a clean rerun in another process, the scheduler's ``shift`` and
``use_dynamic_shifting`` set in the fixture caught as stale baselines, the flow-matching variant
of each sampler name that has one, and a one-line refusal of the noise-prediction ones."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant, check_samplers, sampler_module

SCHEDULER = "pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, {})"
ACCEPTED = ["Euler", "Heun", "UniPC", "DEIS", "DPM++ 2M"]
REFUSED = ["DDIM", "Euler a", "LMS", "DPM++ 2M Karras", "DPM++ SDE", "LCM"]


@pytest.mark.subprocess
@pytest.mark.model
def test_sd3_lifecycle_scheduler_changes_and_samplers(family_lifecycle: Any) -> None:
    runs = family_lifecycle("sd3", [
        Variant("plain"),
        Variant("shift", field="scheduler.shift", change=SCHEDULER.format("shift=3.0")),
        Variant("dynamic", field="scheduler.use_dynamic_shifting", change=SCHEDULER.format("use_dynamic_shifting=True")),
    ], extra=(sampler_module(ACCEPTED, REFUSED),))
    plain = runs.result("plain")
    assert plain.setting("workflow") == "StableDiffusion3Pipeline"
    assert plain.setting("scheduler")["class"] == "FlowMatchEulerDiscreteScheduler"
    for run in (runs.made, runs.again):
        check_samplers(run, "flow-matching", ACCEPTED, REFUSED)
    unipc = runs.made.result("test_accepted[seed0-unipc-")
    assert unipc.setting("scheduler")["class"] == "UniPCMultistepScheduler"
    assert unipc.setting("scheduler")["use_flow_sigmas"] is True
