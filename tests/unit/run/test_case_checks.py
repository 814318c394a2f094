"""DiffbenchCase.generate's checks before the pipeline runs (issue 9, item 7): keywords the sweep
sets, keywords the pipeline's call does not name, sizes off the pipeline's step, lora_scale without
a LoRA, non-finite values. Each fails the case with one line (no traceback) and runs nothing."""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import pytest
from PIL import Image

from pytest_diffbench.run.case import DiffbenchCase
from pytest_diffbench.run.protocol import PipelineDescription
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.sweep import expand_sweep, sweep

#: Keywords of a Stable Diffusion pipeline's call, as diffusers names them (it also takes **kwargs).
SD_KEYWORDS = frozenset({"prompt", "negative_prompt", "height", "width", "num_inference_steps", "guidance_scale",
                         "eta", "generator", "output_type", "cross_attention_kwargs", "guidance_rescale"})


class StubRunner:
    """A runner that says what its pipeline takes and records the calls it gets."""

    def __init__(self, keywords: frozenset[str] | None = SD_KEYWORDS, multiple: int | None = 8,
                 loras: tuple[str, ...] = ()) -> None:
        self.keywords, self.multiple, self.loras = keywords, multiple, loras
        self.calls: list[Mapping[str, Any]] = []

    def describe(self, pipe: Any) -> PipelineDescription:
        return PipelineDescription(model="m", model_fingerprint="f", vae="", loras=self.loras, controlnets=(),
                                   workflow="StubPipeline", dtype="float32", device="cpu")

    def call_keywords(self, pipe: Any) -> frozenset[str] | None:
        return self.keywords

    def size_multiple(self, pipe: Any) -> int | None:
        return self.multiple

    def scheduler_record(self, pipe: Any, sampler: str, seed: int) -> Mapping[str, Any]:
        return {}

    def generate(self, pipe: Any, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> tuple[Image.Image, Measurement]:
        self.calls.append(dict(call_kwargs))
        size = (int(call_kwargs.get("width") or 64), int(call_kwargs.get("height") or 64))
        return Image.new("RGB", size, (10, 20, 30)), Measurement(0.1, None, None)


def make_case(runner: StubRunner, **axes: Any) -> DiffbenchCase:
    (case,) = expand_sweep(sweep(**axes).mark.kwargs, max_cases=512)
    return DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=object(), runner=runner, workflow_version="1")


def refusal(runner: StubRunner, axes: Mapping[str, Any], **kwargs: Any) -> str:
    """The one line generate() fails with; the pipeline was not called."""
    with pytest.raises(pytest.fail.Exception) as excinfo:
        make_case(runner, **axes).generate("a red cube", **kwargs)
    assert excinfo.value.pytrace is False
    assert runner.calls == []
    message = str(excinfo.value.msg)
    assert message.startswith("t.py::test[x]: ") and "\n" not in message
    return message


@pytest.mark.parametrize("name, instead", [
    ("num_inference_steps", "use steps instead"), ("guidance_scale", "use cfg instead"),
    ("output_type", "diffbench always asks for PIL images (output_type='pil')"), ("generator", "use seeds instead"),
    ("seed", "use seeds instead"), ("scheduler", "use samplers instead"),
    ("num_images_per_prompt", "diffbench compares one image per case; use seeds for more images"),
])
def test_a_keyword_the_sweep_sets_is_refused(name, instead):
    message = refusal(StubRunner(), {}, **{name: 1})
    assert f"generate() got {name}, which diffbench sets for each case; {instead}" in message


@pytest.mark.parametrize("axes, kwargs, clash", [
    ({"width": 64}, {"width": 128}, "width"),
    ({"eta": 0.5}, {"eta": 0.0}, "eta"),
])
def test_a_keyword_a_swept_axis_sets_is_refused(axes, kwargs, clash):
    message = refusal(StubRunner(), axes, **kwargs)
    assert f"generate() got {clash}, which the sweep sets for this case; set it in the sweep only" in message


def test_lora_scale_and_its_attention_keyword_are_one_setting():
    message = refusal(StubRunner(loras=("style",)), {"lora_scale": 0.5}, cross_attention_kwargs={"scale": 1.0})
    assert "generate() got cross_attention_kwargs, which the sweep sets" in message


@pytest.mark.parametrize("axes, kwargs, source, name", [
    ({"strenght": 0.5}, {}, "sweep axis", "strenght"),
    ({}, {"guidance_rescle": 0.7}, "generate() keyword", "guidance_rescle"),
    ({}, {"callback_steps": 1}, "generate() keyword", "callback_steps"),  # taken only by **kwargs, and ignored
])
def test_a_keyword_the_pipeline_call_does_not_name_is_refused(axes, kwargs, source, name):
    message = refusal(StubRunner(), axes, **kwargs)
    assert f"{source} {name!r} is not a keyword of StubPipeline.__call__" in message
    assert "its keywords are cross_attention_kwargs, eta, generator, guidance_rescale" in message


def test_a_pipeline_that_runs_itself_takes_any_keyword():
    runner = StubRunner(keywords=None, multiple=None)
    make_case(runner, strength=0.5).generate("a red cube", anything=1, width=60, height=60)
    assert runner.calls[0]["anything"] == 1 and runner.calls[0]["strength"] == 0.5


@pytest.mark.parametrize("axes, kwargs, fragment", [
    ({"width": 60}, {"height": 64}, "width=60 is not a multiple of 8, which this pipeline needs (object); use e.g. width=56"),
    ({"width": 64}, {"height": 100}, "height=100 is not a multiple of 8"),
    ({}, {"width": 4, "height": 64}, "width=4 is not a multiple of 8, which this pipeline needs (object); use e.g. width=8"),
    ({}, {"width": "64", "height": 64}, "width='64' is not valid; width must be a positive integer"),
    ({}, {"width": 64, "height": 64.0}, "height=64.0 is not valid; height must be a positive integer"),
])
def test_a_size_off_the_pipeline_step_is_refused(axes, kwargs, fragment):
    assert fragment in refusal(StubRunner(), axes, **kwargs)


def test_sizes_on_the_step_pass():
    runner = StubRunner()
    image = make_case(runner, width=[96]).generate("a red cube", height=64)
    assert image.size == (96, 64)


def test_lora_scale_needs_a_loaded_lora():
    message = refusal(StubRunner(), {"lora_scale": 0.8})
    assert ("sweep axis 'lora_scale' needs a LoRA loaded in the pipeline (pipe.load_lora_weights(...) in your "
            "diffbench_pipeline fixture), and this one has none") in message


@pytest.mark.parametrize("keywords, routed", [
    (SD_KEYWORDS, "cross_attention_kwargs"),
    (frozenset({"prompt", "joint_attention_kwargs"}), "joint_attention_kwargs"),
    (None, "cross_attention_kwargs"),
])
def test_lora_scale_goes_to_the_attention_keyword_the_call_takes(keywords, routed):
    runner = StubRunner(keywords=keywords, loras=("style",))
    dcase = make_case(runner, lora_scale=0.8)
    dcase.generate("a red cube")
    assert runner.calls[0][routed] == {"scale": 0.8}
    assert dcase.config is not None and dcase.config.pipeline_kwargs == {"lora_scale": 0.8}


def test_lora_scale_without_an_attention_keyword_is_refused():
    message = refusal(StubRunner(keywords=frozenset({"prompt"}), loras=("style",)), {"lora_scale": 0.8})
    assert "takes none of cross_attention_kwargs, joint_attention_kwargs, attention_kwargs" in message


@pytest.mark.parametrize("kwargs, fragment", [
    ({"eta": math.nan}, "generate() keyword.eta: nan is not a finite number"),
    ({"cross_attention_kwargs": {"scale": math.inf}}, "generate() keyword.cross_attention_kwargs.scale: inf is not a finite"),
    ({"eta": object()}, "generate() keyword.eta: object value"),
])
def test_a_value_a_config_cannot_hold_is_refused(kwargs, fragment):
    assert fragment in refusal(StubRunner(loras=("style",)), {}, **kwargs)


def test_prompt_and_second_call_are_one_line_too():
    runner = StubRunner()
    dcase = make_case(runner)
    with pytest.raises(pytest.fail.Exception, match="generate\\(prompt=...\\) must be a string, got int"):
        dcase.generate(3)  # type: ignore[arg-type]
    dcase.generate("a red cube")
    with pytest.raises(pytest.fail.Exception, match="generate\\(\\) was called twice"):
        dcase.generate("a red cube")
    assert len(runner.calls) == 1


class SelfRunning:
    """A pipeline that runs itself and says what its call takes."""

    device = "cpu"
    diffbench_call_keywords = ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "output_type",
                               "width", "height")
    diffbench_size_multiple = 16

    def diffbench_describe(self) -> PipelineDescription:
        return StubRunner().describe(self)

    def diffbench_generate(self, sampler, seed, call_kwargs):
        return StubRunner(keywords=None).generate(self, sampler, seed, call_kwargs)


def self_running_case(**axes: Any) -> DiffbenchCase:
    from pytest_diffbench.run.case import SelfRunner

    (case,) = expand_sweep(sweep(**axes).mark.kwargs, max_cases=512)
    return DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=SelfRunning(), runner=SelfRunner(), workflow_version="1")


@pytest.mark.parametrize("axes, kwargs, fragment", [
    ({"width": 72}, {"height": 64}, "width=72 is not a multiple of 16, which this pipeline needs (SelfRunning)"),
    ({}, {"eta": 0.0}, "generate() keyword 'eta' is not a keyword of StubPipeline.__call__"),
])
def test_a_self_running_pipeline_can_declare_what_its_call_takes(axes, kwargs, fragment):
    with pytest.raises(pytest.fail.Exception, match=re.escape(fragment)):
        self_running_case(**axes).generate("a red cube", **kwargs)


def test_a_self_running_pipeline_gets_what_it_declared():
    assert self_running_case(width=[96]).generate("a red cube", height=64).size == (96, 64)


def preset_case(tmp_path: Any, runner: StubRunner, **axes: Any) -> DiffbenchCase:
    from pytest_diffbench.spec.presets import PresetSource
    (tmp_path / "presets.toml").write_text('[presets.fast]\nversion = "7"\nsteps = 2\nsamplers = "DDIM"\n'
                                           'pipeline_kwargs = { eta = 0.5 }\n', encoding="utf-8")
    PresetSource(tmp_path / "presets.toml", tmp_path, record=True).get("fast")
    (case,) = expand_sweep(sweep(preset="fast", **axes).mark.kwargs, max_cases=512,
                           presets=PresetSource(tmp_path / "presets.toml", tmp_path))
    return DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=object(), runner=runner, workflow_version="1")


def test_a_keyword_the_preset_sets_names_the_preset_and_the_sweep_override(tmp_path):
    runner = StubRunner()
    with pytest.raises(pytest.fail.Exception) as excinfo:
        preset_case(tmp_path, runner).generate("x", eta=0.9)
    message = str(excinfo.value.msg)
    assert "generate() got eta, which preset 'fast' sets for this case; override it with sweep(eta=...)" in message
    assert "the sweep sets" not in message
    with pytest.raises(pytest.fail.Exception) as excinfo:  # the sweep's own axis is the sweep's
        preset_case(tmp_path, runner, eta=0.1).generate("x", eta=0.9)
    assert "which the sweep sets for this case" in str(excinfo.value.msg)
    with pytest.raises(pytest.fail.Exception) as excinfo:  # an axis the call does not take names the preset too
        preset_case(tmp_path, StubRunner(keywords=SD_KEYWORDS - {"eta"})).generate("x")
    assert "preset 'fast' keyword 'eta' is not a keyword" in str(excinfo.value.msg)
    with pytest.raises(pytest.fail.Exception) as excinfo:  # and steps the call does not take
        preset_case(tmp_path, StubRunner(keywords=SD_KEYWORDS - {"num_inference_steps"})).generate("x")
    assert "preset 'fast' sets steps; leave steps out of it or override it with sweep(steps=...)" in str(excinfo.value.msg)
