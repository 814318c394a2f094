"""Metrics per frame (judge.metrics.score_images with ``frames``): a video's strip is cut into its
frames, every registered metric scores each frame, the worst frame is the value the gate judges,
and the mean and the worst frame's number are reported beside it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.judge.metrics import (
    REGISTRY,
    Direction,
    ImageSizeMismatch,
    MetricInputs,
    MetricKind,
    MetricRegistry,
    MetricUnavailable,
    Score,
    score_images,
)
from pytest_diffbench.judge.metrics.psnr import PSNR
from pytest_diffbench.judge.metrics.ssim import SSIM, ssim
from pytest_diffbench.testing import FakePipeline

FRAMES = 4


def strip(frames: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (sum(f.width for f in frames), frames[0].height))
    for index, frame in enumerate(frames):
        out.paste(frame, (index * frame.width, 0))
    return out


def video(changed: int | None = None, drift: float = 0.6) -> Image.Image:
    """A strip of FRAMES different 48x48 pictures; frame number ``changed`` (1-based) drifted."""
    frames = []
    for number in range(1, FRAMES + 1):
        pipe = FakePipeline(drift=drift if number == changed else 0.0)
        frames.append(pipe.draw("Euler", number, {"width": 48, "height": 48, "num_inference_steps": 50}))
    return strip(frames)


def scored(output: Image.Image, baseline: Image.Image, frames: int = FRAMES, metrics: MetricRegistry = REGISTRY,
           **modes: str) -> dict[str, Score]:
    return score_images(output, baseline, prompt="", device="cpu", modes={"lpips": "off", **modes},
                        metrics=metrics, frames=frames)


def test_a_change_in_one_frame_is_the_worst_frame_with_the_mean_beside_it():
    scores = scored(video(changed=3), video())
    ssim_score, psnr_score = scores["ssim"], scores["psnr"]
    assert ssim_score.worst_frame == 3 and psnr_score.worst_frame == 3
    assert ssim_score.frame_values[:2] == (1.0, 1.0) and ssim_score.frame_values[3] == 1.0
    assert ssim_score.value == ssim_score.frame_values[2] < 0.9
    assert ssim_score.mean == pytest.approx((3 + ssim_score.value) / 4)
    assert ssim_score.detail == f"worst frame 3 of 4, mean {ssim_score.mean:.4g}"
    assert psnr_score.frame_values[0] == math.inf and math.isfinite(psnr_score.value)
    assert psnr_score.mean == math.inf  # three identical frames
    assert scores["lpips"] == Score(None, "off")


def test_the_worst_frame_fails_where_the_whole_strip_would_pass():
    """Scored as one picture, three identical frames hide the changed one; per frame they do not."""
    output, baseline = video(changed=2, drift=0.03), video()
    whole = scored(output, baseline, frames=1)["ssim"]
    per_frame = scored(output, baseline)["ssim"]
    assert whole.frame_values == () and whole.detail == ""
    limit = SSIM().default_tolerance
    assert per_frame.value is not None and whole.value is not None and limit is not None
    assert per_frame.value < limit <= whole.value
    assert per_frame.value == pytest.approx(ssim(np.asarray(baseline.crop((48, 0, 96, 48))),
                                                 np.asarray(output.crop((48, 0, 96, 48)))))


def test_an_unchanged_video_scores_as_identical_in_every_frame():
    scores = scored(video(), video())
    assert scores["ssim"].frame_values == (1.0,) * FRAMES and scores["ssim"].worst_frame == 1
    assert scores["psnr"].value == math.inf and scores["psnr"].mean == math.inf


@dataclass(frozen=True)
class MeanAbsoluteError:
    """A lower-is-better metric a plugin could register: the worst frame is the highest."""

    name: str = "mae"
    label: str = "MAE"
    kind: MetricKind = MetricKind.FULL_REFERENCE
    direction: Direction = Direction.LOWER_IS_BETTER
    unit: str = ""
    default_tolerance: float | None = 1.0
    valid_tolerance: str = "a number >= 0"
    reports_status: bool = False
    plotted: bool = False

    def accepts(self, tolerance: float) -> bool:
        return tolerance >= 0

    def check_available(self, inputs: MetricInputs) -> None:
        if inputs.output.shape[1] < 40:
            raise MetricUnavailable("frames narrower than 40 px", "too narrow")

    def compute(self, inputs: MetricInputs) -> float:
        assert inputs.baseline is not None
        return float(np.abs(inputs.output.astype(float) - inputs.baseline.astype(float)).mean())


def test_any_registered_metric_is_scored_per_frame_in_its_own_direction():
    metrics = MetricRegistry((SSIM(), MeanAbsoluteError()))
    scores = scored(video(changed=4), video(), metrics=metrics)
    mae = scores["mae"]
    assert mae.worst_frame == 4 and mae.value == max(mae.frame_values) > 0
    assert mae.frame_values[:3] == (0.0, 0.0, 0.0) and mae.mean == pytest.approx(mae.value / 4)
    assert set(scores) == {"ssim", "mae"}


def test_a_metric_that_cannot_score_a_frame_is_unavailable_for_the_video():
    metrics = MetricRegistry((PSNR(), MeanAbsoluteError()))
    wide = video()  # 192 px wide as a whole, 48 px per frame: fine
    assert scored(wide, wide, metrics=metrics)["mae"].value == 0.0
    narrow = wide.resize((4 * 32, 32))  # 32 px frames
    assert scored(narrow, narrow, metrics=metrics)["mae"] == Score(None, "unavailable: too narrow")
    with pytest.raises(MetricUnavailable):
        scored(narrow, narrow, metrics=metrics, mae="required")
    assert scored(narrow, narrow, frames=1, metrics=metrics)["mae"].value == 0.0  # the whole strip is wide enough


def test_an_image_that_is_no_strip_of_that_many_frames_is_a_size_mismatch():
    with pytest.raises(ImageSizeMismatch, match="^a 192x48 image is not a strip of 5 frames"):
        scored(video(), video(), frames=5)


def test_a_nan_frame_is_the_worst_frame():
    assert Score(math.nan, frame_values=(1.0, math.nan, 0.5)).worst_frame == 2
    assert Score(0.5, frame_values=(1.0, 0.5, 0.5)).worst_frame == 2
    assert Score(None, "off").worst_frame is None and Score(0.9).detail == ""


def test_a_strip_splits_into_its_frames_in_order():
    from pytest_diffbench.judge.metrics.images import split_frames, to_rgb_array

    frames = [FakePipeline().draw("Euler", seed, {"width": 16, "height": 8}) for seed in range(3)]
    parts = split_frames(to_rgb_array(strip(frames)), 3)
    assert [part.tobytes() for part in parts] == [to_rgb_array(frame).tobytes() for frame in frames]
    assert len(split_frames(to_rgb_array(frames[0]), 1)) == 1
    with pytest.raises(ImageSizeMismatch, match="^a 48x8 image is not a strip of 5 frames"):
        split_frames(to_rgb_array(strip(frames)), 5)
