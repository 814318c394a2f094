"""What failed (each failed check with its value and tolerance) and the speed change only against a
baseline timed on this run's device, as summary.md, the terminal table and report.html show them."""

from __future__ import annotations

import pytest

from pytest_diffbench.report.summary import (NOT_COMPARABLE, baseline_device, change_footnote, speed_change, summary_markdown,
                                             terminal_table, what_failed)
from pytest_diffbench.spec.measurement import Measurement

TOLERANCES = {"min_ssim": 0.95, "min_psnr": 25.0, "max_lpips": 0.05, "max_seconds": 1.0, "max_vram_mb": 800.0,
              "time_regression": 0.5}


@pytest.fixture
def failing(make_result):
    def build(outcome: str = "failed-quality", **changes):
        return make_result(outcome=outcome, tolerances=TOLERANCES, baseline_seconds_per_image=0.5, **changes)
    return build


def test_each_failed_check_is_named_with_its_value_and_tolerance(failing) -> None:
    result = failing(scores={"ssim": 0.6123, "psnr": 31.0, "lpips": 0.2}, measurement=Measurement(2.5, 900.0),
                     slowdown=4.0, time_check="failed")
    assert what_failed(result) == ("ssim 0.6123 < 0.95; lpips 0.2 > 0.05; seconds/image 2.5 s > 1 s; slowdown +400% > +50%; "
                                   "peak VRAM 900 MiB > 800 MiB")


def test_checks_that_passed_or_were_skipped_are_not_named(failing) -> None:
    result = failing("failed-speed", scores={"ssim": 0.99, "psnr": None, "lpips": None}, measurement=Measurement(0.9, None),
                     slowdown=0.8, time_check="baseline timed on A100, this run on Intel Xeon", message="the message")
    assert what_failed(result) == "the message"  # no failed check to name: the message says why
    assert what_failed(failing(message="no baseline at baselines/x.png; create it with ...", scores={})) == (
        "no baseline at baselines/x.png; create it with ...")


def test_a_passed_case_failed_nothing(make_result) -> None:
    assert what_failed(make_result(scores={"ssim": 0.1, "psnr": None, "lpips": None})) == ""


@pytest.mark.parametrize(("time_check", "env_diff", "device"), [
    ("passed", "device_name: A100 -> Intel Xeon", "Intel Xeon"),  # the check ran: the timing is this device's
    ("baseline timed on A100 (80GB), this run on Intel Xeon", "", "A100 (80GB)"),
    ("skipped: baseline timed on A100, this run on Intel Xeon", "", "A100"),
    ("off", "cuda: 12.1 -> ; device_name: AMD EPYC -> Intel Xeon; torch: 2.4 -> 2.5", "AMD EPYC"),
    ("off", "torch: 2.4 -> 2.5", "Intel Xeon"),
    ("", "", "Intel Xeon"),
])
def test_the_baseline_device_is_read_from_what_the_judge_recorded(make_result, time_check, env_diff, device) -> None:
    result = make_result(baseline_seconds_per_image=0.5, time_check=time_check, env_diff=env_diff)
    assert baseline_device(result) == device
    assert speed_change(result) == ("-20%" if device == "Intel Xeon" else NOT_COMPARABLE)
    assert baseline_device(result.with_changes(baseline_seconds_per_image=None)) is None


def test_another_devices_timing_is_marked_once_in_summary_md_and_the_terminal(make_result) -> None:
    same = make_result(baseline_seconds_per_image=0.2)
    other = make_result(1, baseline_seconds_per_image=0.0001, env_diff="device_name: NVIDIA H200 -> Intel Xeon")
    also_other = make_result(2, baseline_seconds_per_image=0.0001, env_diff="device_name: NVIDIA H200 -> Intel Xeon")
    results = [same, other, also_other]
    note = change_footnote(results)
    assert note.startswith("† baseline timed on NVIDIA H200, not on this run's device")
    markdown = summary_markdown(results, "run")
    assert "+100%" in markdown and "%" not in markdown.split("+100%")[1] and markdown.count(note) == 1
    lines = terminal_table(results)
    assert lines[-1] == note and sum(NOT_COMPARABLE in line for line in lines) == 2
    assert change_footnote([same]) == "" and terminal_table([same])[-1].startswith("test_a[")
