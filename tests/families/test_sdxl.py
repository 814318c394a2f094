"""StableDiffusionXLPipeline end to end, alone and handing its latents to a refiner
(``diffbench.two_stage``), built tiny and offline (builders.py): baselines, a clean rerun in
another process, and as stale baselines: a scheduler key set in the fixture (``timestep_spacing``;
Karras sigmas come with the sampler name, not from the fixture), the pipeline flag ``force_zeros_for_empty_prompt`` (base and refiner), the handoff
and the refiner's ``aesthetic_score``."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant, check_samplers, sampler_module

SCHEDULER = "pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, {})"
REFINED = 'diffbench.generate("a red cube", aesthetic_score=6.0)'
STAGES = "seeds=0, steps=3"
ACCEPTED = ["Euler", "DPM++ 2M Karras", "DPM++ SDE", "UniPC"]


@pytest.mark.subprocess
@pytest.mark.model
def test_sdxl_and_refiner_lifecycle_scheduler_flags_and_handoff(family_lifecycle: Any) -> None:
    two = {"family": "sdxl_two_stage", "body": REFINED, "sweep": STAGES}
    runs = family_lifecycle("sdxl", [
        Variant("plain"),
        Variant("spacing", field="scheduler.timestep_spacing", change=SCHEDULER.format('timestep_spacing="trailing"')),
        # Karras sigmas are the sampler name's choice ("DPM++ 2M Karras"): a flag set in the fixture is
        # not carried into the "Euler" the case asks for, so neither the image nor the hash changes.
        Variant("karras", change=SCHEDULER.format("use_karras_sigmas=True")),
        Variant("zeros", field="pipeline_config.force_zeros_for_empty_prompt",
                change="pipe.register_to_config(force_zeros_for_empty_prompt=False)"),
        Variant("refined", **two),
        Variant("handoff", field="refiner.handoff", change="pipe = diffbench.two_stage(pipe.base, pipe.refiner, handoff=0.6)", **two),
        Variant("refiner_zeros", field="refiner.pipeline_config.force_zeros_for_empty_prompt",
                change="pipe.refiner.register_to_config(force_zeros_for_empty_prompt=False)", **two),
        Variant("aesthetic", field="pipeline_kwargs.aesthetic_score", new_body=REFINED.replace("6.0", "7.0"),
                **{**two, "body": REFINED}),
    ], extra=(sampler_module(ACCEPTED, []),))
    check_samplers(runs.again, "noise-prediction", ACCEPTED, [])
    assert runs.again.result("test_accepted[seed0-dpmpp_2m_karras-").setting("scheduler")["use_karras_sigmas"] is True
    plain, refined = runs.result("plain"), runs.result("refined")
    assert plain.setting("pipeline_config")["force_zeros_for_empty_prompt"] is True
    refiner = refined.setting("refiner")
    assert refiner["workflow"] == "StableDiffusionXLImg2ImgPipeline" and refiner["handoff"] == 0.8
    assert refiner["pipeline_config"]["requires_aesthetics_score"] is True
    assert [stage.name for stage in refined.measurement.stages] == ["base", "refiner"]
