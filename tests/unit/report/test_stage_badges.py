"""A two-stage case's figures per stage: its measurement's rules, a badge per stage, the speed
table's stages column, report.html and the JUnit properties."""

from __future__ import annotations

import json
import re

import pytest

from pytest_diffbench.report.html import render_report
from pytest_diffbench.report.junit import junit_properties
from pytest_diffbench.report.summary import badge, badges, summary_markdown, terminal_table
from pytest_diffbench.spec.measurement import Measurement, StageMeasurement, measurement_problem
from pytest_diffbench.store.run_folder import RunFolder

STAGES = (StageMeasurement("base", 0.9, 2764.8), StageMeasurement("refiner", 0.36, 1800.0))


@pytest.fixture
def staged(make_result):
    def build(**changes):
        result = make_result(device_name="NVIDIA H200", **changes)
        return result.with_changes(measurement=Measurement(1.26, 2764.8, stages=STAGES))
    return build


def test_a_two_stage_case_has_one_badge_per_stage_and_its_total(staged, make_result):
    result = staged()
    assert badges(result) == ["base 0.9 s/img · 2765 MiB · NVIDIA H200", "refiner 0.36 s/img · 1800 MiB · NVIDIA H200"]
    assert badge(result) == "1.26 s/img · 2765 MiB · NVIDIA H200"
    one = make_result(seconds=0.4, device_name="Intel Xeon")
    assert badges(one) == [badge(one)] == ["0.4 s/img · Intel Xeon"]


def test_the_speed_table_gets_a_stages_column_only_when_a_case_ran_in_stages(staged, make_result):
    plain = make_result(seconds=0.4)
    assert "stages" not in terminal_table([plain])[0]
    lines = terminal_table([staged(), make_result(seed=1)])
    assert lines[0].split()[-1] == "stages"
    assert lines[1].endswith("base 0.9 s/img · 2765 MiB; refiner 0.36 s/img · 1800 MiB")
    markdown = summary_markdown([staged()], "run")
    assert "| case | outcome | s/img | baseline s/img | change | peak VRAM | device | stages |" in markdown
    assert "base 0.9 s/img · 2765 MiB; refiner 0.36 s/img · 1800 MiB |" in markdown


def test_report_html_shows_each_stage(staged, tmp_path):
    folder = RunFolder.create(tmp_path / ".diffbench")
    page = render_report(folder, [staged(outcome="failed-quality")], {})
    rows = json.loads(re.search(r'id="diffbench-rows">(.*?)</script>', page, re.S).group(1))
    assert rows[0]["stages"] == "base 0.9 s/img · 2765 MiB; refiner 0.36 s/img · 1800 MiB"
    assert rows[0]["badge"] == "base 0.9 s/img · 2765 MiB · NVIDIA H200 | refiner 0.36 s/img · 1800 MiB · NVIDIA H200"
    assert '<th data-key="stages">stages</th>' in page


def test_junit_properties_carry_each_stage(staged, make_result):
    properties = dict(junit_properties(staged()))
    assert properties["diffbench_base_seconds_per_image"] == "0.9"
    assert properties["diffbench_refiner_peak_vram_mb"] == "1800.0"
    assert not any("refiner" in name for name, _ in junit_properties(make_result()))


@pytest.mark.parametrize(("stages", "said"), [
    ((StageMeasurement("base", -1.0),), "Measurement.stages[base].seconds_per_image = -1.0 is not valid"),
    ((StageMeasurement("base", 1.0, float("inf")),), "Measurement.stages[base].peak_vram_mb = inf is not valid"),
    ((StageMeasurement("decoder", 1.0),), "each stage must be a StageMeasurement named one of base, refiner"),
    ((StageMeasurement("base", 1.0), StageMeasurement("base", 1.0)), "each name once"),
])
def test_a_stage_figure_that_cannot_be_recorded_is_one_line(stages, said):
    assert said in measurement_problem(Measurement(1.0, stages=stages))
    assert measurement_problem(Measurement(1.0, stages=STAGES)) == ""


@pytest.mark.parametrize("frames", [0, True, 1.5])
def test_a_frame_count_must_be_a_positive_int(frames):
    assert "Measurement.frames" in measurement_problem(Measurement(1.0, frames=frames))
