"""Every invalid sweep of a run is reported, each naming its test, not only a module's first one
(issue 10, item 6); pytest still stops as on any collection error."""

from __future__ import annotations

import pytest

BAD = {"test_bad_steps": "steps=0", "test_bad_seed": "seeds=-1", "test_bad_sampler": 'samplers=["Eulr"]'}
WHY = {"test_bad_steps": "sweep axis 'steps': 0 is not valid", "test_bad_seed": "sweep axis 'seeds': -1 is not a valid seed",
       "test_bad_sampler": "unknown sampler 'Eulr'"}


def error_lines(text: str) -> dict[str, str]:
    """Each ``<nodeid>: invalid diffbench sweep: ...`` line by the test it names."""
    lines = [line for line in text.splitlines() if ": invalid diffbench sweep: " in line and not line.startswith("ERROR")]
    return {line.split(": invalid", 1)[0].strip().rsplit("::", 1)[-1]: line for line in lines}


@pytest.mark.parametrize("flags", [(), ("--diffbench", "--diffbench-lpips=off")], ids=["plain", "diffbench"])
def test_three_invalid_sweeps_of_one_module_are_all_reported(project, flags) -> None:
    project.write_tests(project.test("test_good"), *(project.test(name, sweep=sweep) for name, sweep in BAD.items()))
    result = project.run_plain(*flags)
    text = project.text(result)
    assert result.ret == pytest.ExitCode.INTERRUPTED, text
    result.assert_outcomes(errors=3)  # the valid test does not run as if all were fine
    errors = error_lines(text)
    assert set(errors) == set(BAD), text
    for name, why in WHY.items():
        assert f"test_gen.py::{name}: invalid diffbench sweep: " in errors[name] and why in errors[name]
    assert not project.baselines.exists()


def test_invalid_sweeps_of_two_modules_and_a_sweep_without_the_fixture_are_all_reported(project) -> None:
    project.write_tests(project.test("test_good"), project.test("test_bad_steps", sweep="steps=0"))
    project.write_tests("@diffbench.sweep(seeds=[0])\ndef test_no_fixture():\n    pass\n",
                        project.test("test_bad_seed", sweep="seeds=-1"), module="test_other")
    result = project.run_plain()
    text = project.text(result)
    assert result.ret == pytest.ExitCode.INTERRUPTED, text
    result.assert_outcomes(errors=3)
    assert "test_gen.py::test_bad_steps: invalid diffbench sweep: sweep axis 'steps'" in text
    assert "test_other.py::test_bad_seed: invalid diffbench sweep: sweep axis 'seeds'" in text
    assert "test_other.py::test_no_fixture: @diffbench.sweep needs the test to take the 'diffbench' fixture" in text


def test_an_invalid_sweep_of_a_parametrized_test_is_one_error(project) -> None:
    project.write_tests("import pytest\n\n@pytest.mark.parametrize('shade', ['a', 'b', 'c'])\n"
                        + project.test("test_bad", sweep="steps=0").replace("(diffbench)", "(diffbench, shade)"))
    result = project.run_plain()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)


def test_continue_on_collection_errors_runs_the_valid_tests_only(project) -> None:
    project.write_tests(project.test("test_good"), project.test("test_bad_steps", sweep="steps=0"),
                        "def test_plain():\n    pass\n")
    result = project.run_plain("--continue-on-collection-errors")
    result.assert_outcomes(errors=1, passed=1, skipped=1)  # test_good is skipped without --diffbench
