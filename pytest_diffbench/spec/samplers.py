"""Sampler names people use (A1111 / ComfyUI style) mapped to diffusers schedulers, per model family.

A sampler name means one numerical method; which diffusers scheduler implements it depends on what
the model predicts (:class:`SchedulerFamily`, read from the pipeline's own scheduler config):

* noise prediction (epsilon / v-prediction: Stable Diffusion 1.x/2.x, SDXL): the A1111 table;
* flow matching (SD3, Flux): the flow-matching variant of a name where diffusers has one
  (``Euler`` -> ``FlowMatchEulerDiscreteScheduler``, ``Heun`` -> ``FlowMatchHeunDiscreteScheduler``,
  ``UniPC`` / ``DPM++ 2M`` / ``DEIS`` with ``use_flow_sigmas=True, prediction_type="flow_prediction"``);
* consistency (a pipeline whose scheduler is ``LCMScheduler`` or ``TCDScheduler``): ``LCM`` and ``TCD``.

Any other name on a family is refused with :class:`SamplerFamilyError` (never swapped silently for
something with other maths). This module is imported at pytest collection time, before the heavy
stack is loaded, so it must not import torch or diffusers at module level; only
:func:`build_scheduler` imports diffusers.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SEED_KEYWORDS",
    "SamplerFamilyError",
    "SamplerSpec",
    "SchedulerFamily",
    "UnknownSamplerError",
    "build_scheduler",
    "family_error",
    "family_sampler_names",
    "fit_sampler",
    "known_sampler_names",
    "resolve_for_family",
    "resolve_sampler",
    "sampler_slug",
    "scheduler_family",
]


class SamplerFamilyError(ValueError):
    """A sampler that exists but does not work with the pipeline's scheduler family (one line: the sampler, the family, the names that work)."""


class SchedulerFamily(enum.Enum):
    """What a model predicts, which decides the maths a sampler must run."""

    NOISE = "noise-prediction (epsilon / v-prediction)"
    FLOW = "flow-matching"
    CONSISTENCY = "consistency (LCM / TCD)"


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler: its name, the diffusers scheduler class and the kwargs that select the variant.

    ``kwargs`` is a sorted tuple of ``(key, value)`` pairs so the spec stays hashable.
    ``stochastic``: the scheduler adds fresh noise at its steps, so it must be seeded from the
    case's seed (see :mod:`pytest_diffbench.run.schedulers`).
    """

    name: str
    class_name: str
    kwargs: tuple[tuple[str, object], ...] = ()
    stochastic: bool = False

    def kwargs_dict(self) -> dict[str, object]:
        return dict(self.kwargs)


def _spec(name: str, class_name: str, *, stochastic: bool = False, **kwargs: object) -> SamplerSpec:
    return SamplerSpec(name, class_name, tuple(sorted(kwargs.items())), stochastic)


_KARRAS: dict[str, Any] = {"use_karras_sigmas": True}
_SDE: dict[str, Any] = {"algorithm_type": "sde-dpmsolver++"}
#: What turns a multistep solver that accepts ``use_flow_sigmas`` into its flow-matching variant.
_FLOW: dict[str, Any] = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}

# Noise-prediction samplers: the diffusers scheduler overview's "A1111/k-diffusion -> diffusers"
# table. "DPM++ SDE" is k-diffusion's sample_dpmpp_sde, which diffusers implements as
# DPMSolverSDEScheduler (a Brownian-tree SDE solver; the overview's DPMSolverSinglestepScheduler
# is a deterministic ODE solver and stays available under its class name).
_TABLE: tuple[SamplerSpec, ...] = (
    _spec("Euler", "EulerDiscreteScheduler"),
    _spec("Euler a", "EulerAncestralDiscreteScheduler", stochastic=True),
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
    _spec("DPM2 a", "KDPM2AncestralDiscreteScheduler", stochastic=True),
    _spec("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", stochastic=True, **_KARRAS),
    _spec("DPM++ 2M", "DPMSolverMultistepScheduler"),
    _spec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", **_KARRAS),
    _spec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", stochastic=True, **_SDE),
    _spec("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", stochastic=True, **_SDE, **_KARRAS),
    _spec("DPM++ SDE", "DPMSolverSDEScheduler", stochastic=True),
    _spec("DPM++ SDE Karras", "DPMSolverSDEScheduler", stochastic=True, **_KARRAS),
    # Consistency samplers: for LCM / TCD models, and LCM-LoRA / TCD-LoRA on a noise-prediction model.
    _spec("LCM", "LCMScheduler", stochastic=True),
    _spec("TCD", "TCDScheduler", stochastic=True),
)

# The flow-matching variant of each name that has one (same method, flow-matching maths).
_FLOW_TABLE: tuple[SamplerSpec, ...] = (
    _spec("Euler", "FlowMatchEulerDiscreteScheduler"),
    _spec("Heun", "FlowMatchHeunDiscreteScheduler"),
    _spec("UniPC", "UniPCMultistepScheduler", **_FLOW),
    _spec("DEIS", "DEISMultistepScheduler", **_FLOW),
    _spec("DPM++ 2M", "DPMSolverMultistepScheduler", **_FLOW),
)

_CONSISTENCY_NAMES: tuple[str, ...] = ("LCM", "TCD")

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
        "DPMSolverSinglestepScheduler",
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
        "stochastic_sampling",
        "use_flow_sigmas",
    }
)

#: Scheduler classes that add fresh noise at their steps (named by class rather than by a table name).
_STOCHASTIC_CLASSES: frozenset[str] = frozenset(
    {spec.class_name for spec in _TABLE if spec.stochastic and not spec.kwargs}
    | {"CMStochasticIterativeScheduler", "DDPMParallelScheduler", "DDPMScheduler", "SASolverScheduler"}
)
_CONSISTENCY_CLASSES: frozenset[str] = frozenset({"LCMScheduler", "TCDScheduler"})
#: Stochastic schedulers seeded through a config key (the case's seed) rather than the pipeline's
#: generator: DPMSolverSDEScheduler otherwise seeds its Brownian tree from torch's global generator.
SEED_KEYWORDS: Mapping[str, str] = {"DPMSolverSDEScheduler": "noise_sampler_seed"}


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
    return SamplerSpec(class_name, class_name, stochastic=class_name in _STOCHASTIC_CLASSES)


def scheduler_family(scheduler_config: Mapping[str, Any], class_name: str | None = None) -> SchedulerFamily:
    """The family of a pipeline's scheduler, from its class name and its config.

    ``class_name`` (or the config's ``_class_name``, which diffusers writes into configs it loads)
    decides when it is a ``FlowMatch*`` class (flow matching) or ``LCMScheduler``/``TCDScheduler``
    (consistency). Otherwise the config does: ``prediction_type="flow_prediction"`` or
    ``use_flow_sigmas`` is flow matching; ``original_inference_steps`` (a key only the consistency
    schedulers have) is consistency; a ``shift`` without betas (``FlowMatch*`` configs built in code
    carry no class name) is flow matching; anything else predicts noise (epsilon, v-prediction).
    """
    name = class_name or str(scheduler_config.get("_class_name") or "")
    if name.startswith("FlowMatch"):
        return SchedulerFamily.FLOW
    if name in _CONSISTENCY_CLASSES:
        return SchedulerFamily.CONSISTENCY
    if scheduler_config.get("prediction_type") == "flow_prediction" or scheduler_config.get("use_flow_sigmas"):
        return SchedulerFamily.FLOW
    if not name and "original_inference_steps" in scheduler_config:
        return SchedulerFamily.CONSISTENCY
    if not name and "shift" in scheduler_config and "beta_start" not in scheduler_config:
        return SchedulerFamily.FLOW
    return SchedulerFamily.NOISE


def family_sampler_names(family: SchedulerFamily) -> list[str]:
    """The sampler names that work with ``family``, in table order (diffusers class names of the
    family work too)."""
    if family is SchedulerFamily.FLOW:
        return [spec.name for spec in _FLOW_TABLE]
    if family is SchedulerFamily.CONSISTENCY:
        return list(_CONSISTENCY_NAMES)
    return known_sampler_names()


def family_error(name: str, family: SchedulerFamily, scheduler_class: str, reason: str,
                 working: list[str] | None = None) -> SamplerFamilyError:
    """The one-line refusal of sampler ``name`` on a pipeline whose scheduler is ``scheduler_class``
    (of ``family``), saying why and which names work (``working``; default: the family's)."""
    names = family_sampler_names(family) if working is None else working
    return SamplerFamilyError(
        f"sampler {name!r} does not work with this pipeline's {family.value} scheduler ({scheduler_class}): "
        f"{reason}. Samplers that work with it: {', '.join(names) or 'none'}")


def resolve_for_family(name: str, family: SchedulerFamily, scheduler_class: str) -> SamplerSpec:
    """The scheduler that runs sampler ``name`` on a model of ``family`` whose own scheduler is
    ``scheduler_class`` (named in the error).

    Raises UnknownSamplerError for an unknown name, and SamplerFamilyError for a name whose maths
    do not fit the family (:func:`fit_sampler`).
    """
    fit = fit_sampler(name, family)
    if isinstance(fit, str):
        raise family_error(name, family, scheduler_class, fit)
    return fit


def fit_sampler(name: str, family: SchedulerFamily) -> SamplerSpec | str:
    """The scheduler that runs sampler ``name`` on a model of ``family``, or why there is none.

    On flow matching: the flow-matching variant of the name, a ``FlowMatch*`` class name as
    written; refused: names without a flow-matching variant (LMS, DDIM, PNDM, Karras, ancestral
    and SDE samplers, LCM, TCD) and noise-prediction class names. On a consistency model (LCM,
    TCD): only ``LCM`` and ``TCD`` (so the default ``Euler`` is refused there: sweep
    ``samplers="LCM"``). On a noise-prediction model: every name but a ``FlowMatch*`` class.
    Raises UnknownSamplerError for an unknown name.
    """
    spec = resolve_sampler(name)
    is_class_name = spec.name == spec.class_name
    if family is SchedulerFamily.FLOW:
        if is_class_name and spec.class_name.startswith("FlowMatch"):
            return spec
        for flow_spec in _FLOW_TABLE:
            if flow_spec.name == spec.name:
                return flow_spec
            if is_class_name and flow_spec.class_name == spec.class_name:
                return SamplerSpec(spec.name, flow_spec.class_name, flow_spec.kwargs, flow_spec.stochastic)
        return _why_no_flow_variant(spec)
    if family is SchedulerFamily.CONSISTENCY:
        if spec.class_name in _CONSISTENCY_CLASSES:
            return spec
        return (f"a consistency-distilled model is sampled with a consistency sampler; {spec.name} would run "
                f"{spec.class_name} maths on it (sweep samplers=\"LCM\")")
    if spec.class_name.startswith("FlowMatch"):
        return f"{spec.class_name} is a flow-matching scheduler and this model predicts noise"
    return spec


def _why_no_flow_variant(spec: SamplerSpec) -> str:
    if spec.kwargs_dict().get("use_karras_sigmas"):
        return "Karras sigmas are a noise-prediction schedule (on a flow-matching model they give garbage)"
    if spec.class_name in _CONSISTENCY_CLASSES:
        return (f"{spec.name} ({spec.class_name}) samples noise-prediction consistency models; for a flow-matching "
                "consistency model sweep its own scheduler's class name (e.g. FlowMatchLCMScheduler)")
    return (f"{spec.name} ({spec.class_name}) has no flow-matching variant in diffusers; it would run noise-prediction "
            "maths on a flow-matching model")


def sampler_slug(name: str) -> str:
    """A lowercase identifier for test ids and file names: "DPM++ 2M Karras" -> "dpmpp_2m_karras"."""
    spec = resolve_sampler(name)
    if spec.name == spec.class_name:
        return spec.class_name.lower()
    return re.sub(r"[^a-z0-9]+", "_", spec.name.lower().replace("++", "pp")).strip("_")


def build_scheduler(scheduler_config: Mapping[str, Any], name: str, *, class_name: str | None = None,
                    seed: int | None = None) -> Any:
    """Build the scheduler for sampler ``name`` from a pipeline's scheduler config (no model reload).

    ``class_name`` is the class of the pipeline's own scheduler (default: the config's
    ``_class_name``); with the config it gives the family (:func:`scheduler_family`), and the name
    is resolved for it (:func:`resolve_for_family`: raises SamplerFamilyError or
    UnknownSamplerError). Sampler-choice keys (Karras/exponential/beta sigmas, algorithm and solver
    type, lower_order_final, stochastic sampling, flow sigmas) are not inherited from
    ``scheduler_config``: the target class's defaults apply unless the sampler sets them, so
    repeated swaps on one pipeline do not leak a previous sampler's variant. A flow-matching
    ``shift`` becomes the ``flow_shift`` of a solver's flow variant. ``seed`` seeds the noise of the
    schedulers in :data:`SEED_KEYWORDS` (``DPMSolverSDEScheduler``'s ``noise_sampler_seed``; without
    one it draws from torch's global generator, so it raises ValueError when ``seed`` is None).
    Keys of the pipeline's config that the target class does not take are carried along without
    diffusers' "were passed to ..., but are not expected" warning (the pipeline may read them).
    Raises ValueError (one line) when the class needs a package that is not installed
    (``DPMSolverSDEScheduler``: torchsde).
    """
    import logging

    import diffusers

    own_class = class_name or str(scheduler_config.get("_class_name") or "")
    family = scheduler_family(scheduler_config, own_class or None)
    spec = resolve_for_family(name, family, own_class or "a scheduler of unknown class")
    cls = getattr(diffusers, spec.class_name, None)
    if cls is None:
        raise UnknownSamplerError(
            name, f"diffusers {diffusers.__version__} has no scheduler class"
        )
    config = {k: v for k, v in scheduler_config.items() if k not in _SAMPLER_CHOICE_KEYS}
    kwargs = spec.kwargs_dict()
    if kwargs.get("use_flow_sigmas") and "shift" in config and "flow_shift" not in config:
        kwargs["flow_shift"] = config["shift"]
    seed_keyword = SEED_KEYWORDS.get(spec.class_name)
    if seed_keyword is not None:
        if seed is None:
            raise ValueError(f"sampler {name!r} ({spec.class_name}) needs the case's seed for its noise")
        kwargs[seed_keyword] = seed
    config_logger = logging.getLogger("diffusers.configuration_utils")
    level = config_logger.level
    config_logger.setLevel(logging.ERROR)
    try:
        return cls.from_config(config, **kwargs)
    except ImportError as exc:  # diffusers' stand-in for a scheduler whose backend is missing (torchsde)
        reason = " ".join(str(exc).split())
        raise ValueError(f"sampler {name!r} ({spec.class_name}) cannot run here: {reason}") from None
    finally:
        config_logger.setLevel(level)
