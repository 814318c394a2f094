"""ImageGenerator with real tiny pipelines (tests/families/builders.py): the warm-up of image-sized
inputs and low strengths, and the two stages of ``diffbench.two_stage``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

import pytest_diffbench as diffbench

pytestmark = pytest.mark.model

CALL = {"prompt": "a red cube", "negative_prompt": None, "guidance_scale": 5.0, "output_type": "pil"}


@pytest.fixture
def generator() -> Any:
    from pytest_diffbench.run.generation import ImageGenerator

    return ImageGenerator()


def recorded(pipe: Any, schedulers: list[str] | None = None) -> list[dict[str, Any]]:
    """The keywords of every call of ``pipe`` from now on (its class becomes a recording subclass
    whose ``__call__`` names no keyword, so diffbench reads its parent's); ``schedulers`` gets the
    class name of the scheduler each call ran with."""
    calls: list[dict[str, Any]] = []

    class Recorded(type(pipe)):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs)
            if schedulers is not None:
                schedulers.append(type(self.scheduler).__name__)
            return super().__call__(*args, **kwargs)

    pipe.__class__ = Recorded
    return calls


def photo(size: int) -> Image.Image:
    pixels = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_a_low_strength_img2img_case_run_first_warms_up_with_the_fewest_valid_steps(builders, generator):
    pipe = builders.build_img2img()
    calls = recorded(pipe)
    # The old warm-up ran 2 steps: int(2 * 0.3) == 0 denoising steps, which diffusers refuses.
    image, measurement = generator.generate(pipe, "Euler", 0, {**CALL, "num_inference_steps": 4, "strength": 0.3,
                                                               "image": photo(64)})
    assert [call["num_inference_steps"] for call in calls] == [4, 4]  # 3 steps leave none either
    assert all(call["strength"] == 0.3 for call in calls)
    assert measurement.warmup_seconds is not None
    assert image.size == (64, 64)


def test_a_low_strength_inpaint_case_warms_up_too(builders, generator):
    pipe = builders.build_inpaint()
    calls = recorded(pipe)
    mask = Image.new("L", (64, 64), 255)
    image, measurement = generator.generate(pipe, "Euler", 0, {**CALL, "num_inference_steps": 6, "strength": 0.3,
                                                               "image": photo(64), "mask_image": mask})
    assert [call["num_inference_steps"] for call in calls] == [4, 6]  # int(4 * 0.3) == 1: the fewest valid
    assert measurement.warmup_seconds is not None and image.size == (64, 64)


def test_each_input_image_size_gets_one_warm_up_whatever_ran_before(builders, generator):
    pipe = builders.build_img2img()
    calls = recorded(pipe)
    steps = lambda: [call["num_inference_steps"] for call in calls]  # noqa: E731
    generator.generate(pipe, "Euler", 0, {**CALL, "num_inference_steps": 4, "strength": 0.6, "image": photo(64)})
    assert steps() == [2, 4]
    calls.clear()
    # Another input size, no width or height keyword: a new output resolution, so a warm-up of its own
    # (the old key, width and height keywords, saw both as one).
    _, measurement = generator.generate(pipe, "Euler", 0, {**CALL, "num_inference_steps": 4, "strength": 0.3,
                                                           "image": photo(96)})
    assert steps() == [4, 4] and measurement.warmup_seconds is not None
    calls.clear()
    for strength in (0.3, 0.6):
        image, measurement = generator.generate(pipe, "Euler", 1, {**CALL, "num_inference_steps": 4,
                                                                   "strength": strength, "image": photo(96)})
        assert measurement.warmup_seconds is None and image.size == (96, 96)
    assert steps() == [4, 4]


def test_a_case_that_leaves_no_denoising_step_is_refused_before_any_call(builders, generator):
    pipe = builders.build_img2img()
    calls = recorded(pipe)
    from pytest_diffbench.run.protocol import PipelineCallError

    # int(n * 0.1) == 0 for every n up to 4: diffusers would fail deep inside its call (or, at
    # steps=1, strength=0.5, with a RuntimeError in attention); refused in one line before any call.
    for steps, strength in ((4, 0.1), (1, 0.5)):
        with pytest.raises(PipelineCallError) as caught:
            generator.generate(pipe, "Euler", 0, {**CALL, "num_inference_steps": steps, "strength": strength,
                                                  "image": photo(64)})
        assert str(caught.value) == (f"{type(pipe).__name__}: {steps} steps leave a stage no denoising step "
                                     f"(strength={strength}); use more steps, a higher strength or another handoff")
    assert calls == []


@pytest.fixture(scope="module")
def sdxl(builders) -> tuple[Any, Any]:
    base = builders.build_sdxl()
    return base, builders.build_sdxl_refiner(base)


def test_two_stages_run_base_then_refiner_with_the_case_s_sampler_seed_steps_and_cfg(sdxl, generator):
    base, refiner = sdxl
    pipe = diffbench.two_stage(base, refiner, handoff=0.75)
    schedulers: list[str] = []
    base_calls, refiner_calls = recorded(base, schedulers), recorded(refiner, schedulers)
    call = {**CALL, "num_inference_steps": 4, "width": 64, "height": 64, "aesthetic_score": 5.0}
    image, measurement = generator.generate(pipe, "DPM++ 2M", 3, call)
    assert set(schedulers) == {"DPMSolverMultistepScheduler"} and len(schedulers) == 4  # warm-up and timed, each stage
    warm_base, timed_base = base_calls
    assert timed_base["denoising_end"] == 0.75 and timed_base["output_type"] == "latent"
    assert timed_base["width"] == 64 and "aesthetic_score" not in timed_base
    timed_refiner = refiner_calls[-1]
    assert timed_refiner["denoising_start"] == 0.75 and timed_refiner["aesthetic_score"] == 5.0
    assert "width" not in timed_refiner and timed_refiner["output_type"] == "pil"
    assert timed_refiner["image"].shape[1] == 4  # the base's latents, not an image
    for stage_call in (timed_base, timed_refiner):
        assert stage_call["num_inference_steps"] == 4 and stage_call["guidance_scale"] == 5.0
        assert stage_call["prompt"] == "a red cube"
        assert stage_call["generator"].initial_seed() == 3
    assert stage_call["generator"] is not timed_base["generator"]
    assert [stage.name for stage in measurement.stages] == ["base", "refiner"]
    assert measurement.seconds_per_image == pytest.approx(sum(s.seconds_per_image for s in measurement.stages))
    assert image.size == (64, 64) and measurement.warmup_seconds is not None
    again, _ = generator.generate(pipe, "DPM++ 2M", 3, call)
    assert np.array_equal(np.asarray(image), np.asarray(again))


def test_a_two_stage_description_fingerprints_both_models_and_the_handoff(builders, generator):
    base = builders.build_sdxl()
    refiner = builders.build_sdxl_refiner(base)
    pipe = diffbench.two_stage(base, refiner, handoff=0.8)
    generator.generate(pipe, "DPM++ 2M", 0, {**CALL, "num_inference_steps": 2})
    description = generator.describe(pipe)
    assert description.workflow == "StableDiffusionXLPipeline"
    assert description.refiner["workflow"] == "StableDiffusionXLImg2ImgPipeline"
    assert description.refiner["handoff"] == 0.8
    assert description.refiner["model_fingerprint"] not in ("", description.model_fingerprint)
    # The refiner's scheduler is recorded as the case's sampler builds it (the case adds it to ``refiner``).
    assert generator.scheduler_record(refiner, "DPM++ 2M", 0)["class"] == "DPMSolverMultistepScheduler"
    assert generator.call_keywords(pipe) >= {"aesthetic_score", "width", "prompt"}


class NoStepsPipeline:
    """A pipeline whose call takes no ``num_inference_steps`` (as UnCLIP's): its warm-up is the call as is."""

    device = "cpu"

    def __init__(self) -> None:
        from diffusers import EulerDiscreteScheduler

        self.scheduler = EulerDiscreteScheduler()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, prompt: str, output_type: str = "pil", generator: Any = None) -> Any:
        self.calls.append({"prompt": prompt, "output_type": output_type})
        return type("Output", (), {"images": [Image.new("RGB", (8, 8))]})()


def test_a_call_without_a_step_count_warms_up_with_the_call_as_it_is(generator):
    pipe = NoStepsPipeline()
    image, measurement = generator.generate(pipe, "Euler", 0, {"prompt": "a red cube", "output_type": "pil"})
    assert pipe.calls == [{"prompt": "a red cube", "output_type": "pil"}] * 2
    assert measurement.warmup_seconds is not None and image.size == (8, 8)


@pytest.mark.parametrize(("change", "field"), [
    ("refiner.register_to_config(requires_aesthetics_score=False)", "pipeline_config"),
    ("refiner.scheduler = type(refiner.scheduler).from_config(refiner.scheduler.config, timestep_spacing='trailing')",
     "scheduler"),
    ("refiner.unet.conv_out.bias.data.add_(0.01)", "model_fingerprint"),
])
def test_each_change_of_the_refiner_changes_its_description(builders, change, field):
    from pytest_diffbench.run.generation import ImageGenerator

    def described(edit: str) -> dict[str, Any]:
        base = builders.build_sdxl()
        refiner = builders.build_sdxl_refiner(base)
        exec(edit, {}, {"refiner": refiner})
        generator = ImageGenerator()
        # What the case records: the refiner's description, with its scheduler after the sampler swap.
        return {**generator.describe(diffbench.two_stage(base, refiner)).refiner,
                "scheduler": generator.scheduler_record(refiner, "DPM++ 2M", 0)}

    before, after = described("pass"), described(change)
    assert [key for key in before if before[key] != after[key]] == [field]


def test_every_stage_has_its_own_scheduler_back_after_a_case(builders, generator):
    """The pipeline is the user's session fixture: a case's sampler must not stay in it for the next test."""
    single = builders.build_sd()
    base = builders.build_sdxl()
    refiner = builders.build_sdxl_refiner(base)
    own = [single.scheduler, base.scheduler, refiner.scheduler]
    generator.generate(single, "DDIM", 0, {**CALL, "num_inference_steps": 2})
    generator.generate(diffbench.two_stage(base, refiner), "DPM++ 2M", 0, {**CALL, "num_inference_steps": 2})
    assert [single.scheduler, base.scheduler, refiner.scheduler] == own


@pytest.mark.parametrize(("sampler", "raised"), [("DDIM", "custom timestep"), ("PNDM", "custom timestep")])
def test_a_call_diffusers_refuses_is_one_line_naming_the_pipeline(builders, generator, sampler, raised):
    """A sampler that takes no custom timestep schedule: diffusers refuses it inside the call."""
    from pytest_diffbench.run.protocol import PipelineCallError

    pipe = builders.build_sd()
    with pytest.raises(PipelineCallError) as caught:
        generator.generate(pipe, sampler, 0, {**CALL, "num_inference_steps": 2, "timesteps": [999, 500]})
    message = str(caught.value)
    assert "\n" not in message and message.startswith("StableDiffusionPipeline's call failed with ValueError: ")
    assert raised in message and "(raised at " in message
