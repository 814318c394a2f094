"""The ``diffbench`` fixture's object: one case of a sweep and its single generation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol

from pytest_diffbench.run.protocol import DiffbenchPipeline, PipelineDescription
from pytest_diffbench.spec.config import FrozenConfig, normalise
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.sweep import Case

if TYPE_CHECKING:
    from PIL import Image


class Runner(Protocol):
    """Describes a pipeline and makes one timed image with it."""

    def describe(self, pipe: Any) -> PipelineDescription: ...

    def generate(self, pipe: Any, sampler: str, seed: int,
                 call_kwargs: Mapping[str, Any]) -> "tuple[Image.Image, Measurement]": ...


class SelfRunner:
    """The runner of a :class:`~pytest_diffbench.run.protocol.DiffbenchPipeline`: it runs itself."""

    def describe(self, pipe: DiffbenchPipeline) -> PipelineDescription:
        return pipe.diffbench_describe()

    def generate(self, pipe: DiffbenchPipeline, sampler: str, seed: int,
                 call_kwargs: Mapping[str, Any]) -> "tuple[Image.Image, Measurement]":
        return pipe.diffbench_generate(sampler, seed, call_kwargs)


class DiffbenchCase:
    """One case: its axes, its frozen config, and ``generate()``.

    The comparison with the baseline runs when the test body returns; a test makes exactly one
    image (sweep over anything else you want to vary).
    """

    def __init__(self, *, nodeid: str, case: Case, pipeline: Any, runner: Runner, workflow_version: str) -> None:
        self.nodeid = nodeid
        self.case = case
        self.pipeline = pipeline
        self.workflow_version = workflow_version
        self._runner = runner
        self.config: FrozenConfig | None = None
        self.image: Image.Image | None = None
        self.measurement: Measurement | None = None

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
    def device(self) -> str:
        """The pipeline's full device (``cpu``, ``cuda:0``): where network metrics run."""
        return str(getattr(self.pipeline, "device", "cpu"))

    def generate(self, prompt: str, negative_prompt: str | None = None, **pipeline_kwargs: Any) -> "Image.Image":
        """Generate this case's image with the case's seed, sampler, steps and cfg.

        ``pipeline_kwargs`` go to the pipeline call and into the frozen config. Returns the PIL
        image; it is compared with the baseline when the test returns. Raises RuntimeError when
        called twice, TypeError for a non-string prompt, a keyword the sweep already sets or a value
        a config cannot hold, ValueError when the image's size is not the one asked for.
        """
        if self.image is not None:
            raise RuntimeError(f"{self.nodeid}: generate() was called twice; diffbench compares one image per case")
        if not isinstance(prompt, str):
            raise TypeError(f"generate(prompt=...) must be a string, got {type(prompt).__name__}")
        axis_kwargs: dict[str, Any] = {}
        for name, value in self.case.extra:
            if name == "lora_scale":  # the LoRA scale of SD/SDXL pipelines at inference
                axis_kwargs["cross_attention_kwargs"] = {"scale": value}
            else:
                axis_kwargs[name] = value
        clashes = sorted(set(axis_kwargs) & set(pipeline_kwargs))
        if clashes:
            raise TypeError(f"generate() got {', '.join(clashes)}, which the sweep already sets for this case")
        call_kwargs = {
            **axis_kwargs,
            **pipeline_kwargs,
            "prompt": prompt,
            "negative_prompt": negative_prompt,
            "num_inference_steps": self.steps,
            "guidance_scale": self.cfg,
            "output_type": "pil",
        }
        recorded_kwargs = {k: v for k, v in {**dict(self.case.extra), **pipeline_kwargs}.items() if k not in ("width", "height")}
        normalise(recorded_kwargs, where="generate() keyword")  # refuse what a config cannot hold, before generating
        description = self._runner.describe(self.pipeline)
        image, measurement = self._runner.generate(self.pipeline, self.sampler, self.seed, call_kwargs)
        for axis, size in (("width", image.width), ("height", image.height)):
            asked = call_kwargs.get(axis)
            if asked is not None and int(asked) != size:  # the config must hold what was made
                raise ValueError(
                    f"{self.nodeid}: asked for {axis}={asked}, but the pipeline returned a {image.width}x{image.height} "
                    "image; set both width and height (diffusers pipelines use their default size when one is missing)"
                )
        self.config = FrozenConfig(
            model=description.model,
            model_fingerprint=description.model_fingerprint,
            vae=description.vae,
            loras=description.loras,
            controlnets=description.controlnets,
            prompt=prompt,
            negative_prompt=negative_prompt,
            seed=self.seed,
            sampler=self.sampler,
            steps=self.steps,
            cfg=self.cfg,
            width=image.width,
            height=image.height,
            workflow=description.workflow,
            workflow_version=self.workflow_version,
            dtype=description.dtype,
            device=description.device,
            pipeline_kwargs=recorded_kwargs,
        )
        self.image, self.measurement = image, measurement
        return image
