"""run.inputs against real diffusers pipelines (tiny, seeded random weights, in-process): a PIL
image, a uint8 array and a float array of one picture give the same image through img2img,
inpainting and ControlNet, while the uint8 array given raw to diffusers (not rescaled by it)
gives another: the conversion is what makes the forms agree."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.run.inputs import prepare_inputs

pytestmark = pytest.mark.model

PIXELS = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
MASK = np.zeros((64, 64), np.uint8)
MASK[16:48, 16:48] = 255
FORMS: dict[str, Callable[[np.ndarray], Any]] = {
    "pil": Image.fromarray, "uint8": lambda a: a, "float": lambda a: a.astype(np.float32) / 255,
}


@pytest.fixture(scope="module")
def base() -> Any:
    from pytest_diffbench.run.pipelines import build_random_pipeline

    return build_random_pipeline()


def make(base: Any, family: str) -> Any:
    import torch
    from diffusers import (ControlNetModel, StableDiffusionControlNetPipeline, StableDiffusionImg2ImgPipeline,
                           StableDiffusionInpaintPipeline)

    components = {**base.components, "requires_safety_checker": False}
    if family == "controlnet":
        torch.manual_seed(0)
        controlnet = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(16, 32))
        pipe = StableDiffusionControlNetPipeline(**components, controlnet=controlnet)
    else:
        pipe = {"img2img": StableDiffusionImg2ImgPipeline, "inpaint": StableDiffusionInpaintPipeline}[family](**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe: Any, **kwargs: Any) -> np.ndarray:
    import torch

    return pipe(prompt="a red cube", num_inference_steps=2, guidance_scale=5.0, output_type="np",
                generator=torch.Generator().manual_seed(0), **kwargs).images[0]


@pytest.mark.parametrize("family", ["img2img", "inpaint", "controlnet"])
def test_one_picture_in_every_form_gives_one_image(base, family):
    pipe = make(base, family)
    extra: dict[str, Any] = {"strength": 0.9} if family == "img2img" else {}
    images = {}
    for form, convert in FORMS.items():
        kwargs = {"image": convert(PIXELS), **extra}
        if family == "inpaint":
            kwargs["mask_image"] = convert(MASK)
        prepared = prepare_inputs(kwargs)
        images[form] = generate(pipe, **prepared.call_kwargs)
    assert np.array_equal(images["uint8"], images["pil"]) and np.array_equal(images["float"], images["pil"])
    if family != "controlnet":  # diffusers does not rescale a raw uint8 array: another (wrong) image
        raw = {"image": PIXELS, **extra, **({"mask_image": MASK} if family == "inpaint" else {})}
        assert not np.allclose(generate(pipe, **raw), images["pil"], atol=1e-3)


def test_latents_made_with_another_thread_count_record_alike(base):
    """A refiner fed a first stage's latents: another thread count changes their last bits (on
    this pipeline by about 1e-4), never the config hash or the stale check."""
    import torch

    from pytest_diffbench.spec.config import config_hash, diff_configs

    threads = torch.get_num_threads()
    latents = {}
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            latents[count] = base(prompt="a red cube", num_inference_steps=3, guidance_scale=5.0, output_type="latent",
                                  generator=torch.Generator().manual_seed(0)).images
    finally:
        torch.set_num_threads(threads)
    one, two = (prepare_inputs({"image": latents[count]}).records for count in (1, 2))
    assert config_hash(one) == config_hash(two) and diff_configs(one, two) == []
    moved = prepare_inputs({"image": latents[1] * 1.01}).records
    assert [path for path, _, _ in diff_configs(one, moved)] == ["image.~values"]
