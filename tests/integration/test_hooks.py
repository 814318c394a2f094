"""The hooks diffbench offers: pytest_diffbench_machine_info and pytest_diffbench_result_row, as a
user's conftest.py implements them."""

from __future__ import annotations

import csv
import json

import pytest

from pytest_diffbench.testing import run_diffbench, use_fake_pipeline

TEST_MODULE = """
import pytest_diffbench as diffbench

@diffbench.sweep(seeds=[0, 1], steps=4)
def test_disc(diffbench):
    diffbench.generate("a disc")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_disc=TEST_MODULE)
    return pytester


def test_machine_info_hook_adds_fields_to_sidecars_and_environment(project: pytest.Pytester) -> None:
    use_fake_pipeline(project, extra="""
calls = []

def pytest_diffbench_machine_info(config, machine_info):
    calls.append(machine_info["device_type"])
    machine_info["cluster_node"] = "node-7"
""")
    run = run_diffbench(project, update="all")
    run.outcome.assert_outcomes(passed=2)
    sidecars = sorted((project.path / "baselines").rglob("*.json"))
    assert len(sidecars) == 2
    for sidecar in sidecars:
        assert json.loads(sidecar.read_text())["environment"]["cluster_node"] == "node-7"
    # The run folder keeps the same record for each case (what `diffbench accept` would write).
    kept = sorted(run.folder.path.joinpath("configs").rglob("*.json"))
    assert [json.loads(p.read_text())["environment"]["cluster_node"] for p in kept] == ["node-7", "node-7"]


def test_machine_info_hook_runs_once_per_device(project: pytest.Pytester) -> None:
    use_fake_pipeline(project, extra="""
calls = []

def pytest_diffbench_machine_info(config, machine_info):
    calls.append(machine_info["device_type"])

def pytest_sessionfinish(session):
    print("machine_info calls:", calls)
""")
    run = run_diffbench(project, "-s")
    assert "machine_info calls: ['cpu']" in run.outcome.stdout.str()  # two cases, one device


def test_result_row_hook_adds_columns_after_diffbench_own(project: pytest.Pytester) -> None:
    use_fake_pipeline(project, extra="""
def pytest_diffbench_result_row(config, result, row):
    row["team"] = "imaging"
    row["a_seed_label"] = f"seed {result.setting('seed')}"
""")
    run = run_diffbench(project, update="all")
    run.outcome.assert_outcomes(passed=2)
    with run.folder.results.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        header = reader.fieldnames or []
    assert header[-2:] == ["a_seed_label", "team"]  # added columns come last, sorted by name
    assert header.index("schema_version") < header.index("a_seed_label")
    assert [(row["team"], row["a_seed_label"]) for row in rows] == [("imaging", "seed 0"), ("imaging", "seed 1")]
    # They read back as the result's extra fields.
    assert [dict(r.extra) for r in run.results] == [{"a_seed_label": "seed 0", "team": "imaging"},
                                                     {"a_seed_label": "seed 1", "team": "imaging"}]


def test_result_row_hook_cannot_change_diffbench_columns(project: pytest.Pytester) -> None:
    use_fake_pipeline(project, extra="""
def pytest_diffbench_result_row(config, result, row):
    row["outcome"] = "passed-by-hook"
""")
    run = run_diffbench(project, update="all")
    run.outcome.assert_outcomes(passed=2)
    assert run.outcome.ret == 0
    assert [r.outcome.value for r in run.results] == ["passed", "passed"]
    run.outcome.stdout.fnmatch_lines(["WARNING: a pytest_diffbench_result_row hook changed diffbench's column(s) outcome*"])


def test_machine_info_fields_reach_environment_json_and_a_change_is_reported(project: pytest.Pytester,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_pipeline(project, extra="""
import os

def pytest_diffbench_machine_info(config, machine_info):
    machine_info["cluster_node"] = os.environ["NODE_FOR_TEST"]
""")
    monkeypatch.setenv("NODE_FOR_TEST", "node-7")
    made = run_diffbench(project, update="all")
    devices = json.loads(made.folder.environment.read_text(encoding="utf-8"))["devices"]
    assert [device["cluster_node"] for device in devices] == ["node-7"]

    monkeypatch.setenv("NODE_FOR_TEST", "node-8")
    moved = run_diffbench(project)
    moved.outcome.assert_outcomes(passed=2)  # another machine is a note, not a failure
    assert [r.env_diff for r in moved.results] == ["cluster_node: node-7 -> node-8"] * 2
    moved.outcome.stdout.fnmatch_lines(["note: 2 baselines were made in another environment: cluster_node: node-7 -> node-8"])
    strict = run_diffbench(project, "--diffbench-strict-env")
    strict.outcome.assert_outcomes(failed=2)
    assert {r.outcome.value for r in strict.results} == {"env-mismatch"}
