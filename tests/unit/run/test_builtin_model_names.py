"""Built-in models are recorded as ``diffbench/<the name --diffbench-model takes>`` and load by
either name; the shipped model's recorded name is the one the committed baselines hold
(issue 10, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_diffbench.spec.targets import BUILTIN_MODELS

# pytest_diffbench.run.pipelines and .fingerprint import torch and diffusers: imported in the tests,
# so collecting this module does not.

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_a_builtin_is_recorded_by_its_documented_name_and_loads_by_the_recorded_one(name):
    from pytest_diffbench.run.fingerprint import describe_pipeline, model_fingerprint
    from pytest_diffbench.run.pipelines import RANDOM_MODEL_ID, TINY_MODEL_ID, load_pipeline

    loaded = load_pipeline(name)
    recorded = describe_pipeline(loaded)
    assert recorded.model == recorded.vae == f"diffbench/{name}"
    again = load_pipeline(recorded.model)
    assert describe_pipeline(again).model == recorded.model
    assert model_fingerprint(again) == recorded.model_fingerprint
    assert {TINY_MODEL_ID, RANDOM_MODEL_ID} == {f"diffbench/{model}" for model in BUILTIN_MODELS}


def test_the_committed_baselines_hold_the_shipped_model_by_its_recorded_name():
    from pytest_diffbench.run.pipelines import TINY_MODEL_ID

    sidecars = sorted((REPO / "baselines").rglob("*.json"))
    assert sidecars, "the repository ships example baselines"
    assert {json.loads(path.read_text(encoding="utf-8"))["config"]["model"] for path in sidecars} == {TINY_MODEL_ID}
