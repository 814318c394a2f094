"""run.schedulers: the scheduler a case runs with (seeding, pipeline checks) and what its config records.

These build real diffusers schedulers on stand-in pipelines (what scheduler_for reads of a pipeline is
its class's ``__call__`` and whether it has ``prepare_extra_step_kwargs``); tests/families/test_samplers.py
runs the tiny SD3, Flux, LCM and SD pipelines themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_diffbench.run.schedulers import passes_mu, scheduler_for, scheduler_record
from pytest_diffbench.spec.samplers import SamplerFamilyError

REPO_ROOT = Path(__file__).resolve().parents[3]
SD = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}


class StepsWithGenerator:
    """Stands for an SD-style pipeline: it hands its generator (and eta) to scheduler.step."""

    def __call__(self, prompt: str, eta: float = 0.0) -> None: ...

    def prepare_extra_step_kwargs(self, generator: Any, eta: float) -> dict[str, Any]:
        return {}


class StepsWithoutGenerator:
    """Stands for a pipeline whose scheduler.step gets no generator (as SD3 and Flux do)."""

    def __call__(self, prompt: str) -> None: ...


class TakesNoEta(StepsWithGenerator):
    """Stands for LatentConsistencyModelPipeline: generator, but eta=None."""

    def __call__(self, prompt: str) -> None: ...  # type: ignore[override]


class PassesMu:
    """Stands for FluxPipeline: its call passes mu to set_timesteps."""

    def __call__(self, prompt: str) -> None:
        retrieve = print
        retrieve(None, mu=0.5)


def _euler(**config: Any) -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(**SD, **config)


def test_the_record_has_the_class_and_only_keys_that_differ_from_its_defaults():
    scheduler = scheduler_for(StepsWithGenerator(), _euler(timestep_spacing="trailing"), "Euler", 0)
    record = scheduler_record(scheduler)
    assert record["class"] == "EulerDiscreteScheduler"
    assert record["timestep_spacing"] == "trailing"  # set in the fixture
    assert record["beta_schedule"] == "scaled_linear"
    assert record["steps_offset"] == 1
    assert "prediction_type" not in record and "num_train_timesteps" not in record  # the class's defaults
    assert not [key for key in record if key.startswith("_")]
    assert list(record) == ["class", *sorted(key for key in record if key != "class")]
    assert json.loads(json.dumps(record)) == record


def test_the_record_follows_the_sampler_swap():
    own = _euler(timestep_spacing="trailing", use_karras_sigmas=True)
    karras = scheduler_record(scheduler_for(StepsWithGenerator(), own, "DPM++ 2M Karras", 0))
    plain = scheduler_record(scheduler_for(StepsWithGenerator(), own, "DPM++ 2M", 0))
    assert (karras["class"], karras["use_karras_sigmas"], karras["timestep_spacing"]) == \
        ("DPMSolverMultistepScheduler", True, "trailing")
    assert "use_karras_sigmas" not in plain  # a sampler choice of the fixture is not inherited
    assert plain["timestep_spacing"] == "trailing"
    sde = scheduler_record(scheduler_for(StepsWithGenerator(), own, "DPM++ SDE", 42))
    assert (sde["class"], sde["noise_sampler_seed"]) == ("DPMSolverSDEScheduler", 42)


def test_the_record_of_a_flow_variant_and_of_lcm_keeps_the_model_settings():
    from diffusers import FlowMatchEulerDiscreteScheduler, LCMScheduler

    flow = FlowMatchEulerDiscreteScheduler(shift=3.0, base_image_seq_len=64)
    record = scheduler_record(scheduler_for(StepsWithoutGenerator(), flow, "UniPC", 0))
    assert record["class"] == "UniPCMultistepScheduler"
    assert (record["use_flow_sigmas"], record["prediction_type"], record["flow_shift"]) == (True, "flow_prediction", 3.0)
    assert record["base_image_seq_len"] == 64  # the pipeline reads it to compute mu
    lcm = LCMScheduler(**SD, original_inference_steps=25)
    assert scheduler_record(scheduler_for(TakesNoEta(), lcm, "LCM", 0))["original_inference_steps"] == 25
    assert "original_inference_steps" not in scheduler_record(scheduler_for(TakesNoEta(), LCMScheduler(**SD), "LCM", 0))


def test_a_stochastic_sampler_is_refused_where_the_pipeline_cannot_seed_its_noise():
    own = _euler()
    with pytest.raises(SamplerFamilyError) as excinfo:
        scheduler_for(StepsWithoutGenerator(), own, "Euler a", 0)
    message = str(excinfo.value)
    assert message.startswith("sampler 'Euler a' does not work with this pipeline's noise-prediction (epsilon / "
                              "v-prediction) scheduler (EulerDiscreteScheduler): EulerAncestralDiscreteScheduler adds "
                              "noise at its steps and StepsWithoutGenerator does not pass its seeded generator to "
                              "scheduler.step")
    working = message.split("Samplers that work with it: ")[1].split(", ")
    assert "Euler" in working and "DPM++ SDE" in working  # seeded through noise_sampler_seed instead
    assert not {"Euler a", "DPM2 a", "DPM++ 2M SDE", "LCM", "TCD"} & set(working)
    assert type(scheduler_for(StepsWithGenerator(), own, "Euler a", 0)).__name__ == "EulerAncestralDiscreteScheduler"


def test_tcd_is_refused_on_a_pipeline_that_passes_no_eta():
    from diffusers import LCMScheduler

    with pytest.raises(SamplerFamilyError, match=r"^sampler 'TCD' .* \(LCMScheduler\): TCDScheduler needs the pipeline "
                       r"to pass eta, and TakesNoEta's call passes eta=None\. Samplers that work with it: LCM$"):
        scheduler_for(TakesNoEta(), LCMScheduler(**SD), "TCD", 0)
    assert type(scheduler_for(StepsWithGenerator(), LCMScheduler(**SD), "TCD", 0)).__name__ == "TCDScheduler"


def test_mu_is_passed_by_a_call_that_names_it_or_by_dynamic_shifting():
    from diffusers import FlowMatchEulerDiscreteScheduler

    static = FlowMatchEulerDiscreteScheduler()
    dynamic = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    assert passes_mu(PassesMu(), static.config)
    assert not passes_mu(StepsWithoutGenerator(), static.config)
    assert passes_mu(StepsWithoutGenerator(), dynamic.config)
    with pytest.raises(SamplerFamilyError, match=r"^sampler 'Heun' .*: StepsWithoutGenerator passes mu \(resolution-"
                       r"dependent shifting\) to the scheduler's set_timesteps, which FlowMatchHeunDiscreteScheduler "
                       r"cannot take with this config \(TypeError: .*'mu'\)\. Samplers that work with it: Euler, UniPC, "
                       r"DEIS, DPM\+\+ 2M$"):
        scheduler_for(StepsWithoutGenerator(), dynamic, "Heun", 0)
    with pytest.raises(SamplerFamilyError, match=r"which DPMSolverMultistepScheduler cannot take with this config \(it "
                       r"takes mu only with use_dynamic_shifting=True in the scheduler config\)\. Samplers that work "
                       r"with it: Euler, UniPC$"):
        scheduler_for(PassesMu(), static, "DPM++ 2M", 0)
    assert type(scheduler_for(PassesMu(), dynamic, "DPM++ 2M", 0)).__name__ == "DPMSolverMultistepScheduler"


def test_the_refusal_names_the_pipelines_own_scheduler_class():
    from diffusers import FlowMatchEulerDiscreteScheduler

    with pytest.raises(SamplerFamilyError, match=r"flow-matching scheduler \(FlowMatchEulerDiscreteScheduler\): DDIM"):
        scheduler_for(StepsWithoutGenerator(), FlowMatchEulerDiscreteScheduler(), "DDIM", 0)


CHILD = """
import hashlib, sys, torch
from diffusers import EulerDiscreteScheduler
from pytest_diffbench.run.pipelines import build_random_pipeline
from pytest_diffbench.run.schedulers import scheduler_for
pipe = build_random_pipeline()
pipe.set_progress_bar_config(disable=True)
pipe.scheduler = scheduler_for(pipe, pipe.scheduler, "DPM++ SDE", 1234)
torch.manual_seed(int(sys.argv[1]))  # what ran before in this process: torch's global generator differs
image = pipe("a red cube", num_inference_steps=4, guidance_scale=5.0, output_type="np",
             generator=torch.Generator("cpu").manual_seed(1234)).images[0]
print(type(pipe.scheduler).__name__, hashlib.sha256(image.tobytes()).hexdigest())
"""


@pytest.mark.subprocess
@pytest.mark.model
def test_dpm_sde_gives_the_same_image_for_the_same_case_in_two_processes():
    def run(global_seed: int) -> str:
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        result = subprocess.run([sys.executable, "-c", CHILD, str(global_seed)], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, check=True)
        return result.stdout.strip().splitlines()[-1]

    first, second = run(1), run(2)
    assert first.split()[0] == "DPMSolverSDEScheduler"
    assert first == second


def test_a_sampler_whose_package_is_missing_is_one_line_naming_the_package(monkeypatch: pytest.MonkeyPatch):
    """Without torchsde, diffusers puts a stand-in class in DPMSolverSDEScheduler's place that raises a
    multi-line ImportError; the case gets one line naming the sampler and the package."""
    import diffusers

    class Missing:
        """What diffusers' stand-in does without torchsde (requires_backends' message)."""

        @classmethod
        def from_config(cls, *args: Any, **kwargs: Any) -> None:
            raise ImportError("\nDPMSolverSDEScheduler requires the torchsde library but it was not found in your "
                              "environment. You can install it with pip: `pip install torchsde`\n")

    monkeypatch.setattr(diffusers, "DPMSolverSDEScheduler", Missing)
    with pytest.raises(ValueError) as caught:
        scheduler_for(StepsWithGenerator(), _euler(), "DPM++ SDE", 0)
    message = str(caught.value)
    assert message.startswith("sampler 'DPM++ SDE' (DPMSolverSDEScheduler) cannot run here: ")
    assert "torchsde" in message and "\n" not in message
