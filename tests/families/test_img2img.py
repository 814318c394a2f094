"""StableDiffusionImg2ImgPipeline end to end, built tiny and offline (builders.py): a PIL input
image and ``strength`` recorded as data (a pixel digest, not the pixels), baselines, a clean rerun
in another process, one changed input pixel, another strength and a scheduler key set in the
fixture each caught as a stale baseline; a uint8 array makes the image its PIL twin makes; a
valid low-strength case (steps=4, strength=0.3) survives its warm-up."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant, check_samplers, sampler_module

BODY = 'diffbench.generate("a red cube", image=Image.fromarray(ramp()), strength=0.6)'
ACCEPTED = ["Euler", "DDIM", "DPM++ 2M Karras", "DPM++ SDE"]


@pytest.mark.subprocess
@pytest.mark.model
def test_img2img_lifecycle_inputs_strength_scheduler_and_samplers(family_lifecycle: Any, project: Any) -> None:
    runs = family_lifecycle("img2img", [
        Variant("plain", body=BODY),
        Variant("uint8", body='diffbench.generate("a red cube", image=ramp(), strength=0.6)'),
        Variant("low_strength", body=BODY.replace("0.6", "0.3"), sweep="seeds=0, steps=4"),
        Variant("pixel", field="pipeline_kwargs.image", body=BODY, new_body=BODY.replace("ramp()", "ramp(shift=1)")),
        Variant("strength", field="pipeline_kwargs.strength", body=BODY, new_body=BODY.replace("0.6", "0.7")),
        Variant("spacing", field="scheduler.timestep_spacing", body=BODY,
                change='pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, timestep_spacing="trailing")'),
    ], extra=(sampler_module(ACCEPTED, [], body=BODY),))
    check_samplers(runs.again, "noise-prediction", ACCEPTED, [])
    image = runs.result("plain", second=False).setting("pipeline_kwargs")["image"]
    assert len(str(image)) < 400  # a digest, size and mode: not 64x64x3 pixels
    # The same pixels as PIL or as a uint8 array: the same picture (diffusers alone would not rescale uint8).
    pixels = {name: project.read_json(project.baseline_pair("test_case", module=f"test_{name}")[1])["pixels_sha256"]
              for name in ("plain", "uint8")}
    assert pixels["plain"] == pixels["uint8"]
    assert len(runs.result("pixel").message.encode()) < 4096
