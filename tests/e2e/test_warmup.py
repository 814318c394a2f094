"""End to end: the warm-up of a real img2img pipeline (tests/families/builders.py) in a child
process: a valid low-strength case never fails in it, whichever case ran first, and each input
image size gets one warm-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_diffbench.spec.outcomes import Outcome

BUILDERS = Path(__file__).resolve().parents[1] / "families" / "builders.py"

IMG2IMG_CONFTEST = '''
import pytest

import family_builders


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return family_builders.build_img2img()
'''

TESTS = '''
from PIL import Image


def photo(size):
    return Image.new("RGB", (size, size), (200, 40, 90))


@diffbench.sweep(seeds=0, steps=4)
def test_a_low_strength_first(diffbench):
    diffbench.generate("a red cube", image=photo(64), strength=0.3)


@diffbench.sweep(seeds=0, steps=4)
def test_b_larger_input(diffbench):
    diffbench.generate("a red cube", image=photo(96), strength=0.6)


@diffbench.sweep(seeds=0, steps=4)
def test_c_larger_input_low_strength(diffbench):
    diffbench.generate("a red cube", image=photo(96), strength=0.3)


@diffbench.sweep(seeds=0, steps=4)
def test_d_low_strength_after_the_others(diffbench):
    diffbench.generate("a red cube", image=photo(64), strength=0.3)
'''


@pytest.mark.subprocess
@pytest.mark.model
def test_a_low_strength_img2img_case_passes_and_each_input_size_warms_up_once(project) -> None:
    project.pytester.makepyfile(family_builders=BUILDERS.read_text(encoding="utf-8"))
    project.pytester.makeconftest(IMG2IMG_CONFTEST)
    project.write_tests(TESTS)
    run = project.run(update="all", subprocess=True)
    run.outcome.assert_outcomes(passed=4)
    by_test = {result.test.split("::")[-1]: result for result in run.results}
    assert all(result.outcome is Outcome.PASSED for result in by_test.values())
    warmed = {name: result.measurement.warmup_seconds is not None for name, result in by_test.items()}
    # 64x64 first (its warm-up: the case's own 4 steps, as 2 or 3 leave no denoising step at strength
    # 0.3), then 96x96; the later cases of each size need none.
    assert warmed == {"test_a_low_strength_first": True, "test_b_larger_input": True,
                      "test_c_larger_input_low_strength": False, "test_d_low_strength_after_the_others": False}
    assert by_test["test_b_larger_input"].setting("width") == 96
