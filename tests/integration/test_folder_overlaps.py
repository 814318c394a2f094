"""The baseline and output folders apart (issue 9, P14): an output folder inside the baseline
folder (run folders committed with ``git add baselines/``), the other way round, one folder for
both, and a baseline folder that is the rootdir (``.``) or above it are each one usage error
naming both keys; nothing is written."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("flags, fragment", [
    (("--diffbench-output-dir=baselines",),
     "diffbench_output_dir = 'baselines' is diffbench_baseline_dir = 'baselines': runs would be written among the "
     "baselines and committed with them"),
    (("--diffbench-output-dir=baselines/cpu-float32",),
     "diffbench_output_dir = 'baselines/cpu-float32' is inside diffbench_baseline_dir = 'baselines': run folders "
     "would be committed with the baselines; name a folder outside it, e.g. .diffbench"),
    (("--diffbench-output-dir=./baselines/../baselines/runs",),
     "diffbench_output_dir = './baselines/../baselines/runs' is inside diffbench_baseline_dir = 'baselines'"),
    (("--diffbench-baseline-dir=.diffbench/refs",),
     "diffbench_baseline_dir = '.diffbench/refs' is inside diffbench_output_dir = '.diffbench': the baselines would "
     "sit among the run folders"),
    (("--diffbench-baseline-dir=.",),
     "diffbench_baseline_dir = '.' is not valid: it is the rootdir, so the whole project would be the baseline folder"),
    (("--diffbench-baseline-dir=..",),
     "diffbench_baseline_dir = '..' is not valid: it is the rootdir or a folder above it"),
], ids=["equal", "output-inside", "output-inside-dotted", "baselines-inside", "rootdir", "above-rootdir"])
@pytest.mark.parametrize("update", [None, "all"])
def test_overlapping_folders_are_one_usage_error(project, flags, fragment, update) -> None:
    project.write_tests(project.test())
    run = project.run(*flags, update=update)
    assert run.outcome.ret == pytest.ExitCode.USAGE_ERROR
    text = project.text(run.outcome)
    lines = [line for line in text.splitlines() if fragment in line]
    assert len(lines) == 1 and lines[0].startswith("ERROR: diffbench: ")
    assert "Traceback" not in text and "INTERNALERROR" not in text
    assert not project.baselines.exists() and not project.output_dir.exists()


def test_an_absolute_output_dir_inside_the_baselines_is_refused_too(project) -> None:
    project.write_tests(project.test())
    run = project.run(f"--diffbench-output-dir={project.path / 'baselines' / 'out'}")
    assert run.outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "is inside diffbench_baseline_dir = 'baselines'" in project.text(run.outcome)


def test_folders_side_by_side_are_fine(project) -> None:
    project.write_tests(project.test())
    project.run("--diffbench-baseline-dir=refs/images", "--diffbench-output-dir=refs-out",
                update="missing").outcome.assert_outcomes(passed=1)
    assert (project.path / "refs" / "images").is_dir() and (project.path / "refs-out").is_dir()
