"""Blank outputs through ``pytest --diffbench`` in this process: a pipeline whose VAE overflowed
(NaN decoded as black), a white or tiny output, is ``invalid-output`` and never becomes a
baseline, even with ``--diffbench-update``; a nearly flat one passes with a WARNING line.

The project's pipeline is a FakePipeline whose ``draw()`` is replaced by what $BLANK_OUTPUT asks.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

CONFTEST = '''
import os

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.testing import FakePipeline


class BlankablePipeline(FakePipeline):
    """$BLANK_OUTPUT: black (an fp16 VAE overflow's NaN), white, tiny (2x2), faint (nearly flat grey)."""

    def draw(self, sampler, seed, call_kwargs):
        picture = super().draw(sampler, seed, call_kwargs)
        mode = os.environ.get("BLANK_OUTPUT", "")
        if mode == "black":
            return Image.new("RGB", picture.size, (0, 0, 0))
        if mode == "white":
            return Image.new("RGB", picture.size, (255, 255, 255))
        if mode == "tiny":
            return picture.resize((2, 2))
        if mode == "faint":
            array = np.full((picture.height, picture.width, 3), 90, dtype=np.uint8)
            array[0, :5] = 91
            return Image.fromarray(array, "RGB")
        return picture


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return BlankablePipeline()
'''

CASE = "seed0-euler-2steps-cfg7.5"
NODE = f"test_gen.py::test_case[{CASE}]"
FP16_HINT = "a float16 VAE overflow gives NaN, decoded as black; try float32 or the fp16-fix VAE"


@pytest.fixture
def blank(project):
    project.pytester.makeconftest(CONFTEST)
    project.write_tests(project.test())

    def output(mode: str) -> None:
        project.monkeypatch.setenv("BLANK_OUTPUT", mode)

    return output


@pytest.mark.parametrize("update", ["all", "missing"])
def test_a_black_output_is_invalid_and_update_writes_no_baseline(project, blank, update):
    blank("black")
    junit = project.path / "junit.xml"
    run = project.run(f"--junitxml={junit}", update=update)
    run.outcome.assert_outcomes(failed=1)
    text = project.text(run.outcome)
    assert f"diffbench invalid-output: {NODE}" in text
    assert f"the output is one flat colour (0, 0, 0): {FP16_HINT}" in text
    assert "diffbench: 1 case: 1 invalid-output" in text
    assert not project.baselines.exists() or not any(project.baselines.rglob("*.png"))
    (row,) = run.results
    assert row.outcome is Outcome.INVALID_OUTPUT and row.baseline_action is BaselineAction.NONE
    assert row.message.startswith("the output is one flat colour (0, 0, 0)") and row.baseline_path == ""
    # The run folder keeps the black image to look at; the report counts the case as failing.
    assert run.folder.image(f"test_gen/test_case/{CASE}").is_file()
    report = run.folder.report.read_text(encoding="utf-8")
    assert '<span class="failed">1 invalid-output</span>' in report
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).iter("property")}
    assert properties["diffbench_outcome"] == "invalid-output"


def test_a_stored_baseline_is_left_untouched_by_a_black_output(project, blank):
    blank("")
    project.run(update="missing").outcome.assert_outcomes(passed=1)
    png, sidecar = project.baseline_pair("test_case")
    before = project.snapshot(project.baselines)

    blank("black")
    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=1)
    (row,) = run.results
    assert row.outcome is Outcome.INVALID_OUTPUT and row.baseline_action is BaselineAction.NONE
    assert row.baseline_path == f"baselines/cpu-float32/test_gen/test_case/{CASE}.png"
    assert project.snapshot(project.baselines) == before
    assert not run.folder.replaced_dir.exists() or not any(run.folder.replaced_dir.rglob("*"))

    # The good output still passes against the untouched baseline.
    blank("")
    project.run().outcome.assert_outcomes(passed=1)


@pytest.mark.parametrize(("mode", "reason"), [
    ("white", "the output is one flat colour (255, 255, 255): the pipeline made no picture"),
    ("tiny", "the output is 2x2 px, smaller than SSIM can score (at least 3x3)"),
])
def test_white_and_tiny_outputs_are_invalid_naming_why(project, blank, mode, reason):
    blank(mode)
    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=1)
    assert reason in project.text(run.outcome)
    assert "Traceback" not in project.text(run.outcome)
    assert run.results[0].outcome is Outcome.INVALID_OUTPUT
    assert not project.baselines.exists() or not any(project.baselines.rglob("*.png"))


def test_a_nearly_flat_output_passes_with_one_warning_line(project, blank):
    blank("faint")
    run = project.run(update="missing")
    run.outcome.assert_outcomes(passed=1)
    text = project.text(run.outcome)
    warnings = [line for line in text.splitlines() if "nearly flat output" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("WARNING: 1 case has a nearly flat output (see output_warning in results.csv); "
                                  f"{NODE}: the output is nearly one flat colour (90, 90, 90)")
    (row,) = run.results
    assert row.outcome is Outcome.PASSED and row.output_warning.startswith("the output is nearly one flat colour")
    assert project.baseline_pair("test_case")[0].is_file()

    blank("")
    run = project.run(update="all")
    assert "nearly flat output" not in project.text(run.outcome)
    assert run.results[0].output_warning == ""


def test_accept_refuses_an_invalid_output(project, blank, monkeypatch, capsys):
    """`diffbench accept` never turns a black image into a baseline either."""
    from pytest_diffbench.cli.main import main

    blank("black")
    project.run().outcome.assert_outcomes(failed=1)
    monkeypatch.chdir(project.path)
    assert main(["accept", "latest"]) == 1
    out = capsys.readouterr().out
    assert f"refused   {NODE}: its output is not a valid baseline: the output is one flat colour (0, 0, 0)" in out
    assert not project.baselines.exists() or not any(project.baselines.rglob("*.png"))
