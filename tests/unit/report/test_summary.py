"""The badge, the terminal table, summary.md and the JUnit properties, made from results alone."""

from __future__ import annotations

import pytest

from pytest_diffbench.report.junit import junit_properties
from pytest_diffbench.report.summary import (SPEED_COLUMNS, badge, case_labels, outcome_counts, summary_markdown,
                                             terminal_table)


@pytest.fixture
def result(make_result):
    def build(nodeid_case: str | None = None, outcome: str = "passed", **changes):
        r = make_result(outcome=outcome, seconds=changes.pop("seconds", 1.26), vram=changes.pop("vram", 2764.8),
                        device_name=changes.pop("device_name", "NVIDIA H200"), baseline_seconds_per_image=1.0, **changes)
        return r.with_changes(nodeid=nodeid_case) if nodeid_case else r
    return build


def test_case_labels_are_the_short_id_unless_another_file_has_it_then_the_shortest_telling_path(result):
    nodeids = ["t.py::test_u[s0]", "x/a/t.py::test_c[s0]", "y/a/t.py::test_c[s0]", "t.py::test_d[s0]",
               "a/t.py::test_d[s0]", "p/T.py::K::test_e[s0]", "q/T.py::K::test_e[s0]", "q/T.py::K::test_e[s1]"]
    assert case_labels([result(nodeid) for nodeid in nodeids]) == dict(zip(nodeids, [
        "test_u[s0]", "x/a/t.py::test_c[s0]", "y/a/t.py::test_c[s0]", "t.py::test_d[s0]", "a/t.py::test_d[s0]",
        "p/T.py::K::test_e[s0]", "q/T.py::K::test_e[s0]", "K::test_e[s1]"]))
    ambiguous = [result("a/t.py::test_c[s0]"), result("b/t.py::test_c[s0]")]
    assert terminal_table(ambiguous[:1])[1].startswith("test_c[s0] ")
    assert terminal_table(ambiguous[:1], among=ambiguous)[1].startswith("a/t.py::test_c[s0] ")


def test_badge_shows_seconds_memory_and_device(result):
    assert badge(result()) == "1.26 s/img · 2765 MiB · NVIDIA H200"
    assert badge(result(vram=38.8)) == "1.26 s/img · 38.8 MiB · NVIDIA H200"


def test_badge_leaves_out_what_was_not_measured(result):
    assert badge(result(vram=None, device_name="Intel Xeon", seconds=0.4)) == "0.4 s/img · Intel Xeon"
    assert badge(result(seconds=None, device_name="")) == ""


def test_outcome_counts_put_passed_first(result):
    results = [result(outcome="failed-quality"), result(), result(outcome="error"), result()]
    assert outcome_counts(results) == [("passed", 2), ("error", 1), ("failed-quality", 1)]


def test_terminal_table_aligns_columns_and_shows_the_change_against_the_baseline(result):
    lines = terminal_table([result(), result("t.py::test_b[long-case-id]", seconds=0.9)])
    assert lines[0].split() == ["case", "outcome", "s/img", "baseline", "s/img", "change", "peak", "VRAM", "device"]
    assert "+26%" in lines[1] and "-10%" in lines[2]
    assert lines[1].index("passed") == lines[2].index("passed") == lines[0].index("outcome")
    assert "2765 MiB" in lines[1]
    assert lines[2].startswith("test_b[long-case-id]")


def test_summary_markdown_lists_failures_with_their_numbers_and_a_speed_row_per_case(result):
    failing = result("t.py::test_b[x]", outcome="failed-quality", message="ssim 0.61 >= 0.95 FAIL | note")
    text = summary_markdown([result(), failing], "20261128T000000Z-abcdef", bundle_name="diffbench-x.zip")
    assert text.startswith("## diffbench run `20261128T000000Z-abcdef`\n")
    assert "**1** passed · **1** failed-quality" in text
    failures = text.split("### Failing cases")[1].split("### Speed")[0]
    assert "`test_b[x]` | failed-quality | ssim 0.61 >= 0.95 FAIL \\| note |" in failures
    assert "test_a[seed0" not in failures
    speed = text.split("### Speed")[1]
    assert "| " + " | ".join(SPEED_COLUMNS) + " |" in speed
    assert speed.count("\n| test_") == 2
    assert text.rstrip().endswith("Bundle: `diffbench-x.zip`")


def test_summary_markdown_of_a_passing_run_has_no_failure_section(result):
    text = summary_markdown([result()], "run")
    assert "Failing cases" not in text and "Bundle" not in text


def test_summary_markdown_of_no_cases():
    assert "No cases ran." in summary_markdown([], "run")


def test_junit_properties_name_each_number_and_skip_empty_ones(result):
    props = dict(junit_properties(result(scores={"ssim": 0.99, "psnr": float("inf"), "lpips": None})))
    assert props["diffbench_outcome"] == "passed"
    assert props["diffbench_ssim"] == "0.99"
    assert props["diffbench_psnr"] == "inf"
    assert props["diffbench_device_name"] == "NVIDIA H200"
    assert "diffbench_lpips" not in props
