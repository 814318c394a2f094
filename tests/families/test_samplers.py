"""Sampler names on the real tiny pipelines of each family (tests/families/builders.py): the flow-matching
variants make the image the reference sampler makes (not noise-prediction garbage), and the refusals
say why in one line. Reference: FlowMatchEulerDiscreteScheduler at many steps, the ODE solution every
correct flow-matching sampler approaches."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.model

#: Mean absolute pixel difference (0..1) from the reference below which an image is the same picture.
SAME_PICTURE = 0.02
#: ... and above which it is another one (noise-prediction maths on SD3 are ~0.17 away).
OTHER_PICTURE = 0.1
STEPS, REFERENCE_STEPS = 10, 40


def _image(pipe: Any, scheduler: Any, steps: int) -> np.ndarray:
    import torch

    pipe.scheduler = scheduler
    output = pipe("a red cube", num_inference_steps=steps, guidance_scale=1.0, width=64, height=64, output_type="np",
                  generator=torch.Generator("cpu").manual_seed(0))
    return np.asarray(output.images[0])


@pytest.fixture(scope="module", params=["sd3", "flux"])
def flow_pipe(request: pytest.FixtureRequest, builders: ModuleType) -> tuple[Any, Any, np.ndarray]:
    """(a tiny flow-matching pipeline, its own scheduler, the reference image)."""
    from pytest_diffbench.run.schedulers import scheduler_for

    pipe = getattr(builders, f"build_{request.param}")()
    own = pipe.scheduler
    reference = _image(pipe, scheduler_for(pipe, own, "Euler", 0), REFERENCE_STEPS)
    return pipe, own, reference


WORKING = {"StableDiffusion3Pipeline": ["Euler", "Heun", "UniPC", "DEIS", "DPM++ 2M"],
           "FluxPipeline": ["Euler", "UniPC"]}  # the tiny Flux's scheduler has no use_dynamic_shifting


def test_each_flow_matching_name_makes_the_reference_picture(flow_pipe):
    from pytest_diffbench.run.schedulers import scheduler_for

    pipe, own, reference = flow_pipe
    for name in WORKING[type(pipe).__name__]:
        image = _image(pipe, scheduler_for(pipe, own, name, 0), STEPS)
        assert np.abs(image - reference).mean() < SAME_PICTURE, name


def test_noise_prediction_maths_would_have_made_another_picture_on_sd3(builders):
    """What the old swap did (EulerDiscreteScheduler built from SD3's config, no error): the bar above
    tells it apart."""
    from diffusers import EulerDiscreteScheduler

    from pytest_diffbench.run.schedulers import scheduler_for

    pipe = builders.build_sd3()
    own = pipe.scheduler
    reference = _image(pipe, scheduler_for(pipe, own, "Euler", 0), REFERENCE_STEPS)
    assert np.abs(_image(pipe, EulerDiscreteScheduler.from_config(own.config), STEPS) - reference).mean() > OTHER_PICTURE


@pytest.mark.parametrize("name", ["DDIM", "DPM++ 2M Karras", "Euler a", "DPM++ SDE", "LMS", "EulerDiscreteScheduler"])
def test_flow_matching_refuses_the_rest_naming_the_names_that_work(flow_pipe, name):
    from pytest_diffbench.run.schedulers import scheduler_for
    from pytest_diffbench.spec.samplers import SamplerFamilyError

    pipe, own, _ = flow_pipe
    with pytest.raises(SamplerFamilyError) as excinfo:
        scheduler_for(pipe, own, name, 0)
    message = str(excinfo.value)
    assert "\n" not in message and len(message) < 400
    assert message.startswith(f"sampler {name!r} does not work with this pipeline's flow-matching scheduler "
                              "(FlowMatchEulerDiscreteScheduler): ")
    assert message.endswith("Samplers that work with it: " + ", ".join(WORKING[type(pipe).__name__]))


def test_flux_refuses_heun_and_takes_dpm_with_dynamic_shifting(builders):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from pytest_diffbench.run.schedulers import scheduler_for
    from pytest_diffbench.spec.samplers import SamplerFamilyError

    pipe = builders.build_flux()
    with pytest.raises(SamplerFamilyError, match=r"^sampler 'Heun' .*: FluxPipeline passes mu \(resolution-dependent "
                       r"shifting\) to the scheduler's set_timesteps, which FlowMatchHeunDiscreteScheduler cannot take"):
        scheduler_for(pipe, pipe.scheduler, "Heun", 0)
    # Flux's released scheduler shifts by resolution: then the DPM-Solver and DEIS flow variants take mu.
    own = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, shift=3.0)
    reference = _image(pipe, scheduler_for(pipe, own, "Euler", 0), REFERENCE_STEPS)
    for name in ("UniPC", "DEIS", "DPM++ 2M"):
        assert np.abs(_image(pipe, scheduler_for(pipe, own, name, 0), STEPS) - reference).mean() < SAME_PICTURE, name
    with pytest.raises(SamplerFamilyError, match=r"Samplers that work with it: Euler, UniPC, DEIS, DPM\+\+ 2M$"):
        scheduler_for(pipe, own, "Heun", 0)


def test_sd3_with_dynamic_shifting_refuses_heun(builders):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from pytest_diffbench.run.schedulers import scheduler_for
    from pytest_diffbench.spec.samplers import SamplerFamilyError

    pipe = builders.build_sd3()
    assert type(scheduler_for(pipe, pipe.scheduler, "Heun", 0)).__name__ == "FlowMatchHeunDiscreteScheduler"
    with pytest.raises(SamplerFamilyError, match=r"StableDiffusion3Pipeline passes mu"):
        scheduler_for(pipe, FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True), "Heun", 0)


def test_lcm_takes_lcm_and_refuses_the_default_euler_and_tcd(builders):
    from pytest_diffbench.run.generation import ImageGenerator
    from pytest_diffbench.spec.samplers import SamplerFamilyError

    pipe = builders.build_lcm()
    own = pipe.scheduler
    generator = ImageGenerator()
    assert generator.scheduler_record(pipe, "LCM", 0)["class"] == "LCMScheduler"
    with pytest.raises(SamplerFamilyError, match=r"^sampler 'Euler' does not work with this pipeline's consistency "
                       r"\(LCM / TCD\) scheduler \(LCMScheduler\): .*Samplers that work with it: LCM$"):
        generator.scheduler_record(pipe, "Euler", 0)
    with pytest.raises(SamplerFamilyError, match=r"TCDScheduler needs the pipeline to pass eta, and "
                       r"LatentConsistencyModelPipeline's call passes eta=None"):
        generator.scheduler_record(pipe, "TCD", 0)
    assert pipe.scheduler is own  # the record builds, it installs nothing


def test_sd_takes_every_name_and_records_the_fixture_settings(builders):
    from pytest_diffbench.run.generation import ImageGenerator
    from pytest_diffbench.spec.samplers import known_sampler_names

    pipe = builders.build_sd()
    generator = ImageGenerator()
    records = {name: generator.scheduler_record(pipe, name, 7) for name in known_sampler_names()}
    assert records["TCD"]["class"] == "TCDScheduler"  # TCD-LoRA: the SD pipeline passes eta
    assert records["DPM++ SDE"]["noise_sampler_seed"] == 7
    assert records["Euler"]["timestep_spacing"] == "leading"  # builders' SD scheduler sets it; Euler's default: linspace
    assert "timestep_spacing" not in records["DDIM"]  # DDIM's own default is "leading"
