"""The ``diffbench`` fixture's object: one case of a sweep and its single generation."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import warnings
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn, Protocol, Sequence, TypeVar, runtime_checkable

import pytest

from pytest_diffbench.run.batching import BATCHES, BatchUnsupported
from pytest_diffbench.run.inputs import InputError, PreparedInputs, prepare_inputs
from pytest_diffbench.run.frames import OutputError, video_config
from pytest_diffbench.run.protocol import DiffbenchPipeline, PipelineCallError, PipelineDescription, inert_adapters
from pytest_diffbench.run.stages import StageError
from pytest_diffbench.spec.batches import Chunk
from pytest_diffbench.spec.config import FrozenConfig, canonical_json, normalise
from pytest_diffbench.spec.measurement import Measurement, measurement_problem
from pytest_diffbench.spec.presets import Preset
from pytest_diffbench.spec.sweep import (
    CLIP_SKIP,
    DEFAULT_CFG,
    DEFAULT_STEPS,
    LORA_SCALE_AXIS,
    RESERVED_AXES,
    SCHEDULE_KEYWORDS,
    SIZE_AXES,
    Case,
    keyword_problem,
)
from pytest_diffbench.spec.video import count_problem, frame_size

#: Keywords that take an IP-Adapter's image (or its embeddings): they need an IP-Adapter loaded.
IP_ADAPTER_KEYWORDS = ("ip_adapter_image", "ip_adapter_image_embeds")
#: Keywords of the pipeline call that take the LoRA scale, in the order they are tried (SD and
#: SDXL pipelines name the first, SD3 and Flux the second, newer ones the third).
ATTENTION_KEYWORDS = ("cross_attention_kwargs", "joint_attention_kwargs", "attention_kwargs")

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")


class Runner(Protocol):
    """Describes a pipeline, says what its call takes, and makes one timed image with it."""

    def describe(self, pipe: Any) -> PipelineDescription: ...

    def call_keywords(self, pipe: Any) -> frozenset[str] | None:
        """The keywords the pipeline's call takes; None: any."""
        ...

    def size_multiple(self, pipe: Any) -> int | None:
        """What width and height must be multiples of; None: any size."""
        ...

    def scheduler_record(self, pipe: Any, sampler: str, seed: int) -> Mapping[str, Any]:
        """The scheduler the case of ``sampler`` and ``seed`` will run with, as the config records it
        (``{"class": name, key: value}`` for each key off the class's defaults; empty: nothing to
        record). Asked before generating; raises ValueError (one line: SamplerFamilyError, an
        unknown sampler) when the sampler cannot run on this pipeline."""
        ...

    def generate(self, pipe: Any, sampler: str, seed: int,
                 call_kwargs: Mapping[str, Any]) -> "tuple[Image.Image, Measurement]": ...


@runtime_checkable
class BatchRunner(Protocol):
    """A :class:`Runner` that can also make several seeds' images in one call (``--diffbench-batch``)."""

    def generate_batch(self, pipe: Any, sampler: str, seeds: Sequence[int],
                       call_kwargs: Mapping[str, Any]) -> "tuple[list[Image.Image], Measurement]":
        """One image per seed, in the order of ``seeds``, image i from a CPU generator seeded with
        ``seeds[i]``, and the call's Measurement: its ``seconds_per_image`` holds the seconds of the
        whole call (diffbench divides by the number of images), its peak VRAM the call's. Raises
        :class:`~pytest_diffbench.run.batching.BatchUnsupported` (nothing run) when this pipeline
        or call cannot be batched, and what :meth:`Runner.generate` raises."""
        ...


class SelfRunner:
    """The runner of a :class:`~pytest_diffbench.run.protocol.DiffbenchPipeline`: it runs itself,
    and says what it takes through its optional ``diffbench_call_keywords`` (names; absent: any
    keyword) and ``diffbench_size_multiple`` (an int; absent: any size), and what scheduler it
    runs through its optional ``diffbench_scheduler_record(sampler, seed)`` (a mapping; absent:
    nothing recorded). Its optional ``diffbench_generate_batch(sampler, seeds, call_kwargs)`` makes
    a chunk's images in one call under ``--diffbench-batch`` (see :meth:`BatchRunner.generate_batch`;
    absent: each case runs alone)."""

    def describe(self, pipe: DiffbenchPipeline) -> PipelineDescription:
        return pipe.diffbench_describe()

    def call_keywords(self, pipe: DiffbenchPipeline) -> frozenset[str] | None:
        names = getattr(pipe, "diffbench_call_keywords", None)
        return None if names is None else frozenset(names)

    def size_multiple(self, pipe: DiffbenchPipeline) -> int | None:
        """Raises ValueError when ``diffbench_size_multiple`` is there but not a positive int."""
        multiple = getattr(pipe, "diffbench_size_multiple", None)
        if multiple is None:
            return None
        if not isinstance(multiple, int) or isinstance(multiple, bool) or multiple <= 0:
            raise ValueError(f"{type(pipe).__name__}.diffbench_size_multiple = {multiple!r} is not valid; it must be a "
                             "positive int (what width and height must be multiples of), or absent for any size")
        return multiple

    def scheduler_record(self, pipe: DiffbenchPipeline, sampler: str, seed: int) -> Mapping[str, Any]:
        """``pipe.diffbench_scheduler_record(sampler, seed)``, or ``{}`` when it has none. Raises
        ValueError when it returns something that is not a mapping."""
        record = getattr(pipe, "diffbench_scheduler_record", None)
        if record is None:
            return {}
        value = record(sampler, seed)
        if not isinstance(value, Mapping):
            raise ValueError(f"{type(pipe).__name__}.diffbench_scheduler_record() returned {type(value).__name__}, "
                             "not a mapping like {'class': 'EulerDiscreteScheduler', 'timestep_spacing': 'trailing'}")
        return dict(value)

    def generate(self, pipe: DiffbenchPipeline, sampler: str, seed: int,
                 call_kwargs: Mapping[str, Any]) -> "tuple[Image.Image, Measurement]":
        return pipe.diffbench_generate(sampler, seed, call_kwargs)

    def generate_batch(self, pipe: DiffbenchPipeline, sampler: str, seeds: Sequence[int],
                       call_kwargs: Mapping[str, Any]) -> "tuple[list[Image.Image], Measurement]":
        """``pipe.diffbench_generate_batch(sampler, seeds, call_kwargs)`` (see :meth:`BatchRunner.generate_batch`);
        raises BatchUnsupported when the pipeline has none."""
        batched = getattr(pipe, "diffbench_generate_batch", None)
        if batched is None:
            raise BatchUnsupported(f"{type(pipe).__name__} has no diffbench_generate_batch")
        return batched(sampler, list(seeds), call_kwargs)


class DiffbenchCase:
    """One case: its axes, its frozen config, and ``generate()``.

    The comparison with the baseline runs when the test body returns; a test makes exactly one
    image (sweep over anything else you want to vary).
    """

    def __init__(self, *, nodeid: str, case: Case, pipeline: Any, runner: Runner, workflow_version: str,
                 deterministic: bool = False, batch: Chunk | None = None) -> None:
        self.nodeid = nodeid
        self.case = case
        self.pipeline = pipeline
        #: The sweep's (or the ini's) workflow version, unless the case's preset sets one the sweep does not.
        self.workflow_version = case.workflow_version or workflow_version
        #: ``--diffbench-deterministic`` was on (recorded in the config).
        self.deterministic = deterministic
        #: The chunk of seeds this case's image is made with (``--diffbench-batch``, see spec.batches);
        #: None: made alone.
        self.batch = batch
        self._runner = runner
        self.config: FrozenConfig | None = None
        self.image: Image.Image | None = None
        self.measurement: Measurement | None = None
        #: The images, arrays and tensors given to generate(): converted, recorded, the images to save.
        self.inputs = PreparedInputs()

    @property
    def id(self) -> str:
        return self.case.id

    @property
    def axes(self) -> dict[str, Any]:
        return self.case.axes

    @property
    def seed(self) -> int:
        return self.case.seed

    @property
    def sampler(self) -> str:
        return self.case.sampler

    @property
    def steps(self) -> int:
        return self.case.steps

    @property
    def cfg(self) -> float:
        return self.case.cfg

    @property
    def preset(self) -> "Preset | None":
        """The preset of the case's sweep (``sweep(preset=...)``); None without one."""
        return self.case.preset

    @functools.cached_property
    def device(self) -> str:
        """The pipeline's full device (``cpu``, ``cuda:0``): where network metrics run. Read once
        per case (diffusers' ``pipe.device`` walks every module)."""
        return str(getattr(self.pipeline, "device", "cpu"))

    def generate(self, prompt: str, negative_prompt: str | None = None, **pipeline_kwargs: Any) -> "Image.Image":
        """Generate this case's image with the case's seed, sampler, steps and cfg.

        ``pipeline_kwargs`` go to the pipeline call and into the frozen config. Without a
        ``negative_prompt``, the case's preset's (if it sets one) is used. Returns the PIL
        image; it is compared with the baseline when the test returns.

        Images, arrays and tensors among ``pipeline_kwargs`` (PIL images, numpy arrays, torch
        tensors, alone, in lists or in dicts) go to the pipeline converted and into the config as
        small digests, see :mod:`pytest_diffbench.run.inputs`: under a keyword ending in ``image`` a
        picture (uint8 0-255, float in [0, 1], bool) becomes a PIL image (``L`` for a mask, else
        ``RGB``), recorded by the SHA-256 of its pixels and saved once in the run folder's
        ``inputs/``; other float arrays (latents) go unchanged and are recorded by a value summary
        compared within a relative tolerance. A picture that cannot be read (float outside [0, 1],
        NaN, another dtype) is refused with one line naming the keyword.
 Fails the case with one
        line (before the pipeline runs) when: it is called twice; the prompt is not a string; a
        keyword is one the sweep sets (``num_inference_steps``, ``guidance_scale``, a swept
        axis, ...); an extra axis or keyword is not a named parameter of the pipeline's call;
        a prompt, ``negative_prompt``, cfg or steps is given that the pipeline's call does not
        take (LCM takes no negative prompt); ``timesteps``/``sigmas`` would run another number of
        steps than the case's; ``lora_scale`` (or an attention keyword's ``scale``) is given
        without a LoRA loaded, or with every active LoRA fused or disabled; the sampler cannot
        run on this pipeline; width or height is not a positive multiple of the pipeline's size
        step; a value cannot go into a config or is not finite. Fails it after the call when the
        output is no image or video (:class:`~pytest_diffbench.run.frames.OutputError`) or the
        image's size is not the one asked for.

        The frozen config records, besides the case's axes and keywords, the pipeline's
        description (model, fingerprint, class, its config flags, its LoRA adapters, a refiner
        stage), the scheduler the sampler swap builds, a video's frame count, and the size of the
        batched call that made the image (``--diffbench-batch``: the case's chunk, see
        :meth:`_generated`; 1, left out, when it ran alone).
        """
        if self.image is not None:
            self._refuse("generate() was called twice; diffbench compares one image per case")
        if negative_prompt is None and self.preset is not None and self.preset.text("negative_prompt"):
            negative_prompt = self.preset.text("negative_prompt")
        if not isinstance(prompt, str):
            self._refuse(f"generate(prompt=...) must be a string, got {type(prompt).__name__}")
        self._check_own_keywords(pipeline_kwargs)
        # images, arrays and tensors: converted for the pipeline, recorded as digests (run.inputs)
        self.inputs = self._or_refuse(lambda: prepare_inputs(pipeline_kwargs), InputError)
        pipeline_kwargs = self.inputs.call_kwargs
        description = self._runner.describe(self.pipeline)
        accepted = self._runner.call_keywords(self.pipeline)
        axis_kwargs = {name: value for name, value in self.case.extra if name != LORA_SCALE_AXIS}
        self._check_values(description, {**axis_kwargs, **pipeline_kwargs})
        if LORA_SCALE_AXIS in dict(self.case.extra):
            axis_kwargs[self._attention_keyword(description, accepted)] = {"scale": dict(self.case.extra)[LORA_SCALE_AXIS]}
        clashes = sorted(set(axis_kwargs) & set(pipeline_kwargs))
        if clashes:
            axis_of = {name: LORA_SCALE_AXIS if name in ATTENTION_KEYWORDS else name for name in clashes}
            self._refuse("; ".join(
                f"generate() got {name}, which the sweep sets for this case; set it in the sweep only"
                if self.case.setter(axis_of[name]) == "the sweep" else
                f"generate() got {name}, which {self.case.setter(axis_of[name])} sets for this case; override it "
                f"with sweep({axis_of[name]}=...)" for name in clashes))
        if accepted is not None:
            self._check_accepted({**{name: "sweep axis" if self.case.setter(name) == "the sweep"
                                     else f"{self.case.setter(name)} keyword" for name in axis_kwargs},
                                  **{name: "generate() keyword" for name in pipeline_kwargs}}, accepted, description)
        core = self._core_keywords(prompt, negative_prompt, accepted, description, {**axis_kwargs, **pipeline_kwargs})
        call_kwargs = {**axis_kwargs, **pipeline_kwargs, **core, "output_type": "pil"}
        self._check_schedule(call_kwargs)
        problem = count_problem(call_kwargs)
        if problem:
            self._refuse(problem)
        # SamplerFamilyError, an unknown sampler, a record a config cannot hold, a bad multiple
        scheduler = self._or_refuse(lambda: self._runner.scheduler_record(self.pipeline, self.sampler, self.seed),
                                    TypeError, ValueError)
        refiner = dict(description.refiner)
        second = getattr(self.pipeline, "refiner", None)
        if refiner and second is not None:  # a two-stage pipeline: the refiner's scheduler as the sampler builds it
            refiner["scheduler"] = self._or_refuse(lambda: self._runner.scheduler_record(second, self.sampler, self.seed),
                                                   TypeError, ValueError)
        multiple = self._or_refuse(lambda: self._runner.size_multiple(self.pipeline), ValueError)
        self._check_sizes(call_kwargs, multiple)
        recorded_kwargs = {k: v for k, v in {**dict(self.case.extra), **pipeline_kwargs, **self.inputs.records}.items()
                           if k not in SIZE_AXES}
        # refuse what a config cannot hold, before generating
        self._or_refuse(lambda: normalise(recorded_kwargs, where="generate() keyword", finite=True), TypeError, ValueError)
        # what decides the pixels and figures of a batched call but the seed (a cold runner's, calibrate's, apart)
        keywords = canonical_json({"pipeline": id(self.pipeline), "warm_up": bool(getattr(self._runner, "warm_up", True)),
                                   "weights": description.model_fingerprint, "adapters": description.adapters,
                                   "sampler": self.sampler, "scheduler": scheduler, "recorded": recorded_kwargs, "core": core,
                                   "size": [call_kwargs.get(axis) for axis in SIZE_AXES]})
        output, batch = self._or_refuse(lambda: self._generated(description, call_kwargs, keywords),
                                        OutputError, PipelineCallError, StageError)
        image, measurement = self._checked_output(output)
        width, height = self._or_refuse(lambda: frame_size(image.width, image.height, measurement.frames), ValueError)
        for axis, size in (("width", width), ("height", height)):
            asked = call_kwargs.get(axis)
            if asked is not None and int(asked) != size:  # the config must hold what was made
                self._refuse(
                    f"asked for {axis}={asked}, but the pipeline returned a {width}x{height} "
                    "image; set both width and height (diffusers pipelines use their default size when one is missing)"
                )
        self.config = FrozenConfig(
            model=description.model,
            model_fingerprint=description.model_fingerprint,
            vae=description.vae,
            loras=description.loras,
            controlnets=description.controlnets,
            prompt=str(core.get("prompt", "")),
            negative_prompt=core.get("negative_prompt"),
            seed=self.seed,
            sampler=self.sampler,
            steps=self.steps,
            cfg=self.cfg,
            width=width,
            height=height,
            workflow=description.workflow,
            workflow_version=self.workflow_version,
            dtype=description.dtype,
            device=description.device,
            pipeline_kwargs=recorded_kwargs,
            scheduler=scheduler,
            pipeline_config=description.pipeline_config,
            adapters=description.adapters,
            refiner=refiner,
            video=video_config(self.pipeline, measurement.frames, call_kwargs),
            deterministic=self.deterministic,
            preset={"name": self.preset.name, "version": self.preset.version} if self.preset is not None else {},
            batch=batch,
        )
        self.image, self.measurement = image, measurement
        return image

    def _generated(self, description: PipelineDescription, call_kwargs: Mapping[str, Any],
                   keywords: str) -> tuple[object, int]:
        """The runner's output for ``call_kwargs`` and the size of the call that made it (the
        config's ``batch``). A case of a chunk (``--diffbench-batch``) takes its image from the
        chunk's call with the same ``keywords`` (everything the config records but the seed, see
        :mod:`pytest_diffbench.run.batching`), making the chunk's images first when no case did;
        where batching cannot apply (:class:`BatchUnsupported`) it runs alone, batch 1, and a
        warning says why (pytest's warnings summary shows it once)."""
        chunk = self.batch
        if chunk is None or chunk.size < 2 or self.seed not in chunk.seeds:
            return self._adapters_kept(description, lambda: self._runner.generate(
                self.pipeline, self.sampler, self.seed, call_kwargs)), 1
        taken = BATCHES.take(chunk, keywords, self.seed)
        if taken is not None:
            return taken, chunk.size
        try:
            if not isinstance(self._runner, BatchRunner):
                raise BatchUnsupported(f"{type(self._runner).__name__} makes one image per call")
            runner = self._runner
            images, measurement = self._adapters_kept(description, lambda: runner.generate_batch(
                self.pipeline, self.sampler, chunk.seeds, call_kwargs))
        except BatchUnsupported as exc:
            warnings.warn(pytest.PytestWarning(
                f"diffbench: --diffbench-batch does not apply to these cases ({exc}); they ran one at a time, "
                "recorded as batch 1"), stacklevel=2)
            return self._adapters_kept(description, lambda: self._runner.generate(
                self.pipeline, self.sampler, self.seed, call_kwargs)), 1
        if not isinstance(images, list) or len(images) != chunk.size:
            count = len(images) if isinstance(images, list) else type(images).__name__
            self._refuse(f"the pipeline's batched call returned {count} images for {chunk.size} seeds; return one "
                         "image per seed, in the order of the seeds")
        problem = measurement_problem(measurement)
        if problem:
            self._refuse(problem)
        each = per_image(measurement, chunk.size)
        later = dataclasses.replace(each, warmup_seconds=None)  # the warm-up was this case's
        BATCHES.put(chunk, keywords, {seed: (image, later) for seed, image in zip(chunk.seeds, images)
                                      if seed != self.seed})
        return (images[chunk.seeds.index(self.seed)], each), chunk.size

    def _adapters_kept(self, description: PipelineDescription, call: Callable[[], T]) -> T:
        """``call()``; with LoRA adapters loaded in a diffusers pipeline, their weights are put back
        after it (see :func:`pytest_diffbench.run.fingerprint.kept_adapter_weights`): diffusers
        resets them to 1 after a call at scale 0, which would change the next case."""
        if not description.adapters or isinstance(self.pipeline, DiffbenchPipeline):
            return call()
        from pytest_diffbench.run.fingerprint import kept_adapter_weights

        with kept_adapter_weights(self.pipeline):
            return call()

    def _refuse(self, message: str) -> NoReturn:
        """Fail this case with one line (no traceback): ``message`` says what to change."""
        pytest.fail(f"{self.nodeid}: {message}", pytrace=False)

    def _or_refuse(self, call: Callable[[], T], *errors: type[Exception]) -> T:
        """``call()``'s value; one of ``errors`` fails the case with its message as one line. The
        refusal comes after the ``except`` clause, so pytest shows no chained exception."""
        try:
            return call()
        except errors as exc:
            message = str(exc)
        self._refuse(message)

    def _checked_output(self, output: object) -> "tuple[Image.Image, Measurement]":
        """The pipeline's ``(image, measurement)``, refused with one line when it is not a PIL
        image and a valid :class:`Measurement` (see spec.measurement.measurement_problem), so
        nothing invalid reaches a file. An image of a mode PNG and the metrics cannot take as it
        is (``F``, ``I``, ``CMYK``, ...) is converted (see :func:`comparable_image`); NaN or inf in
        a float image is noted in the measurement's warnings, which makes the output invalid."""
        from PIL import Image

        if not isinstance(output, tuple) or len(output) != 2:
            self._refuse(f"the pipeline returned {type(output).__name__}, not (image, Measurement)")
        image, measurement = output
        if not isinstance(image, Image.Image):
            self._refuse(f"the pipeline returned {type(image).__name__}, not a PIL image; return a PIL.Image.Image "
                         "(diffusers: output_type='pil')")
        problem = measurement_problem(measurement)
        if problem:
            self._refuse(problem)
        image, note = self._or_refuse(lambda: comparable_image(image), ValueError)
        if note:
            measurement = dataclasses.replace(measurement, warnings=(*measurement.warnings, note))
        return image, measurement

    def _check_values(self, description: PipelineDescription, kwargs: Mapping[str, Any]) -> None:
        """Refuse a keyword value diffusers would fail on or ignore: a ``scale`` in an attention
        keyword without a LoRA loaded (as ``lora_scale``), a bad ``guidance_rescale`` or
        ``clip_skip`` (see spec.sweep.keyword_problem), a ``clip_skip`` not below the text
        encoder's layer count where the pipeline has one; for a diffusers pipeline also a
        ``clip_skip`` its CLIP text encoder cannot apply and IP-Adapter inputs without an IP-Adapter."""
        for name, value in kwargs.items():
            if name in ATTENTION_KEYWORDS and isinstance(value, Mapping) and "scale" in value:
                self._check_scale_works(f"{name}={{'scale': ...}}", description)
            problem = keyword_problem(name, value)
            if problem:
                self._refuse(problem)
        encoder = getattr(self.pipeline, "text_encoder", None)
        layers = getattr(getattr(encoder, "config", None), "num_hidden_layers", None)
        skip = kwargs.get(CLIP_SKIP)
        if skip is not None and isinstance(layers, int) and int(skip) >= layers:
            self._refuse(f"{CLIP_SKIP}={skip} is not valid for this pipeline: its text encoder has {layers} layers, so "
                         f"{CLIP_SKIP} must be from 0 to {layers - 1}")
        runs_itself = isinstance(self.pipeline, DiffbenchPipeline)
        if skip and isinstance(layers, int) and not runs_itself and not hasattr(encoder, "text_model"):
            # diffusers' Stable Diffusion pipelines apply clip_skip through text_encoder.text_model, a level
            # transformers 5 removed from CLIPTextModel: the call would fail with an AttributeError
            self._refuse(f"{CLIP_SKIP}={skip} does not work with this pipeline: diffusers applies it through "
                         f"text_encoder.text_model, which this {type(encoder).__name__} does not have (transformers 5 "
                         f"removed that level); leave {CLIP_SKIP} out, or use transformers < 5")
        if not runs_itself:
            self._check_ip_adapter(kwargs)

    def _check_ip_adapter(self, kwargs: Mapping[str, Any]) -> None:
        """Refuse IP-Adapter inputs given to a diffusers pipeline whose denoiser has no IP-Adapter
        loaded (diffusers would fail with an AttributeError deep in its call)."""
        given = [name for name in IP_ADAPTER_KEYWORDS if kwargs.get(name) is not None]
        denoiser = getattr(self.pipeline, "unet", None) or getattr(self.pipeline, "transformer", None)
        if given and denoiser is not None and getattr(denoiser, "encoder_hid_proj", None) is None:
            self._refuse(f"{', '.join(given)} needs an IP-Adapter loaded in the pipeline (pipe.load_ip_adapter(...) in "
                         "your diffbench_pipeline fixture), and this one has none")

    def _core_keywords(self, prompt: str, negative_prompt: str | None, accepted: frozenset[str] | None,
                       description: PipelineDescription, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The keywords diffbench passes in every call (:data:`CORE_KEYWORDS`: the prompts, the
        case's steps and cfg), less those the pipeline's call does not take (LCM takes no
        ``negative_prompt``, some distilled pipelines no ``guidance_scale``, image-variation
        pipelines no ``prompt``): those are not passed, and refused, all in one line, when set to
        anything but their neutral value, which would change nothing but the config. A negative
        prompt is refused too where the pipeline runs no classifier-free guidance at the case's cfg
        (SD, SDXL, SD3 ... at cfg <= 1) or at its ``true_cfg_scale`` (Flux, Qwen-Image ...; given in
        ``kwargs`` or the call's default; see :meth:`_guides`)."""
        given = {"prompt": prompt, "negative_prompt": negative_prompt, "num_inference_steps": self.steps,
                 "guidance_scale": self.cfg}
        if accepted is None:
            return given
        unused = [name for name in given if name not in accepted]
        refused = [f"{CORE_KEYWORDS[name][0].format(value=given[name])} would change nothing but the config: "
                   f"{description.workflow}.__call__ takes no {name}; {self._core_advice(name)}"
                   for name in unused if given[name] != NEUTRAL_VALUES[name]]
        unguided = self._unguided(accepted, kwargs) if negative_prompt is not None and "negative_prompt" not in unused else ""
        if unguided:
            refused.append(f"generate(negative_prompt={negative_prompt!r}) would change nothing but the config: "
                           f"{description.workflow} runs no classifier-free guidance {unguided}, so it never reads the "
                           "negative prompt; leave negative_prompt out")
        if refused:
            self._refuse("; ".join(refused))
        return {name: value for name, value in given.items() if name not in unused}

    def _unguided(self, accepted: frozenset[str] | None, kwargs: Mapping[str, Any]) -> str:
        """Why the pipeline runs no classifier-free guidance in this case (so never reads a
        negative prompt), e.g. ``at cfg=1 (...)``; "" when it does, or nothing says it does not.

        A call that takes ``true_cfg_scale`` (Flux, Qwen-Image, HunyuanVideo) guides when it is
        above 1 (diffusers: ``do_true_cfg = true_cfg_scale > 1``), given in ``kwargs`` or else the
        call's default. Otherwise the pipeline's ``do_classifier_free_guidance`` property decides, read
        with the case's cfg as the call sets it (diffusers: ``guidance_scale > 1``, and for SD/SDXL no
        guidance-distilled UNet)."""
        if accepted is not None and TRUE_CFG in accepted:
            scale = kwargs.get(TRUE_CFG, _call_default(self.pipeline, TRUE_CFG))
            usable = isinstance(scale, numbers.Real) and not isinstance(scale, bool)
            return f"at {TRUE_CFG}={scale:g} (it guides above 1; set {TRUE_CFG} above 1)" if usable and scale <= 1 else ""
        rule = getattr(type(self.pipeline), "do_classifier_free_guidance", None)
        if not isinstance(rule, property) or rule.fget is None:
            return ""
        state = vars(self.pipeline)
        missing = object()
        saved = state.get("_guidance_scale", missing)
        state["_guidance_scale"] = self.cfg  # what the pipeline's call sets before it reads the property
        try:
            guides = bool(rule.fget(self.pipeline))
        except Exception:  # a property that reads more of the call's state: take the negative prompt as used
            guides = True
        finally:
            if saved is missing:
                del state["_guidance_scale"]
            else:
                state["_guidance_scale"] = saved
        return "" if guides else (f"at cfg={self.cfg:g} (its do_classifier_free_guidance is False; use a cfg above 1 "
                                  "with a model that is not guidance-distilled)")

    def _check_schedule(self, call_kwargs: Mapping[str, Any]) -> None:
        """Refuse ``timesteps`` or ``sigmas`` of another length than the case's steps: diffusers
        then runs as many steps as they hold and ignores ``num_inference_steps``, so the config's
        steps would be false."""
        for name in SCHEDULE_KEYWORDS:
            value = call_kwargs.get(name)
            if value is None or "num_inference_steps" not in call_kwargs:
                continue
            count = len(value) if hasattr(value, "__len__") and not isinstance(value, (str, Mapping)) else None
            if count != self.steps:
                self._refuse(f"{name} holds {count if count is not None else 'not a list of'} values, but this case "
                             f"runs steps={self.steps}; diffusers runs one step per value of {name} and ignores steps, "
                             f"so give {self.steps} values or set steps={count or 'len(' + name + ')'} in the sweep")

    def _check_own_keywords(self, pipeline_kwargs: Mapping[str, Any]) -> None:
        """Refuse the generate() keywords that the sweep sets for every case (or diffbench
        itself), all of them in one line."""
        reserved = [name for name in pipeline_kwargs if name in RESERVED_AXES]
        if reserved:
            self._refuse("; ".join(f"generate() got {name}, which diffbench sets for each case; {RESERVED_AXES[name]}"
                                   for name in reserved))

    def _check_scale_works(self, what: str, description: PipelineDescription) -> None:
        """Refuse a LoRA scale (``what``) that would change nothing: no LoRA loaded, or every active
        adapter fused into the weights or disabled (:func:`~pytest_diffbench.run.protocol.inert_adapters`),
        where every scale gives the same image under another config hash."""
        if not description.loras and description.adapters:
            self._refuse(f"{what} needs an active LoRA, and none of this pipeline's adapters "
                         f"({', '.join(sorted(description.adapters))}) is active; activate one with "
                         "pipe.set_adapters([...]) in your diffbench_pipeline fixture")
        if not description.loras:
            self._refuse(f"{what} needs a LoRA loaded in the pipeline "
                         "(pipe.load_lora_weights(...) in your diffbench_pipeline fixture), and this one has none")
        inert = inert_adapters(description.adapters)
        if inert:
            states = ", ".join(f"{name} ({'fused' if description.adapters[name].get('fused') else 'disabled'})"
                               for name in inert)
            self._refuse(f"{what} changes nothing here: every active LoRA adapter is fused into the weights or "
                         f"disabled ({states}), so each scale would give the same image; drop the scale, or keep the "
                         "LoRA unfused and enabled (no pipe.fuse_lora() / pipe.disable_lora() in the fixture)")

    def _attention_keyword(self, description: PipelineDescription, accepted: frozenset[str] | None) -> str:
        """The call keyword that takes the ``lora_scale`` axis; refuses the axis when no LoRA is loaded
        (the scale would change nothing, or diffusers would fail) or the call takes no such keyword."""
        self._check_scale_works(f"sweep axis {LORA_SCALE_AXIS!r}", description)
        if accepted is None:
            return ATTENTION_KEYWORDS[0]
        for name in ATTENTION_KEYWORDS:
            if name in accepted:
                return name
        self._refuse(f"sweep axis {LORA_SCALE_AXIS!r}: the pipeline's call ({description.workflow}) takes none of "
                     f"{', '.join(ATTENTION_KEYWORDS)}, which carry the LoRA scale")

    def _core_advice(self, name: str) -> str:
        """What to do instead of the core keyword ``name`` (:data:`CORE_KEYWORDS`), naming the case's
        preset when it, not the sweep, sets the value."""
        advice = CORE_KEYWORDS[name][1]
        axis = {"num_inference_steps": "steps", "guidance_scale": "cfg"}.get(name, "")
        setter = self.case.setter(axis) if axis else "the sweep"
        if setter == "the sweep":
            return advice
        return advice.replace(f"leave {axis} out of the sweep", f"{setter} sets {axis}; leave {axis} out of it "
                              f"or override it with sweep({axis}=...)")

    def _check_accepted(self, given: Mapping[str, str], accepted: frozenset[str], description: PipelineDescription) -> None:
        """Refuse the keywords the pipeline's call does not name (ones it would swallow or
        reject), all of them in one line."""
        unknown = [f"{source} {name!r}" for name, source in given.items() if name not in accepted]
        if unknown:
            verb, pronoun = ("is not a keyword", "it") if len(unknown) == 1 else ("are not keywords", "they")
            self._refuse(f"{', '.join(unknown)} {verb} of {description.workflow}.__call__, so {pronoun} would change "
                         f"nothing but the config; its keywords are {', '.join(sorted(accepted))}")

    def _check_sizes(self, call_kwargs: Mapping[str, Any], multiple: int | None) -> None:
        """Refuse a width or height that is not a positive integer, or not a multiple of ``multiple``."""
        for axis in SIZE_AXES:
            value = call_kwargs.get(axis)
            if value is None:
                continue
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or int(value) <= 0:
                self._refuse(f"{axis}={value!r} is not valid; {axis} must be a positive integer")
            if multiple is not None and int(value) % multiple:
                self._refuse(f"{axis}={value} is not a multiple of {multiple}, which this pipeline needs "
                             f"({type(self.pipeline).__name__}); use e.g. {axis}={int(value) // multiple * multiple or multiple}")


def per_image(measurement: Measurement, count: int) -> Measurement:
    """The share of one image of a call that made ``count`` images (``measurement``: the call's):
    its seconds (and each stage's) divided by ``count``; peak VRAM, warm-up, warnings and frames
    are the call's."""
    return dataclasses.replace(
        measurement, seconds_per_image=measurement.seconds_per_image / count,
        stages=tuple(dataclasses.replace(stage, seconds_per_image=stage.seconds_per_image / count)
                     for stage in measurement.stages))


#: The keywords diffbench passes in every call: what sets each (its value in ``{value}``) and what
#: to do instead when the pipeline's call does not take it and it is not its :data:`NEUTRAL_VALUES` entry.
CORE_KEYWORDS: dict[str, tuple[str, str]] = {
    "prompt": ("generate(prompt={value!r})", 'call generate("")'),
    "negative_prompt": ("generate(negative_prompt={value!r})", "leave negative_prompt out"),
    "num_inference_steps": ("steps={value}", "leave steps out of the sweep"),
    "guidance_scale": ("cfg={value}", "leave cfg out of the sweep (sweep the pipeline's own guidance keyword instead)"),
}
#: The value of each :data:`CORE_KEYWORDS` entry that says nothing, recorded when the call does not take it.
NEUTRAL_VALUES: dict[str, Any] = {"prompt": "", "negative_prompt": None, "num_inference_steps": DEFAULT_STEPS,
                                  "guidance_scale": DEFAULT_CFG}


#: The call keyword of pipelines whose classifier-free guidance is separate from ``guidance_scale``
#: (Flux's ``guidance_scale`` is a distilled guidance embedding; its negative prompt needs this above 1).
TRUE_CFG = "true_cfg_scale"


def _call_default(pipe: Any, name: str) -> Any:
    """The default of ``name`` in ``type(pipe).__call__``'s signature; None when it has none."""
    try:
        parameter = inspect.signature(type(pipe).__call__).parameters.get(name)
    except (TypeError, ValueError):  # no signature to read
        return None
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


#: Image modes kept as they are: PNG stores them and the metrics read them (as RGB).
KEPT_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})
#: Modes of numbers per pixel (32-bit int, float), shown as grey levels 0-255 (clipped).
NUMERIC_MODES = frozenset({"I", "F"})


def comparable_image(image: "Image.Image") -> "tuple[Image.Image, str]":
    """``image`` in a mode PNG and the metrics take, and a note ("" when none) that it held NaN
    or inf. A mode of :data:`KEPT_MODES` is kept; ``I`` and ``F`` (and ``I;16`` ...) become ``L``,
    values clipped to 0-255 and NaN as 0 (the note says so); any other mode (``CMYK``,
    ``YCbCr``, ``LAB``, ``HSV``) becomes ``RGB``. Raises ValueError (one line) for a mode PIL
    cannot convert."""
    import numpy as np
    from PIL import Image

    if image.mode in KEPT_MODES:
        return image, ""
    if image.mode in NUMERIC_MODES or image.mode.startswith("I;"):
        values = np.asarray(image, dtype=np.float64)
        note = "" if np.isfinite(values).all() else f"the pipeline's mode {image.mode} image holds NaN or inf values"
        grey = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0).clip(0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L"), note
    try:
        return image.convert("RGB"), ""
    except ValueError:
        raise ValueError(f"the pipeline returned a mode {image.mode} image, which diffbench cannot compare; "
                         "return an RGB image") from None
