"""End to end on a real video pipeline: a tiny seeded AnimateDiffPipeline (tests/families/builders.py's
``build_animatediff``) in a child ``pytest --diffbench``, 2 steps, 4 frames of 64x64 on the CPU.

Its frames are baselined as one PNG strip (frames left to right), the config records the frame
count, a clean rerun passes, a change in one frame fails on that frame, and another ``num_frames``
is a stale baseline, not a crash.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

BUILDERS = Path(__file__).resolve().parents[1] / "families" / "builders.py"
CASE = "seed0-euler-2steps-cfg7.5"

#: A conftest whose pipeline, with $DIFFBENCH_TEST_BUG set, blurs frame 2 of its output after the
#: call: the config stays the same, one frame's pixels change.
CONFTEST = '''
import os

import pytest
from PIL import ImageFilter

import family_builders


@pytest.fixture(scope="session")
def diffbench_pipeline():
    pipe = family_builders.build_animatediff()
    base = type(pipe)

    def __call__(self, *args, **kwargs):
        output = base.__call__(self, *args, **kwargs)
        if os.environ.get("DIFFBENCH_TEST_BUG"):
            frames = output.frames[0]
            frames[1] = frames[1].filter(ImageFilter.GaussianBlur(2))
        return output

    pipe.__class__ = type(base.__name__, (base,), {"__call__": __call__})
    return pipe
'''


def video_test(frames: int) -> str:
    return f'diffbench.generate("a red cube", num_frames={frames})'


@pytest.mark.subprocess
@pytest.mark.model
def test_animatediff_is_baselined_as_a_frame_strip_rerun_judged_per_frame_and_stale_on_num_frames(
        project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.pytester.makepyfile(family_builders=BUILDERS.read_text(encoding="utf-8"))
    project.pytester.makeconftest(CONFTEST)
    project.write_tests(project.test("test_video", body=video_test(4)))
    png, sidecar = project.baseline_pair("test_video")
    monkeypatch.delenv("DIFFBENCH_TEST_BUG", raising=False)

    created = project.run(update="all", subprocess=True)
    created.outcome.assert_outcomes(passed=1)
    (row,) = created.results
    assert row.baseline_action is BaselineAction.CREATED
    assert Image.open(png).size == (4 * 64, 64)  # one strip, frames left to right
    config = project.read_json(sidecar)["config"]
    assert config["workflow"] == "AnimateDiffPipeline" and config["video"] == {"frames": 4}
    assert (config["width"], config["height"], config["pipeline_kwargs"]) == (64, 64, {"num_frames": 4})
    assert row.setting("video") == {"frames": 4}

    rerun = project.run(subprocess=True)
    rerun.outcome.assert_outcomes(passed=1)
    (again,) = rerun.results
    assert again.config_hash == row.config_hash and again.scores["ssim"] == 1.0

    monkeypatch.setenv("DIFFBENCH_TEST_BUG", "1")
    changed = project.run(subprocess=True)
    changed.outcome.assert_outcomes(failed=1)
    (failed,) = changed.results
    assert failed.outcome is Outcome.FAILED_QUALITY and failed.scores["ssim"] is not None
    assert "worst frame 2 of 4, mean " in failed.failure_text or "worst frame 2 of 4, mean " in failed.message
    monkeypatch.delenv("DIFFBENCH_TEST_BUG")

    project.write_tests(project.test("test_video", body=video_test(3)))
    stale = project.run(subprocess=True)
    stale.outcome.assert_outcomes(failed=1)
    (result,) = stale.results
    assert result.outcome is Outcome.STALE_BASELINE
    assert "video" in result.message and "num_frames" in result.message
    assert Image.open(png).size == (4 * 64, 64)  # the baseline is kept as it was
