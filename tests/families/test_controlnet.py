"""StableDiffusionControlNetPipeline end to end, built tiny and offline (builders.py): the control
image given as a PIL image (no array workaround) and recorded as a pixel digest, baselines, a clean
rerun in another process, a changed control image pixel, another conditioning scale and retrained
ControlNet weights each caught as a stale baseline."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant

BODY = 'diffbench.generate("a red cube", image=Image.fromarray(ramp()), controlnet_conditioning_scale=1.0)'


@pytest.mark.subprocess
@pytest.mark.model
def test_controlnet_lifecycle_control_image_scale_and_weights(family_lifecycle: Any) -> None:
    runs = family_lifecycle("controlnet", [
        Variant("plain", body=BODY),
        Variant("pixel", field="pipeline_kwargs.image", body=BODY, new_body=BODY.replace("ramp()", "ramp(shift=1)")),
        Variant("scale", field="pipeline_kwargs.controlnet_conditioning_scale", body=BODY, new_body=BODY.replace("1.0", "0.5")),
        Variant("weights", field="model_fingerprint", body=BODY,
                change="with __import__('torch').no_grad():\n    pipe.controlnet.conv_in.bias.add_(0.05)"),
    ])
    plain = runs.result("plain")
    assert plain.setting("controlnets") == ["families/tiny-controlnet"]
    assert len(str(plain.setting("pipeline_kwargs"))) < 400
