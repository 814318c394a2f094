"""StableDiffusionInpaintPipeline end to end, built tiny and offline (builders.py): a PIL image
and a PIL mask recorded as pixel digests, baselines, a clean rerun in another process, one changed
image pixel, a moved mask edge and a scheduler key set in the fixture each caught as a stale
baseline."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant

BODY = 'diffbench.generate("a red cube", image=Image.fromarray(ramp()), mask_image=halves())'


@pytest.mark.subprocess
@pytest.mark.model
def test_inpaint_lifecycle_image_mask_and_scheduler(family_lifecycle: Any) -> None:
    runs = family_lifecycle("inpaint", [
        Variant("plain", body=BODY),
        Variant("pixel", field="pipeline_kwargs.image", body=BODY, new_body=BODY.replace("ramp()", "ramp(shift=1)")),
        Variant("mask", field="pipeline_kwargs.mask_image", body=BODY, new_body=BODY.replace("halves()", "halves(left=1)")),
        Variant("spacing", field="scheduler.timestep_spacing", body=BODY,
                change='pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, timestep_spacing="trailing")'),
    ])
    recorded = runs.result("plain").setting("pipeline_kwargs")
    assert recorded["image"] != recorded["mask_image"] and len(str(recorded)) < 800
    assert runs.result("plain").setting("workflow") == "StableDiffusionInpaintPipeline"
