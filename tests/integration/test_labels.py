"""Labels that say the right thing, as a user running pytest sees them (issue 10, items 3 and 5):
strict environment drift is ``env-mismatch``, a skipped check says "skipped (<reason>)" once, and
LPIPS's long advice is not repeated in every case's message and status cell."""

from __future__ import annotations

import pytest

from pytest_diffbench.judge.metrics.lpips import ALEXNET_URL
from pytest_diffbench.spec.outcomes import Outcome


def test_strict_env_fails_a_baseline_of_another_device_as_env_mismatch(project) -> None:
    project.write_tests(project.test("test_case"))
    project.run(update="all").outcome.assert_outcomes(passed=1)
    project.edit_sidecar(project.baseline_pair("test_case")[1], environment={"device_name": "Other CPU 9000"})

    relaxed = project.run()
    relaxed.outcome.assert_outcomes(passed=1)
    strict = project.run("--diffbench-strict-env")
    strict.outcome.assert_outcomes(failed=1)
    (result,) = strict.results
    assert result.outcome is Outcome.ENV_MISMATCH
    assert "device_name: 'Other CPU 9000' -> " in result.message
    text = project.text(strict.outcome)
    assert f"diffbench env-mismatch: test_gen.py::test_case[{project.CASE}]" in text
    assert "version-mismatch" not in text


def test_a_workflow_version_change_is_still_version_mismatch_under_strict_env(project) -> None:
    project.write_tests(project.test("test_case"))
    project.run(update="all").outcome.assert_outcomes(passed=1)
    project.edit_sidecar(project.baseline_pair("test_case")[1], environment={"device_name": "Other CPU 9000"})
    project.write_ini(workflow_version="2")
    (result,) = project.run("--diffbench-strict-env").results
    assert result.outcome is Outcome.VERSION_MISMATCH


def test_failure_lines_say_skipped_once_and_lpips_advice_stays_out_of_each_case(project) -> None:
    project.write_ini(time_regression="0.5", max_vram_mb="100")
    project.write_tests(project.test("test_one"), project.test("test_two", sweep="seeds=1, steps=2"))
    project.run(update="all", lpips=None).outcome.assert_outcomes(passed=2)
    for test in ("test_one", "test_two"):
        project.edit_sidecar(project.baseline_pair(test, project.CASE if test == "test_one" else "seed1-euler-2steps-cfg7.5")[1],
                     measurement={"device_name": "Other Accelerator 9000"})
    project.fake(drift=0.5)
    run = project.run(lpips=None)  # auto, and the test session's TORCH_HOME has no AlexNet weights
    run.outcome.assert_outcomes(failed=2)
    text = project.text(run.outcome)
    failure_lines = [line for line in text.splitlines() if line.strip().startswith(("slowdown", "peak VRAM", "lpips"))]
    assert failure_lines, text
    for line in failure_lines:
        assert line.count("skipped") <= 1 and "skipped (skipped" not in line, line
    assert any("skipped (baseline timed on Other Accelerator 9000, this run on " in line for line in failure_lines)
    assert any(line.rstrip().endswith("skipped (measured on CUDA only)") for line in failure_lines)
    short = "unavailable: no AlexNet weights, see the run's warning"
    for result in run.results:
        assert result.metric_status["lpips"] == short
        assert ALEXNET_URL not in result.message
    assert [line.split("<= 0.05", 1)[-1].strip() for line in failure_lines if line.strip().startswith("lpips")] == [
        f"skipped ({short})"] * 2
    # the whole advice, if printed, is printed once: in the terminal summary
    assert text.count(ALEXNET_URL) <= 1


@pytest.mark.parametrize("tolerances, expected", [
    ("", "off"), ("max_seconds=1000", "ok"),
], ids=["off", "set"])
def test_an_absolute_budget_line_reads_off_or_ok_without_a_skip_note(project, tolerances, expected) -> None:
    decorator = f"@diffbench.tolerance({tolerances})" if tolerances else ""
    project.write_tests(project.test("test_case", decorators=[decorator] if decorator else []))
    project.run(update="all").outcome.assert_outcomes(passed=1)
    project.fake(drift=0.5)
    text = project.text(project.run().outcome)
    line = next(line for line in text.splitlines() if line.strip().startswith("seconds/image"))
    assert line.split()[-1] == expected and "skipped" not in line
