"""A real tiny AnimateDiffPipeline (tests/families/builders.py) through DiffbenchCase and the
ImageGenerator in this process: its frames come back as one strip with the frame count, and an
output that cannot be one strip fails the case in one line, without a traceback."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_diffbench.run.case import DiffbenchCase
from pytest_diffbench.run.generation import ImageGenerator
from pytest_diffbench.spec.sweep import expand_sweep, sweep

BUILDERS = Path(__file__).resolve().parents[2] / "families" / "builders.py"

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def builders() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diffbench_video_builders", BUILDERS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def video_case(pipe: Any) -> DiffbenchCase:
    (case,) = expand_sweep(sweep(steps=2).mark.kwargs, max_cases=8)
    return DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=pipe, runner=ImageGenerator(), workflow_version="1")


def test_animatediffs_frames_become_one_strip_and_its_count(builders):
    dcase = video_case(builders.build_animatediff())
    strip = dcase.generate("a red cube", num_frames=3)
    assert strip.size == (3 * 64, 64) and dcase.measurement is not None and dcase.measurement.frames == 3
    assert dcase.config is not None and dcase.config.video == {"frames": 3}
    assert (dcase.config.width, dcase.config.height) == (64, 64)
