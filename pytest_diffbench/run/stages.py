"""Two-stage workflows (an SDXL base, then its refiner) and the step counts of a warm-up.

``diffbench.two_stage(base, refiner, handoff=0.8)``, returned by a ``diffbench_pipeline``
fixture, makes each case run the base for the first ``handoff`` of the denoising
(``denoising_end=handoff, output_type="latent"``) and the refiner on its latents for the rest
(``image=<latents>, denoising_start=handoff``). Both stages use the case's sampler (each built
from its own scheduler config), seed (a fresh CPU generator per stage), steps and cfg; both
models are fingerprinted into the config (the refiner's description and the handoff in its
``refiner`` field); each stage is timed on its own. The latents handed over never enter the config.

Each ``generate()`` keyword goes to the stage(s) whose ``__call__`` names it (:func:`route_keywords`):
``prompt`` and ``negative_prompt`` to both, ``width``/``height`` to the base, ``aesthetic_score``
to the refiner. The module imports no torch: ``import pytest_diffbench`` stays light.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

#: The stage names, as Measurement.stages and results.csv name them (spec.measurement.STAGE_NAMES).
BASE, REFINER = "base", "refiner"
#: Keywords the handoff sets: a two-stage case refuses them in generate() (set ``handoff=`` instead).
HANDOFF_KEYWORDS = ("denoising_end", "denoising_start")
#: Keywords a refiner takes but ignores once ``denoising_start`` is set, with why.
IGNORED_AFTER_HANDOFF = {"strength": "the refiner ignores strength when the handoff sets denoising_start"}


class StageError(ValueError):
    """A generate() keyword a two-stage case cannot take (one line naming it)."""


@dataclass(frozen=True, eq=False)
class TwoStage:
    """A base pipeline and its refiner, run one after the other for each case (see the module
    docstring). Make it with :func:`two_stage`."""

    base: Any
    refiner: Any
    #: The fraction of the denoising the base runs (``denoising_end``); the refiner starts there.
    handoff: float

    @property
    def device(self) -> Any:
        """The base's device: where the case's network metrics run."""
        return getattr(self.base, "device", "cpu")

    @property
    def dtype(self) -> Any:
        return getattr(self.base, "dtype", None)

    def stages(self) -> tuple[tuple[str, Any], ...]:
        """``(name, pipeline)`` of each stage, in the order they run."""
        return (BASE, self.base), (REFINER, self.refiner)


def two_stage(base: Any, refiner: Any, handoff: float = 0.8) -> TwoStage:
    """A two-stage pipeline for the ``diffbench_pipeline`` fixture: ``base`` (e.g.
    ``StableDiffusionXLPipeline``) runs the first ``handoff`` of each case's denoising steps and
    hands its latents to ``refiner`` (e.g. ``StableDiffusionXLImg2ImgPipeline``), which runs the
    rest. ``handoff`` is a fraction strictly between 0 and 1 (diffusers' ``denoising_end`` /
    ``denoising_start``). Never raises: a case with an invalid pair or handoff fails with one line
    (:func:`two_stage_problem`)."""
    return TwoStage(base=base, refiner=refiner, handoff=float(handoff) if _is_number(handoff) else handoff)


#: The keywords each stage's call must name for the handoff.
HANDOFF_CALL = {BASE: ("denoising_end", "output_type"), REFINER: ("denoising_start", "image")}


def two_stage_problem(pipe: TwoStage, pipeline_problem: Callable[[Any], str | None]) -> str | None:
    """Why ``pipe`` cannot run a case, in one line (the handoff is not a number strictly between 0
    and 1, a stage is not a diffusers pipeline by ``pipeline_problem``'s check, or its call does
    not take the keywords of the handoff, :data:`HANDOFF_CALL`); None when it can."""
    if not _is_number(pipe.handoff) or not 0 < pipe.handoff < 1:
        return (f"diffbench.two_stage(handoff={pipe.handoff!r}) is not valid; the handoff is the fraction of the "
                "denoising the base runs, a number strictly between 0 and 1 (e.g. 0.8)")
    for name, stage in pipe.stages():
        if hasattr(stage, "diffbench_generate"):
            return (f"diffbench.two_stage: the {name} is a {type(stage).__name__}, which runs itself; both stages must "
                    "be diffusers pipelines")
        problem = pipeline_problem(stage)
        if problem is not None:
            return f"diffbench.two_stage: the {name}: {problem}"
        names = call_keywords(stage)
        missing = [keyword for keyword in HANDOFF_CALL[name] if names is not None and keyword not in names]
        if missing:
            example = "StableDiffusionXLPipeline" if name == BASE else "StableDiffusionXLImg2ImgPipeline"
            return (f"diffbench.two_stage: the {name}'s call ({type(stage).__name__}) takes no {', '.join(missing)}, "
                    f"which the handoff needs; use a pipeline that does (e.g. {example})")
    return None


def call_keywords(pipe: Any) -> frozenset[str] | None:
    """The keywords the pipeline's ``__call__`` names. A keyword it would only swallow through
    ``**kwargs`` changes nothing, so it must not change a config either. A ``__call__`` that
    names none (a wrapper's ``*args, **kwargs``) passes them on: the nearest one up the class
    hierarchy that names some is read. None (any keyword) when no class names any."""
    for cls in type(pipe).__mro__:
        call = cls.__dict__.get("__call__")
        if call is None:
            continue
        parameters = list(inspect.signature(call).parameters.values())[1:]  # without self
        named = frozenset(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if named:
            return named
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def union_keywords(keywords: Sequence[frozenset[str] | None]) -> frozenset[str] | None:
    """The keywords a two-stage case takes: those of any stage (None: a stage takes any keyword)."""
    if any(names is None for names in keywords):
        return None
    return frozenset().union(*[names for names in keywords if names is not None])


def route_keywords(call_kwargs: Mapping[str, Any], base_keywords: frozenset[str] | None,
                   refiner_keywords: frozenset[str] | None, handoff: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keywords of the base's call and of the refiner's, from a case's ``call_kwargs``
    (each stage's keyword names; None: any keyword): each keyword goes to every stage whose call
    names it; the base gets ``denoising_end=handoff, output_type="latent"``, the refiner
    ``denoising_start=handoff`` and the case's ``output_type``; the refiner's ``image`` (the
    latents) is set when it runs. Raises StageError (one line naming the keywords) for a keyword
    that the handoff sets or that the refiner would ignore, or that neither stage takes."""
    refused = [f"{name} (the handoff sets it: diffbench.two_stage(..., handoff={handoff}))"
               for name in call_kwargs if name in HANDOFF_KEYWORDS]
    refused += [f"{name} ({why})" for name, why in IGNORED_AFTER_HANDOFF.items() if name in call_kwargs]
    if "image" in call_kwargs and not _takes(base_keywords, "image"):
        refused.append("image (the refiner's image is the base's latents)")
    unknown = [name for name in call_kwargs if not _takes(base_keywords, name) and not _takes(refiner_keywords, name)]
    refused += [f"{name} (neither stage's call takes it)" for name in unknown if name not in HANDOFF_KEYWORDS]
    if refused:
        raise StageError(f"a two-stage case cannot take generate() keyword(s) {', '.join(refused)}")
    base = {name: value for name, value in call_kwargs.items() if _takes(base_keywords, name)}
    refiner = {name: value for name, value in call_kwargs.items() if _takes(refiner_keywords, name) and name != "image"}
    base.update(denoising_end=handoff, output_type="latent")
    refiner.update(denoising_start=handoff)
    return base, refiner


def _takes(keywords: frozenset[str] | None, name: str) -> bool:
    return keywords is None or name in keywords


# -- the warm-up's step count -------------------------------------------------------------------


def denoising_steps(steps: int, *, strength: float | None = None, denoising_start: float | None = None,
                    denoising_end: float | None = None, timesteps: Sequence[float] = (),
                    train_timesteps: int = 1000, order: int = 1) -> int:
    """How many denoising steps a diffusers call of ``num_inference_steps=steps`` runs.

    With ``denoising_start`` or ``denoising_end`` (a float strictly between 0 and 1, as diffusers
    checks them) the count is that of the scheduler's ``timesteps`` for ``steps`` (which the caller
    computes) below the start's cutoff and at or above the end's, the cutoff being
    ``round(train_timesteps * (1 - fraction))``; a second-order scheduler (``order`` 2) runs one
    more after a start when the count is even (as diffusers' SDXL img2img does). Else with
    ``strength`` (img2img, inpaint) it is ``int(steps * strength)`` (at most ``steps``); else ``steps``.
    """
    start = denoising_start if _fraction(denoising_start) else None
    end = denoising_end if _fraction(denoising_end) else None
    if start is not None or end is not None:
        kept = list(timesteps)
        if end is not None:
            kept = [t for t in kept if t >= round(train_timesteps - end * train_timesteps)]
        if start is not None:
            kept = [t for t in kept if t < round(train_timesteps - start * train_timesteps)]
            if order == 2 and len(kept) % 2 == 0:
                return len(kept) + 1
        return len(kept)
    if strength is not None:
        return min(int(steps * strength), steps)
    return steps


def _fraction(value: object) -> bool:
    return isinstance(value, float) and 0 < value < 1


def warmup_steps(steps: int, least: int, denoising: Callable[[int], int]) -> int | None:
    """The step count of a warm-up before a case of ``steps`` steps: the smallest count from
    ``min(least, steps)`` up to ``steps`` for which ``denoising(count)`` (the fewest denoising
    steps any stage of the call runs, see :func:`denoising_steps`) is at least 1; None when no
    count up to ``steps`` leaves one (the warm-up is then skipped, with a note).

    E.g. img2img at ``strength=0.3``: 4 for ``steps=4`` (``int(2 * 0.3) == int(3 * 0.3) == 0``),
    4 for ``steps=10``, 2 at ``strength=0.6``.
    """
    for count in range(max(1, min(least, steps)), steps + 1):
        if denoising(count) >= 1:
            return count
    return None
