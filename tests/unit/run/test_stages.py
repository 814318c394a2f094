"""Two-stage keyword routing and the warm-up's step count, without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_diffbench as diffbench
from pytest_diffbench.run.stages import (
    StageError,
    TwoStage,
    denoising_steps,
    route_keywords,
    two_stage_problem,
    union_keywords,
    warmup_steps,
)

BASE = frozenset({"prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "output_type", "width", "height",
                  "denoising_end", "original_size"})
REFINER = frozenset({"prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "output_type", "image",
                     "strength", "denoising_start", "denoising_end", "aesthetic_score", "original_size"})
CASE = {"prompt": "a cube", "negative_prompt": None, "num_inference_steps": 4, "guidance_scale": 5.0,
        "output_type": "pil"}


def test_each_keyword_goes_to_the_stages_whose_call_names_it():
    base, refiner = route_keywords({**CASE, "width": 64, "height": 64, "aesthetic_score": 6.0,
                                    "original_size": (64, 64)}, BASE, REFINER, 0.8)
    assert base == {**CASE, "width": 64, "height": 64, "original_size": (64, 64), "denoising_end": 0.8,
                    "output_type": "latent"}
    assert refiner == {**CASE, "aesthetic_score": 6.0, "original_size": (64, 64), "denoising_start": 0.8}


@pytest.mark.parametrize(("keyword", "said"), [
    ("denoising_end", "denoising_end (the handoff sets it: diffbench.two_stage(..., handoff=0.8))"),
    ("denoising_start", "denoising_start (the handoff sets it"),
    ("strength", "strength (the refiner ignores strength when the handoff sets denoising_start)"),
    ("image", "image (the refiner's image is the base's latents)"),
    ("clip_skip", "clip_skip (neither stage's call takes it)"),
])
def test_a_keyword_the_handoff_sets_or_no_stage_takes_is_refused_by_name(keyword, said):
    with pytest.raises(StageError, match="^a two-stage case cannot take generate") as refused:
        route_keywords({**CASE, keyword: 0.5}, BASE, REFINER, 0.8)
    assert said in str(refused.value)
    assert "\n" not in str(refused.value)


def test_an_image_goes_to_a_base_that_takes_one():
    base, refiner = route_keywords({**CASE, "image": "photo"}, BASE | {"image"}, REFINER, 0.5)
    assert base["image"] == "photo" and "image" not in refiner


def test_a_two_stage_case_takes_the_keywords_of_either_stage():
    assert union_keywords([BASE, REFINER]) == BASE | REFINER
    assert union_keywords([BASE, None]) is None


@pytest.mark.parametrize(("handoff", "said"), [(1.0, "handoff=1.0"), (0, "handoff=0"), ("0.8", "handoff='0.8'"),
                                               (float("nan"), "handoff=nan")])
def test_a_handoff_outside_0_to_1_is_one_line_naming_it(handoff, said):
    problem = two_stage_problem(diffbench.two_stage(object(), object(), handoff=handoff), lambda pipe: None)
    assert problem is not None and said in problem and "strictly between 0 and 1" in problem


def test_a_stage_that_is_not_a_pipeline_is_named():
    problem = two_stage_problem(diffbench.two_stage("base", "refiner"),
                                lambda pipe: f"{pipe!r} is not a pipeline" if pipe == "refiner" else None)
    assert problem == "diffbench.two_stage: the refiner: 'refiner' is not a pipeline"


def test_two_stage_is_public_and_keeps_the_handoff_as_a_float():
    pipe = diffbench.two_stage("base", "refiner", handoff=1 / 2)
    assert isinstance(pipe, TwoStage) and pipe.handoff == 0.5 and pipe.stages() == (("base", "base"), ("refiner", "refiner"))
    assert "two_stage" in diffbench.__all__


def test_importing_two_stage_imports_no_torch():
    code = "import sys; from pytest_diffbench import two_stage; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# -- the warm-up's step count -----------------------------------------------------------------

def test_img2img_denoises_int_steps_times_strength():
    assert [denoising_steps(n, strength=0.3) for n in (2, 3, 4, 10)] == [0, 0, 1, 3]
    assert denoising_steps(4, strength=1.5) == 4
    assert denoising_steps(4) == 4


@pytest.mark.parametrize(("steps", "strength", "expected"), [
    (4, 0.3, 4),    # 2 and 3 steps leave int(n * 0.3) == 0: the case's own count is the shortest valid call
    (10, 0.3, 4),
    (20, 0.6, 2),
    (1, 1.0, 1),    # a one-step case warms up with one step
    (4, 0.1, None),  # no count up to 4 leaves a step: skipped (with a note)
])
def test_the_warm_up_takes_the_fewest_steps_that_leave_a_denoising_step(steps, strength, expected):
    assert warmup_steps(steps, 2, lambda n: denoising_steps(n, strength=strength)) == expected


def test_a_text_to_image_warm_up_keeps_two_steps():
    assert warmup_steps(30, 2, lambda n: n) == 2


# "leading" spacing with steps_offset=1 over 1000 training steps, as the SDXL schedulers use.
def leading(steps: int) -> list[float]:
    return [float(i * (1000 // steps) + 1) for i in range(steps)][::-1]


def test_a_handoff_counts_the_timesteps_before_and_after_its_cutoff():
    assert leading(4) == [751.0, 501.0, 251.0, 1.0]
    # The base runs timesteps >= 200 (cutoff round(1000 - 0.8 * 1000)); the refiner the rest.
    assert denoising_steps(4, denoising_end=0.8, timesteps=leading(4)) == 3
    assert denoising_steps(4, denoising_start=0.8, timesteps=leading(4)) == 1
    assert denoising_steps(4, denoising_start=0.8, timesteps=leading(4), order=2) == 1
    assert denoising_steps(4, denoising_start=0.5, timesteps=leading(4), order=2) == 3  # 2 is even: one more
    # strength is ignored once denoising_start is set (diffusers' SDXL img2img).
    assert denoising_steps(4, strength=0.1, denoising_start=0.8, timesteps=leading(4)) == 1


def test_a_handoff_warm_up_leaves_each_stage_a_step():
    def fewest(steps: int) -> int:
        return min(denoising_steps(steps, denoising_end=0.9, timesteps=leading(steps)),
                   denoising_steps(steps, denoising_start=0.9, timesteps=leading(steps)))
    # At 0.9 (cutoff 100) two steps ([501, 1]) leave each stage one.
    assert warmup_steps(10, 2, fewest) == 2
    # At 0.3 (cutoff 700) the base gets none of [501, 1] or [667, 334, 1]: the warm-up takes 4 steps.
    assert warmup_steps(10, 2, lambda n: denoising_steps(n, denoising_end=0.3, timesteps=leading(n))) == 4


class Base:
    scheduler = device = dtype = components = "set"

    def __call__(self, prompt, denoising_end=None, output_type="pil", width=None): ...


class Refiner(Base):
    def __call__(self, prompt, image=None, denoising_start=None, output_type="pil", aesthetic_score=6.0): ...


class TextToImage(Base):
    def __call__(self, prompt, output_type="pil"): ...


class Wrapped(Refiner):
    def __call__(self, *args, **kwargs): ...


def test_a_stage_whose_call_cannot_hand_over_is_refused_in_one_line():
    assert two_stage_problem(diffbench.two_stage(Base(), Refiner()), lambda pipe: None) is None
    assert two_stage_problem(diffbench.two_stage(Base(), Wrapped()), lambda pipe: None) is None  # the parent's call
    problem = two_stage_problem(diffbench.two_stage(TextToImage(), Refiner()), lambda pipe: None)
    assert problem == ("diffbench.two_stage: the base's call (TextToImage) takes no denoising_end, which the handoff "
                       "needs; use a pipeline that does (e.g. StableDiffusionXLPipeline)")
    problem = two_stage_problem(diffbench.two_stage(Base(), Base()), lambda pipe: None)
    assert problem is not None and "the refiner's call (Base) takes no denoising_start, image" in problem
