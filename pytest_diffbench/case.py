"""The ``diffbench`` fixture's object: one case of a sweep and its single generation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_diffbench.config import FrozenConfig, normalise
from pytest_diffbench.sweep import Case

if TYPE_CHECKING:
    from PIL import Image

    from pytest_diffbench.generation import ImageGenerator, Measurement

class DiffbenchCase:
    """One case: its axes, its frozen config, and ``generate()``.

    The comparison with the baseline runs when the test body returns; a test makes exactly
    one image (sweep over anything else you want to vary).
    """

    def __init__(self, *, nodeid: str, case: Case, pipeline: Any, generator: "ImageGenerator", workflow_version: str) -> None:
        self.nodeid = nodeid
        self.case = case
        self.pipeline = pipeline
        self.workflow_version = workflow_version
        self._generator = generator
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

    def generate(self, prompt: str, negative_prompt: str | None = None, **pipeline_kwargs: Any) -> "Image.Image":
        """Generate this case's image with the case's seed, sampler, steps and cfg.

        ``pipeline_kwargs`` go to the pipeline call and into the frozen config. Returns the
        PIL image; it is compared with the baseline when the test returns.
        """
        from pytest_diffbench.pipelines import describe_pipeline

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
        description = describe_pipeline(self.pipeline)
        image, measurement = self._generator.generate(self.pipeline, self.sampler, self.seed, call_kwargs)
        for axis, size in (("width", image.width), ("height", image.height)):
            asked = call_kwargs.get(axis)
            if asked is not None and int(asked) != size:  # the config must hold what was made
                raise ValueError(
                    f"{self.nodeid}: asked for {axis}={asked}, but the pipeline returned a {image.width}x{image.height} "
                    "image; set both width and height (diffusers pipelines use their default size when one is missing)"
                )
        self.config = FrozenConfig(
            model=str(description["model"]),
            model_fingerprint=str(description["model_fingerprint"]),
            vae=str(description["vae"]),
            loras=tuple(description["loras"]),
            controlnets=tuple(description["controlnets"]),
            prompt=prompt,
            negative_prompt=negative_prompt,
            seed=self.seed,
            sampler=self.sampler,
            steps=self.steps,
            cfg=self.cfg,
            width=image.width,
            height=image.height,
            workflow=str(description["workflow"]),
            workflow_version=self.workflow_version,
            dtype=str(description["dtype"]),
            device=str(description["device"]),
            pipeline_kwargs=recorded_kwargs,
        )
        self.image, self.measurement = image, measurement
        return image
