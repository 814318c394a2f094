"""A pipeline that reports its stages (as diffbench.two_stage does): each stage's figures reach
results.csv, the journal, an xdist controller, summary.md, report.html and the JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

STAGED_CONFTEST = '''
import dataclasses

import pytest

from pytest_diffbench.spec.measurement import StageMeasurement
from pytest_diffbench.testing import FakePipeline


class StagedPipeline(FakePipeline):
    """A FakePipeline whose image is made in two timed stages."""

    def diffbench_generate(self, sampler, seed, call_kwargs):
        image, measurement = super().diffbench_generate(sampler, seed, call_kwargs)
        stages = (StageMeasurement("base", 0.03, None), StageMeasurement("refiner", 0.01, None))
        return image, dataclasses.replace(measurement, seconds_per_image=0.04, stages=stages)


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return StagedPipeline()
'''


def test_each_stage_s_figures_reach_every_artifact_under_xdist(project):
    """Each case's stage figures ride from the worker that ran it to the controller, which writes
    every artifact: one worker process (``-n 1``) shows whether they reach each."""
    project.pytester.makeconftest(STAGED_CONFTEST)
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    run = project.run("-n", "1", "--junitxml=junit.xml", update="all")
    run.outcome.assert_outcomes(passed=2)
    for result in run.results:
        assert [(s.name, s.seconds_per_image) for s in result.measurement.stages] == [("base", 0.03), ("refiner", 0.01)]
    journal = [json.loads(line) for line in run.folder.journal.read_text(encoding="utf-8").splitlines()]
    assert {line["refiner_seconds_per_image"] for line in journal} == {0.01}
    summary = (run.folder.path / "summary.md").read_text(encoding="utf-8")
    assert summary.count("| base 0.03 s/img; refiner 0.01 s/img |") == 2
    assert "base 0.03 s/img; refiner 0.01 s/img" in project.text(run.outcome)  # the terminal's speed table
    assert "refiner 0.01 s/img" in (run.folder.path / "report.html").read_text(encoding="utf-8")
    properties = [(p.get("name"), p.get("value")) for p in ElementTree.parse(project.path / "junit.xml").iter("property")]
    assert properties.count(("diffbench_base_seconds_per_image", "0.03")) == 2
