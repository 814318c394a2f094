"""End to end: ``diffbench.two_stage`` with a tiny seeded SDXL base and refiner
(tests/families/builders.py), in a child process: baselines, a clean rerun, a change of the
refiner's weights or of the handoff caught as stale, and each stage's timing in every artifact."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from pytest_diffbench.spec.outcomes import Outcome

BUILDERS = Path(__file__).resolve().parents[1] / "families" / "builders.py"

TWO_STAGE_CONFTEST = '''
import os

import pytest
import torch

import family_builders
import pytest_diffbench as diffbench


@pytest.fixture(scope="session")
def diffbench_pipeline():
    base = family_builders.build_sdxl()
    refiner = family_builders.build_sdxl_refiner(base)
    if os.environ.get("TUNE_REFINER"):  # a fine-tuned refiner: one bias of its UNet moved
        with torch.no_grad():
            refiner.unet.conv_out.bias.add_(0.05)
    return diffbench.two_stage(base, refiner, handoff=float(os.environ.get("HANDOFF", "0.8")))
'''
CASE = "seed0-euler-3steps-cfg5"


@pytest.fixture
def two_stage_project(project):
    project.pytester.makepyfile(family_builders=BUILDERS.read_text(encoding="utf-8"))
    project.pytester.makeconftest(TWO_STAGE_CONFTEST)
    project.write_tests(project.test("test_refined", sweep="seeds=0, steps=3, cfg=5",
                                     body='diffbench.generate("a red cube", width=64, height=64, aesthetic_score=6.0)'))
    return project


@pytest.mark.subprocess
@pytest.mark.model
def test_a_two_stage_case_is_baselined_rerun_and_timed_per_stage(two_stage_project) -> None:
    project = two_stage_project
    project.write_tests(project.test("test_refined", sweep="seeds=0, samplers='UniPC', steps=3, cfg=5",
                                     body='diffbench.generate("a red cube", width=64, height=64, aesthetic_score=6.0)'),
                        project.test("test_refused", sweep="seeds=0, steps=3, cfg=5",
                                     body='diffbench.generate("a red cube", strength=0.5)'))
    made = project.run("--junitxml=junit.xml", update="all", subprocess=True)
    made.outcome.assert_outcomes(passed=1, failed=1)
    # A keyword the refiner would ignore after the handoff is refused in one line, before anything runs.
    refused = made.result("test_refused")
    assert refused.outcome is Outcome.ERROR
    assert "strength (the refiner ignores strength when the handoff sets denoising_start)" in refused.message
    refusal = next(line for line in project.text(made.outcome).splitlines() if "the refiner ignores strength" in line)
    assert refusal.startswith("test_gen.py::test_refused[seed0-euler-3steps-cfg5]: ")  # named like every refusal
    assert "Traceback" not in project.text(made.outcome) and "During handling" not in project.text(made.outcome)
    result = made.result("test_refined")
    assert result.setting("refiner")["handoff"] == 0.8
    assert result.setting("refiner")["workflow"] == "StableDiffusionXLImg2ImgPipeline"
    # Both stages' schedulers are recorded as the case's sampler builds them.
    assert result.setting("scheduler")["class"] == result.setting("refiner")["scheduler"]["class"] == "UniPCMultistepScheduler"
    stages = result.measurement.stages
    assert [stage.name for stage in stages] == ["base", "refiner"]
    assert result.measurement.seconds_per_image == pytest.approx(sum(s.seconds_per_image for s in stages))
    row = (made.folder.path / "results.csv").read_text(encoding="utf-8")
    header = row.splitlines()[0].split(",")
    assert {"base_seconds_per_image", "refiner_seconds_per_image", "base_peak_vram_mb"} <= set(header)
    # One badge per stage in report.html and summary.md, a property per stage in the JUnit XML.
    html = (made.folder.path / "report.html").read_text(encoding="utf-8")
    assert "base " in html and "refiner " in html and "s/img" in html
    summary = (made.folder.path / "summary.md").read_text(encoding="utf-8")
    assert "| stages |" in summary.splitlines()[summary.splitlines().index("### Speed") + 2]
    assert "base " in summary and "; refiner " in summary
    properties = {p.get("name") for p in ElementTree.parse(project.path / "junit.xml").iter("property")}
    assert {"diffbench_base_seconds_per_image", "diffbench_refiner_seconds_per_image"} <= properties

    again = project.run("-k", "refined", subprocess=True)
    again.outcome.assert_outcomes(passed=1)
    assert again.results[0].config_hash == result.config_hash
    assert again.results[0].outcome is Outcome.PASSED


@pytest.mark.subprocess
@pytest.mark.model
def test_a_new_refiner_or_handoff_makes_the_baseline_stale(two_stage_project, monkeypatch: pytest.MonkeyPatch) -> None:
    project = two_stage_project
    project.run(update="all", subprocess=True).outcome.assert_outcomes(passed=1)
    monkeypatch.setenv("TUNE_REFINER", "1")
    tuned = project.run(subprocess=True)
    (result,) = tuned.results
    assert result.outcome is Outcome.STALE_BASELINE
    assert "refiner.model_fingerprint" in result.message
    monkeypatch.delenv("TUNE_REFINER")
    monkeypatch.setenv("HANDOFF", "0.7")
    (result,) = project.run(subprocess=True).results
    assert result.outcome is Outcome.STALE_BASELINE
    assert "refiner.handoff" in result.message and "0.8" in result.message and "0.7" in result.message
