"""On a real diffusers pipeline with a peft LoRA (the random built-in model, issue 11 item 4): the
adapter weight set with set_adapters and the scheduler's own settings are in the config, so a
change of either is a stale baseline naming the field although the fingerprint is the same; and a
lora_scale=0 case no longer resets the adapter weight of the cases after it, so a case passes
whether or not the scale-0 case ran before it."""

from __future__ import annotations

import pytest

from pytest_diffbench.spec.outcomes import Outcome

CONFTEST = '''
import os

import pytest
import torch
from peft import LoraConfig

from pytest_diffbench.run.pipelines import build_random_pipeline


@pytest.fixture(scope="session")
def diffbench_pipeline():
    """The random built-in model with a seeded LoRA at weight $LORA_WEIGHT, and $SPACING as its
    scheduler's timestep_spacing when set."""
    pipe = build_random_pipeline()
    torch.manual_seed(1)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                     init_lora_weights=False), adapter_name="style")
    pipe.set_adapters(["style"], adapter_weights=[float(os.environ.get("LORA_WEIGHT", "0.5"))])
    if os.environ.get("SPACING"):
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, timestep_spacing=os.environ["SPACING"])
    return pipe
'''


@pytest.mark.subprocess
@pytest.mark.model
def test_adapter_weights_and_scheduler_settings_are_in_the_config(project, monkeypatch) -> None:
    project.pytester.makeconftest(CONFTEST)
    project.write_tests(project.test("test_lora", sweep="seeds=0, steps=2, lora_scale=[0.0, 1.0]"))
    created = project.run(update="all", subprocess=True)
    created.outcome.assert_outcomes(passed=2)
    baseline = created.result("lora_scale1").config
    assert baseline["adapters"]["style"]["weights"] == {"unet": 0.5}
    assert baseline["scheduler"]["class"] == "EulerDiscreteScheduler"

    # The scale-1 case alone: the same weight as after the scale-0 case, so the same image.
    alone = project.run("-k", "lora_scale1", subprocess=True)
    alone.outcome.assert_outcomes(passed=1)
    assert alone.results[0].scores["ssim"] == 1.0

    monkeypatch.setenv("LORA_WEIGHT", "0.8")
    reweighted = project.run(subprocess=True)
    reweighted.outcome.assert_outcomes(failed=2)
    assert {result.outcome for result in reweighted.results} == {Outcome.STALE_BASELINE}
    assert "adapters.style.weights.unet: 0.5 -> 0.8" in project.text(reweighted.outcome)

    monkeypatch.setenv("LORA_WEIGHT", "0.5")
    monkeypatch.setenv("SPACING", "trailing")
    respaced = project.run(subprocess=True)
    respaced.outcome.assert_outcomes(failed=2)
    assert {result.outcome for result in respaced.results} == {Outcome.STALE_BASELINE}
    assert "scheduler.timestep_spacing" in project.text(respaced.outcome)
