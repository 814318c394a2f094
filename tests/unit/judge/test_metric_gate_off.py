"""A metric whose gate is off is neither loaded nor warned about; one that cannot run records a
short reason, and its whole advice is kept for the run's one warning (issue 10, items 2 and 3)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from PIL import Image

from pytest_diffbench.judge.metrics import (
    REGISTRY,
    Direction,
    MetricInputs,
    MetricKind,
    MetricRegistry,
    MetricUnavailable,
    score_images,
    unavailable_advice,
)
from pytest_diffbench.judge.metrics.lpips import NO_WEIGHTS, UNREADABLE_WEIGHTS, alexnet_checkpoint_path
from pytest_diffbench.judge.tolerances import Tolerances

IMAGE = Image.new("RGB", (32, 32), (10, 200, 30))


@dataclass(frozen=True)
class Heavy:
    """A metric that records every time it is asked to load."""

    loads: list[str] = field(default_factory=list)
    name: str = "heavy"
    label: str = "Heavy"
    kind: MetricKind = MetricKind.FULL_REFERENCE
    direction: Direction = Direction.LOWER_IS_BETTER
    unit: str = ""
    default_tolerance: float | None = 0.1
    valid_tolerance: str = "a number >= 0"
    reports_status: bool = True
    plotted: bool = False

    def accepts(self, tolerance: float) -> bool:
        return tolerance >= 0

    def check_available(self, inputs: MetricInputs) -> None:
        self.loads.append("loaded")
        raise MetricUnavailable("a very long paragraph of advice " * 10, "no weights")

    def compute(self, inputs: MetricInputs) -> float:
        return 0.0


def score(metric: Heavy, mode: str, **tolerances: float | None) -> str:
    registry = MetricRegistry((metric,))
    limits = Tolerances().merged({}, source="t").as_dict() | {"max_heavy": 0.1} | tolerances
    return score_images(IMAGE, IMAGE, prompt="", device="cpu", modes={"heavy": mode}, tolerances=limits,
                        metrics=registry)["heavy"].status


def test_a_metric_whose_gate_is_off_is_not_loaded():
    metric = Heavy()
    assert score(metric, "auto", max_heavy=None) == "off"
    assert metric.loads == []


def test_required_loads_it_even_with_the_gate_off_and_auto_records_the_short_reason():
    metric = Heavy()
    with pytest.raises(MetricUnavailable) as excinfo:
        score(metric, "required", max_heavy=None)
    assert excinfo.value.metric == "heavy"
    assert score(metric, "auto") == "unavailable: no weights"
    assert metric.loads == ["loaded", "loaded"]


def test_lpips_gate_off_in_auto_does_not_load_lpips(monkeypatch):
    lpips = REGISTRY.get("lpips")
    assert lpips is not None
    monkeypatch.setattr(type(lpips), "check_available", lambda self, inputs: pytest.fail("LPIPS was loaded"))
    limits = Tolerances().merged({"max_lpips": None}, source="t")
    scores = score_images(IMAGE, IMAGE, prompt="", device="cpu", modes={"lpips": "auto"}, tolerances=limits)
    assert scores["lpips"].status == "off" and scores["ssim"].status == "ok"


def test_the_lpips_advice_names_the_missing_file_and_where_it_goes(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    advice = unavailable_advice("lpips", f"unavailable: {NO_WEIGHTS}")
    assert str(alexnet_checkpoint_path()) in advice and "diffbench_lpips = off" in advice
    assert str(tmp_path) in str(alexnet_checkpoint_path())
    assert "fresh copy" in unavailable_advice("lpips", f"unavailable: {UNREADABLE_WEIGHTS}")


def test_advice_of_a_reason_without_one_is_the_reason():
    assert unavailable_advice("lpips", "unavailable: LPIPS (AlexNet) needs images at least 31x31 px, got 8x8") == \
        "LPIPS (AlexNet) needs images at least 31x31 px, got 8x8"
    assert unavailable_advice("ssim", "unavailable: odd") == "odd"
