"""The built-in tiny Stable Diffusion pipeline, device/dtype parsing and pipeline introspection."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from diffusers.utils import USE_PEFT_BACKEND
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from pytest_diffbench.options import check_device

__all__ = [
    "TINY_MODEL_ID",
    "TINY_SD_DIR",
    "build_tiny_pipeline",
    "default_dtype",
    "describe_pipeline",
    "model_fingerprint",
    "parse_dtype",
    "resolve_device",
]

TINY_MODEL_ID = "diffbench/tiny-random-sd"
TINY_SD_DIR = Path(__file__).parent / "assets" / "tiny-sd"

_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float32": torch.float32,
    "fp32": torch.float32,
}
_FINGERPRINT_SAMPLES = 8
# A Hugging Face hub cache snapshot path: .../models--org--name/snapshots/<rev>/...
_HUB_CACHE_RE = re.compile(r"models--(?P<repo>[^/\\]+)[/\\]snapshots[/\\]")


def _read_config(relpath: str) -> dict[str, Any]:
    return json.loads((TINY_SD_DIR / relpath).read_text(encoding="utf-8"))


def build_tiny_pipeline(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> StableDiffusionPipeline:
    """Build the tiny random-weight SD pipeline from the shipped configs (64x64 images, no network).

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
        TINY_SD_DIR / "tokenizer", model_max_length=text_encoder.config.max_position_embeddings,
        local_files_only=True,
    )

    # Mirror from_pretrained, which records the model id on the pipeline and its models.
    for model in (unet, vae):
        model.register_to_config(_name_or_path=TINY_MODEL_ID)
    text_encoder.config.name_or_path = TINY_MODEL_ID

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
    pipe.register_to_config(_name_or_path=TINY_MODEL_ID)
    pipe.set_progress_bar_config(disable=True)
    # diffusers' ModelMixin.to logs "modules that should be kept in float32: []" on
    # every dtype cast, even with nothing to keep; the plain nn.Module cast is silent.
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
    buffer contributes its name, shape, dtype and up to 8 evenly spaced elements
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
                header = f"{component_name}.{tensor_name}|{tuple(tensor.shape)}|{tensor.dtype}\n"
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
