"""The built-in pipelines (the shipped diffbench-tiny model, a random-weight twin), loading, device/dtype parsing and pipeline introspection."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
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
from diffusers.utils import USE_PEFT_BACKEND
from diffusers.utils import deprecation_utils as diffusers_deprecation
from diffusers.utils import logging as diffusers_logging
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.utils import logging as transformers_logging

from pytest_diffbench.options import BUILTIN_MODELS, check_device

__all__ = [
    "BUILTIN_MODELS",
    "RANDOM_MODEL_ID",
    "RANDOM_SD_DIR",
    "TINY_MODEL_DIR",
    "TINY_MODEL_ID",
    "build_random_pipeline",
    "default_dtype",
    "describe_pipeline",
    "load_pipeline",
    "load_tiny_pipeline",
    "model_fingerprint",
    "parse_dtype",
    "resolve_device",
]

ASSETS_DIR = Path(__file__).parent / "assets"
#: The shipped trained model (see its model card, ``assets/diffbench-tiny/README.md``).
TINY_MODEL_ID = "diffbench/diffbench-tiny"
TINY_MODEL_DIR = ASSETS_DIR / "diffbench-tiny"
#: The same kind of pipeline with seeded random weights, built from configs only.
RANDOM_MODEL_ID = "diffbench/tiny-random-sd"
RANDOM_SD_DIR = ASSETS_DIR / "tiny-sd"

_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float32": torch.float32,
    "fp32": torch.float32,
}
_FINGERPRINT_SAMPLES = 8
_FLATTENED_PREFIX = "text_model."
# Recent diffusers renamed from_pretrained's torch_dtype to dtype, and warn on the old name.
_DTYPE_KEYWORD = "dtype" if hasattr(diffusers_deprecation, "_resolve_dtype") else "torch_dtype"
# A Hugging Face hub cache snapshot path: .../models--org--name/snapshots/<rev>/...
_HUB_CACHE_RE = re.compile(r"models--(?P<repo>[^/\\]+)[/\\]snapshots[/\\]")


def load_pipeline(
    model: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, root: Path | None = None
) -> DiffusionPipeline:
    """The pipeline ``--diffbench-model`` names, on ``device`` in ``dtype``.

    ``diffbench-tiny`` and ``diffbench-tiny-random`` are built in; anything else is passed
    to ``DiffusionPipeline.from_pretrained`` (a folder, relative to ``root`` when it is one
    there, or a hub id that is in the cache or can be downloaded). The name is recorded as
    written, so the frozen config (and its hash) does not depend on where the folder or
    the cache lies.
    """
    if model == "diffbench-tiny":
        return load_tiny_pipeline(device, dtype)
    if model == "diffbench-tiny-random":
        return build_random_pipeline(device, dtype)
    source = root / model if root is not None and (root / model).is_dir() else model
    try:
        with _quiet_loading():
            pipe = DiffusionPipeline.from_pretrained(source, **{_DTYPE_KEYWORD: dtype})
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"cannot load {model!r} with DiffusionPipeline.from_pretrained ({exc}); use a diffusers "
            f"folder, a hub id, or one of the built-in models {', '.join(BUILTIN_MODELS)}"
        ) from None
    # Already in dtype: from_pretrained keeps the modules a model needs in float32 as they are.
    return _named(pipe, model).to(device)


def load_tiny_pipeline(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> StableDiffusionPipeline:
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
) -> StableDiffusionPipeline:
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


def _named(pipe: DiffusionPipeline, model_id: str) -> DiffusionPipeline:
    """Record ``model_id`` on ``pipe`` and its models (as from_pretrained does) and silence its progress bar."""
    pipe.register_to_config(_name_or_path=model_id)
    for _, module in _module_components(pipe):
        if hasattr(module, "register_to_config"):  # diffusers models
            module.register_to_config(_name_or_path=model_id)
        elif hasattr(getattr(module, "config", None), "name_or_path"):  # transformers models
            module.config.name_or_path = model_id
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _moved(pipe: DiffusionPipeline, device: str | torch.device, dtype: torch.dtype) -> DiffusionPipeline:
    """Every model of ``pipe`` on ``device`` in ``dtype``.

    diffusers' ``ModelMixin.to`` logs "modules that should be kept in float32: []" on every
    dtype cast, even with nothing to keep; the plain ``nn.Module`` cast is silent.
    """
    for _, module in _module_components(pipe):
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
    dtype = _DTYPES.get(name.strip().lower())
    if dtype is None:
        raise ValueError(f"invalid dtype {name!r}: expected one of {', '.join(_DTYPES)}")
    return dtype


def _module_components(pipe: DiffusionPipeline) -> list[tuple[str, torch.nn.Module]]:
    return sorted(
        (name, component)
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module)
    )


def model_fingerprint(pipe: DiffusionPipeline) -> str:
    """SHA-256 over the pipeline's model weights: a cheap, *sampled* fingerprint.

    For every ``torch.nn.Module`` component (sorted by name), each parameter and
    buffer contributes its name (in a form that does not depend on the transformers
    version), shape, dtype and up to 8 evenly spaced elements
    of the flattened tensor. The samples are gathered on the tensor's own device
    and copied to the CPU in one transfer per device, so this costs milliseconds
    even for multi-GB models. Any fine-tune or offset of a tensor changes it; an edit of a single
    element outside the sample can go unnoticed. Tensors on the meta device
    (e.g. sequential CPU offload) contribute no values.
    """
    digest = hashlib.sha256()
    samples: list[torch.Tensor] = []
    with torch.no_grad():
        for component_name, module in _module_components(pipe):
            for tensor_name, tensor in [*module.named_parameters(), *module.named_buffers()]:
                header = f"{component_name}.{_portable_tensor_name(tensor_name)}|{tuple(tensor.shape)}|{tensor.dtype}\n"
                digest.update(header.encode())
                numel = tensor.numel()
                if numel == 0 or tensor.is_meta:
                    continue
                count = min(numel, _FINGERPRINT_SAMPLES)
                # Built on the tensor's device: no host-to-device copy (and sync) per tensor.
                index = torch.arange(count, device=tensor.device) * (numel - 1) // max(count - 1, 1)
                # MPS has no float64; float32 holds every float16/bfloat16/float32 value exactly.
                wide = torch.float32 if tensor.device.type == "mps" else torch.float64
                samples.append(tensor.reshape(-1).index_select(0, index).to(wide))
    digest.update(_to_host(samples).numpy().tobytes())
    return digest.hexdigest()


def _portable_tensor_name(name: str) -> str:
    """``name`` without the wrapper level that transformers 5 removed from CLIP's text encoders.

    transformers 4 names a CLIP text encoder's weights ``text_model.encoder...``, transformers 5
    ``encoder...`` (both load either layout). Without this, the same weights would get another
    fingerprint, and every baseline another config hash, on a machine with the other major
    version.
    """
    return name.removeprefix(_FLATTENED_PREFIX)


def _to_host(samples: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate ``samples`` on the CPU with one transfer per device, keeping their order."""
    by_device: dict[torch.device, list[int]] = {}
    for i, sample in enumerate(samples):
        by_device.setdefault(sample.device, []).append(i)
    host: list[torch.Tensor] = list(samples)
    for positions in by_device.values():
        chunk = torch.cat([samples[i] for i in positions]).cpu()
        sizes = [samples[i].numel() for i in positions]
        for i, part in zip(positions, chunk.split(sizes)):
            host[i] = part.to(torch.float64)
    return torch.cat(host) if host else torch.empty(0, dtype=torch.float64)


def _portable_name(name_or_path: str) -> str:
    """Turn a hub cache snapshot path (machine-specific) into its repo id."""
    match = _HUB_CACHE_RE.search(name_or_path)
    if match is None:
        return name_or_path
    return match.group("repo").replace("--", "/")


def _model_name(model: Any) -> str:
    name = getattr(getattr(model, "config", None), "_name_or_path", None) or ""
    return _portable_name(str(name))


def _active_loras(pipe: DiffusionPipeline) -> list[str]:
    if not USE_PEFT_BACKEND or not hasattr(pipe, "get_active_adapters"):
        return []
    return sorted(set(pipe.get_active_adapters()))


def _controlnet_names(pipe: DiffusionPipeline) -> list[str]:
    controlnet = getattr(pipe, "controlnet", None)
    if controlnet is None:
        return []
    # MultiControlNetModel keeps its models in .nets; some pipelines take a list.
    nets = getattr(controlnet, "nets", controlnet)
    if not isinstance(nets, (list, tuple, torch.nn.ModuleList)):
        nets = [nets]
    return [_model_name(net) or type(net).__name__ for net in nets]


def describe_pipeline(pipe: DiffusionPipeline) -> dict[str, object]:
    """What a baseline was produced with, in portable form (device type only, no cache paths)."""
    return {
        "model": _portable_name(pipe.name_or_path or "") or type(pipe).__name__,
        "vae": _model_name(getattr(pipe, "vae", None)),
        "loras": _active_loras(pipe),
        "controlnets": _controlnet_names(pipe),
        "workflow": type(pipe).__name__,
        "dtype": str(pipe.dtype).removeprefix("torch."),
        "device": pipe.device.type,
        "model_fingerprint": model_fingerprint(pipe),
    }
