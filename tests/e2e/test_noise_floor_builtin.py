"""--diffbench-calibrate on a real diffusers pipeline (diffbench-tiny, 2 steps at 64x64 on the
CPU, in a child process): besides the plain repeats, one repeat on a cold pipeline (no warm-up
first) and one with another torch thread count, both compared with the others (issue 12, item 6)."""

from __future__ import annotations

import pytest

TEST = "test_gen.py::test_case"
CASE = "seed0-euler-2steps-cfg7.5"


@pytest.mark.subprocess
@pytest.mark.model
def test_calibrate_adds_a_cold_and_another_thread_count_repeat(project) -> None:
    project.use_builtin_pipeline()
    project.write_tests(project.test("test_case"))
    project.run(update="all", subprocess=True).outcome.assert_outcomes(passed=1)
    run = project.run("--diffbench-calibrate=2", subprocess=True)
    run.outcome.assert_outcomes(passed=1)
    case = project.read_json(project.baselines / "noise-floor.json")["pins"][project.PIN][TEST]["cases"][CASE]
    assert case["repeats"] == 4  # cold, threads, and the two plain repeats
    assert case["perturbations"]["cold"].startswith("first call without warm-up: ")
    # OMP_NUM_THREADS=1 in the child (tests/conftest.py): the other count is 2
    assert case["perturbations"]["threads"].startswith("torch on 2 CPU thread(s) instead of 1: ")
    assert case["perturbations"]["batch"].startswith("not applicable")
    assert case["min_ssim"] > 0.99  # thread count and warm-up barely move a real pipeline's pixels
    assert case["seconds_cv"] is not None and case["seconds_mean"] > 0
