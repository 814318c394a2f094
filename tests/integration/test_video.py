"""Video cases through ``pytest --diffbench`` in this process, on a stand-in video pipeline (a
FakePipeline that returns ``num_frames`` frames as one strip, run.frames): the baseline is one PNG
strip, the config records the frame count, every metric is scored per frame with the worst frame
gated and named, and another frame count is a stale baseline.

The real AnimateDiffPipeline runs in tests/e2e/test_video.py.
"""

from __future__ import annotations

import pytest
from PIL import Image

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

CONFTEST = '''
import os

import pytest

from pytest_diffbench.run.frames import frame_strip
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.testing import FakePipeline


class FakeVideoPipeline(FakePipeline):
    """``num_frames`` FakePipeline pictures (4 by default), one per seed after the case's; frame
    number $BROKEN_FRAME (1-based) gets a stripe pattern that leaves the config as it is."""

    def diffbench_generate(self, sampler, seed, call_kwargs):
        count = int(call_kwargs.get("num_frames") or 4)
        broken = int(os.environ.get("BROKEN_FRAME") or 0)
        frames = [FakePipeline(drift=0.2 if number == broken else 0.0).draw(sampler, seed + number, call_kwargs)
                  for number in range(1, count + 1)]
        return frame_strip(frames), Measurement(self.seconds_per_image, frames=count)


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return FakeVideoPipeline(extra_keywords=("num_frames", "num_videos_per_prompt"))
'''


@pytest.fixture
def video(project, monkeypatch):
    project.pytester.makeconftest(CONFTEST)
    monkeypatch.delenv("BROKEN_FRAME", raising=False)
    return project


def frames_test(count: int | None) -> str:
    given = "" if count is None else f", num_frames={count}"
    return f'diffbench.generate("a red cube"{given})'


def test_a_video_is_one_strip_judged_per_frame_and_stale_on_another_frame_count(video, monkeypatch):
    video.write_tests(video.test("test_clip", body=frames_test(None)))
    png, sidecar = video.baseline_pair("test_clip")

    created = video.run(update="all")
    created.outcome.assert_outcomes(passed=1)
    (row,) = created.results
    assert row.baseline_action is BaselineAction.CREATED
    assert Image.open(png).size == (4 * 64, 64)
    config = video.read_json(sidecar)["config"]
    assert config["video"] == {"frames": 4} and (config["width"], config["height"]) == (64, 64)
    assert row.setting("video") == {"frames": 4}

    again = video.run()
    again.outcome.assert_outcomes(passed=1)
    assert again.results[0].scores["ssim"] == 1.0 and again.results[0].config_hash == row.config_hash

    monkeypatch.setenv("BROKEN_FRAME", "3")
    broken = video.run()
    broken.outcome.assert_outcomes(failed=1)
    (failed,) = broken.results
    assert failed.outcome is Outcome.FAILED_QUALITY
    ssim_line = next(line for line in video.text(broken.outcome).splitlines() if line.strip().startswith("ssim "))
    assert "FAIL" in ssim_line and "(worst frame 3 of 4, mean " in ssim_line
    assert "worst frame 3 of 4" in failed.message
    mean = float(ssim_line.split("mean ")[1].rstrip(")"))
    worst = failed.scores["ssim"]
    assert worst is not None and worst < mean < 1.0  # the value column is the worst frame's
    assert worst == pytest.approx(1 - 4 * (1 - mean), abs=1e-3)  # three frames identical, one broken
    monkeypatch.delenv("BROKEN_FRAME")

    video.write_tests(video.test("test_clip", body=frames_test(3)))
    stale = video.run()
    stale.outcome.assert_outcomes(failed=1)
    (result,) = stale.results
    assert result.outcome is Outcome.STALE_BASELINE
    assert "video.frames: 4 -> 3" in result.message
    assert Image.open(png).size == (4 * 64, 64)  # kept as it was


def test_several_videos_per_call_are_refused_before_generating(video):
    """The stand-in takes num_videos_per_prompt (and ignores it): only diffbench's refusal fails the case."""
    video.write_tests(video.test("test_clip", body='diffbench.generate("a red cube", num_videos_per_prompt=2)'))
    run = video.run(update="all")
    run.outcome.assert_outcomes(failed=1)
    refusal = next(line for line in video.text(run.outcome).splitlines() if "num_videos_per_prompt" in line)
    assert refusal.startswith("test_gen.py::test_clip[seed0-euler-2steps-cfg7.5]: ")
    assert "diffbench compares one video per case" in refusal
    assert not video.baseline_pair("test_clip")[0].exists()
