"""What DiffbenchCase.generate puts into the frozen config besides the axes (issue 11, item 4): the
scheduler record the runner gives before generating, the pipeline's own flags, its LoRA adapters
and a refiner stage; and the keywords diffbench always passes, which a pipeline may not take
(LCM: no negative_prompt; distilled pipelines: no guidance_scale; image variation: no prompt).
No torch: the runner is a stub."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.run.case import DiffbenchCase, SelfRunner
from pytest_diffbench.run.protocol import PipelineDescription
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.samplers import SamplerFamilyError
from pytest_diffbench.spec.sweep import expand_sweep, sweep
from pytest_diffbench.testing import SD_CALL_KEYWORDS, FakePipeline

ADAPTER = {"components": ["unet"], "digest": "ab" * 32, "active": True, "weights": {"unet": 1.0}, "enabled": True,
           "fused": False}


class RecordingRunner:
    """A runner whose description, call keywords and scheduler record a test sets; it records the
    calls it gets (``scheduler`` may be an exception, raised when the record is asked for)."""

    def __init__(self, keywords: frozenset[str] | None = SD_CALL_KEYWORDS, scheduler: Any = None,
                 **description: Any) -> None:
        self.keywords = keywords
        self.scheduler = {"class": "EulerDiscreteScheduler"} if scheduler is None else scheduler
        adapters = description.get("adapters", {})
        self.description = PipelineDescription(
            **{"model": "m", "model_fingerprint": "f", "vae": "", "controlnets": (), "workflow": "StubPipeline",
               "dtype": "float32", "device": "cpu",
               "loras": tuple(sorted(name for name, record in adapters.items() if record["active"])), **description})
        self.calls: list[dict[str, Any]] = []

    def describe(self, pipe: Any) -> PipelineDescription:
        return self.description

    def call_keywords(self, pipe: Any) -> frozenset[str] | None:
        return self.keywords

    def size_multiple(self, pipe: Any) -> int | None:
        return 8

    def scheduler_record(self, pipe: Any, sampler: str, seed: int) -> Mapping[str, Any]:
        if isinstance(self.scheduler, Exception):
            raise self.scheduler
        return self.scheduler

    def generate(self, pipe: Any, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> tuple[Image.Image, Measurement]:
        self.calls.append(dict(call_kwargs))
        return Image.new("RGB", (64, 64), (10, 20, 30)), Measurement(0.1, None, None)


def make_case(runner: Any, pipeline: Any = None, **axes: Any) -> DiffbenchCase:
    (case,) = expand_sweep(sweep(**axes).mark.kwargs, max_cases=512)
    return DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=object() if pipeline is None else pipeline,
                         runner=runner, workflow_version="1")


def refusal(runner: RecordingRunner, axes: Mapping[str, Any], prompt: str = "a red cube", **kwargs: Any) -> str:
    """The one line generate() fails with; the pipeline was not called."""
    with pytest.raises(pytest.fail.Exception) as excinfo:
        make_case(runner, **axes).generate(prompt, **kwargs)
    assert excinfo.value.pytrace is False and runner.calls == []
    assert excinfo.value.__context__ is None  # pytest would print a chained exception under the line
    message = str(excinfo.value.msg)
    assert message.startswith("t.py::test[x]: ") and "\n" not in message
    return message


def test_the_scheduler_record_pipeline_flags_adapters_and_refiner_go_into_the_config():
    refiner = {"model": "refiner", "handoff": 0.8}
    runner = RecordingRunner(scheduler={"class": "EulerDiscreteScheduler", "timestep_spacing": "trailing"},
                             pipeline_config={"force_zeros_for_empty_prompt": True}, adapters={"style": ADAPTER},
                             refiner=refiner)
    case = make_case(runner, steps=2)
    case.generate("a red cube")
    config = case.config
    assert config is not None
    assert config.scheduler == {"class": "EulerDiscreteScheduler", "timestep_spacing": "trailing"}
    assert config.pipeline_config == {"force_zeros_for_empty_prompt": True}
    assert config.adapters == {"style": ADAPTER} and config.loras == ("style",)
    assert config.refiner == refiner
    assert {"scheduler", "pipeline_config", "adapters", "refiner"} <= set(config.to_dict())


@pytest.mark.parametrize("field, value", [
    ("scheduler", {"class": "EulerDiscreteScheduler", "timestep_spacing": "leading"}),
    ("pipeline_config", {"force_zeros_for_empty_prompt": False}),
    ("adapters", {"style": {**ADAPTER, "weights": {"unet": 0.5}}}),
    ("adapters", {"style": {**ADAPTER, "fused": True}}),
    ("adapters", {"style": {**ADAPTER, "digest": "cd" * 32}}),
])
def test_each_recorded_setting_changes_the_config_hash(field, value):
    settings: dict[str, Any] = {"scheduler": {"class": "EulerDiscreteScheduler", "timestep_spacing": "trailing"},
                                "pipeline_config": {"force_zeros_for_empty_prompt": True}, "adapters": {"style": ADAPTER}}
    hashes = []
    for changed in ({}, {field: value}):
        case = make_case(RecordingRunner(**{**settings, **changed}), steps=2)
        case.generate("a red cube")
        assert case.config is not None
        hashes.append(case.config.hash)
    assert hashes[0] != hashes[1]


def test_a_sampler_the_pipeline_cannot_run_is_refused_before_generating():
    error = SamplerFamilyError("sampler 'DDIM' does not work with this pipeline's flow-matching scheduler")
    message = refusal(RecordingRunner(scheduler=error), {"samplers": "DDIM"})
    assert message.endswith("sampler 'DDIM' does not work with this pipeline's flow-matching scheduler")


def test_a_pipeline_that_runs_itself_records_its_own_scheduler():
    fake = FakePipeline(scheduler={"class": "LCMScheduler", "original_inference_steps": 8})
    case = make_case(SelfRunner(), pipeline=fake, steps=2)
    case.generate("a red cube")
    assert case.config is not None and case.config.scheduler == {"class": "LCMScheduler", "original_inference_steps": 8}
    plain = make_case(SelfRunner(), pipeline=FakePipeline(), steps=2)
    plain.generate("a red cube")
    assert plain.config is not None and "scheduler" not in plain.config.to_dict()  # nothing to record: hash unchanged


def test_a_scheduler_record_that_is_not_a_mapping_is_one_line():
    class Odd(FakePipeline):
        def diffbench_scheduler_record(self, sampler: str, seed: int) -> Any:
            return "euler"

    with pytest.raises(pytest.fail.Exception) as excinfo:
        make_case(SelfRunner(), pipeline=Odd()).generate("a red cube")
    assert "Odd.diffbench_scheduler_record() returned str, not a mapping" in str(excinfo.value.msg)


WITHOUT_NEGATIVE = SD_CALL_KEYWORDS - {"negative_prompt"}  # LatentConsistencyModelPipeline


def test_a_pipeline_without_negative_prompt_gets_none_and_records_none():
    runner = RecordingRunner(keywords=WITHOUT_NEGATIVE)
    case = make_case(runner, steps=2)
    case.generate("a red cube")
    assert "negative_prompt" not in runner.calls[0] and runner.calls[0]["prompt"] == "a red cube"
    assert case.config is not None and case.config.negative_prompt is None


@pytest.mark.parametrize("keywords, axes, prompt, kwargs, fragment", [
    (WITHOUT_NEGATIVE, {}, "a red cube", {"negative_prompt": "blurry"},
     "generate(negative_prompt='blurry') would change nothing but the config: StubPipeline.__call__ takes no "
     "negative_prompt; leave negative_prompt out"),
    (SD_CALL_KEYWORDS - {"guidance_scale"}, {"cfg": 4.0}, "a red cube", {},
     "cfg=4.0 would change nothing but the config: StubPipeline.__call__ takes no guidance_scale; leave cfg out of "
     "the sweep"),
    (SD_CALL_KEYWORDS - {"prompt"}, {}, "a red cube", {},
     "generate(prompt='a red cube') would change nothing but the config: StubPipeline.__call__ takes no prompt; "
     'call generate("")'),
    (SD_CALL_KEYWORDS - {"num_inference_steps"}, {"steps": 4}, "a red cube", {},
     "steps=4 would change nothing but the config: StubPipeline.__call__ takes no num_inference_steps"),
])
def test_a_setting_the_pipeline_call_does_not_take_is_refused(keywords, axes, prompt, kwargs, fragment):
    assert fragment in refusal(RecordingRunner(keywords=keywords), axes, prompt, **kwargs)


def test_every_setting_the_call_does_not_take_is_named_in_one_line():
    message = refusal(RecordingRunner(keywords=SD_CALL_KEYWORDS - {"negative_prompt", "guidance_scale"}),
                      {"cfg": 4.0}, negative_prompt="blurry")
    assert "takes no negative_prompt" in message and "takes no guidance_scale" in message


@pytest.mark.parametrize("missing", ["guidance_scale", "prompt", "num_inference_steps"])
def test_a_setting_left_at_its_neutral_value_is_not_passed(missing):
    runner = RecordingRunner(keywords=SD_CALL_KEYWORDS - {missing})
    case = make_case(runner)  # cfg 7.5 and steps 20: the sweep's defaults
    case.generate("" if missing == "prompt" else "a red cube")
    assert missing not in runner.calls[0]
    assert case.config is not None and case.config.cfg == 7.5 and case.config.steps == 20


@pytest.mark.parametrize("name", ["timesteps", "sigmas"])
def test_a_schedule_of_another_length_than_steps_is_refused(name):
    message = refusal(RecordingRunner(), {"steps": 2}, **{name: [999, 500, 1]})
    assert (f"{name} holds 3 values, but this case runs steps=2; diffusers runs one step per value of {name} and "
            "ignores steps, so give 2 values or set steps=3 in the sweep") in message


@pytest.mark.parametrize("kwargs, fragment", [
    ({"eta": float("nan")}, "generate() keyword.eta: nan is not a finite number"),
    ({"image": np.full((8, 8, 3), np.nan, dtype=np.float32)}, "generate(image=...): the image holds NaN or inf"),
])
def test_a_value_refused_by_a_check_that_raises_shows_no_chained_exception(kwargs, fragment):
    assert fragment in refusal(RecordingRunner(keywords=SD_CALL_KEYWORDS | {"image"}), {}, **kwargs)


def test_a_schedule_as_long_as_steps_runs():
    runner = RecordingRunner()
    make_case(runner, steps=3).generate("a red cube", sigmas=[14.6, 1.0, 0.1])
    assert runner.calls[0]["sigmas"] == [14.6, 1.0, 0.1]


@pytest.mark.parametrize("state, shown", [({"fused": True}, "style (fused)"), ({"enabled": False}, "style (disabled)")])
@pytest.mark.parametrize("axes, kwargs, what", [
    ({"lora_scale": 0.8}, {}, "sweep axis 'lora_scale'"),
    ({}, {"cross_attention_kwargs": {"scale": 0.8}}, "cross_attention_kwargs={'scale': ...}"),
])
def test_a_lora_scale_on_a_fused_or_disabled_lora_is_refused(state, shown, axes, kwargs, what):
    runner = RecordingRunner(adapters={"style": {**ADAPTER, **state}})
    message = refusal(runner, axes, **kwargs)
    assert f"{what} changes nothing here: every active LoRA adapter is fused into the weights or disabled ({shown})" in message


def test_a_lora_scale_with_no_active_adapter_names_the_inactive_ones():
    message = refusal(RecordingRunner(adapters={"style": {**ADAPTER, "active": False}}), {"lora_scale": 0.8})
    assert ("sweep axis 'lora_scale' needs an active LoRA, and none of this pipeline's adapters (style) is active; "
            "activate one with pipe.set_adapters([...])") in message


def test_a_lora_scale_runs_while_one_active_adapter_takes_it():
    adapters = {"style": {**ADAPTER, "fused": True}, "detail": ADAPTER, "off": {**ADAPTER, "active": False, "fused": True}}
    runner = RecordingRunner(adapters=adapters)
    make_case(runner, lora_scale=0.8).generate("a red cube")
    assert runner.calls[0]["cross_attention_kwargs"] == {"scale": 0.8}


def test_an_output_that_is_no_image_is_one_line_without_a_chained_exception():
    from pytest_diffbench.run.frames import OutputError

    class Failing(RecordingRunner):
        def generate(self, pipe: Any, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> Any:
            raise OutputError("the pipeline returned 2 images; diffbench compares one image per case")

    with pytest.raises(pytest.fail.Exception) as excinfo:
        make_case(Failing(), steps=2).generate("a red cube")
    assert excinfo.value.__context__ is None
    assert str(excinfo.value.msg) == "t.py::test[x]: the pipeline returned 2 images; diffbench compares one image per case"


class TrueCfgPipeline:
    """Stands in for Flux: classifier-free guidance only with ``true_cfg_scale`` above 1 (default 1)."""

    def __call__(self, prompt: str = "", negative_prompt: str | None = None, true_cfg_scale: float = 1.0) -> None: ...


@pytest.mark.parametrize("kwargs, refused", [({}, True), ({"true_cfg_scale": 1.0}, True), ({"true_cfg_scale": 2.0}, False)])
def test_a_negative_prompt_needs_a_true_cfg_scale_above_1_where_the_call_takes_one(kwargs, refused):
    runner = RecordingRunner(keywords=SD_CALL_KEYWORDS | {"true_cfg_scale"})
    case = make_case(runner, pipeline=TrueCfgPipeline(), steps=2)
    if not refused:
        case.generate("a red cube", negative_prompt="blurry", **kwargs)
        assert case.config is not None and case.config.negative_prompt == "blurry"
        return
    with pytest.raises(pytest.fail.Exception) as excinfo:
        case.generate("a red cube", negative_prompt="blurry", **kwargs)
    assert ("generate(negative_prompt='blurry') would change nothing but the config: StubPipeline runs no "
            "classifier-free guidance at true_cfg_scale=1 (it guides above 1; set true_cfg_scale above 1)"
            in str(excinfo.value.msg))
