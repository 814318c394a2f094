"""The scheduler a case runs with: the family-aware sampler swap, seeded noise, and its record.

:func:`scheduler_for` builds the scheduler of a sampler for one pipeline (see
:mod:`pytest_diffbench.spec.samplers` for the names per family) and refuses, with one
:class:`~pytest_diffbench.spec.samplers.SamplerFamilyError` line, a sampler that this pipeline
cannot run correctly or reproducibly:

* its maths do not fit the model's family (flow matching, consistency, noise prediction);
* the pipeline passes ``mu`` (resolution-dependent shifting: Flux always, SD3 with
  ``use_dynamic_shifting``) and the scheduler cannot take it (``FlowMatchHeunDiscreteScheduler``;
  the DPM-Solver/DEIS flow variants unless the scheduler config has ``use_dynamic_shifting``);
* it adds noise at its steps and the pipeline does not hand its seeded generator to
  ``scheduler.step`` (SD3 and Flux do not), so the noise could not be seeded from the case's seed;
  ``DPMSolverSDEScheduler`` is seeded through its ``noise_sampler_seed`` instead (the case's seed:
  :data:`~pytest_diffbench.spec.samplers.SEED_KEYWORDS`);
* ``TCDScheduler`` on a pipeline whose call has no ``eta`` (``LatentConsistencyModelPipeline``
  passes ``eta=None``, which TCD cannot use).

:func:`scheduler_record` is what the frozen config says about the scheduler.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import weakref
from typing import Any, Mapping

from pytest_diffbench.spec.config import normalise
from pytest_diffbench.spec.samplers import (
    SEED_KEYWORDS,
    build_scheduler,
    family_error,
    family_sampler_names,
    fit_sampler,
    scheduler_family,
)

__all__ = ["passes_mu", "scheduler_for", "scheduler_record"]

#: The ``mu`` the probe of :func:`scheduler_for` passes (Flux's shift at its base resolution).
_PROBE_MU = 0.5
_PROBE_STEPS = 4


def scheduler_for(pipe: Any, own_scheduler: Any, sampler: str, seed: int) -> Any:
    """The scheduler of ``sampler`` for ``pipe``, built from ``own_scheduler`` (the pipeline's own
    scheduler, as first seen: its class and config give the family) with its noise seeded from
    ``seed``. Nothing on ``pipe`` changes. Raises SamplerFamilyError (one line naming the sampler,
    the pipeline's scheduler class and family, the reason and the samplers that work on this
    pipeline) for the cases in the module docstring, and UnknownSamplerError for an unknown name."""
    config, own_class = own_scheduler.config, type(own_scheduler).__name__
    scheduler, problem = _fit(pipe, config, sampler, own_class, seed)
    if scheduler is None:
        family = scheduler_family(config, own_class)
        working = [name for name in family_sampler_names(family)
                   if _fit(pipe, config, name, own_class, seed)[0] is not None]
        raise family_error(sampler, family, own_class, problem, working)
    return scheduler


def _fit(pipe: Any, scheduler_config: Mapping[str, Any], sampler: str, own_class: str, seed: int) -> tuple[Any, str]:
    """``(the scheduler of sampler for pipe, "")``, or ``(None, why pipe cannot run it correctly and
    reproducibly)``."""
    fit = fit_sampler(sampler, scheduler_family(scheduler_config, own_class))
    if isinstance(fit, str):
        return None, fit
    scheduler = build_scheduler(scheduler_config, sampler, class_name=own_class, seed=seed)
    pipeline = type(pipe).__name__
    if fit.stochastic and fit.class_name not in SEED_KEYWORDS and not hasattr(pipe, "prepare_extra_step_kwargs"):
        return None, (f"{fit.class_name} adds noise at its steps and {pipeline} does not pass its seeded generator "
                      "to scheduler.step, so that noise could not be seeded from the case's seed")
    if fit.class_name == "TCDScheduler" and "eta" not in _call_parameters(type(pipe)):
        return None, f"TCDScheduler needs the pipeline to pass eta, and {pipeline}'s call passes eta=None"
    if passes_mu(pipe, scheduler_config):
        probe = type(scheduler).from_config(scheduler.config)
        try:
            probe.set_timesteps(_PROBE_STEPS, mu=_PROBE_MU)
        except Exception as exc:  # any failure of set_timesteps is diffusers refusing the pair
            if str(exc):
                detail = f" ({type(exc).__name__}: {exc})"
            elif isinstance(exc, AssertionError) and not scheduler.config.get("use_dynamic_shifting"):
                detail = " (it takes mu only with use_dynamic_shifting=True in the scheduler config)"
            else:
                detail = f" ({type(exc).__name__})"
            return None, (f"{pipeline} passes mu (resolution-dependent shifting) to the scheduler's set_timesteps, "
                          f"which {fit.class_name} cannot take with this config{detail}")
    return scheduler, ""


def passes_mu(pipe: Any, scheduler_config: Mapping[str, Any]) -> bool:
    """Whether ``pipe`` passes ``mu`` to ``scheduler.set_timesteps``: always when its ``__call__``
    names a ``mu=`` keyword in a call (Flux), else when the scheduler config has
    ``use_dynamic_shifting`` (SD3 computes ``mu`` then)."""
    return bool(scheduler_config.get("use_dynamic_shifting")) or _call_passes_mu(type(pipe))


#: :func:`_call_passes_mu` by pipeline class: reading and parsing a ``__call__``'s source costs tens
#: of ms, asked several times per case, and a class's source does not change during a run.
_PASSES_MU: "weakref.WeakKeyDictionary[type, bool]" = weakref.WeakKeyDictionary()


def _call_passes_mu(pipeline_class: Any) -> bool:
    """Whether the ``__call__`` of ``pipeline_class`` passes a ``mu=`` keyword in a call it makes
    (read from its source once per class)."""
    known = _PASSES_MU.get(pipeline_class)
    if known is not None:
        return known
    call = _own_call(pipeline_class)
    if call is None:
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(call)))
    except (OSError, TypeError, SyntaxError):  # no source (a compiled or dynamic class): nothing to read
        return False
    found = any(isinstance(node, ast.Call) and any(k.arg == "mu" for k in node.keywords) for node in ast.walk(tree))
    _PASSES_MU[pipeline_class] = found
    return found


def _own_call(pipeline_class: type) -> Any:
    """The nearest ``__call__`` defined up the class hierarchy (None: only object's)."""
    for klass in pipeline_class.__mro__[:-1]:
        call = klass.__dict__.get("__call__")
        if call is not None:
            return call
    return None


def _call_parameters(pipeline_class: Any) -> frozenset[str]:
    call = _own_call(pipeline_class)
    if call is None:
        return frozenset()
    return frozenset(inspect.signature(call).parameters)


def scheduler_record(scheduler: Any) -> dict[str, Any]:
    """What the frozen config says about ``scheduler``: ``{"class": its class name}`` plus every
    key of its config whose value differs from the class's own ``__init__`` default, in key order,
    JSON-ready (:func:`~pytest_diffbench.spec.config.normalise`). Keys the class does not take but
    carries from the config it was built from are recorded too (a pipeline may read them:
    Flux computes ``mu`` from ``base_shift``, ``max_image_seq_len`` ...); diffusers' private keys
    (``_class_name``, ``_use_default_values`` ...) are not. Raises TypeError when a config value
    cannot be normalised."""
    defaults = {name: parameter.default
                for name, parameter in inspect.signature(type(scheduler).__init__).parameters.items()
                if parameter.default is not inspect.Parameter.empty}
    record: dict[str, Any] = {"class": type(scheduler).__name__}
    for key in sorted(scheduler.config):
        if key.startswith("_"):
            continue
        value = normalise(scheduler.config[key], where=f"scheduler.{key}")
        if key in defaults and _default_value(defaults[key]) == value:
            continue
        record[key] = value
    return record


def _default_value(default: Any) -> Any:
    try:
        return normalise(default)
    except TypeError:  # a default no config can hold (an object): never equal to a config value
        return object()
