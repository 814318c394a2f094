"""What a pipeline hands back, and the keyword values it is given, checked in
DiffbenchCase.generate (issue 9, P5, P6, P8): a measurement a sidecar could not hold, an output
that is not a PIL image, a float image with NaN, a class for a pipeline, keyword values diffusers
would fail on or ignore. Each is one line (no traceback) before anything is written."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Mapping

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.run.case import DiffbenchCase, SelfRunner
from pytest_diffbench.run.protocol import PipelineDescription, pipeline_problem
from pytest_diffbench.spec.measurement import Measurement, is_valid_figure, measurement_problem
from pytest_diffbench.spec.sweep import SweepError, expand_sweep, sweep
from pytest_diffbench.testing import FakePipeline


class Returning(FakePipeline):
    """A FakePipeline whose diffbench_generate returns ``output`` as it is."""

    def __init__(self, output: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output = output

    def diffbench_generate(self, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> Any:
        return self.output


def case_of(pipeline: Any, **axes: Any) -> DiffbenchCase:
    (case,) = expand_sweep(sweep(**axes).mark.kwargs, max_cases=512)
    return DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=pipeline, runner=SelfRunner(), workflow_version="1")


def refused(pipeline: Any, axes: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    dcase = case_of(pipeline, **(axes or {}))
    with pytest.raises(pytest.fail.Exception) as excinfo:
        dcase.generate("a red cube", **kwargs)
    assert excinfo.value.pytrace is False and dcase.image is None and dcase.measurement is None
    message = str(excinfo.value.msg)
    assert message.startswith("t.py::test[x]: ") and "\n" not in message
    return message


def picture() -> Image.Image:
    return FakePipeline().draw("Euler", 0, {})


# -- P5: the measurement ----------------------------------------------------------------------


@pytest.mark.parametrize("measurement, fragment", [
    (Measurement(float("nan"), None, None), "Measurement.seconds_per_image = nan is not valid"),
    (Measurement(-1.0, float("inf"), None), "Measurement.seconds_per_image = -1.0 is not valid"),
    (Measurement(1.0, float("inf"), None), "Measurement.peak_vram_mb = inf is not valid; it must be a finite number >= 0 or None"),
    (Measurement(1.0, -3.0, None), "Measurement.peak_vram_mb = -3.0 is not valid"),
    (Measurement(1.0, None, float("nan")), "Measurement.warmup_seconds = nan is not valid"),
    (Measurement(True, None, None), "Measurement.seconds_per_image = True is not valid"),  # type: ignore[arg-type]
    (Measurement("fast", None, None), "Measurement.seconds_per_image = 'fast' is not valid"),  # type: ignore[arg-type]
    ((1.0, None), "the pipeline returned a tuple as its measurement, not a Measurement"),
])
def test_a_measurement_a_sidecar_could_not_hold_is_refused(measurement, fragment):
    assert fragment in refused(Returning((picture(), measurement)))


def test_the_sidecar_reads_by_the_measurements_rule():
    """One rule for the writer's check and the reader's: what is_valid_figure refuses, a sidecar refuses."""
    from pytest_diffbench.spec.sidecar import _seconds_or_mib

    for value in (math.nan, math.inf, -1.0, True, "1"):
        assert not is_valid_figure(value)
        with pytest.raises(ValueError):
            _seconds_or_mib({"seconds_per_image": value}, "seconds_per_image")
    for value in (0, 0.0, 2.5):
        assert is_valid_figure(value) and measurement_problem(Measurement(value)) == ""


# -- P6: the output ---------------------------------------------------------------------------


@pytest.mark.parametrize("output, shown", [
    ((np.zeros((64, 64, 3), dtype=np.uint8), Measurement(1.0)), "ndarray"),
    ((None, Measurement(1.0)), "NoneType"),
    (("a picture", Measurement(1.0)), "str"),
])
def test_an_output_that_is_not_a_pil_image_is_refused(output, shown):
    assert f"the pipeline returned {shown}, not a PIL image" in refused(Returning(output))


@pytest.mark.parametrize("output, shown", [(None, "NoneType"), (picture(), "Image"), ([1, 2], "list")])
def test_an_output_that_is_not_an_image_and_measurement_pair_is_refused(output, shown):
    assert f"the pipeline returned {shown}, not (image, Measurement)" in refused(Returning(output))


def test_a_float_image_full_of_nan_is_made_invalid_and_storable():
    nan = Image.fromarray(np.full((64, 64), np.nan, dtype=np.float32), "F")
    dcase = case_of(Returning((nan, Measurement(1.0))))
    image = dcase.generate("a red cube")
    assert image.mode == "L" and dcase.measurement is not None
    assert dcase.measurement.warnings == ("the pipeline's mode F image holds NaN or inf values",)
    from pytest_diffbench.judge.lifecycle import output_problem
    from pytest_diffbench.store.files import encode_png

    assert output_problem(image, dcase.measurement).startswith("the output had non-finite values (NaN or inf) when "
                                                               "it was made (the pipeline's mode F image holds NaN")
    assert encode_png(image)  # the run folder can keep it to look at


@pytest.mark.parametrize("image, mode", [
    (Image.fromarray((np.arange(64 * 64, dtype=np.float32).reshape(64, 64) % 256), "F"), "L"),
    (Image.fromarray((np.arange(64 * 64, dtype=np.int32).reshape(64, 64) % 256), "I"), "L"),
    (picture().convert("CMYK"), "RGB"),
])
def test_other_modes_become_storable_without_a_warning(image, mode):
    dcase = case_of(Returning((image, Measurement(1.0))))
    out = dcase.generate("a red cube")
    assert out.mode == mode and dcase.measurement is not None and dcase.measurement.warnings == ()


@pytest.mark.parametrize("cls", [FakePipeline, Returning, dict])
def test_a_class_instead_of_an_instance_is_refused(cls):
    assert pipeline_problem(cls) == (f"diffbench_pipeline returned the class {cls.__name__}, not a pipeline; return "
                                     f"an instance, e.g. {cls.__name__}(...) (or {cls.__name__}.from_pretrained(...) "
                                     "for diffusers)")


# -- P8: keyword values -----------------------------------------------------------------------


@pytest.mark.parametrize("keyword", ["cross_attention_kwargs", "joint_attention_kwargs", "attention_kwargs"])
def test_an_attention_scale_without_a_lora_is_refused_like_lora_scale(keyword):
    pipe = FakePipeline(extra_keywords=(keyword,))
    for message in (refused(pipe, {keyword: [{"scale": 0.8}]}), refused(pipe, **{keyword: {"scale": 0.8}})):
        assert f"{keyword}={{'scale': ...}} needs a LoRA loaded in the pipeline" in message


@pytest.mark.parametrize("value", [None, -0.1, -1, "0.7"])
def test_guidance_rescale_must_be_a_finite_number_at_least_0(value):
    with pytest.raises(SweepError, match=r"sweep axis 'guidance_rescale': guidance_rescale=.* is not valid; "
                                         "guidance_rescale must be a finite number >= 0"):
        expand_sweep(sweep(guidance_rescale=[value, 0.5]).mark.kwargs, max_cases=512)
    if value is None or isinstance(value, str):
        assert "guidance_rescale must be a finite number >= 0" in refused(FakePipeline(), guidance_rescale=value)


@pytest.mark.parametrize("value", [-1, 1.5, "2", None])
def test_clip_skip_must_be_an_integer_at_least_0(value):
    with pytest.raises(SweepError, match="clip_skip must be an integer >= 0"):
        expand_sweep(sweep(clip_skip=[value]).mark.kwargs, max_cases=512)


class WithTextEncoder(FakePipeline):
    class text_encoder:  # noqa: N801 - shaped like pipe.text_encoder.config.num_hidden_layers
        class config:  # noqa: N801
            num_hidden_layers = 12


@pytest.mark.parametrize("skip", [12, 50])
def test_clip_skip_must_be_below_the_text_encoders_layers(skip):
    pipe = WithTextEncoder(extra_keywords=("clip_skip",))
    assert (f"clip_skip={skip} is not valid for this pipeline: its text encoder has 12 layers, so clip_skip must be "
            "from 0 to 11") in refused(pipe, clip_skip=skip)
    assert case_of(WithTextEncoder(extra_keywords=("clip_skip",))).generate("a red cube", clip_skip=11)


@pytest.mark.parametrize("name", ["return_dict", "latents", "prompt_embeds", "negative_prompt_embeds",
                                  "callback_on_step_end"])
def test_keywords_that_change_nothing_or_break_the_contract_are_refused(name):
    pipe = FakePipeline(extra_keywords=(name,))
    assert f"generate() got {name}, which diffbench sets for each case; " in refused(pipe, **{name: None})
    with pytest.raises(SweepError, match=rf"sweep axis '{name}' is reserved; "):
        expand_sweep(sweep(**{name: [False]}).mark.kwargs, max_cases=512)


@pytest.mark.parametrize("version", ["", "   ", 2])
def test_a_sweeps_workflow_version_must_be_a_non_empty_string(version):
    with pytest.raises(SweepError, match=r"sweep\(workflow_version=.*\) is not valid; give the version of your "
                                         "workflow as a non-empty string"):
        expand_sweep(sweep(workflow_version=version).mark.kwargs, max_cases=512)


def test_a_decimal_cfg_is_a_number():
    (case,) = expand_sweep(sweep(cfg=[Decimal("7.5")]).mark.kwargs, max_cases=512)
    assert case.cfg == 7.5 and isinstance(case.cfg, float)
    with pytest.raises(SweepError, match="cfg .guidance scale. must be a finite number >= 0"):
        expand_sweep(sweep(cfg=[Decimal("NaN")]).mark.kwargs, max_cases=512)


@pytest.mark.parametrize("multiple", [0, -8, 8.0, "8", True])
def test_a_size_multiple_that_is_not_a_positive_int_is_refused(multiple):
    class Stepped(FakePipeline):
        diffbench_size_multiple = multiple

    assert (f"Stepped.diffbench_size_multiple = {multiple!r} is not valid; it must be a positive int"
            in refused(Stepped()))
