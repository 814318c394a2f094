"""describe_pipeline on real tiny diffusers pipelines (issue 11, item 4): the pipeline's own config
flags, and its peft LoRA adapters (sampled digest, active, weights set by set_adapters, enabled,
fused), which the sampled model fingerprint alone does not tell; and cases that run them: the LoRA
scale routed to SD3's and Flux's joint_attention_kwargs, refused on a fused LoRA, a scale-0 case
that leaves the next case's adapter weights alone, LCM's missing negative_prompt."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
import pytest

from pytest_diffbench.run.case import DiffbenchCase
from pytest_diffbench.spec.sweep import expand_sweep, sweep

if TYPE_CHECKING:
    from pytest_diffbench.run.generation import ImageGenerator

# pytest_diffbench.run.fingerprint, .generation and .pipelines import torch and diffusers: the tests
# import them, so collecting this module (also for `-m "not model"`, which deselects it) does not.

pytestmark = pytest.mark.model



def add_lora(pipe: Any, name: str, seed: int = 0) -> Any:
    """A seeded rank-4 peft LoRA named ``name`` on the pipeline's UNet attention projections."""
    import torch
    from peft import LoraConfig

    torch.manual_seed(seed)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                     init_lora_weights=False), adapter_name=name)
    return pipe


def run_case(pipe: Any, runner: ImageGenerator, prompt: str = "a red cube", **axes: Any) -> DiffbenchCase:
    (case,) = expand_sweep(sweep(seeds=0, steps=2, width=64, height=64, **axes).mark.kwargs, max_cases=8)
    diffbench = DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=pipe, runner=runner, workflow_version="1")
    diffbench.generate(prompt)
    return diffbench


def refusal(pipe: Any, **kwargs: Any) -> str:
    from pytest_diffbench.run.generation import ImageGenerator

    (case,) = expand_sweep(sweep(seeds=0, steps=2, width=64, height=64, **kwargs.pop("axes", {})).mark.kwargs,
                           max_cases=8)
    with pytest.raises(pytest.fail.Exception) as excinfo:
        DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=pipe, runner=ImageGenerator(),
                      workflow_version="1").generate("a red cube", **kwargs)
    return str(excinfo.value.msg)


def pixels(case: DiffbenchCase) -> np.ndarray:
    assert case.image is not None
    return np.asarray(case.image, dtype=np.float64)


def test_pipeline_config_holds_the_flags_not_the_components(builders) -> None:
    from pytest_diffbench.run.fingerprint import describe_pipeline, pipeline_config
    from pytest_diffbench.run.pipelines import build_random_pipeline

    sd = build_random_pipeline()
    assert pipeline_config(sd) == {"requires_safety_checker": False}
    sdxl = builders.build_sdxl()
    assert pipeline_config(sdxl) == {"force_zeros_for_empty_prompt": True}
    sdxl.register_to_config(force_zeros_for_empty_prompt=False)  # what StableDiffusionXLPipeline(..., False) sets
    assert describe_pipeline(sdxl).pipeline_config == {"force_zeros_for_empty_prompt": False}
    refiner = builders.build_sdxl_refiner()
    assert pipeline_config(refiner) == {"force_zeros_for_empty_prompt": True, "requires_aesthetics_score": True}


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute:UserWarning")  # two adapters, on purpose
def test_adapters_record_what_the_fingerprint_does_not_tell() -> None:
    from pytest_diffbench.run.fingerprint import describe_pipeline, lora_adapters, model_fingerprint
    from pytest_diffbench.run.pipelines import build_random_pipeline

    pipe = add_lora(add_lora(build_random_pipeline(), "style", seed=1), "detail", seed=2)
    assert describe_pipeline(pipe).loras == ("detail",)  # peft activates the adapter added last
    style = lora_adapters(pipe)["style"]
    assert style == {"components": ["unet"], "digest": style["digest"], "active": False, "weights": {"unet": 1.0},
                     "enabled": True, "fused": False}
    fingerprint = model_fingerprint(pipe)

    pipe.set_adapters(["style", "detail"], adapter_weights=[0.5, 1.2])
    assert describe_pipeline(pipe).loras == ("detail", "style")
    assert model_fingerprint(pipe) == fingerprint  # the weights are not in the sampled fingerprint ...
    adapters = lora_adapters(pipe)  # ... but in the adapters' record
    assert (adapters["style"]["weights"], adapters["detail"]["weights"]) == ({"unet": 0.5}, {"unet": 1.2})

    pipe.set_adapters(["style"])
    assert (lora_adapters(pipe)["style"]["active"], lora_adapters(pipe)["detail"]["active"]) == (True, False)

    pipe.fuse_lora(adapter_names=["style"])
    assert lora_adapters(pipe)["style"]["fused"] is True
    assert model_fingerprint(pipe) != fingerprint  # fusing writes the LoRA into the base weights

    pipe.unfuse_lora()
    pipe.disable_lora()
    assert lora_adapters(pipe)["style"]["enabled"] is False


def test_the_adapter_digest_follows_the_lora_weights() -> None:
    from pytest_diffbench.run.fingerprint import lora_adapters
    from pytest_diffbench.run.pipelines import build_random_pipeline

    first = lora_adapters(add_lora(build_random_pipeline(), "style", seed=1))["style"]["digest"]
    same = lora_adapters(add_lora(build_random_pipeline(), "style", seed=1))["style"]["digest"]
    other = lora_adapters(add_lora(build_random_pipeline(), "style", seed=2))["style"]["digest"]
    assert first == same != other


def test_a_scale_zero_case_leaves_the_next_case_its_adapter_weights() -> None:
    from pytest_diffbench.run.generation import ImageGenerator
    from pytest_diffbench.run.pipelines import build_random_pipeline

    pipe = add_lora(build_random_pipeline(), "style", seed=1)
    pipe.set_adapters(["style"], adapter_weights=[0.5])
    runner = ImageGenerator()
    before = run_case(pipe, runner, lora_scale=1.0)
    run_case(pipe, runner, lora_scale=0.0)  # diffusers resets the adapters to weight 1 after a scale-0 call
    after = run_case(pipe, runner, lora_scale=1.0)
    assert after.config == before.config and after.config is not None
    assert after.config.adapters["style"]["weights"] == {"unet": 0.5}
    assert np.array_equal(pixels(after), pixels(before))


@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_lora_scale_reaches_the_joint_attention_of_sd3_and_flux(builders, family) -> None:
    from pytest_diffbench.run.generation import ImageGenerator

    pipe = builders.build_lora(getattr(builders, f"build_{family}")())
    runner = ImageGenerator()
    assert "joint_attention_kwargs" in (runner.call_keywords(pipe) or ())
    low, high = run_case(pipe, runner, lora_scale=0.5), run_case(pipe, runner, lora_scale=1.5)
    assert np.abs(pixels(low) - pixels(high)).mean() > 0.1  # the scale changed the image
    assert low.config is not None and low.config.adapters["tiny"]["components"] == ["transformer"]
    pipe.fuse_lora()
    assert "sweep axis 'lora_scale' changes nothing here: every active LoRA adapter is fused into the weights or " \
           "disabled (tiny (fused))" in refusal(pipe, axes={"lora_scale": 0.5})


def test_lcm_gets_no_negative_prompt_and_refuses_one(builders) -> None:
    from pytest_diffbench.run.generation import ImageGenerator

    pipe = builders.build_lcm()
    case = run_case(pipe, ImageGenerator(), samplers="LCM")
    assert case.config is not None and case.config.negative_prompt is None
    assert case.config.scheduler["class"] == "LCMScheduler"
    message = refusal(pipe, axes={"samplers": "LCM"}, negative_prompt="blurry")
    assert ("generate(negative_prompt='blurry') would change nothing but the config: "
            "LatentConsistencyModelPipeline.__call__ takes no negative_prompt") in message


@pytest.mark.parametrize("name, value, instead", [
    ("num_inference_steps", 30, "use steps instead"), ("output_type", "latent", "diffbench always asks for PIL images"),
    ("guidance_scale", 3.0, "use cfg instead"), ("generator", None, "use seeds instead"),
])
def test_a_keyword_the_sweep_sets_is_refused_on_a_real_pipeline(name, value, instead) -> None:
    from pytest_diffbench.run.pipelines import build_random_pipeline

    message = refusal(build_random_pipeline(), **{name: value})
    assert f"generate() got {name}, which diffbench sets for each case; {instead}" in message


@pytest.mark.parametrize("cfg", [1.0, 0.5])
def test_a_negative_prompt_without_classifier_free_guidance_is_refused(cfg) -> None:
    from pytest_diffbench.run.pipelines import build_random_pipeline

    pipe = build_random_pipeline()
    message = refusal(pipe, axes={"cfg": cfg}, negative_prompt="blurry")
    assert (f"generate(negative_prompt='blurry') would change nothing but the config: StableDiffusionPipeline runs "
            f"no classifier-free guidance at cfg={cfg:g}") in message
    assert "_guidance_scale" not in vars(pipe)  # the pipeline is left as it was


def test_a_negative_prompt_with_classifier_free_guidance_is_used() -> None:
    from pytest_diffbench.run.generation import ImageGenerator
    from pytest_diffbench.run.pipelines import build_random_pipeline

    pipe = build_random_pipeline()
    (case,) = expand_sweep(sweep(seeds=0, steps=2, cfg=1.5).mark.kwargs, max_cases=8)
    diffbench = DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=pipe, runner=ImageGenerator(),
                              workflow_version="1")
    diffbench.generate("a red cube", negative_prompt="blurry")
    assert diffbench.config is not None and diffbench.config.negative_prompt == "blurry"


def test_a_flag_a_config_cannot_hold_is_recorded_the_same_in_every_run() -> None:
    import torch

    from pytest_diffbench.run.fingerprint import pipeline_config

    pipe = SimpleNamespace(config={"upcast_dtype": torch.float16, "hook": object(), "unet": ["diffusers", "UNet"]},
                           components={"unet": None})
    flags = pipeline_config(pipe)
    assert (flags["upcast_dtype"], flags["hook"]) == ("torch.float16", "object")


def test_flux_reads_a_negative_prompt_only_above_true_cfg_scale_1(builders) -> None:
    from pytest_diffbench.run.generation import ImageGenerator

    pipe = builders.build_flux()
    assert "runs no classifier-free guidance at true_cfg_scale=1" in refusal(pipe, negative_prompt="blurry")
    (case,) = expand_sweep(sweep(seeds=0, steps=2, width=64, height=64).mark.kwargs, max_cases=8)
    diffbench = DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=pipe, runner=ImageGenerator(),
                              workflow_version="1")
    diffbench.generate("a red cube", negative_prompt="blurry", true_cfg_scale=2.0)
    assert diffbench.config is not None and diffbench.config.negative_prompt == "blurry"


def test_inputs_diffusers_would_fail_on_deep_inside_its_call_are_one_line(builders):
    """clip_skip through a CLIP text encoder without the ``text_model`` level (transformers 5), IP-Adapter
    inputs without an IP-Adapter, a custom timestep schedule a sampler cannot take: each fails the case
    with one line naming the keyword or the pipeline, never a traceback from inside diffusers."""
    import transformers

    pipe = builders.build_sd()
    if int(transformers.__version__.split(".")[0]) >= 5:
        assert refusal(pipe, clip_skip=1).startswith("t.py::test[x]: clip_skip=1 does not work with this pipeline: ")
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    assert refusal(pipe, ip_adapter_image=image) == ("t.py::test[x]: ip_adapter_image needs an IP-Adapter loaded in the "
                                                     "pipeline (pipe.load_ip_adapter(...) in your diffbench_pipeline "
                                                     "fixture), and this one has none")
    timesteps = refusal(pipe, axes={"samplers": "DDIM"}, timesteps=[999, 500])
    assert timesteps.startswith("t.py::test[x]: StableDiffusionPipeline's call failed with ValueError: ")
    assert "\n" not in timesteps
