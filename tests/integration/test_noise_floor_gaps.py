"""A broken noise-floor.json is measured anew by a calibration, kept aside (never lost), and a
gating run names the cases it gated by the ini tolerances for want of a floor (issue 12, item 6)."""

from __future__ import annotations

import json

import pytest

from .test_noise_floor import TEST, noisy, noisy_run  # noqa: F401 (the fixtures)

BROKEN = "garbage{"


def test_the_broken_file_s_advice_works_calibrate_keeps_it_aside_and_measures_anew(noisy) -> None:
    path = noisy.baselines / "noise-floor.json"
    path.write_text(BROKEN)
    noisy.write_ini(tolerance_from="noise-floor")
    refused = noisy.run()
    assert refused.outcome.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in refused.outcome.errlines if line.strip()]
    assert len(errors) == 1 and "rerun pytest --diffbench --diffbench-calibrate=N to measure it anew" in errors[0]
    assert "noise-floor.json.corrupt-<n>" in errors[0] and path.read_text() == BROKEN

    run = noisy.run("--diffbench-calibrate=2")  # as the line advises
    run.outcome.assert_outcomes(passed=2)
    assert set(json.loads(path.read_text())["pins"]["cpu-float32"][TEST]["cases"]) == {
        "seed0-euler-2steps-cfg7.5", "seed1-euler-2steps-cfg7.5"}
    assert (noisy.baselines / "noise-floor.json.corrupt-1").read_text() == BROKEN
    text = noisy.text(run.outcome)
    assert "is not a valid noise floor" in text and "it is kept as noise-floor.json.corrupt-1 beside it" in text

    path.write_text("[]")  # broken again: a second copy never replaces the first
    noisy.run("--diffbench-calibrate=2").outcome.assert_outcomes(passed=2)
    assert (noisy.baselines / "noise-floor.json.corrupt-1").read_text() == BROKEN
    assert (noisy.baselines / "noise-floor.json.corrupt-2").read_text() == "[]"
    assert noisy.run().outcome.ret == pytest.ExitCode.OK  # the gates read the new floors


def test_a_file_broken_during_a_calibration_is_kept_aside_and_the_run_s_floors_written(noisy) -> None:
    noisy.write_tests(noisy.test("test_case", sweep="seeds=[0], steps=2", body='''
        import pathlib
        pathlib.Path("baselines/noise-floor.json").write_text("[]")
        diffbench.generate("a red cube")
    '''))
    run = noisy.run("--diffbench-calibrate=2")
    run.outcome.assert_outcomes(passed=1)
    assert (noisy.baselines / "noise-floor.json.corrupt-1").read_text() == "[]"
    assert list(json.loads((noisy.baselines / "noise-floor.json").read_text())["pins"]["cpu-float32"][TEST]["cases"]) \
        == ["seed0-euler-2steps-cfg7.5"]


def test_gating_from_the_noise_floor_names_the_cases_without_one(noisy) -> None:
    noisy.run("--diffbench-calibrate=2")
    noisy.write_ini(tolerance_from="noise-floor")
    noisy.write_tests(noisy.test("test_case", sweep="seeds=[0, 1], steps=2"),
                      *(noisy.test(f"test_new{n}", sweep="seeds=[0, 1], steps=2") for n in range(6)))
    run = noisy.run("--diffbench-update=missing")
    run.outcome.assert_outcomes(passed=14)
    lines = [line for line in run.outcome.outlines if "had no noise floor" in line]
    assert lines == ["WARNING: diffbench: 12 cases had no noise floor in baselines/noise-floor.json and were gated by "
                     "the ini tolerances (diffbench_tolerance_from = noise-floor): "
                     + ", ".join(f"test_gen.py::test_new{n} (2 cases)" for n in range(5))
                     + " and 1 more test; measure them with --diffbench-calibrate=N"]
    calibrated = noisy.run("--diffbench-calibrate=2", "-k", "test_new")
    assert [line for line in calibrated.outcome.outlines if "had no noise floor" in line] == [
        "WARNING: diffbench: 12 cases had no noise floor in baselines/noise-floor.json and were gated by the ini "
        "tolerances (diffbench_tolerance_from = noise-floor): " + ", ".join(f"test_gen.py::test_new{n} (2 cases)" for n in range(5))
        + " and 1 more test; the floors this calibration measures gate from the next run"]
    assert not [line for line in noisy.run().outcome.outlines if "had no noise floor" in line]


def test_a_calibration_gating_from_a_broken_file_gates_by_the_ini_and_says_so(noisy) -> None:
    (noisy.baselines / "noise-floor.json").write_text(BROKEN)
    noisy.write_ini(tolerance_from="noise-floor")
    run = noisy.run("--diffbench-calibrate=2")
    run.outcome.assert_outcomes(passed=2)
    text = noisy.text(run.outcome)
    assert "2 cases had no noise floor in baselines/noise-floor.json" in text
    assert (noisy.baselines / "noise-floor.json.corrupt-1").read_text() == BROKEN


def test_under_xdist_the_controller_names_the_workers_cases_without_a_floor(noisy) -> None:
    noisy.write_ini(tolerance_from="noise-floor")
    run = noisy.run("-n", "2")
    run.outcome.assert_outcomes(passed=2)
    assert [line for line in run.outcome.outlines if "had no noise floor" in line] == [
        "WARNING: diffbench: 2 cases had no noise floor in baselines/noise-floor.json and were gated by the ini "
        f"tolerances (diffbench_tolerance_from = noise-floor): {TEST} (2 cases); measure them with --diffbench-calibrate=N"]
