"""A sweep combined with other parameters (``pytest.mark.parametrize`` values, fixture params):
cases that differ in anything but the swept axes never share a sweep-sheet cell or a
convergence group, so each parameter gets its own sheets and its own most-steps reference."""

from __future__ import annotations

from PIL import Image

PROMPTS = ("a red cube", "a blue sphere")

PARAMETRIZED = '''
import pytest


@pytest.mark.parametrize("p", ["a red cube", "a blue sphere"])
@diffbench.sweep(seeds=[0], samplers=["Euler", "DDIM"], steps=[2, 50])
def test_g(diffbench, p):
    diffbench.generate(p)
'''

FIXTURE_PARAM = '''
import pytest


@pytest.fixture(params=["a red cube", "a blue sphere"])
def prompt(request):
    return request.param


@diffbench.sweep(seeds=[0], steps=[2, 50])
def test_f(diffbench, prompt):
    diffbench.generate(prompt)
'''

NO_SWEEP = '''
import pytest


@pytest.mark.parametrize("p", ["a red cube", "a blue sphere"])
def test_n(diffbench, p):
    diffbench.generate(p)
'''


def sheets(run, test: str) -> list[str]:
    folder = run.folder.grids / "sheets" / "test_gen" / test
    return sorted(path.name for path in folder.glob("*.png"))


def test_each_parametrize_value_gets_its_own_sheet_with_every_cell_and_its_own_reference(project):
    project.write_tests(PARAMETRIZED)
    run = project.run(update="missing")
    run.outcome.assert_outcomes(passed=8)
    names = sheets(run, "test_g")
    assert len(names) == 2 and all(name.startswith("seed0-cfg7.5-") for name in names)
    assert [prompt for prompt in PROMPTS if any(prompt.replace(" ", "_") in name for name in names)] == list(PROMPTS)
    sizes = set()
    for name in names:
        with Image.open(run.folder.grids / "sheets/test_gen/test_g" / name) as sheet:
            sizes.add(sheet.size)
    # both sheets hold 2 samplers x 2 step counts (64 px images shown x4 in 256 px cells), plus labels
    assert len(sizes) == 1 and all(2 * 256 < side < 3 * 256 for side in sizes.pop())
    for result in run.results:
        most_steps = result.setting("steps") == 50
        assert (result.ssim_vs_most_steps == 1.0) is most_steps, result.nodeid


def test_a_fixture_parameter_keeps_its_own_convergence_reference(project):
    project.write_tests(FIXTURE_PARAM)
    run = project.run(update="missing")
    run.outcome.assert_outcomes(passed=4)
    assert len(sheets(run, "test_f")) == 2
    assert run.results[0].nodeid.startswith("test_gen.py::test_f[a ")  # the fixture's part comes first
    assert {(r.setting("prompt"), r.setting("steps")): r.ssim_vs_most_steps == 1.0 for r in run.results} == {
        ("a red cube", 2): False, ("a red cube", 50): True, ("a blue sphere", 2): False, ("a blue sphere", 50): True}


def test_parametrize_without_a_sweep_gives_each_value_a_sheet(project):
    project.write_tests(NO_SWEEP)
    run = project.run(update="missing")
    run.outcome.assert_outcomes(passed=2)
    names = sheets(run, "test_n")
    assert len(names) == 2 and all(name.startswith("a_") for name in names)
