"""What a pipeline is, in portable form: its description for the frozen config and a sampled
fingerprint of its weights."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import torch
from diffusers.utils import USE_PEFT_BACKEND

from pytest_diffbench.run.protocol import PipelineDescription

_FINGERPRINT_SAMPLES = 8
_FLATTENED_PREFIX = "text_model."
# A Hugging Face hub cache snapshot path: .../models--org--name/snapshots/<rev>/...
_HUB_CACHE_RE = re.compile(r"models--(?P<repo>[^/\\]+)[/\\]snapshots[/\\]")


def module_components(pipe: Any) -> list[tuple[str, Any]]:
    return sorted(
        (name, component)
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module)
    )


def model_fingerprint(pipe: Any) -> str:
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
        for component_name, module in module_components(pipe):
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


def _active_loras(pipe: Any) -> list[str]:
    if not USE_PEFT_BACKEND or not hasattr(pipe, "get_active_adapters"):
        return []
    return sorted(set(pipe.get_active_adapters()))


def _controlnet_names(pipe: Any) -> list[str]:
    controlnet = getattr(pipe, "controlnet", None)
    if controlnet is None:
        return []
    # MultiControlNetModel keeps its models in .nets; some pipelines take a list.
    nets = getattr(controlnet, "nets", controlnet)
    if not isinstance(nets, (list, tuple, torch.nn.ModuleList)):
        nets = [nets]
    return [_model_name(net) or type(net).__name__ for net in nets]


def describe_pipeline(pipe: Any) -> PipelineDescription:
    """What a baseline was produced with, in portable form (device type only, no cache paths)."""
    return PipelineDescription(
        model=_portable_name(pipe.name_or_path or "") or type(pipe).__name__,
        model_fingerprint=model_fingerprint(pipe),
        vae=_model_name(getattr(pipe, "vae", None)),
        loras=tuple(_active_loras(pipe)),
        controlnets=tuple(_controlnet_names(pipe)),
        workflow=type(pipe).__name__,
        dtype=str(pipe.dtype).removeprefix("torch."),
        device=pipe.device.type,
    )
