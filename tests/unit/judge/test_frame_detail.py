"""judge.checks.judge_gates on a video: each metric's check names the worst frame and the mean
beside its value (the worst frame's), in the failure message's rendering; a still says nothing more."""

from __future__ import annotations

from pytest_diffbench.judge.checks import judge_gates
from pytest_diffbench.judge.metrics import Score
from pytest_diffbench.judge.tolerances import Tolerances
from pytest_diffbench.spec.measurement import Measurement


def gates(ssim: Score):
    scores = {"ssim": ssim, "psnr": Score(40.0), "lpips": Score(None, "off")}
    return judge_gates(scores, Tolerances(), None, "cpu", 1, Measurement(1.0), "cpu", 1)


def test_a_video_check_names_its_worst_frame_and_mean():
    check = gates(Score(0.9, frame_values=(0.99, 0.9, 0.98))).check("ssim")
    assert check is not None and check.passed is False
    assert check.note == "worst frame 2 of 3, mean 0.9567"
    assert check.render().endswith("FAIL  (worst frame 2 of 3, mean 0.9567)")


def test_a_still_check_has_no_note_and_a_skipped_one_keeps_its_reason():
    verdict = gates(Score(0.99))
    assert verdict.check("ssim").note == "" and verdict.check("lpips").note == "off"
