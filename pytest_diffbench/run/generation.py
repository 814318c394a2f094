"""One image per call: sampler swap, seeded CPU generator, warm-up, timing and peak VRAM.

Timing wraps only the pipeline calls, synchronised on CUDA so queued kernels are counted. A
two-stage pipeline (:func:`pytest_diffbench.run.stages.two_stage`) runs its base, then its
refiner on the base's latents; each stage is timed on its own (its seconds and peak VRAM), and
the case's seconds per image is their sum.

The first time a pipeline meets an output resolution it runs one short warm-up generation first
(kernel selection, allocator growth, lazy initialisation), which is recorded separately and
never counted as the case's seconds per image. The warm-up is the case's own call with as few
steps as leave every stage at least one denoising step (:func:`pytest_diffbench.run.stages.warmup_steps`:
img2img's ``strength``, a handoff's ``denoising_start``/``denoising_end``); a case whose own
step count leaves a stage none is refused (:class:`PipelineCallError`) before any call. A resolution is known by the call's ``width``/``height``, or
else by the shapes of its image inputs, and once a call has run by the size it really made.

NaN or inf in the decoded image (a float16 VAE overflow) reaches us as black pixels: diffusers'
``numpy_to_pil`` casts them to uint8 and numpy warns "invalid value encountered in cast". The
timed call records those warnings (:func:`record_nonfinite`) into ``Measurement.warnings``, and
the judge refuses the output; every other warning is passed on unchanged.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Hashable, Iterator, Mapping, Sequence

import torch
from PIL import Image

from pytest_diffbench.run.batching import BatchUnsupported
from pytest_diffbench.run.determinism import nondeterministic_op
from pytest_diffbench.run.fingerprint import describe_pipeline
from pytest_diffbench.run.frames import OutputError, output_image
from pytest_diffbench.run.protocol import PipelineCallError, PipelineDescription
from pytest_diffbench.run.schedulers import scheduler_for, scheduler_record
from pytest_diffbench.run.stages import (
    REFINER,
    TwoStage,
    call_keywords,
    denoising_steps,
    route_keywords,
    union_keywords,
    warmup_steps,
)
from pytest_diffbench.spec.measurement import Measurement, StageMeasurement

#: The fewest steps a warm-up runs (fewer when the case has fewer).
WARMUP_STEPS = 2
#: The call keyword that makes several images in one call (``--diffbench-batch``).
BATCH_KEYWORD = "num_images_per_prompt"
#: Call keywords that only a video pipeline's call takes: it makes no batch of stills.
VIDEO_KEYWORDS = ("num_frames", "num_videos_per_prompt")
#: The call keywords that say how much of the denoising a call runs (see :func:`denoising_steps`).
_DENOISING_KEYWORDS = ("strength", "denoising_start", "denoising_end")


@dataclass(frozen=True)
class _Stage:
    """One pipeline call of a case: its name ("" for a case of one call), pipeline and keywords;
    ``takes_latents``: its ``image`` is the previous stage's output."""

    name: str
    pipe: Any
    kwargs: Mapping[str, Any]
    takes_latents: bool = False


class ImageGenerator:
    """Generates the images of a session and remembers what it warmed up.

    Schedulers are always built from each pipeline's scheduler config as first seen, so one
    case's sampler never leaks into the next case's.
    """

    def __init__(self) -> None:
        #: Each pipeline's scheduler as first seen, before any sampler swap.
        self._original_schedulers: dict[int, Any] = {}
        self._pipelines: dict[int, Any] = {}  # keeps the ids below from being reused
        #: (pipeline id, output size, images per call) that ran once (a warm-up or a case).
        self._warmed: set[tuple[int, tuple[int, int], int]] = set()
        #: The output size each request (:meth:`_request`) made, once a call has run.
        self._sizes: dict[Hashable, tuple[int, int]] = {}
        #: False: calls are timed without a warm-up first, as a cold pipeline's first call
        #: (--diffbench-calibrate's cold repeat); the warm-up bookkeeping still records the call.
        self.warm_up = True

    def scheduler_config(self, pipe: Any) -> Any:
        """The config of ``pipe``'s scheduler as first seen (before any sampler swap)."""
        return self._original_scheduler(pipe).config

    def _original_scheduler(self, pipe: Any) -> Any:
        key = id(pipe)
        if key not in self._original_schedulers:  # the diffbench fixture checked it has a scheduler
            self._original_schedulers[key] = pipe.scheduler
            self._pipelines[key] = pipe
        return self._original_schedulers[key]

    def scheduler_record(self, pipe: Any, sampler: str, seed: int) -> Mapping[str, Any]:
        """The scheduler ``pipe`` (a two-stage pipeline: its base) runs the case of ``sampler`` and
        ``seed`` with, as the frozen config records it (class and every key that differs from the
        class's defaults: :func:`~pytest_diffbench.run.schedulers.scheduler_record`). Builds it
        without installing it. Raises SamplerFamilyError (one line) when any stage cannot run the
        sampler correctly and reproducibly, so the case fails before anything runs."""
        stages = (pipe.base, pipe.refiner) if isinstance(pipe, TwoStage) else (pipe,)
        with _quiet_scheduler_warnings():
            schedulers = [scheduler_for(stage, self._original_scheduler(stage), sampler, seed) for stage in stages]
        return scheduler_record(schedulers[0])

    def describe(self, pipe: Any) -> PipelineDescription:
        """The pipeline's fields of the frozen config (see run.fingerprint). A two-stage pipeline
        is described by its base, with the refiner's description in ``refiner``: its model,
        fingerprint, workflow, VAE, LoRAs, adapters, pipeline config, dtype, device and the
        ``handoff`` (the case adds the refiner's scheduler after the sampler swap, see
        :meth:`scheduler_record`)."""
        if not isinstance(pipe, TwoStage):
            return describe_pipeline(pipe)
        refiner = {key: value for key, value in vars(describe_pipeline(pipe.refiner)).items()
                   if key != "refiner" and value not in ("", (), {}, None)}
        refiner.update(handoff=pipe.handoff)
        return replace(describe_pipeline(pipe.base), refiner=refiner)

    def call_keywords(self, pipe: Any) -> frozenset[str] | None:
        """The keywords the pipeline's ``__call__`` names (see :func:`~pytest_diffbench.run.stages.call_keywords`;
        a two-stage pipeline: those either stage names); None: any keyword."""
        if isinstance(pipe, TwoStage):
            return union_keywords([call_keywords(stage) for _, stage in pipe.stages()])
        return call_keywords(pipe)

    def size_multiple(self, pipe: Any) -> int:
        """What width and height must be multiples of: 8 (the check of diffusers' Stable Diffusion
        pipelines), and the pipeline's ``vae_scale_factor`` when that is coarser (a two-stage
        pipeline: its base's). Pipelines with a coarser rule of their own (Flux: 16) still refuse
        or resize; the size check after the call reports a resize."""
        factor = getattr(pipe.base if isinstance(pipe, TwoStage) else pipe, "vae_scale_factor", None)
        return math.lcm(8, factor) if isinstance(factor, int) and factor > 0 else 8

    def generate(self, pipe: Any, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> tuple[Image.Image, Measurement]:
        """Swap the sampler into every stage, warm up if this output resolution is new, and time
        one image of ``seed``; afterwards every stage has its own scheduler back. Raises StageError
        (one line) for a keyword a two-stage case cannot take (see
        :func:`~pytest_diffbench.run.stages.route_keywords`), and :class:`PipelineCallError` (one
        line) when the pipeline's call refuses its inputs (a ValueError or TypeError from inside it)
        or, under ``--diffbench-deterministic``, runs an op that has no deterministic
        implementation (see :func:`~pytest_diffbench.run.determinism.nondeterministic_op`)."""
        images, measurement = self._swapped(pipe, sampler, [seed], call_kwargs)
        return images[0], measurement

    def generate_batch(self, pipe: Any, sampler: str, seeds: Sequence[int],
                       call_kwargs: Mapping[str, Any]) -> tuple[list[Image.Image], Measurement]:
        """As :meth:`generate`, for several seeds in one call (``--diffbench-batch``): diffusers'
        ``num_images_per_prompt=len(seeds)`` and one CPU generator per image (image i from
        ``seeds[i]``: the same starting noise as its unbatched call), warmed up once at this batch's
        shape. Returns the images in the order of ``seeds`` and the call's Measurement (its
        ``seconds_per_image`` holds the whole call's seconds; peak VRAM the call's). Raises
        :class:`~pytest_diffbench.run.batching.BatchUnsupported`, before any call, where one call
        cannot make these images (:meth:`batch_problem`)."""
        problem = self.batch_problem(pipe, sampler, seeds, call_kwargs)
        if problem:
            raise BatchUnsupported(problem)
        return self._swapped(pipe, sampler, seeds, call_kwargs)

    def batch_problem(self, pipe: Any, sampler: str, seeds: Sequence[int], call_kwargs: Mapping[str, Any]) -> str:
        """Why one call cannot make the images of ``seeds`` as their own calls would ("" when it
        can): a two-stage pipeline (its refiner takes the base's latents one case at a time), a
        call without ``num_images_per_prompt`` or a video pipeline's, ``latents`` given (one
        case's starting noise), or a sampler that seeds its own noise from the case's seed."""
        if isinstance(pipe, TwoStage):
            return "a two-stage pipeline"
        accepted = call_keywords(pipe)
        if accepted is not None and BATCH_KEYWORD not in accepted:
            return f"{type(pipe).__name__}.__call__ takes no {BATCH_KEYWORD}"
        if accepted is not None and any(name in accepted for name in VIDEO_KEYWORDS):
            return f"{type(pipe).__name__} makes videos"
        if call_kwargs.get("latents") is not None:
            return "generate() was given latents, one case's starting noise"
        with _quiet_scheduler_warnings():
            records = {repr(dict(self.scheduler_record(pipe, sampler, seed))) for seed in seeds}
        if len(records) > 1:
            return f"sampler {sampler!r} seeds its own noise from each case's seed"
        return ""

    def _swapped(self, pipe: Any, sampler: str, seeds: Sequence[int],
                 call_kwargs: Mapping[str, Any]) -> tuple[list[Image.Image], Measurement]:
        """:meth:`_generate` with the sampler of ``seeds[0]`` in every stage, each stage's own
        scheduler put back afterwards."""
        stages = self._stages(pipe, call_kwargs)
        for stage in stages:
            with _quiet_scheduler_warnings():
                stage.pipe.scheduler = scheduler_for(stage.pipe, self._original_scheduler(stage.pipe), sampler, seeds[0])
        try:
            return self._generate(pipe, stages, seeds, call_kwargs)
        finally:  # the pipeline is the user's: the next test finds the scheduler its fixture set
            for stage in stages:
                stage.pipe.scheduler = self._original_scheduler(stage.pipe)

    def _generate(self, pipe: Any, stages: list[_Stage], seeds: Sequence[int],
                  call_kwargs: Mapping[str, Any]) -> tuple[list[Image.Image], Measurement]:
        """:meth:`generate` (one seed) or :meth:`generate_batch` once the sampler is in every stage."""
        given = call_kwargs.get("num_inference_steps")  # absent where the call takes no steps: warm up as is
        steps = None if given is None else int(given)

        def denoising(count: int) -> int:
            return min(_denoising(stage, count) for stage in stages)

        # diffusers fails deep inside a call whose strength leaves no denoising step (a handoff's
        # stage without one only decodes: diffusers runs it)
        if steps is not None and not any(s.kwargs.get("denoising_start") or s.kwargs.get("denoising_end") for s in stages) \
                and denoising(steps) < 1:
            raise PipelineCallError(f"{type(pipe).__name__}: {steps} steps leave a stage no denoising step "
                                    f"({_denoising_text(stages)}); use more steps, a higher strength or another handoff")
        request = self._request(pipe, call_kwargs, len(seeds))
        size = self._sizes.get(request)
        warmup_seconds = None
        if self.warm_up and (size is None or (id(pipe), size, len(seeds)) not in self._warmed):
            count = None if steps is None else warmup_steps(steps, WARMUP_STEPS, denoising)
            timings, output = self._run(stages, seeds, count)
            warmup_seconds = sum(seconds for seconds, _ in timings)
            self._ran(pipe, request, _output_images(output, len(seeds))[0][0].size, len(seeds))
        with record_nonfinite() as nonfinite:
            timings, output = self._run(stages, seeds, None)
        images, frames = _output_images(output, len(seeds))
        self._ran(pipe, request, images[0].size, len(seeds))
        peaks = [peak for _, peak in timings if peak is not None]
        staged = tuple(StageMeasurement(stage.name, seconds, peak) for stage, (seconds, peak) in zip(stages, timings)
                       if stage.name)
        return images, Measurement(seconds_per_image=sum(seconds for seconds, _ in timings),
                                   peak_vram_mb=max(peaks) if peaks else None, warmup_seconds=warmup_seconds,
                                   warnings=tuple(nonfinite), stages=staged, frames=frames)

    def _stages(self, pipe: Any, call_kwargs: Mapping[str, Any]) -> list[_Stage]:
        """The calls of one case: the pipeline's own, or a two-stage pipeline's base and refiner.
        Raises StageError (one line) for a keyword a two-stage case cannot take."""
        if not isinstance(pipe, TwoStage):
            return [_Stage("", pipe, call_kwargs)]
        base, refiner = route_keywords(call_kwargs, call_keywords(pipe.base), call_keywords(pipe.refiner), pipe.handoff)
        return [_Stage(name, stage, kwargs, takes_latents=name == REFINER)
                for (name, stage), kwargs in zip(pipe.stages(), (base, refiner))]

    def _run(self, stages: list[_Stage], seeds: Sequence[int],
             steps: int | None) -> tuple[list[tuple[float, float | None]], Any]:
        """Run the stages one after the other (``steps``: instead of the case's), each timed:
        its (seconds, peak VRAM MiB or None off CUDA), and the last stage's output. Several
        ``seeds``: one call making an image of each (``num_images_per_prompt``)."""
        timings: list[tuple[float, float | None]] = []
        output: Any = None
        for stage in stages:
            kwargs = dict(stage.kwargs)
            if steps is not None:
                kwargs["num_inference_steps"] = steps
            if len(seeds) > 1:
                kwargs[BATCH_KEYWORD] = len(seeds)
            if stage.takes_latents:
                kwargs["image"] = output.images
            device = torch.device(getattr(stage.pipe, "device", "cpu"))
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds, output = self._timed_call(stage.pipe, device, kwargs, seeds)
            timings.append((seconds, torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None))
        return timings, output

    def _request(self, pipe: Any, call_kwargs: Mapping[str, Any], count: int) -> Hashable:
        """What decides a call's output resolution: the pipeline, its width and height keywords,
        and the shape of each image input (a PIL image's size and mode, an array's shape); and
        ``count``, the images one call makes (a batch warms up at its own shape)."""
        shapes = tuple(sorted((name, shape) for name, value in call_kwargs.items()
                              if (shape := _shape(value)) is not None))
        return id(pipe), call_kwargs.get("width"), call_kwargs.get("height"), shapes, count

    def _ran(self, pipe: Any, request: Hashable, size: tuple[int, int], count: int) -> None:
        """Note that ``request`` made ``count`` images of ``size`` per call, which ``pipe`` has now run at."""
        self._sizes[request] = size
        self._warmed.add((id(pipe), size, count))
        self._pipelines[id(pipe)] = pipe

    @staticmethod
    def _timed_call(pipe: Any, device: torch.device, call_kwargs: Mapping[str, Any],
                    seeds: Sequence[int]) -> tuple[float, Any]:
        # One CPU generator per image: the same starting noise on any device (diffusers' advice),
        # and in a batch each image's from its own seed.
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        generator: Any = generators[0] if len(generators) == 1 else generators
        _synchronize(device)
        start = time.perf_counter()
        try:
            with _quiet_scheduler_warnings():
                output = pipe(**call_kwargs, generator=generator)
        except (ValueError, TypeError) as exc:  # diffusers' own checks of its inputs raise these
            raise PipelineCallError.of(pipe, exc) from exc
        except RuntimeError as exc:  # under --diffbench-deterministic: an op torch cannot run deterministically
            problem = nondeterministic_op(exc)
            if problem is None:
                raise
            raise PipelineCallError(f"{type(pipe).__name__}'s call: {problem}") from None
        _synchronize(device)
        return time.perf_counter() - start, output


def _output_images(output: Any, count: int) -> tuple[list[Image.Image], int]:
    """The ``count`` images of a call (see :func:`~pytest_diffbench.run.frames.output_image` for one)
    and how many frames each holds. Raises OutputError when a batched call returned other than
    ``count`` PIL images."""
    if count == 1:
        image, frames = output_image(output)
        return [image], frames
    images = getattr(output, "images", None)
    if not isinstance(images, (list, tuple)) or len(images) != count or \
            not all(isinstance(image, Image.Image) for image in images):
        raise OutputError(f"the pipeline's batched call did not return {count} PIL images in output.images; "
                          "run without --diffbench-batch")
    return list(images), 1


def _denoising(stage: _Stage, steps: int) -> int:
    """How many denoising steps ``stage`` runs in a call of ``steps`` (see :func:`denoising_steps`);
    the scheduler's timesteps are computed only for a ``denoising_start``/``denoising_end``. A
    scheduler that cannot compute them alone counts ``steps`` (the call is taken as valid)."""
    given = {name: stage.kwargs.get(name) for name in _DENOISING_KEYWORDS}
    if given["denoising_start"] is None and given["denoising_end"] is None:
        return denoising_steps(steps, strength=given["strength"])
    scheduler = stage.pipe.scheduler
    try:
        with _quiet_scheduler_warnings():
            probe = type(scheduler).from_config(scheduler.config)
            probe.set_timesteps(steps)
        timesteps = [float(t) for t in probe.timesteps]
    except Exception:  # e.g. a flow-matching scheduler that needs the pipeline's mu
        return steps
    return denoising_steps(steps, **given, timesteps=timesteps,
                           train_timesteps=int(scheduler.config.get("num_train_timesteps", 1000)),
                           order=int(getattr(scheduler, "order", 1)))


def _denoising_text(stages: list[_Stage]) -> str:
    """The keywords that shorten the denoising of ``stages``, e.g. ``strength=0.05``."""
    return ", ".join(f"{f'{stage.name} ' if stage.name else ''}{name}={stage.kwargs[name]}"
                     for stage in stages for name in _DENOISING_KEYWORDS if stage.kwargs.get(name) is not None)


def _shape(value: Any) -> Hashable | None:
    """The shape of an image input (a PIL image's size and mode, an array's or tensor's shape,
    a list's items'), None for any other value."""
    if isinstance(value, Image.Image):
        return value.size, value.mode
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) or isinstance(shape, torch.Size):
        return tuple(int(n) for n in shape)
    if isinstance(value, (list, tuple)) and value:
        shapes = tuple(_shape(item) for item in value)
        return shapes if all(item is not None for item in shapes) else None
    return None


@contextlib.contextmanager
def _quiet_scheduler_warnings() -> Iterator[None]:
    """diffusers' schedulers hand torch tensors to np.array(); numpy 2 warns about it on every call."""
    with warnings.catch_warnings():
        for message in (".*__array__ implementation doesn't accept a copy keyword", ".*__array_wrap__ must accept context"):
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        yield


#: numpy's RuntimeWarning when NaN or inf are cast to integers (diffusers' numpy_to_pil making uint8 pixels).
_NONFINITE = "invalid value encountered in cast"


@contextlib.contextmanager
def record_nonfinite() -> Iterator[list[str]]:
    """Collect the messages of numpy's non-finite-value RuntimeWarnings raised inside the block
    (as ``numpy: <message>``, the form ``Measurement.warnings`` takes);
    every other warning is re-issued as it came."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        yield found
    for item in caught:
        text = str(item.message)
        if issubclass(item.category, RuntimeWarning) and _NONFINITE in text:
            if f"numpy: {text}" not in found:
                found.append(f"numpy: {text}")
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno, source=item.source)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
