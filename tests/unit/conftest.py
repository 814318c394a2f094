"""Shared fixtures of the unit tests: results as a finished run holds them, and small photos."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from PIL import Image

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome
from pytest_diffbench.spec.samplers import sampler_slug

RUN_ID = "20261128T000000Z-abcdef"
TEST = "tests/test_a.py::test_a"


def build_result(seed: int = 0, sampler: str = "Euler", steps: int = 20, cfg: float = 7.5, *, test: str = TEST,
                 outcome: str | Outcome = Outcome.PASSED, scores: dict[str, float | None] | None = None,
                 seconds: float | None = 0.4, vram: float | None = None, device_name: str = "Intel Xeon",
                 action: str | BaselineAction = BaselineAction.NONE, config: dict[str, Any] | None = None,
                 **changes: Any) -> CaseResult:
    """One case of ``test`` with the case id a sweep gives it; every field can be overridden."""
    case_id = f"seed{seed}-{sampler_slug(sampler)}-{steps}steps-cfg{cfg:g}"
    settings = {"seed": seed, "sampler": sampler, "steps": steps, "cfg": float(cfg), "prompt": "an astronaut",
                "width": 64, "height": 64, **(config or {})}
    result = CaseResult(
        run_id=RUN_ID, timestamp="2026-11-28T00:00:00+00:00", nodeid=f"{test}[{case_id}]", case_id=case_id,
        outcome=Outcome(outcome), config_hash="f" * 64, config=settings,
        scores={"ssim": 0.99, "psnr": 40.0, "lpips": None} if scores is None else scores,
        tolerances={"min_ssim": 0.95, "min_psnr": 25.0, "max_lpips": 0.05, "max_seconds": None, "max_vram_mb": None,
                    "time_regression": None},
        measurement=None if seconds is None else Measurement(seconds, vram),
        machine=MachineInfo(device_name=device_name), baseline_action=BaselineAction(action), pin="cpu-float32",
    )
    return result.with_changes(**changes) if changes else result


@pytest.fixture
def make_result() -> Callable[..., CaseResult]:
    """:func:`build_result`: ``make_result(seed, sampler, steps, outcome=..., scores=..., ...)``."""
    return build_result


@pytest.fixture(scope="session")
def astronaut_photo() -> Callable[..., Image.Image]:
    """scikit-image's astronaut resized to ``(width, height)`` (LANCZOS, so the same pixels each call)."""
    from skimage import data

    source = Image.fromarray(data.astronaut())

    def photo(width: int = 64, height: int | None = None) -> Image.Image:
        return source.resize((width, height or width), Image.Resampling.LANCZOS)

    return photo
