"""The pipeline side of a case, as diffbench sees it, without importing torch.

A diffusers pipeline is described by :func:`pytest_diffbench.run.fingerprint.describe_pipeline`
and run by :class:`pytest_diffbench.run.generation.ImageGenerator`. Anything else that follows
:class:`DiffbenchPipeline` (such as :class:`pytest_diffbench.testing.FakePipeline`) describes
and runs itself, so a conftest can test its diffbench setup without torch or diffusers.
"""

from __future__ import annotations

import inspect
import reprlib
from pathlib import PurePath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

from pytest_diffbench.spec.measurement import Measurement

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class PipelineDescription:
    """What a baseline was produced with, in portable form (no machine paths, device type only).

    These are the pipeline's fields of the frozen config.
    """

    model: str
    model_fingerprint: str
    vae: str
    loras: tuple[str, ...]
    controlnets: tuple[str, ...]
    #: The pipeline class, e.g. ``StableDiffusionPipeline``.
    workflow: str
    #: ``float32``, ``float16``, ``bfloat16``.
    dtype: str
    #: ``cpu``, ``cuda``, ``mps``: the type, so configs are portable across device indices.
    device: str
    #: The pipeline's own config flags (``force_zeros_for_empty_prompt``, ``requires_aesthetics_score``,
    #: ...), JSON-ready; see :func:`pytest_diffbench.run.fingerprint.pipeline_config`.
    pipeline_config: Mapping[str, Any] = field(default_factory=dict)
    #: The LoRA adapters by name: ``{"components", "digest", "active", "weights", "enabled", "fused"}``
    #: each; see :func:`pytest_diffbench.run.fingerprint.lora_adapters` and :data:`ADAPTER_KEYS`.
    adapters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The second stage of a two-stage pipeline: its description and the handoff (empty otherwise).
    refiner: Mapping[str, Any] = field(default_factory=dict)


#: The keys of each adapter's record in :attr:`PipelineDescription.adapters`: the components that
#: hold it, a SHA-256 of its weights (sampled), whether it is active (``set_adapters``), its weight
#: per component (as ``set_adapters(..., adapter_weights=...)`` set it), whether the LoRA layers are
#: enabled (``disable_lora()`` turns them off) and whether it is fused into the base weights.
ADAPTER_KEYS = ("components", "digest", "active", "weights", "enabled", "fused")


def inert_adapters(adapters: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The active adapters on which a LoRA scale at call time changes nothing: fused into the base
    weights (``fuse_lora``) or disabled (``disable_lora``), sorted by name; empty when any active
    adapter still takes the scale."""
    active = {name: record for name, record in adapters.items() if record.get("active")}
    inert = sorted(name for name, record in active.items() if record.get("fused") or not record.get("enabled", True))
    return inert if active and len(inert) == len(active) else []


@runtime_checkable
class DiffbenchPipeline(Protocol):
    """A pipeline that describes and runs itself (no diffusers needed).

    Optionally it says what its call takes, and diffbench then checks each case against that as
    it checks a diffusers pipeline's ``__call__``: ``diffbench_call_keywords`` (the keyword names
    it uses; without it any keyword is taken) and ``diffbench_size_multiple`` (what width and
    height must be multiples of; without it any size); and what scheduler a case runs with:
    ``diffbench_scheduler_record(sampler, seed)``, a mapping for the config's ``scheduler`` field
    (without it nothing is recorded; raising ValueError refuses the case with its message).
    """

    #: The full device it runs on, e.g. ``cpu``, ``cuda:0`` (metrics that run networks use it).
    device: Any

    def diffbench_describe(self) -> PipelineDescription:
        """The pipeline's fields of the frozen config."""
        ...

    def diffbench_generate(self, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> "tuple[Image.Image, Measurement]":
        """One image for ``seed`` with ``sampler`` and the pipeline keywords ``call_kwargs`` (which
        hold ``prompt``, ``negative_prompt``, ``num_inference_steps``, ``guidance_scale`` and the
        sweep's extra axes), and its measurement."""
        ...


#: What diffbench uses of a diffusers pipeline: it calls it, swaps its scheduler and describes it.
DIFFUSERS_ATTRIBUTES = ("__call__", "scheduler", "components", "device", "dtype")


def pipeline_problem(pipe: Any) -> str | None:
    """Why ``pipe`` cannot be the pipeline of a case, in one line, or None when it can: it must
    be a :class:`DiffbenchPipeline` or have what diffbench uses of a diffusers pipeline
    (:data:`DIFFUSERS_ATTRIBUTES`, a scheduler that is not None), and be an instance, not a class."""
    if isinstance(pipe, type):
        return (f"diffbench_pipeline returned the class {pipe.__name__}, not a pipeline; return an instance, "
                f"e.g. {pipe.__name__}(...) (or {pipe.__name__}.from_pretrained(...) for diffusers)")
    if _self_describing(pipe):
        return None
    missing = [name for name in DIFFUSERS_ATTRIBUTES if not _has(pipe, name)]
    if not missing:
        return None
    short = reprlib.Repr()
    short.maxstring = short.maxother = 40
    shown = short.repr(pipe)
    return (f"diffbench_pipeline returned {type(pipe).__name__} {shown}, which is not a pipeline (it has no "
            f"{', '.join(missing)}); return a diffusers pipeline, or an object with diffbench_describe() and "
            "diffbench_generate() (see pytest_diffbench.testing.FakePipeline)")


def _self_describing(pipe: Any) -> bool:
    """``isinstance(pipe, DiffbenchPipeline)``, asked only of an object with both diffbench methods:
    the protocol check reads every member, and a diffusers pipeline's ``device`` property walks all
    its modules (this runs for every case)."""
    methods = ("diffbench_describe", "diffbench_generate")
    return all(callable(getattr(pipe, name, None)) for name in methods) and isinstance(pipe, DiffbenchPipeline)


def _has(pipe: Any, name: str) -> bool:
    """Whether ``pipe.name`` is there and not None; a property of its class counts as there without
    being read (diffusers' ``device`` and ``dtype`` walk the pipeline's modules)."""
    if isinstance(inspect.getattr_static(type(pipe), name, None), property):
        return True
    return getattr(pipe, name, None) is not None


class PipelineCallError(ValueError):
    """A pipeline's call raised ValueError or TypeError: diffusers refusing a combination of
    inputs (a custom ``timesteps`` schedule the sampler cannot take, a strength that leaves no
    denoising step, ...). Its message is one line: the pipeline class, the exception and its
    message (cut at 400 characters) and where in the library it was raised."""

    @classmethod
    def of(cls, pipe: Any, exc: BaseException) -> "PipelineCallError":
        """The error for ``exc``, raised by ``pipe``'s call."""
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        text = " ".join(str(exc).split())
        if len(text) > 400:
            text = text[:399] + "…"
        place = f" (raised at {PurePath(where.filename).name}:{where.lineno})" if where else ""
        return cls(f"{type(pipe).__name__}'s call failed with {type(exc).__name__}: {text}{place}; "
                   "change the case's settings or keywords")

