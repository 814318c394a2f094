"""The tiny family builders (builders.py): each makes a 64x64 output with 2 steps, builds the
same weights whatever torch's global generator holds and in another process, and gives a
conftest that a project can use."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

PROMPT = "a red circle on a blue background"


def ramp(mode: str = "RGB") -> Image.Image:
    """A 64x64 test image: a colour ramp (RGB) or its left/right halves (L, a mask)."""
    y, x = np.mgrid[0:64, 0:64]
    if mode == "L":
        return Image.fromarray(((x >= 32) * 255).astype(np.uint8), mode="L")
    return Image.fromarray(np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8))


#: The keywords each family needs besides the prompt for one 64x64 output.
CALLS: dict[str, dict[str, Any]] = {
    "sd": {}, "lcm": {}, "sdxl": {}, "sd3": {}, "lora": {},
    "img2img": {"image": ramp(), "strength": 0.6},
    "sdxl_refiner": {"image": ramp(), "strength": 0.6},
    "inpaint": {"image": ramp(), "mask_image": ramp("L")},
    "controlnet": {"image": ramp()},
    "animatediff": {"num_frames": 2},
    "flux": {"width": 64, "height": 64},
}

DIGEST_SCRIPT = """
import hashlib, importlib.util, json, sys
import torch
spec = importlib.util.spec_from_file_location("b", sys.argv[1])
b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)
torch.manual_seed(12345)
out = {}
for family in json.loads(sys.argv[2]):
    pipe = b.BUILDERS[family]()
    digest = hashlib.sha256()
    for name, component in sorted(pipe.components.items()):
        if isinstance(component, torch.nn.Module):
            for key, tensor in sorted(component.state_dict().items()):
                digest.update(key.encode()); digest.update(tensor.detach().contiguous().numpy().tobytes())
    out[family] = digest.hexdigest()
print(json.dumps(out))
"""


def weights_digest(pipe: Any) -> str:
    """SHA-256 over every tensor of every model of ``pipe`` (names and bytes)."""
    import torch

    digest = hashlib.sha256()
    for _, component in sorted(pipe.components.items()):
        if isinstance(component, torch.nn.Module):
            for key, tensor in sorted(component.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.model
@pytest.mark.parametrize("family", sorted(CALLS))
def test_each_builder_makes_a_64x64_output_with_2_steps(builders: ModuleType, family: str) -> None:
    import torch

    pipe = builders.BUILDERS[family]()
    assert pipe.device.type == "cpu" and pipe.dtype == torch.float32
    assert pipe.name_or_path == f"families/tiny-{family}" or family == "lora"
    output = pipe(prompt=PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(0), **CALLS[family])
    images = output.frames[0] if family == "animatediff" else output.images
    assert len(images) == CALLS[family].get("num_frames", 1)
    assert {image.size for image in images} == {(64, 64)}
    assert np.asarray(images[0]).std() > 0  # not a blank image


@pytest.mark.model
@pytest.mark.subprocess
def test_builders_make_the_same_weights_whatever_the_global_generator_and_in_another_process(builders: ModuleType) -> None:
    import torch

    families = sorted(CALLS)
    here = {}
    for i, family in enumerate(families):
        torch.manual_seed(i)  # whatever torch's global generator holds: the builder seeds it
        here[family] = weights_digest(builders.BUILDERS[family]())
    assert here["controlnet"] != here["sd"]  # the digest sees the ControlNet
    done = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT, str(builders.__file__), json.dumps(families)],
                          capture_output=True, text=True, check=True, timeout=600)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == here


@pytest.mark.model
def test_the_lora_is_loaded_as_a_named_adapter_from_its_file(builders: ModuleType, tmp_path: Any) -> None:
    import torch

    pipe = builders.build_lora(builders.build_sd(), adapter_name="style", folder=tmp_path)
    assert pipe.get_active_adapters() == ["style"]
    assert (tmp_path / "pytorch_lora_weights.safetensors").is_file()

    def image(scale: float) -> np.ndarray:
        out = pipe(prompt=PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                   cross_attention_kwargs={"scale": scale})
        return np.asarray(out.images[0])

    assert not np.array_equal(image(0.0), image(1.0))  # the adapter changes the image
    sd3 = builders.build_lora(builders.build_sd3(), folder=tmp_path / "sd3")
    assert sd3.get_active_adapters() == ["tiny"] and (tmp_path / "sd3" / "pytorch_lora_weights.safetensors").is_file()


@pytest.mark.model  # imports torch and diffusers
def test_conftest_for_builds_the_family_and_runs_the_setup(builders: ModuleType) -> None:
    source = builders.conftest_for("sd3", setup="pipe.scheduler = pipe.scheduler\npipe.marker = 1")
    compile(source, "conftest.py", "exec")
    assert "pipe = family_builders.build_sd3()\n    pipe.scheduler = pipe.scheduler\n    pipe.marker = 1\n    return pipe" in source
    assert '@pytest.fixture(scope="session")' in source
    module = builders.fixture_source("sdxl_two_stage", scope="module")
    compile(module, "test_module.py", "exec")
    assert '@pytest.fixture(scope="module")' in module and "diffbench.two_stage(base, " in module
    assert str(builders.T5_TOKENIZER) in builders.conftest_for("flux")
    files = builders.project_files("lora")
    assert set(files) == {"family_builders", "conftest"} and "def build_lora(" in files["family_builders"]
    with pytest.raises(KeyError, match="unknown family 'sd4': expected one of animatediff, controlnet, flux, img2img, inpaint, lcm, lora, sd, sd3, sd3_lora, sdxl, sdxl_refiner, sdxl_two_stage"):
        builders.conftest_for("sd4")
