"""judge() converts the output and the baseline image to arrays once each, however many checks
and metrics read them (a 1024x1024 conversion is a 3 MiB copy)."""

from __future__ import annotations

import pytest

from pytest_diffbench.judge import lifecycle as lifecycle_module
from pytest_diffbench.judge import metrics as metrics_module
from pytest_diffbench.spec.outcomes import Outcome


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The id of each image converted by to_rgb_array, wherever the judge side calls it."""
    converted: list[int] = []
    original = lifecycle_module.to_rgb_array

    def counted(image):
        converted.append(id(image))
        return original(image)

    for module in (lifecycle_module, metrics_module):
        monkeypatch.setattr(module, "to_rgb_array", counted)
    return converted


@pytest.mark.parametrize("update", [None, "all"])
def test_judge_converts_each_image_once(lifecycle, conversions: list[int], update: str | None) -> None:
    inputs = lifecycle.inputs()
    baseline = lifecycle.baseline(inputs, image=lifecycle.checkerboard())
    result, _ = lifecycle.judge(inputs, baseline, update)
    assert result.outcome is (Outcome.FAILED_QUALITY if update is None else Outcome.PASSED)
    assert result.scores["ssim"] < 1.0 if update is None else result.scores["ssim"] == 1.0
    assert sorted(conversions) == sorted([id(inputs.image), id(baseline.image)])  # "all" judges twice
