"""A real tiny AnimateDiffPipeline (tests/families/builders.py) through DiffbenchCase and the
ImageGenerator in this process: its frames come back as one strip with the frame count, and an
output that cannot be one strip fails the case in one line, without a traceback."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_diffbench.run.case import DiffbenchCase
from pytest_diffbench.spec.sweep import expand_sweep, sweep

# pytest_diffbench.run.generation imports torch: imported where it runs, so collecting this module does not.

pytestmark = pytest.mark.model


def video_case(pipe: Any) -> DiffbenchCase:
    from pytest_diffbench.run.generation import ImageGenerator

    (case,) = expand_sweep(sweep(steps=2).mark.kwargs, max_cases=8)
    return DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=pipe, runner=ImageGenerator(), workflow_version="1")


def test_animatediffs_frames_become_one_strip_and_its_count(builders):
    dcase = video_case(builders.build_animatediff())
    strip = dcase.generate("a red cube", num_frames=3)
    assert strip.size == (3 * 64, 64) and dcase.measurement is not None and dcase.measurement.frames == 3
    assert dcase.config is not None and dcase.config.video == {"frames": 3}
    assert (dcase.config.width, dcase.config.height) == (64, 64)


def test_frames_of_different_sizes_fail_the_case_in_one_line(builders):
    pipe = builders.build_animatediff()
    base = type(pipe)

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        output = base.__call__(self, *args, **kwargs)
        output.frames[0][1] = output.frames[0][1].resize((32, 64))
        return output

    pipe.__class__ = type(base.__name__, (base,), {"__call__": __call__})
    dcase = video_case(pipe)
    with pytest.raises(pytest.fail.Exception) as excinfo:
        dcase.generate("a red cube", num_frames=2)
    assert excinfo.value.pytrace is False and excinfo.value.__context__ is None
    assert str(excinfo.value.msg) == ("t.py::test[x]: the pipeline returned frames of different sizes (32x64, 64x64); "
                                      "a video's frames must share one size")
    assert dcase.config is None and dcase.image is None
