"""Seed batching's plan (spec.batches) and its config field (issue 13, item 4): chunks are a pure
function of the collection, cases that differ in anything but the seed never share one, and the
batch size joins the config only when above 1 (baselines made unbatched keep their hashes, and
are stale, naming ``batch``, for a batched case)."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_diffbench.judge.checks import judge_identity
from pytest_diffbench.spec.batches import BatchPlan, group_of, plan_batches
from pytest_diffbench.spec.config import FrozenConfig
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.spec.seeds import seed_plan
from pytest_diffbench.spec.sweep import Case, expand_sweep
from pytest_diffbench.spec.sweep import sweep as sweep_of


def collected(test: str, **sweep: object) -> list[tuple[str, Case]]:
    """(node id, case) of a sweep's cases as pytest collects them."""
    return [(f"t.py::{test}[{case.id}]", case) for case in expand_sweep(sweep_of(**sweep).mark.kwargs, max_cases=1000)]


def test_the_seeds_of_one_sweep_point_are_chunked_in_collection_order() -> None:
    cases = collected("test_a", seeds=[7, 3, 9, 1, 5], steps=2)
    plan = plan_batches(cases, 2)
    chunks = [plan.get(nodeid) for nodeid, _ in cases]
    assert [chunk.seeds if chunk else None for chunk in chunks] == [(7, 3), (7, 3), (9, 1), (9, 1), None]
    assert chunks[0] is chunks[1] and chunks[2] is not chunks[0]
    assert [chunk.size for chunk in plan.chunks] == [2, 2] and len(plan) == 4


def test_cases_that_differ_in_anything_but_the_seed_never_share_a_chunk() -> None:
    cases = collected("test_a", seeds=[0, 1, 2], samplers=["euler", "ddim"], cfg=[5, 7.5], width=[64, 96], steps=2)
    cases += [(f"t.py::test_a[big-{case.id}]", case) for _, case in collected("test_a", seeds=[0, 1, 2], steps=2)]
    cases += collected("test_b", seeds=[0, 1, 2], steps=2)
    plan = plan_batches(cases, 4)
    for chunk in plan.chunks:
        members = [case for nodeid, case in cases if plan.get(nodeid) is chunk]
        assert len(members) == 3 and sorted(case.seed for case in members) == [0, 1, 2]
        assert len({(case.sampler, case.steps, case.cfg, case.extra) for case in members}) == 1
    assert len(plan.chunks) == 2 * 2 * 2 + 2  # every sweep point of test_a, the other param, test_b
    assert len({chunk.group for chunk in plan.chunks}) == len(plan.chunks)


def test_a_seed_plan_batches_like_a_list_and_a_case_without_a_seed_in_its_id_runs_alone() -> None:
    plan = seed_plan("portraits", n=3)
    cases = collected("test_p", seeds=plan, steps=2)
    assert plan_batches(cases, 3).get(cases[0][0]).seeds == tuple(plan)
    assert group_of("t.py::test_plain", Case()) is None
    assert plan_batches([("t.py::test_plain", Case())], 4).get("t.py::test_plain") is None


def test_the_plan_is_the_same_for_any_run_of_the_same_collection_and_one_means_no_batching() -> None:
    cases = collected("test_a", seeds=range(10), samplers=["euler", "ddim"], steps=2)
    first, second = plan_batches(cases, 4), plan_batches(list(cases), 4)
    assert [(c.group, c.index, c.seeds) for c in first.chunks] == [(c.group, c.index, c.seeds) for c in second.chunks]
    assert len(plan_batches(cases, 1)) == 0 and BatchPlan().get(cases[0][0]) is None
    with pytest.raises(ValueError, match="--diffbench-batch must be a positive integer"):
        plan_batches(cases, 0)


CONFIG = FrozenConfig(
    model="tiny-sd", model_fingerprint="abc", vae="", loras=(), controlnets=(), prompt="a red cube",
    negative_prompt=None, seed=3, sampler="Euler", steps=2, cfg=7.5, width=64, height=64,
    workflow="StableDiffusionPipeline", workflow_version="1", dtype="float32", device="cpu",
)


def test_batch_one_leaves_the_config_and_hash_as_before_and_a_batch_changes_them() -> None:
    assert "batch" not in CONFIG.to_dict() and dataclasses.replace(CONFIG, batch=1).hash == CONFIG.hash
    batched = dataclasses.replace(CONFIG, batch=4)
    assert batched.to_dict()["batch"] == 4 and batched.hash != CONFIG.hash


def test_an_unbatched_baseline_is_stale_for_a_batched_case_and_the_message_names_batch() -> None:
    batched = dataclasses.replace(CONFIG, batch=4)
    verdict = judge_identity(batched.to_dict(), batched.hash, CONFIG.to_dict(), CONFIG.hash, {}, False)
    assert verdict is not None and verdict.outcome is Outcome.STALE_BASELINE
    assert "  batch: <absent> -> 4" in verdict.reasons[0].splitlines() + list(verdict.reasons)
