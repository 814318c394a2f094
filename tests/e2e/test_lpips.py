"""LPIPS through the plugin, in child processes (LPIPS imports torch and lpips; a FakePipeline
makes the images): the three modes without AlexNet's weights, and with a stand-in checkpoint
under a temporary TORCH_HOME (tests/e2e/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_diffbench.spec.outcomes import Outcome


@pytest.mark.subprocess
@pytest.mark.model
def test_lpips_modes_with_and_without_weights(project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              torch_home_with_alexnet: Path) -> None:
    project.write_tests(project.test())
    empty_home = tmp_path / "no-weights"
    monkeypatch.setenv("TORCH_HOME", str(empty_home))
    missing = empty_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"

    # auto without weights: passes, warns once with the missing file, records a short reason.
    project.write_ini(lpips="auto")
    run = project.run(update="all", lpips=None, subprocess=True)
    run.outcome.assert_outcomes(passed=1)
    (row,) = run.results
    assert row.scores["lpips"] is None and row.metric_status["lpips"].startswith("unavailable: ")
    assert str(missing) not in row.metric_status["lpips"]  # the long advice is the run's warning, said once
    warning = [line for line in run.outcome.stdout.lines if line.startswith("WARNING: LPIPS was not computed")]
    assert len(warning) == 1 and str(missing) in warning[0]
    assert project.text(run.outcome).count(str(missing)) == 1

    # required without weights: an error naming the file.
    project.write_ini(lpips="required")
    run = project.run(lpips=None, subprocess=True)
    run.outcome.assert_outcomes(failed=1)
    (row,) = run.results
    assert row.outcome is Outcome.ERROR
    assert "diffbench_lpips = required" in row.message and str(missing) in row.message

    # off (the command line over the ini's required): no LPIPS, no warning. Nothing imports torch
    # then, so this run stays in this process.
    run = project.run(lpips="off")
    run.outcome.assert_outcomes(passed=1)
    (row,) = run.results
    assert (row.scores["lpips"], row.metric_status["lpips"]) == (None, "off")
    assert "WARNING" not in run.outcome.stdout.str()

    # With weights: auto and required both score 0.0 against the identical baseline.
    monkeypatch.setenv("TORCH_HOME", str(torch_home_with_alexnet))
    for mode in ("auto", "required"):
        project.write_ini(lpips=mode)
        run = project.run(lpips=None, subprocess=True)
        run.outcome.assert_outcomes(passed=1)
        (row,) = run.results
        assert (row.outcome, row.scores["lpips"], row.metric_status["lpips"], row.tolerances["max_lpips"]) == (
            Outcome.PASSED, 0.0, "ok", 0.05), mode
        assert "WARNING" not in run.outcome.stdout.str()
