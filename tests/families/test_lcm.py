"""LatentConsistencyModelPipeline end to end, built tiny and offline (builders.py): baselines with
the LCM sampler, a clean rerun in another process, LCM's ``original_inference_steps`` set in the
fixture caught as a stale baseline, a ``negative_prompt`` (which this pipeline ignores) refused
in one line rather than recorded as if it mattered, as are ``num_inference_steps`` and
``output_type`` (the sweep sets them), and the other sampler names refused in one line."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant, check_samplers, sampler_module

SWEEP = 'seeds=0, steps=2, samplers="LCM"'
BODY = 'diffbench.generate("a red cube")'
REFUSED = ["Euler", "DDIM", "DPM++ 2M", "TCD"]


@pytest.mark.subprocess
@pytest.mark.model
def test_lcm_lifecycle_original_steps_refused_negative_prompt_and_samplers(family_lifecycle: Any) -> None:
    runs = family_lifecycle("lcm", [
        Variant("plain", body=BODY, sweep=SWEEP),
        Variant("negative", body=BODY, new_body='diffbench.generate("a red cube", negative_prompt="dark")', sweep=SWEEP,
                refused="takes no negative_prompt"),
        # Keywords the sweep sets are refused in generate(), not recorded and ignored.
        Variant("steps_keyword", body=BODY, new_body='diffbench.generate("a red cube", num_inference_steps=30)', sweep=SWEEP,
                refused="num_inference_steps"),
        Variant("latent", body=BODY, new_body='diffbench.generate("a red cube", output_type="latent")', sweep=SWEEP,
                refused="output_type"),
        Variant("original_steps", field="scheduler.original_inference_steps", body=BODY, sweep=SWEEP,
                change="pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, original_inference_steps=25)"),
    ], extra=(sampler_module(["LCM"], REFUSED),))
    assert runs.result("plain").setting("scheduler")["class"] == "LCMScheduler"
    for run in (runs.made, runs.again):
        check_samplers(run, "consistency", ["LCM"], REFUSED)
