"""Sampler names people use (A1111 / ComfyUI style) mapped to diffusers schedulers.

This module is imported at pytest collection time, before the heavy stack is
loaded, so it must not import torch or diffusers at module level; only
:func:`build_scheduler` imports diffusers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SamplerSpec",
    "UnknownSamplerError",
    "build_scheduler",
    "known_sampler_names",
    "resolve_sampler",
    "sampler_slug",
]


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler: its name, the diffusers scheduler class and the kwargs that select the variant.

    ``kwargs`` is a sorted tuple of ``(key, value)`` pairs so the spec stays hashable.
    """

    name: str
    class_name: str
    kwargs: tuple[tuple[str, object], ...] = ()

    def kwargs_dict(self) -> dict[str, object]:
        return dict(self.kwargs)


def _spec(name: str, class_name: str, **kwargs: object) -> SamplerSpec:
    return SamplerSpec(name, class_name, tuple(sorted(kwargs.items())))


_KARRAS = {"use_karras_sigmas": True}
_SDE = {"algorithm_type": "sde-dpmsolver++"}

# Mapping from the diffusers scheduler overview ("A1111/k-diffusion -> diffusers").
_TABLE: tuple[SamplerSpec, ...] = (
    _spec("Euler", "EulerDiscreteScheduler"),
    _spec("Euler a", "EulerAncestralDiscreteScheduler"),
    _spec("Heun", "HeunDiscreteScheduler"),
    _spec("LMS", "LMSDiscreteScheduler"),
    _spec("LMS Karras", "LMSDiscreteScheduler", **_KARRAS),
    _spec("DDIM", "DDIMScheduler"),
    # Stable Diffusion's own PNDM configuration skips the Runge-Kutta warm-up steps.
    _spec("PNDM", "PNDMScheduler", skip_prk_steps=True),
    _spec("UniPC", "UniPCMultistepScheduler"),
    _spec("DEIS", "DEISMultistepScheduler"),
    _spec("DPM2", "KDPM2DiscreteScheduler"),
    _spec("DPM2 Karras", "KDPM2DiscreteScheduler", **_KARRAS),
    _spec("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
    _spec("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", **_KARRAS),
    _spec("DPM++ 2M", "DPMSolverMultistepScheduler"),
    _spec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", **_KARRAS),
    _spec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", **_SDE),
    _spec("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", **_SDE, **_KARRAS),
    # diffusers forces lower_order_final=True for final_sigmas_type="zero" (the
    # default) in set_timesteps, with a warning; setting it up front avoids the noise.
    _spec("DPM++ SDE", "DPMSolverSinglestepScheduler", lower_order_final=True),
    _spec("DPM++ SDE Karras", "DPMSolverSinglestepScheduler", lower_order_final=True, **_KARRAS),
)

_BY_LOWER_NAME: dict[str, SamplerSpec] = {spec.name.lower(): spec for spec in _TABLE}

# Scheduler classes recognised without importing diffusers (used to canonicalise
# case: "eulerdiscretescheduler" -> "EulerDiscreteScheduler").
_KNOWN_SCHEDULER_CLASSES: frozenset[str] = frozenset(
    {spec.class_name for spec in _TABLE}
    | {
        "CMStochasticIterativeScheduler",
        "CosineDPMSolverMultistepScheduler",
        "DDIMInverseScheduler",
        "DDIMParallelScheduler",
        "DDPMParallelScheduler",
        "DDPMScheduler",
        "DPMSolverMultistepInverseScheduler",
        "DPMSolverSDEScheduler",
        "EDMDPMSolverMultistepScheduler",
        "EDMEulerScheduler",
        "FlowMatchEulerDiscreteScheduler",
        "FlowMatchHeunDiscreteScheduler",
        "IPNDMScheduler",
        "KarrasVeScheduler",
        "LCMScheduler",
        "SASolverScheduler",
        "TCDScheduler",
    }
)
_SCHEDULER_CLASS_BY_LOWER: dict[str, str] = {n.lower(): n for n in _KNOWN_SCHEDULER_CLASSES}
_SCHEDULER_CLASS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*Scheduler")

# Config keys that encode a sampler *choice* rather than a property of the model.
# They are dropped from the inherited config before a swap so that the target
# class's own defaults apply unless the sampler sets them: otherwise swapping
# "DPM++ 2M Karras" -> "DPM++ 2M" would silently keep Karras sigmas.
_SAMPLER_CHOICE_KEYS: frozenset[str] = frozenset(
    {
        "use_karras_sigmas",
        "use_exponential_sigmas",
        "use_beta_sigmas",
        "use_lu_lambdas",
        "algorithm_type",
        "solver_type",
        "lower_order_final",
    }
)


class UnknownSamplerError(ValueError):
    """Raised for a sampler name that is neither in the table nor a scheduler class name."""

    def __init__(self, name: str, reason: str = "unknown sampler") -> None:
        super().__init__(
            f"{reason} {name!r}. Known samplers: {', '.join(known_sampler_names())}. "
            "Diffusers scheduler class names (e.g. 'EulerDiscreteScheduler') also work."
        )
        self.name = name


def known_sampler_names() -> list[str]:
    """Display names of the built-in samplers, in table order."""
    return [spec.name for spec in _TABLE]


def resolve_sampler(name: str) -> SamplerSpec:
    """Resolve a display name (case-insensitive) or a diffusers scheduler class name.

    A class name outside the static list is accepted as written if it ends in
    ``Scheduler``; :func:`build_scheduler` then checks that diffusers has it.
    """
    key = name.strip()
    spec = _BY_LOWER_NAME.get(key.lower())
    if spec is not None:
        return spec
    class_name = _SCHEDULER_CLASS_BY_LOWER.get(key.lower())
    if class_name is None and _SCHEDULER_CLASS_RE.fullmatch(key):
        class_name = key
    if class_name is None:
        raise UnknownSamplerError(name)
    return SamplerSpec(class_name, class_name)


def sampler_slug(name: str) -> str:
    """A lowercase identifier for test ids and file names: "DPM++ 2M Karras" -> "dpmpp_2m_karras"."""
    spec = resolve_sampler(name)
    if spec.name == spec.class_name:
        return spec.class_name.lower()
    return re.sub(r"[^a-z0-9]+", "_", spec.name.lower().replace("++", "pp")).strip("_")


def build_scheduler(scheduler_config: Mapping[str, Any], name: str) -> Any:
    """Build the scheduler for ``name`` from a pipeline's scheduler config (no model reload).

    Sampler-choice keys (Karras/exponential/beta sigmas, algorithm and solver
    type, lower_order_final) are not inherited from ``scheduler_config``: the target class's
    defaults apply unless the sampler sets them, so repeated swaps on one
    pipeline do not leak a previous sampler's variant.
    """
    import diffusers

    spec = resolve_sampler(name)
    cls = getattr(diffusers, spec.class_name, None)
    if cls is None:
        raise UnknownSamplerError(
            name, f"diffusers {diffusers.__version__} has no scheduler class"
        )
    config = {k: v for k, v in scheduler_config.items() if k not in _SAMPLER_CHOICE_KEYS}
    return cls.from_config(config, **spec.kwargs_dict())
