"""What a pipeline is, in portable form: its description for the frozen config and a sampled
fingerprint of its weights, cached per pipeline (:func:`describe_pipeline`)."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import re
import weakref
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Iterator

import torch
from diffusers.utils import USE_PEFT_BACKEND

from pytest_diffbench.run.protocol import PipelineDescription
from pytest_diffbench.spec.config import normalise

_FINGERPRINT_SAMPLES = 8
_FLATTENED_PREFIX = "text_model."
# A Hugging Face hub cache snapshot path: .../models--org--name/snapshots/<rev>/...
_ADDRESS_RE = re.compile(r" at 0x[0-9a-fA-F]+")
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
    (e.g. sequential CPU offload) contribute no values. A loaded LoRA's tensors are parameters
    too, and a fused LoRA changes the base weights, so loading or fusing one changes it; an
    adapter weight set with ``set_adapters`` does not (see :func:`lora_adapters`).
    """
    return _sampled_digest((f"{component_name}.{_portable_tensor_name(tensor_name)}", tensor)
                           for component_name, module in module_components(pipe)
                           for tensor_name, tensor in [*module.named_parameters(), *module.named_buffers()])


def _sampled_digest(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 over each tensor's name, shape, dtype and up to 8 evenly spaced elements (see
    :func:`model_fingerprint`), in the order given."""
    digest = hashlib.sha256()
    samples: list[torch.Tensor] = []
    with torch.no_grad():
        for name, tensor in named_tensors:
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}\n".encode())
            numel = tensor.numel()
            if numel == 0 or tensor.is_meta:
                continue
            # MPS has no float64; float32 holds every float16/bfloat16/float32 value exactly.
            wide = torch.float32 if tensor.device.type == "mps" else torch.float64
            samples.append(tensor.reshape(-1).index_select(0, _sample_indices(tensor)).to(wide))
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


def pipeline_config(pipe: Any) -> dict[str, Any]:
    """The pipeline's own config flags, JSON-ready: ``pipe.config`` without its components (the
    ``[library, class]`` entries of its models, tokenizers and scheduler) and diffusers' private
    keys (``_class_name``, ``_name_or_path`` ...), e.g. ``{"force_zeros_for_empty_prompt": True}``
    for SDXL or ``{"requires_safety_checker": False}`` for SD. A flag whose value a config cannot
    hold is recorded as its ``repr`` (its class name when the repr holds a memory address, which
    differs run to run)."""
    components = getattr(pipe, "components", {}) or {}
    flags: dict[str, Any] = {}
    for key, value in sorted(dict(getattr(pipe, "config", None) or {}).items()):
        if key.startswith("_") or key in components:
            continue
        try:
            flags[key] = normalise(value, where=f"pipeline_config.{key}")
        except TypeError:
            text = repr(value)  # an object's default repr holds its address: its class name is the same in every run
            flags[key] = type(value).__name__ if _ADDRESS_RE.search(text) else text
    return flags


#: The prefix of the peft modules and parameters that hold a LoRA's weights, per adapter name:
#: ``...to_q.lora_A.<adapter>.weight`` (also ``lora_B``, ``lora_embedding_A/B``, ``lora_magnitude_vector``).
_LORA_PREFIX = "lora_"


def _lora_layers(pipe: Any) -> Iterator[tuple[str, str, Any]]:
    """Every peft LoRA layer of the pipeline's models: (component name, module name, layer)."""
    if not USE_PEFT_BACKEND:
        return
    from peft.tuners.lora import LoraLayer

    for component_name, module in module_components(pipe):
        for module_name, layer in module.named_modules():
            if isinstance(layer, LoraLayer):
                yield component_name, module_name, layer


def lora_adapters(pipe: Any) -> dict[str, dict[str, Any]]:
    """The pipeline's LoRA adapters (peft), by name, each with the keys of
    :data:`~pytest_diffbench.run.protocol.ADAPTER_KEYS`:

    - ``components``: the models that hold it (``unet``, ``text_encoder``, ``transformer`` ...);
    - ``digest``: SHA-256 of its tensors, *sampled* as :func:`model_fingerprint` samples (names,
      shapes, dtypes and 8 evenly spaced elements of each ``lora_A``/``lora_B``/... tensor).
      diffusers keeps no file path or file hash of a loaded LoRA, so this stands for the file;
    - ``active``: whether ``set_adapters`` made it active;
    - ``weights``: per component, its weight as ``set_adapters(..., adapter_weights=...)`` set it
      (the layer's scaling over ``lora_alpha / r``; one number when every layer has it, else
      ``{"values": [distinct weights], "layers": <SHA-256 of layer name -> weight>}``);
    - ``enabled``: False after ``disable_lora()`` (the layers then ignore every adapter);
    - ``fused``: True after ``fuse_lora()`` (merged into the base weights: a call's scale no longer
      changes anything).

    Empty without peft or without a LoRA.
    """
    layers = list(_lora_layers(pipe))
    names = {name for _, _, layer in layers for name in layer.lora_A.keys()}
    return _adapter_records(layers, {name: _adapter_digest(pipe, name) for name in names})


def _adapter_records(layers: list[tuple[str, str, Any]], digests: dict[str, str]) -> dict[str, dict[str, Any]]:
    """:func:`lora_adapters` from the LoRA layers (component name, module name, layer) and each adapter's
    digest: every record but the digest is read from the layers now."""
    layers_by_adapter: dict[str, list[tuple[str, str, Any]]] = {}
    for component_name, module_name, layer in layers:
        for name in layer.lora_A.keys():
            layers_by_adapter.setdefault(name, []).append((component_name, module_name, layer))
    adapters: dict[str, dict[str, Any]] = {}
    for name, adapter_layers in sorted(layers_by_adapter.items()):
        weights: dict[str, dict[str, float]] = {}
        for component_name, module_name, layer in adapter_layers:
            weights.setdefault(component_name, {})[module_name] = _adapter_weight(layer, name)
        adapters[name] = {
            "components": sorted(weights),
            "digest": digests[name],
            "active": any(name in layer.active_adapters for _, _, layer in adapter_layers),
            "weights": {component: _weights_record(by_layer) for component, by_layer in sorted(weights.items())},
            "enabled": not all(layer.disable_adapters for _, _, layer in adapter_layers),
            "fused": any(name in layer.merged_adapters for _, _, layer in adapter_layers),
        }
    return adapters


def _adapter_weight(layer: Any, name: str) -> float:
    """The weight ``set_adapters`` gave adapter ``name`` on ``layer``: its scaling over the scaling
    at weight 1 (``lora_alpha / r``, or ``lora_alpha / sqrt(r)`` with rsLoRA)."""
    rank = layer.r[name]
    unit = layer.lora_alpha[name] / (math.sqrt(rank) if layer.use_rslora.get(name, False) else rank)
    return float(layer.scaling[name] / unit) if unit else float(layer.scaling[name])


def _weights_record(by_layer: dict[str, float]) -> Any:
    """One weight when every layer has it, else its distinct values and a digest of the layers'."""
    values = sorted({normalise(weight) for weight in by_layer.values()})
    if len(values) == 1:
        return values[0]
    text = "\n".join(f"{layer}={normalise(weight)}" for layer, weight in sorted(by_layer.items()))
    return {"values": values, "layers": hashlib.sha256(text.encode()).hexdigest()}


def _adapter_digest(pipe: Any, name: str) -> str:
    """Sampled SHA-256 (see :func:`_sampled_digest`) of adapter ``name``'s tensors in every component."""
    def owned(tensor_name: str) -> bool:
        parts = tensor_name.split(".")
        return any(part.startswith(_LORA_PREFIX) and after == name for part, after in zip(parts, parts[1:]))

    return _sampled_digest((f"{component_name}.{_portable_tensor_name(tensor_name)}", tensor)
                           for component_name, module in module_components(pipe)
                           for tensor_name, tensor in module.named_parameters() if owned(tensor_name))


@contextlib.contextmanager
def kept_adapter_weights(pipe: Any) -> Iterator[None]:
    """Put every LoRA layer's adapter scalings back as they were when the block ends.

    A call with a LoRA scale of 0 (``cross_attention_kwargs={"scale": 0.0}``) makes diffusers reset
    every active adapter to weight 1 afterwards (``unscale_lora_layers``), dropping the weights
    ``set_adapters`` gave them; without this, one case's scale would change the next case's image.
    A two-stage pipeline (``stages()``) has each stage's layers kept; an object without diffusers
    ``components`` has none.
    """
    stages = [stage for _, stage in pipe.stages()] if callable(getattr(pipe, "stages", None)) else [pipe]  # two-stage
    saved = [(layer, dict(layer.scaling)) for stage in stages if hasattr(stage, "components")
             for _, _, layer in _lora_layers(stage)]
    try:
        yield
    finally:
        for layer, scaling in saved:
            layer.scaling.clear()
            layer.scaling.update(scaling)


def describe_pipeline(pipe: Any) -> PipelineDescription:
    """What a baseline was produced with, in portable form (device type only, no cache paths): the
    model and its sampled fingerprint, the pipeline class (``workflow``), its config flags
    (:func:`pipeline_config`) and its LoRA adapters (:func:`lora_adapters`).

    The weight digests (:func:`model_fingerprint` and each adapter's ``digest``) are cached per
    pipeline (see :class:`_CachedWeights`): a call on unchanged weights costs a walk over the
    modules and one gather of the sampled elements instead of hashing every tensor again; so is the
    device type while no group-offload hook can change it. Everything else, the LoRA layers'
    weights, active, enabled and fused flags included, is read on every call.
    """
    weights = _cached_weights(pipe)
    layers = weights.lora_layers()
    return PipelineDescription(
        model=_portable_name(pipe.name_or_path or "") or type(pipe).__name__,
        model_fingerprint=weights.fingerprint,
        vae=_model_name(getattr(pipe, "vae", None)),
        loras=tuple(_active_loras(pipe)) if layers else (),
        controlnets=tuple(_controlnet_names(pipe)),
        workflow=type(pipe).__name__,
        dtype=str(pipe.dtype).removeprefix("torch."),
        device=weights.device or pipe.device.type,
        pipeline_config=pipeline_config(pipe),
        adapters=_adapter_records(layers, weights.digests),
    )


@dataclass
class _CachedWeights:
    """The weight digests of one pipeline, and what tells whether they still hold.

    ``key`` holds each component's name and identity and each parameter's and buffer's
    identity, data pointer, version counter, shape, dtype and device, in
    walk order; ``checks`` the sampled elements (the positions
    :func:`_sampled_digest` hashes) of those tensors, per device and dtype, as positions in that
    order, their flat indices and the values gathered when the digests were made. ``layers`` are
    the peft LoRA layers (component name, module name, weak reference: the cache keeps no module
    alive). ``device`` is the type of ``pipe.device`` when they were made, None where it is read on
    every call: diffusers' property walks every module (for group-offload hooks) and otherwise
    gives a component's first tensor's device, which the key holds, so it is kept only for a
    pipeline without such hooks (the key records whether there are any) and without a ``device``
    of its own class.
    """

    key: tuple[Hashable, ...]
    checks: list[tuple[list[int], list[torch.Tensor], torch.Tensor]]
    fingerprint: str
    digests: dict[str, str]
    layers: list[tuple[str, str, weakref.ReferenceType[Any]]]
    device: str | None

    def holds_for(self, key: tuple[Hashable, ...], tensors: list[torch.Tensor]) -> bool:
        """Whether ``tensors`` (walked in the order that gave ``key``) are still the weights digested:
        the same key, every LoRA layer alive, and the sampled elements bit for bit the same, which
        catches in-place edits that leave the version counter alone (``p.data[...] = x``,
        ``fuse_lora``). One gather per tensor, one comparison per device and dtype."""
        if key != self.key or any(layer() is None for _, _, layer in self.layers):
            return False
        with torch.no_grad():
            return all(_same_bits(torch.cat([torch.take(tensors[i], index) for i, index in zip(positions, indices)]), values)
                       for positions, indices, values in self.checks)

    def lora_layers(self) -> list[tuple[str, str, Any]]:
        """The LoRA layers (component name, module name, layer), as :func:`_lora_layers` yields them."""
        return [(component, name, layer()) for component, name, layer in self.layers]


#: The cached digests by pipeline, dropped with the pipeline.
_WEIGHTS_CACHE: weakref.WeakKeyDictionary[Any, _CachedWeights] = weakref.WeakKeyDictionary()


def _cached_weights(pipe: Any) -> _CachedWeights:
    """``pipe``'s weight digests: the cached ones while :meth:`_CachedWeights.holds_for` says they hold,
    else computed again (and cached, when ``pipe`` can be weakly referenced and every tensor has a
    data pointer and takes ``torch.take``: a wrapper subclass of quantized weights may have neither,
    and is then hashed on every call, as before the cache)."""
    cacheable = _weakly_referable(pipe)
    hooked = True
    try:
        key, tensors, hooked = _weights_key(pipe)
        cached = _WEIGHTS_CACHE.get(pipe) if cacheable else None
        if cached is not None and cached.holds_for(key, tensors):
            return cached
        checks = _sample_checks(tensors)
    except (RuntimeError, NotImplementedError):
        key, checks, cacheable = (), [], False
    layers = list(_lora_layers(pipe))
    adapters = sorted({name for _, _, layer in layers for name in layer.lora_A.keys()})
    fresh = _CachedWeights(
        key=key,
        checks=checks,
        fingerprint=model_fingerprint(pipe),
        digests={name: _adapter_digest(pipe, name) for name in adapters},
        layers=[(component, name, weakref.ref(layer)) for component, name, layer in layers],
        device=None if hooked or not _diffusers_device(pipe) else pipe.device.type,
    )
    if cacheable:
        _WEIGHTS_CACHE[pipe] = fresh
    return fresh


def _weakly_referable(pipe: Any) -> bool:
    try:
        weakref.ref(pipe)
        hash(pipe)
    except TypeError:
        return False
    return True


def _weights_key(pipe: Any) -> tuple[tuple[Hashable, ...], list[torch.Tensor], bool]:
    """The cache key of ``pipe``'s weights (see :class:`_CachedWeights`), its tensors in walk order
    (each module component's parameters and buffers, each submodule visited once, without the
    names and generators of ``named_parameters``: this runs on every :func:`describe_pipeline`) and
    whether any submodule holds a diffusers hook (group offloading keeps its onload device there)."""
    key: list[Hashable] = []
    tensors: list[torch.Tensor | None] = []
    seen: set[int] = set()
    hooked = False
    for component_name, module in module_components(pipe):
        key.append((component_name, id(module)))
        stack = [module]
        while stack:
            submodule = stack.pop()
            if submodule is None or id(submodule) in seen:
                continue
            seen.add(id(submodule))
            hooked = hooked or _DIFFUSERS_HOOK in submodule.__dict__
            tensors += submodule._parameters.values()
            tensors += submodule._buffers.values()
            stack += submodule._modules.values()
    present = [tensor for tensor in tensors if tensor is not None]
    key += [(id(t), t.data_ptr(), t._version, t.shape, t.dtype, t.device) for t in present]
    key.append(("diffusers hooks", hooked))
    return tuple(key), present, hooked


#: The attribute in which diffusers keeps a module's hooks (``HookRegistry``), group offloading's included.
_DIFFUSERS_HOOK = "_diffusers_hook"


def _diffusers_device(pipe: Any) -> bool:
    """Whether ``pipe.device`` is diffusers' ``DiffusionPipeline.device`` (not a class's own)."""
    from diffusers import DiffusionPipeline

    return inspect.getattr_static(type(pipe), "device", None) is inspect.getattr_static(DiffusionPipeline, "device")


def _sample_indices(tensor: torch.Tensor) -> torch.Tensor:
    """The flat positions :func:`_sampled_digest` samples in ``tensor`` (up to 8, evenly spaced, first
    and last included), on its device."""
    numel = tensor.numel()
    count = min(numel, _FINGERPRINT_SAMPLES)
    return torch.arange(count, device=tensor.device) * (numel - 1) // max(count - 1, 1)


def _sample_checks(tensors: list[torch.Tensor]) -> list[tuple[list[int], list[torch.Tensor], torch.Tensor]]:
    """The sampled elements of ``tensors`` grouped by device and dtype: (positions in ``tensors``,
    each one's flat indices, the values now). Empty and meta tensors have none."""
    groups: dict[tuple[torch.device, torch.dtype], tuple[list[int], list[torch.Tensor]]] = {}
    for i, tensor in enumerate(tensors):
        if tensor.numel() and not tensor.is_meta:
            positions, indices = groups.setdefault((tensor.device, tensor.dtype), ([], []))
            positions.append(i)
            indices.append(_sample_indices(tensor))
    with torch.no_grad():
        return [(positions, indices, torch.cat([torch.take(tensors[i], index) for i, index in zip(positions, indices)]))
                for positions, indices in groups.values()]


def _same_bits(now: torch.Tensor, then: torch.Tensor) -> bool:
    """Whether two 1-D tensors of one dtype hold the same bytes (a NaN equals itself here)."""
    return torch.equal(now.view(torch.uint8), then.view(torch.uint8))
