"""The badge, terminal table, summary.md, JUnit properties and environment.json contents."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pytest_diffbench.identity import git_state, run_environment
from pytest_diffbench.results import ENVIRONMENT_FIELDS
from pytest_diffbench.summary import (
    SPEED_COLUMNS,
    badge,
    junit_properties,
    outcome_counts,
    summary_markdown,
    terminal_table,
)


def record(nodeid: str = "tests/test_a.py::test_a[seed0]", outcome: str = "passed", **fields) -> dict:
    base = {"nodeid": nodeid, "outcome": outcome, "seconds_per_image": 1.26, "baseline_seconds_per_image": 1.0,
            "peak_vram_mb": 2764.8, "device_name": "NVIDIA H200", "ssim": 0.99, "config_hash": "ab" * 32, "message": ""}
    return {**base, **fields}


def test_badge_shows_seconds_memory_and_device():
    assert badge(record()) == "1.26 s/img · 2.7 GB · NVIDIA H200"
    assert badge(record(peak_vram_mb=38.8)) == "1.26 s/img · 38.8 MB · NVIDIA H200"


def test_badge_leaves_out_what_was_not_measured():
    cpu = record(peak_vram_mb=None, device_name="Intel Xeon", seconds_per_image=0.4)
    assert badge(cpu) == "0.4 s/img · Intel Xeon"
    assert badge(record(peak_vram_mb=float("nan"), seconds_per_image="", device_name="")) == ""


def test_outcome_counts_put_passed_first():
    records = [record(outcome="failed-quality"), record(), record(outcome="error"), record()]
    assert outcome_counts(records) == [("passed", 2), ("error", 1), ("failed-quality", 1)]


def test_terminal_table_aligns_columns_and_shows_the_change_against_the_baseline():
    lines = terminal_table([record(), record(nodeid="t.py::test_b[long-case-id]", seconds_per_image=0.9)])
    assert lines[0].split() == ["case", "outcome", "s/img", "baseline", "s/img", "change", "peak", "VRAM", "device"]
    assert "+26%" in lines[1] and "-10%" in lines[2]
    assert lines[1].index("passed") == lines[2].index("passed") == lines[0].index("outcome")
    assert "2765 MiB" in lines[1]


def test_summary_markdown_lists_failures_with_their_numbers_and_a_speed_row_per_case():
    failing = record(nodeid="t.py::test_b[x]", outcome="failed-quality", message="ssim 0.61 >= 0.95 FAIL | note")
    text = summary_markdown([record(), failing], "20261128T000000Z-abcdef", bundle_name="diffbench-x.zip")
    assert text.startswith("## diffbench run `20261128T000000Z-abcdef`\n")
    assert "**1** passed · **1** failed-quality" in text
    failures = text.split("### Failing cases")[1].split("### Speed")[0]
    assert "`test_b[x]` | failed-quality | ssim 0.61 >= 0.95 FAIL \\| note |" in failures
    assert "test_a[seed0]" not in failures
    speed = text.split("### Speed")[1]
    assert "| " + " | ".join(SPEED_COLUMNS) + " |" in speed
    assert speed.count("\n| test_") == 2
    assert text.rstrip().endswith("Bundle: `diffbench-x.zip`")


def test_summary_markdown_of_a_passing_run_has_no_failure_section():
    text = summary_markdown([record()], "run")
    assert "Failing cases" not in text and "Bundle" not in text


def test_junit_properties_name_each_number_and_skip_empty_ones():
    props = dict(junit_properties(record(lpips=None, psnr=float("inf"))))
    assert props["diffbench_outcome"] == "passed"
    assert props["diffbench_ssim"] == "0.99"
    assert props["diffbench_psnr"] == "inf"
    assert "diffbench_lpips" not in props


def test_run_environment_collects_devices_from_the_rows(tmp_path: Path):
    rows = [record(driver="580.1", cuda="13.0"), record(driver="580.1", cuda="13.0"), record(device_name="Intel Xeon")]
    env = run_environment(run_id="r1", args=["--diffbench", "-n", "2"], rootdir=tmp_path, records=rows)
    assert env["command"] == "pytest --diffbench -n 2"
    assert env["run_id"] == "r1"
    assert [d["device_name"] for d in env["devices"]] == ["Intel Xeon", "NVIDIA H200"]
    assert set(env["devices"][0]) == set(ENVIRONMENT_FIELDS)
    assert env["versions"]["pytest"] == pytest.__version__
    assert env["git"] == {"commit": "", "dirty": None}  # tmp_path is no repository
    json.dumps(env)  # plain JSON values only


def test_git_state_names_the_commit_and_whether_tracked_files_changed(tmp_path: Path):
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    assert git_state(tmp_path) == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "untracked.txt").write_text("x\n")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "a.txt").write_text("two\n")
    assert git_state(tmp_path)["dirty"] is True
