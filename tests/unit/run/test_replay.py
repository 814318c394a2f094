"""What a frozen config alone cannot rebuild (run/replay.py's replay_problem): one line saying why."""

from __future__ import annotations

import pytest

from pytest_diffbench.run.replay import replay_problem

#: A config a diffusers pipeline made, with nothing only the test's fixture can rebuild.
PLAIN = {"model": "diffbench/diffbench-tiny", "workflow": "StableDiffusionPipeline", "seed": 0, "sampler": "Euler",
         "steps": 2, "cfg": 7.5, "pipeline_kwargs": {"strength": 0.5}}


@pytest.mark.parametrize(("change", "why"), [
    ({"refiner": {"model": "r", "handoff": 0.8}}, "a two-stage case (diffbench.two_stage)"),
    ({"loras": ["pixel-art"]}, "LoRA adapters are loaded by the test's fixture"),
    ({"adapters": {"pixel": {"fused": False}}}, "LoRA adapters are loaded by the test's fixture"),
    ({"controlnets": ["canny"]}, "ControlNets are loaded by the test's fixture"),
    ({"pipeline_kwargs": {"ip_adapter_image": {"sha256": "0", "size": [8, 8], "mode": "RGB", "name": "a.png"}}},
     "ip_adapter_image needs an IP-Adapter loaded"),
    ({"pipeline_kwargs": {"added_cond_kwargs": {"image_embeds": {"array": "torch", "shape": [1, 4], "dtype": "float32",
                                                                  "~values": {}}}}},
     "the array or tensor input added_cond_kwargs is recorded by a summary"),
    ({"workflow": "MyOwnPipeline"}, "its pipeline MyOwnPipeline is not a diffusers pipeline class"),
])
def test_what_only_the_test_s_fixture_can_rebuild_is_refused_saying_why(change, why) -> None:
    assert replay_problem(PLAIN) is None
    problem = replay_problem({**PLAIN, **change})
    assert problem is not None and problem.startswith(why) and "\n" not in problem
