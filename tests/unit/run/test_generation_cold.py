"""ImageGenerator.warm_up = False (--diffbench-calibrate's cold repeat): the case's call is timed
without a warm-up call before it."""

from __future__ import annotations

from typing import Any

from PIL import Image


class CountingPipeline:
    """A pipeline that counts its calls and makes an 8x8 image."""

    device = "cpu"

    def __init__(self) -> None:
        from diffusers import EulerDiscreteScheduler

        self.scheduler = EulerDiscreteScheduler()
        self.calls = 0

    def __call__(self, prompt: str, num_inference_steps: int = 2, output_type: str = "pil", generator: Any = None) -> Any:
        self.calls += 1
        return type("Output", (), {"images": [Image.new("RGB", (8, 8))]})()


def test_a_cold_generator_calls_once_and_records_no_warm_up_while_a_warm_one_warms_up_first():
    from pytest_diffbench.run.generation import ImageGenerator

    call = {"prompt": "a red cube", "num_inference_steps": 4, "output_type": "pil"}
    cold, warm = ImageGenerator(), ImageGenerator()
    cold.warm_up = False
    cold_pipe, warm_pipe = CountingPipeline(), CountingPipeline()
    _, cold_measurement = cold.generate(cold_pipe, "Euler", 0, call)
    _, warm_measurement = warm.generate(warm_pipe, "Euler", 0, call)
    assert (cold_pipe.calls, cold_measurement.warmup_seconds) == (1, None)
    assert warm_pipe.calls == 2 and warm_measurement.warmup_seconds is not None
