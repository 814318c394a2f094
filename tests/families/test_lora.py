"""A peft LoRA on the built-in diffbench-tiny model, and on SD3's transformer, end to end
(builders.py): the ``lora_scale`` axis reaches the keyword each pipeline takes
(``cross_attention_kwargs`` / ``joint_attention_kwargs``: scale 0 and 0.8 make different
images), baselines, a clean rerun in another process, and as stale baselines: adapter weights set
with ``set_adapters``, another LoRA file under the same adapter name, a fused LoRA and a disabled
one; a ``lora_scale`` axis on a fused LoRA (every scale the same image) is refused in one line."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant

SWEEP = "seeds=0, steps=2, lora_scale=0.8"
ZERO = "seeds=0, steps=2, lora_scale=0.0"


@pytest.mark.subprocess
@pytest.mark.model
def test_lora_lifecycle_scale_adapter_weights_files_fused_and_disabled(family_lifecycle: Any, project: Any) -> None:
    runs = family_lifecycle("lora", [
        Variant("plain", sweep=SWEEP),
        Variant("zero", sweep=ZERO),
        Variant("weights", field="adapters.tiny.weights", sweep=SWEEP,
                change='pipe.set_adapters(["tiny"], adapter_weights=[0.5])'),
        Variant("file", field="adapters.tiny.digest", sweep=SWEEP,
                change='pipe.delete_adapters("tiny")\npipe = family_builders.build_lora(pipe, folder=tmp / "other", rank=8)'),
        Variant("fused", field="adapters.tiny.fused", change="pipe.fuse_lora()"),
        Variant("disabled", field="adapters.tiny.enabled", change="pipe.disable_lora()"),
        Variant("fused_scale", sweep=SWEEP, change="pipe.fuse_lora()", refused="sweep axis 'lora_scale' changes nothing here"),
        Variant("sd3", family="sd3_lora", sweep=SWEEP),
        Variant("sd3_zero", family="sd3_lora", sweep=ZERO),
    ])
    plain = runs.result("plain")
    assert plain.setting("model") == "diffbench/diffbench-tiny"
    assert plain.setting("pipeline_kwargs") == {"lora_scale": 0.8}
    adapter = plain.setting("adapters")["tiny"]
    assert (adapter["active"], adapter["enabled"], adapter["fused"], adapter["weights"]) == (True, True, False, {"unet": 1.0})
    assert runs.result("sd3").setting("adapters")["tiny"]["components"] == ["transformer"]

    def pixels(module: str) -> str:
        sidecar = next((project.baselines / project.PIN / f"test_{module}" / "test_case").glob("*.json"))
        return str(project.read_json(sidecar)["pixels_sha256"])

    assert pixels("plain") != pixels("zero") and pixels("sd3") != pixels("sd3_zero")
