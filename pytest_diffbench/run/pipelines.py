"""The built-in pipelines (the shipped diffbench-tiny model, a random-weight twin), ``--diffbench-model``
loading, and device/dtype parsing."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

import torch
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from diffusers.utils import deprecation_utils as diffusers_deprecation
from diffusers.utils import logging as diffusers_logging
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.utils import logging as transformers_logging

from pytest_diffbench.run.fingerprint import module_components
from pytest_diffbench.spec.targets import BUILTIN_MODELS, DTYPE_ALIASES, check_device

#: Pipelines are typed ``Any`` here: diffusers' own annotations lack the attributes every pipeline
#: has at run time (``components``, ``device``, ``to``), and any DiffusionPipeline subclass is welcome.
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
#: The shipped trained model (see its model card, ``assets/diffbench-tiny/README.md``), recorded
#: in configs as ``diffbench/<its --diffbench-model name>``, as every built-in is.
TINY_MODEL_ID = "diffbench/diffbench-tiny"
TINY_MODEL_DIR = ASSETS_DIR / "diffbench-tiny"
#: The same kind of pipeline with seeded random weights, built from configs only.
RANDOM_MODEL_ID = "diffbench/diffbench-tiny-random"
RANDOM_SD_DIR = ASSETS_DIR / "tiny-sd"

# Recent diffusers renamed from_pretrained's torch_dtype to dtype, and warn on the old name.
_DTYPE_KEYWORD = "dtype" if hasattr(diffusers_deprecation, "_resolve_dtype") else "torch_dtype"


def load_pipeline(
    model: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, folder: Path | None = None
) -> Any:
    """The pipeline ``--diffbench-model`` names, on ``device`` in ``dtype``.

    ``diffbench-tiny`` and ``diffbench-tiny-random`` are built in, recorded as
    ``diffbench/diffbench-tiny`` and ``diffbench/diffbench-tiny-random`` (:data:`TINY_MODEL_ID`,
    :data:`RANDOM_MODEL_ID`) and loaded by either name, so a recorded name can be given back.
    Anything else is loaded with ``DiffusionPipeline.from_pretrained`` from ``folder`` when given
    (a local diffusers folder, ``model`` then being its recorded name, see
    ``plugin.options.resolve_model``), else from ``model`` (a hub id in the cache or one that can be
    downloaded), and recorded as ``model``, so the frozen config (and its hash) does not depend on
    where the folder or the cache lies. Raises ValueError (one line, naming the library's error)
    when it cannot be loaded.
    """
    if model in ("diffbench-tiny", TINY_MODEL_ID):
        return load_tiny_pipeline(device, dtype)
    if model in ("diffbench-tiny-random", RANDOM_MODEL_ID):
        return build_random_pipeline(device, dtype)
    try:
        with _quiet_loading():
            pipe = DiffusionPipeline.from_pretrained(folder or model, **{_DTYPE_KEYWORD: dtype})
    except Exception as exc:  # whatever a broken folder or an unreachable hub raises: one line
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise ValueError(
            f"cannot load {model!r} with DiffusionPipeline.from_pretrained ({type(exc).__name__}: {reason}); use a "
            f"diffusers folder, a hub id, or one of the built-in models {', '.join(BUILTIN_MODELS)}"
        ) from None
    # Already in dtype: from_pretrained keeps the modules a model needs in float32 as they are.
    return _named(pipe, model).to(device)


def load_tiny_pipeline(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Any:
    """The shipped ``diffbench-tiny`` model, loaded with ``StableDiffusionPipeline.from_pretrained``.

    It draws one coloured circle, square or triangle on a plain or two-tone background
    at 64x64 ("a red circle on a blue background"); its model card says how it was
    trained and what it can and cannot draw.
    """
    with _quiet_loading():
        pipe = StableDiffusionPipeline.from_pretrained(TINY_MODEL_DIR, local_files_only=True, low_cpu_mem_usage=False)
    return _moved(_named(pipe, TINY_MODEL_ID), device, dtype)


def build_random_pipeline(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Any:
    """Build a tiny SD pipeline with seeded random weights from the shipped configs (no weights files).

    It draws noise: use it where a test needs the plumbing of a pipeline, not meaning.
    Weights are created on the CPU in float32 with ``torch.manual_seed(0)`` before
    each component, so they are identical across processes and machines, then
    moved to ``device``/``dtype``. Random weights make the 20-step trajectory
    chaotic in half precision: float16/bfloat16 images differ wholesale from
    float32 ones (and between torch versions), so baselines only hold per dtype.
    """
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(_read_config("unet/config.json"))
    torch.manual_seed(0)
    vae = AutoencoderKL.from_config(_read_config("vae/config.json"))
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig.from_dict(_read_config("text_encoder/config.json")))
    scheduler = EulerDiscreteScheduler.from_config(_read_config("scheduler/scheduler_config.json"))
    tokenizer = CLIPTokenizer.from_pretrained(
        RANDOM_SD_DIR / "tokenizer", model_max_length=text_encoder.config.max_position_embeddings,
        local_files_only=True,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _moved(_named(pipe, RANDOM_MODEL_ID), device, dtype)


def _read_config(relpath: str) -> dict[str, Any]:
    return json.loads((RANDOM_SD_DIR / relpath).read_text(encoding="utf-8"))


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide the loading progress bars of diffusers and transformers for one load, then restore them."""
    libraries = [(diffusers_logging, diffusers_logging.is_progress_bar_enabled())]
    libraries.append((transformers_logging, transformers_logging.is_progress_bar_enabled()))
    for library, _ in libraries:
        library.disable_progress_bar()
    try:
        yield
    finally:
        for library, was_enabled in libraries:
            if was_enabled:
                library.enable_progress_bar()


def _named(pipe: Any, model_id: str) -> Any:
    """Record ``model_id`` on ``pipe`` and its models (as from_pretrained does) and silence its progress bar."""
    pipe.register_to_config(_name_or_path=model_id)
    for _, module in module_components(pipe):
        if hasattr(module, "register_to_config"):  # diffusers models
            module.register_to_config(_name_or_path=model_id)
        elif hasattr(getattr(module, "config", None), "name_or_path"):  # transformers models
            module.config.name_or_path = model_id
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _moved(pipe: Any, device: str | torch.device, dtype: torch.dtype) -> Any:
    """Every model of ``pipe`` on ``device`` in ``dtype``.

    diffusers' ``ModelMixin.to`` logs "modules that should be kept in float32: []" on every
    dtype cast, even with nothing to keep; the plain ``nn.Module`` cast is silent.
    """
    for _, module in module_components(pipe):
        torch.nn.Module.to(module, torch.device(device), dtype)
    return pipe


def resolve_device(spec: str) -> torch.device:
    """Parse a device option: "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:N" or "mps"."""
    try:
        value = check_device(spec)
    except ValueError as exc:
        raise ValueError(f"invalid device {spec!r}: {exc}") from None
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(value)


def default_dtype(device: str | torch.device) -> torch.dtype:
    """float16 on CUDA, float32 elsewhere (half precision is slow or unsupported on CPU)."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def parse_dtype(name: str) -> torch.dtype:
    """Parse a dtype option ("auto" must be handled by the caller with :func:`default_dtype`)."""
    canonical = DTYPE_ALIASES.get(name.strip().lower())
    if canonical is None:
        raise ValueError(f"invalid dtype {name!r}: expected one of {', '.join(DTYPE_ALIASES)}")
    dtype: torch.dtype = getattr(torch, canonical)
    return dtype
