"""A lifecycle helper in the style of pytest-regressions: build the inputs of one finished case
and the baseline it meets, with only the fields a test is about spelled out."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.judge.lifecycle import BaselineState, BrokenBaseline, CaseInputs, Judgement, StoredBaseline, judge
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.judge.tolerances import Tolerances
from pytest_diffbench.spec.config import FrozenConfig
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.outcomes import BaselineAction, UpdateMode

CONFIG = FrozenConfig(
    model="diffbench/fake", model_fingerprint="f" * 64, vae="", loras=(), controlnets=(), prompt="a red cube",
    negative_prompt=None, seed=0, sampler="Euler", steps=20, cfg=7.5, width=64, height=64, workflow="FakePipeline",
    workflow_version="1", dtype="float32", device="cpu", pipeline_kwargs={},
)
MACHINE = MachineInfo(python="3.11", torch="2.4.1", diffusers="0.31.0", device_type="cpu", device_name="Intel Xeon")


def gradient(width: int = 64, height: int = 64, *, phase: int = 0) -> Image.Image:
    """A smooth RGB picture; another ``phase`` is another picture."""
    ys, xs = np.mgrid[0:height, 0:width]
    array = np.stack([(xs * 4 + phase) % 256, (ys * 4) % 256, ((xs + ys) * 2 + 3 * phase) % 256], axis=-1)
    return Image.fromarray(array.astype(np.uint8), "RGB")


def checkerboard(width: int = 64, height: int = 64) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width]
    board = ((xs // 8 + ys // 8) % 2 * 255).astype(np.uint8)
    return Image.fromarray(np.stack([board] * 3, axis=-1), "RGB")


class Lifecycle:
    """Builds :class:`CaseInputs` and baselines with overrides, and runs :func:`judge` on them."""

    config = CONFIG
    machine = MACHINE
    gradient = staticmethod(gradient)
    checkerboard = staticmethod(checkerboard)

    def inputs(self, *, config: FrozenConfig = CONFIG, tolerances: dict[str, Any] | None = None,
               seconds: float = 1.0, **overrides: Any) -> CaseInputs:
        fields: dict[str, Any] = dict(
            run_id="20261128T000000Z-abcdef", timestamp="2026-11-28T00:00:00+00:00",
            nodeid="tests/test_a.py::test_a[seed0-euler-20steps-cfg7.5]", case_id="seed0-euler-20steps-cfg7.5",
            config=config.to_dict(), config_hash=config.hash, prompt=config.prompt, image=gradient(),
            measurement=Measurement(seconds), machine=MACHINE,
            tolerances=Tolerances().merged(tolerances or {}, source="test"), metric_modes={"lpips": "off"},
            device="cpu", strict_env=False, worker="main", workers=1, pin="cpu-float32",
            baseline_path="baselines/cpu-float32/tests/test_a/test_a/seed0-euler-20steps-cfg7.5.png",
            output_path=".diffbench/runs/20261128T000000Z-abcdef/images/tests/test_a/test_a/seed0-euler-20steps-cfg7.5.png",
            case="tests/test_a/test_a/seed0-euler-20steps-cfg7.5",
        )
        fields.update(overrides)
        return CaseInputs(**fields)

    def baseline(self, inputs: CaseInputs, *, image: Image.Image | None = None, config: FrozenConfig | None = None,
                 seconds: float | None = None, machine: MachineInfo | None = None) -> StoredBaseline:
        """The baseline an earlier run of ``inputs`` would have written, changed where asked."""
        sidecar = dataclasses.replace(inputs.sidecar(), image_sha256="0" * 64)
        if config is not None:
            sidecar = dataclasses.replace(sidecar, config=config.to_dict(), config_hash=config.hash)
        if seconds is not None:
            sidecar = dataclasses.replace(sidecar, measurement=Measurement(seconds))
        if machine is not None:
            sidecar = dataclasses.replace(sidecar, environment=machine, device_name=machine.device_name)
        return StoredBaseline(sidecar, inputs.image if image is None else image)

    def broken(self, message: str = "baseline sidecar x.json is not readable JSON; rewrite it with --diffbench-update") -> BrokenBaseline:
        return BrokenBaseline(message)

    def judge(self, inputs: CaseInputs, baseline: BaselineState, update: str | None = None, *,
              update_timing: bool = False) -> tuple[CaseResult, BaselineAction]:
        """The result and action of :func:`judge` (:meth:`judgement` has the sidecar to write too)."""
        judgement = self.judgement(inputs, baseline, update, update_timing=update_timing)
        return judgement.result, judgement.action

    def judgement(self, inputs: CaseInputs, baseline: BaselineState, update: str | None = None, *,
                  update_timing: bool = False) -> Judgement:
        return judge(inputs, baseline, None if update is None else UpdateMode(update), update_timing=update_timing)


@pytest.fixture
def lifecycle() -> Lifecycle:
    return Lifecycle()
