"""Tiny seeded pipelines of every diffusers family the plugin supports, built offline.

Each ``build_*`` function returns a ready pipeline on the CPU in float32 whose default output is
64x64 pixels (Flux: pass ``width=64, height=64``, its default size is 256), built from seeded
random weights the way diffusers' tests build ``get_dummy_components``: ``torch.manual_seed(0)``
before each model, so two processes (or two calls) build the same weights, whatever torch's global
generator held before. They draw noise, not meaning: use them for the plumbing a family needs.
Each builds in well under a second; a 2-step image takes about as long.

This module imports only torch, diffusers, transformers, peft and tokenizers (never pytest or
pytest_diffbench), so a test can copy its source next to a pytester project's conftest.py as
``family_builders.py`` (:func:`project_files`); :func:`conftest_for` gives that conftest's source.

Tokenizers: the CLIP ones load the tokenizer shipped with pytest_diffbench's diffbench-tiny model
(found without importing the package); Flux's T5 tokenizer is ``data/t5-tokenizer`` next to this
file (made by ``data/train_t5_tokenizer.py``).
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from diffusers import (
    AnimateDiffPipeline,
    AutoencoderKL,
    ControlNetModel,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    LatentConsistencyModelPipeline,
    LCMScheduler,
    MotionAdapter,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from transformers import (
    AutoTokenizer,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
)

#: Output width and height of every builder's pipeline, in pixels.
SIZE = 64
#: Flux's T5 tokenizer (a folder ``T5TokenizerFast.from_pretrained`` and ``AutoTokenizer`` load).
T5_TOKENIZER = Path(__file__).resolve().parent / "data" / "t5-tokenizer"
#: The name each pipeline records (``_name_or_path``): ``families/tiny-<family>``.
NAME_PREFIX = "families/tiny-"
#: Width of the CLIP text encoders' hidden states and pooled projections.
TEXT_WIDTH = 32
#: The SD-1.x-style scheduler of the UNet families (diffusers' SD test configuration).
SD_SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1,
                "timestep_spacing": "leading"}

M = TypeVar("M")


def seeded(factory: Callable[[], M]) -> M:
    """``factory()`` after ``torch.manual_seed(0)``: the same weights in any process."""
    torch.manual_seed(0)
    return factory()


def clip_tokenizer_dir() -> Path:
    """The CLIP tokenizer folder of pytest_diffbench's shipped diffbench-tiny model.

    Raises ModuleNotFoundError when pytest_diffbench is not installed. The package is located,
    not imported.
    """
    spec = importlib.util.find_spec("pytest_diffbench")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pytest_diffbench is not installed: its diffbench-tiny tokenizer is needed")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "diffbench-tiny" / "tokenizer"


def clip_tokenizer() -> CLIPTokenizer:
    """diffbench-tiny's CLIP tokenizer: 560 tokens, 24 per prompt."""
    return CLIPTokenizer.from_pretrained(clip_tokenizer_dir(), local_files_only=True)


def clip_config(tokenizer: CLIPTokenizer) -> CLIPTextConfig:
    """A 2-layer CLIP text encoder of width :data:`TEXT_WIDTH` for ``tokenizer``."""
    return CLIPTextConfig(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, max_position_embeddings=tokenizer.model_max_length,
        hidden_size=TEXT_WIDTH, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        projection_dim=TEXT_WIDTH, hidden_act="gelu", layer_norm_eps=1e-5,
    )


def clip_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    return seeded(lambda: CLIPTextModel(clip_config(tokenizer)))


def clip_encoder_with_projection(tokenizer: CLIPTokenizer) -> CLIPTextModelWithProjection:
    return seeded(lambda: CLIPTextModelWithProjection(clip_config(tokenizer)))


def sd_vae() -> AutoencoderKL:
    """A 2-block VAE (scale factor 2: 64x64 pixels are 32x32 latents of 4 channels)."""
    return seeded(lambda: AutoencoderKL(
        block_out_channels=(4, 8), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=SIZE,
    ))


def flow_vae(latent_channels: int) -> AutoencoderKL:
    """The VAE of the flow-matching families (no quant convs, a shift factor), scale factor 2."""
    return seeded(lambda: AutoencoderKL(
        block_out_channels=(4, 8), in_channels=3, out_channels=3, latent_channels=latent_channels,
        norm_num_groups=1, layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035, sample_size=SIZE,
    ))


def sd_unet(in_channels: int = 4, time_cond_proj_dim: int | None = None) -> UNet2DConditionModel:
    """An SD-1.x-style UNet on 32x32 latents (``in_channels`` 9 for inpainting; a
    ``time_cond_proj_dim`` for LCM's guidance embedding)."""
    return seeded(lambda: UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=SIZE // 2, in_channels=in_channels,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=TEXT_WIDTH, norm_num_groups=2,
        time_cond_proj_dim=time_cond_proj_dim,
    ))


def sdxl_unet(time_ids: int, cross_attention_dim: int) -> UNet2DConditionModel:
    """An SDXL UNet: ``time_ids`` micro-conditioning ids (6 for the base, 5 for a refiner with an
    aesthetic score) of 8 channels each, plus the pooled text projection."""
    return seeded(lambda: UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=SIZE // 2, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=time_ids * 8 + TEXT_WIDTH, cross_attention_dim=cross_attention_dim,
        norm_num_groups=2,
    ))


def sd_scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(**SD_SCHEDULER)


def named(pipe: Any, family: str) -> Any:
    """``pipe`` recorded as ``families/tiny-<family>`` (pipeline and models), its progress bar off."""
    name = NAME_PREFIX + family
    pipe.register_to_config(_name_or_path=name)
    for component in pipe.components.values():
        if hasattr(component, "register_to_config"):  # diffusers models
            component.register_to_config(_name_or_path=name)
        elif hasattr(getattr(component, "config", None), "name_or_path"):  # transformers models
            component.config.name_or_path = name
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd_components(in_channels: int = 4, time_cond_proj_dim: int | None = None) -> dict[str, Any]:
    """The keyword arguments of an SD-1.x-style pipeline (no safety checker)."""
    tokenizer = clip_tokenizer()
    return {
        "vae": sd_vae(), "text_encoder": clip_encoder(tokenizer), "tokenizer": tokenizer,
        "unet": sd_unet(in_channels, time_cond_proj_dim), "scheduler": sd_scheduler(),
        "safety_checker": None, "feature_extractor": None, "requires_safety_checker": False,
    }


def build_sd() -> StableDiffusionPipeline:
    """StableDiffusionPipeline, 64x64."""
    return named(StableDiffusionPipeline(**sd_components()), "sd")


def build_img2img() -> StableDiffusionImg2ImgPipeline:
    """StableDiffusionImg2ImgPipeline: its output has the input image's size (give a 64x64 image)."""
    return named(StableDiffusionImg2ImgPipeline(**sd_components()), "img2img")


def build_inpaint() -> StableDiffusionInpaintPipeline:
    """StableDiffusionInpaintPipeline (a 9-channel UNet: latents, mask, masked image), 64x64."""
    return named(StableDiffusionInpaintPipeline(**sd_components(in_channels=9)), "inpaint")


def build_controlnet() -> StableDiffusionControlNetPipeline:
    """StableDiffusionControlNetPipeline with a ControlNet made from its UNet (seeded: ``from_unet``
    draws from torch's global generator), 64x64; the control image is 64x64 pixels."""
    components = sd_components()
    controlnet = seeded(lambda: ControlNetModel.from_unet(components["unet"], conditioning_embedding_out_channels=(16, 32)))
    return named(StableDiffusionControlNetPipeline(controlnet=controlnet, **components), "controlnet")


def build_lcm() -> LatentConsistencyModelPipeline:
    """LatentConsistencyModelPipeline: a UNet with a guidance embedding (``time_cond_proj_dim``)
    and an LCMScheduler, 64x64. It ignores ``negative_prompt``."""
    components = sd_components(time_cond_proj_dim=TEXT_WIDTH)
    components["scheduler"] = LCMScheduler(**{key: SD_SCHEDULER[key] for key in ("beta_start", "beta_end", "beta_schedule")})
    return named(LatentConsistencyModelPipeline(**components), "lcm")


def build_animatediff() -> AnimateDiffPipeline:
    """AnimateDiffPipeline with a tiny MotionAdapter, 64x64 frames (16 unless ``num_frames`` says
    otherwise); the frames are in ``output.frames[0]``."""
    components = sd_components()
    for key in ("safety_checker", "requires_safety_checker"):
        del components[key]
    adapter = seeded(lambda: MotionAdapter(block_out_channels=(4, 8), motion_layers_per_block=1,
                                           motion_norm_num_groups=2, motion_num_attention_heads=2))
    return named(AnimateDiffPipeline(motion_adapter=adapter, image_encoder=None, **components), "animatediff")


def build_sdxl() -> StableDiffusionXLPipeline:
    """StableDiffusionXLPipeline (two CLIP text encoders, the second with a projection), 64x64."""
    tokenizer = clip_tokenizer()
    pipe = StableDiffusionXLPipeline(
        vae=sd_vae(), text_encoder=clip_encoder(tokenizer), text_encoder_2=clip_encoder_with_projection(tokenizer),
        tokenizer=tokenizer, tokenizer_2=clip_tokenizer(), unet=sdxl_unet(time_ids=6, cross_attention_dim=2 * TEXT_WIDTH),
        scheduler=sd_scheduler(), add_watermarker=False,
    )
    return named(pipe, "sdxl")


def build_sdxl_refiner(base: Any = None) -> StableDiffusionXLImg2ImgPipeline:
    """An SDXL refiner: StableDiffusionXLImg2ImgPipeline without the first text encoder, with
    ``requires_aesthetics_score=True`` (5 time ids). It shares ``base``'s VAE and second text
    encoder when given (a StableDiffusionXLPipeline, as a real refiner is loaded); they have the same weights either way."""
    tokenizer = clip_tokenizer()
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=base.vae if base is not None else sd_vae(),
        text_encoder=None, tokenizer=None,
        text_encoder_2=base.text_encoder_2 if base is not None else clip_encoder_with_projection(tokenizer),
        tokenizer_2=tokenizer, unet=sdxl_unet(time_ids=5, cross_attention_dim=TEXT_WIDTH),
        scheduler=sd_scheduler(), requires_aesthetics_score=True, add_watermarker=False,
    )
    return named(pipe, "sdxl_refiner")


def build_sd3() -> StableDiffusion3Pipeline:
    """StableDiffusion3Pipeline (two CLIP encoders with projections, no T5: its embeddings are zeros),
    a FlowMatchEulerDiscreteScheduler, 64x64."""
    tokenizer = clip_tokenizer()
    transformer = seeded(lambda: SD3Transformer2DModel(
        sample_size=SIZE // 2, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=32, joint_attention_dim=TEXT_WIDTH, pooled_projection_dim=2 * TEXT_WIDTH, out_channels=4,
    ))
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=flow_vae(latent_channels=4),
        text_encoder=clip_encoder_with_projection(tokenizer), tokenizer=tokenizer,
        text_encoder_2=clip_encoder_with_projection(tokenizer), tokenizer_2=clip_tokenizer(),
        text_encoder_3=None, tokenizer_3=None,
    )
    return named(pipe, "sd3")


def build_flux(t5_tokenizer: Path = T5_TOKENIZER) -> FluxPipeline:
    """FluxPipeline (CLIP + a tiny T5 with the tokenizer in ``t5_tokenizer``), a
    FlowMatchEulerDiscreteScheduler. Call it with ``width=64, height=64``: Flux's default size is 256."""
    tokenizer = clip_tokenizer()
    t5_tok = AutoTokenizer.from_pretrained(t5_tokenizer)  # T5TokenizerFast (transformers 5: T5Tokenizer)
    t5 = seeded(lambda: T5EncoderModel(T5Config(
        vocab_size=len(t5_tok), d_model=TEXT_WIDTH, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=t5_tok.pad_token_id, eos_token_id=t5_tok.eos_token_id,
    )))
    transformer = seeded(lambda: FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=TEXT_WIDTH, pooled_projection_dim=TEXT_WIDTH, axes_dims_rope=[4, 4, 8],
    ))
    pipe = FluxPipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=flow_vae(latent_channels=4),
        text_encoder=clip_encoder(tokenizer), tokenizer=tokenizer, text_encoder_2=t5, tokenizer_2=t5_tok,
    )
    return named(pipe, "flux")


def build_lora(base: Any, adapter_name: str = "tiny", folder: Path | None = None, rank: int = 4) -> Any:
    """``base`` (a pipeline with a ``unet``, or a ``transformer``: SD3, Flux) with a seeded
    rank-``rank`` peft LoRA on its denoiser's attention projections, saved with
    ``save_lora_weights`` into ``folder`` (when None, a temporary folder removed once the LoRA is
    loaded; ``pytorch_lora_weights.safetensors``) and loaded back with
    ``load_lora_weights(folder, adapter_name=adapter_name)``, as a user loads a trained LoRA.
    Returns ``base``, changed in place."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="family-lora-") as temporary:
            return build_lora(base, adapter_name, Path(temporary), rank)
    folder.mkdir(parents=True, exist_ok=True)
    component = "unet" if getattr(base, "unet", None) is not None else "transformer"
    denoiser = getattr(base, component)
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    seeded(lambda: denoiser.add_adapter(config, adapter_name=adapter_name))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(denoiser, adapter_name=adapter_name))
    type(base).save_lora_weights(folder, **{f"{component}_lora_layers": layers}, safe_serialization=True)
    denoiser.delete_adapters(adapter_name)
    base.load_lora_weights(folder, adapter_name=adapter_name)
    return base


#: Every family's builder without arguments (``lora`` builds on :func:`build_sd`; the tests put it
#: on the built-in model, see :func:`conftest_for`).
BUILDERS: dict[str, Callable[[], Any]] = {
    "sd": build_sd, "img2img": build_img2img, "inpaint": build_inpaint, "controlnet": build_controlnet,
    "lcm": build_lcm, "animatediff": build_animatediff, "sdxl": build_sdxl, "sdxl_refiner": build_sdxl_refiner,
    "sd3": build_sd3, "flux": build_flux, "lora": lambda: build_lora(build_sd()),
}

#: The statements that build each family's ``pipe`` in a conftest (``family_builders`` is this
#: module's copy, ``diffbench`` the plugin, ``tmp`` the session's temporary folder). ``lora`` puts the
#: LoRA on the plugin's built-in diffbench-tiny model, ``sd3_lora`` on SD3's transformer; ``sdxl_two_stage`` is SDXL handing its latents
#: to the refiner after 80% of the steps (``diffbench.two_stage``).
BUILD_STATEMENTS: dict[str, str] = {
    **{family: f"pipe = family_builders.build_{family}()" for family in BUILDERS},
    "flux": "pipe = family_builders.build_flux(t5_tokenizer=Path({t5!r}))",
    "lora": 'pipe = family_builders.build_lora(load_pipeline("diffbench-tiny"), folder=tmp / "lora")',
    "sd3_lora": 'pipe = family_builders.build_lora(family_builders.build_sd3(), folder=tmp / "lora")',
    "sdxl_two_stage": ("base = family_builders.build_sdxl()\n"
                       "pipe = diffbench.two_stage(base, family_builders.build_sdxl_refiner(base), handoff=0.8)"),
}

_IMPORTS = """from pathlib import Path

import pytest

import family_builders
import pytest_diffbench as diffbench
from pytest_diffbench.run.pipelines import load_pipeline
"""

_FIXTURE = '''

@pytest.fixture(scope="{scope}")
def diffbench_pipeline(tmp_path_factory):
    """The tiny seeded {family} pipeline of family_builders.py."""
    tmp = tmp_path_factory.mktemp("family")
{statements}    return pipe
'''


def fixture_source(family: str, setup: str = "", scope: str = "session") -> str:
    """The source of a ``diffbench_pipeline`` fixture of ``scope`` that builds ``family`` (a key of
    :data:`BUILD_STATEMENTS`) with the ``family_builders`` module (:func:`project_files`), then runs
    ``setup`` (statements on ``pipe``, e.g.
    ``pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, shift=2.0)``), with
    the imports it needs first. In a test module (``scope="module"``) it overrides the conftest's.

    Raises KeyError naming the families when ``family`` is not one.
    """
    if family not in BUILD_STATEMENTS:
        raise KeyError(f"unknown family {family!r}: expected one of {', '.join(sorted(BUILD_STATEMENTS))}")
    statements = BUILD_STATEMENTS[family].format(t5=str(T5_TOKENIZER)) + "\n" + setup.strip()
    lines = "".join(f"    {line}\n" for line in statements.strip().splitlines())
    return _IMPORTS + _FIXTURE.format(scope=scope, family=family, statements=lines)


def conftest_for(family: str, setup: str = "") -> str:
    """The source of a conftest.py whose session-scoped ``diffbench_pipeline`` fixture builds
    ``family`` then runs ``setup`` (see :func:`fixture_source`). Raises KeyError for an unknown family."""
    return f'"""diffbench_pipeline: the tiny seeded {family} pipeline of family_builders.py."""\n\n' + fixture_source(family, setup)


def project_files(family: str, setup: str = "") -> dict[str, str]:
    """``{"family_builders": <this module's source>, "conftest": conftest_for(family, setup)}``:
    the keyword arguments of ``pytester.makepyfile`` that make a project use ``family``."""
    return {"family_builders": Path(__file__).read_text(encoding="utf-8"), "conftest": conftest_for(family, setup)}
