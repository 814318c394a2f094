"""A custom pipeline's bad output through ``pytest --diffbench`` (issue 9, P5, P6, P8): a
measurement a sidecar could not hold, an output that is not a PIL image, a float image of NaN, a
class for a pipeline, a test's tolerance given as text. Each is one line, no traceback, and
``--diffbench-update`` writes no baseline from it.

The project's pipeline is a FakePipeline whose output $BAD_OUTPUT replaces.
"""

from __future__ import annotations

import pytest

from pytest_diffbench.spec.outcomes import Outcome

CONFTEST = '''
import os

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.testing import FakePipeline


class BadPipeline(FakePipeline):
    def diffbench_generate(self, sampler, seed, call_kwargs):
        image, measurement = super().diffbench_generate(sampler, seed, call_kwargs)
        bad = os.environ.get("BAD_OUTPUT", "")
        if bad == "nan-seconds":
            return image, Measurement(float("nan"), None, None)
        if bad == "negative-inf":
            return image, Measurement(-1.0, float("inf"), None)
        if bad == "inf-vram":
            return image, Measurement(0.5, float("inf"), None)
        if bad == "array":
            return np.asarray(image), measurement
        if bad == "none":
            return None, measurement
        if bad == "nan-float":
            return Image.fromarray(np.full((64, 64), np.nan, dtype=np.float32), "F"), measurement
        return image, measurement


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return FakePipeline if os.environ.get("BAD_OUTPUT") == "class" else BadPipeline()
'''

NODE = "test_gen.py::test_case[seed0-euler-2steps-cfg7.5]"


@pytest.fixture
def bad(project):
    project.pytester.makeconftest(CONFTEST)
    project.write_tests(project.test())
    return lambda mode: project.monkeypatch.setenv("BAD_OUTPUT", mode)


def assert_one_line(project, run, fragment: str) -> None:
    text = project.text(run.outcome)
    lines = [line for line in text.splitlines() if fragment in line]
    assert lines, text
    assert "Traceback" not in text and "INTERNALERROR" not in text and ".py:" not in lines[0].split(NODE)[-1]
    assert not project.baselines.exists() or not any(project.baselines.rglob("*.json"))


@pytest.mark.parametrize("mode, fragment", [
    ("nan-seconds", "the pipeline's Measurement.seconds_per_image = nan is not valid; it must be a finite number >= 0"),
    ("negative-inf", "the pipeline's Measurement.seconds_per_image = -1.0 is not valid"),
    ("inf-vram", "the pipeline's Measurement.peak_vram_mb = inf is not valid; it must be a finite number >= 0 or None"),
    ("array", "the pipeline returned ndarray, not a PIL image"),
    ("none", "the pipeline returned NoneType, not a PIL image"),
    ("class", "diffbench_pipeline returned the class FakePipeline, not a pipeline; return an instance"),
])
@pytest.mark.parametrize("update", ["all", "missing"])
def test_a_bad_output_is_one_line_and_no_baseline(project, bad, mode, fragment, update):
    bad(mode)
    run = project.run(update=update)
    if mode == "class":  # the diffbench fixture's own check: a setup error
        run.outcome.assert_outcomes(errors=1)
    else:
        run.outcome.assert_outcomes(failed=1)
    assert_one_line(project, run, fragment)


def test_a_nan_float_image_is_invalid_output_and_kept_to_look_at(project, bad):
    bad("nan-float")
    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=1)
    assert_one_line(project, run, "the output had non-finite values (NaN or inf) when it was made (the pipeline's "
                                  "mode F image holds NaN or inf values)")
    (row,) = run.results
    assert row.outcome is Outcome.INVALID_OUTPUT
    assert run.folder.image("test_gen/test_case/seed0-euler-2steps-cfg7.5").is_file()


def test_a_good_output_after_a_bad_one_makes_the_baseline(project, bad):
    bad("nan-seconds")
    project.run(update="missing").outcome.assert_outcomes(failed=1)
    bad("")
    project.run(update="missing").outcome.assert_outcomes(passed=1)
    project.run().outcome.assert_outcomes(passed=1)


@pytest.mark.parametrize("sweep_args, fragment", [
    ('seeds=0, steps=2, tolerance={"min_ssim": "0.9"}', "tolerance min_ssim='0.9' is text, not a number"),
    ('seeds=0, steps=2, workflow_version=""', "sweep(workflow_version='') is not valid"),
    ("seeds=0, steps=2, guidance_rescale=[None, 0.0]", "guidance_rescale=None is not valid"),
])
def test_sweep_values_diffusers_would_fail_on_are_collection_errors(project, sweep_args, fragment):
    project.write_tests(project.test(sweep=sweep_args))
    run = project.run()
    text = project.text(run.outcome)
    assert fragment in text and "Traceback" not in text
    assert run.outcome.ret != 0
