"""A peft LoRA on the built-in diffbench-tiny model, and on SD3's transformer, end to end
(builders.py): the ``lora_scale`` axis routed to the keyword each pipeline takes
(``cross_attention_kwargs`` / ``joint_attention_kwargs``), baselines, a clean rerun in another
process, and as stale baselines: adapter weights set with ``set_adapters``, a fused LoRA, a
disabled LoRA and another LoRA file under the same adapter name."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant

SWEEP = "seeds=0, steps=2, lora_scale=0.8"


@pytest.mark.subprocess
@pytest.mark.model
def test_lora_lifecycle_adapter_weights_fused_and_files(family_lifecycle: Any) -> None:
    runs = family_lifecycle("lora", [
        Variant("plain", sweep=SWEEP),
        Variant("weights", field="adapters.tiny.weights", sweep=SWEEP,
                change='pipe.set_adapters(["tiny"], adapter_weights=[0.5])'),
        Variant("fused", field="adapters.tiny.fused", sweep=SWEEP, change="pipe.fuse_lora()"),
        Variant("disabled", field="adapters.tiny.enabled", sweep=SWEEP, change="pipe.disable_lora()"),
        Variant("file", field="adapters.tiny.digest", sweep=SWEEP,
                change='pipe.delete_adapters("tiny")\npipe = family_builders.build_lora(pipe, folder=tmp / "other", rank=8)'),
        Variant("sd3", family="sd3_lora", sweep=SWEEP),
    ])
    plain = runs.result("plain")
    assert plain.setting("model") == "diffbench/diffbench-tiny"
    adapter = plain.setting("adapters")["tiny"]
    assert (adapter["active"], adapter["fused"], adapter["components"]) == (True, False, ["unet"])
    assert "cross_attention_kwargs" in str(plain.config) and "joint_attention_kwargs" in str(runs.result("sd3").config)
