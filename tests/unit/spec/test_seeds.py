"""Seed plans (issue 12, item 1): named seeds derived by SHA-256, the same in every process, with
their plan and index kept per case of a sweep, out of the config hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pytest_diffbench as diffbench
from pytest_diffbench.spec.seeds import SEED_LIMIT, SeedPlan, SeedPlanError, seed_plan
from pytest_diffbench.spec.sweep import expand_sweep, sweep

#: The plan "portraits" of 4 seeds: guards the derivation's format (a change of it renames every baseline of a plan).
GOLDEN_PORTRAITS = [560774914, 2929430600, 2971238763, 2130121920]


def test_a_plan_is_the_golden_seeds_of_its_name() -> None:
    assert list(diffbench.seed_plan("portraits", n=4)) == GOLDEN_PORTRAITS


def test_a_plan_is_the_same_in_another_process_with_another_hash_seed() -> None:
    names = [("portraits", 8, ""), ("landscapes ü", 5, ""), ("wild", 1, "2026-11-30")]
    code = ("import json, sys; from pytest_diffbench import seed_plan; "
            "print(json.dumps([list(seed_plan(n, k, salt=s)) for n, k, s in json.loads(sys.argv[1])]))")
    for hash_seed in ("1", "2"):
        child = subprocess.run([sys.executable, "-c", code, json.dumps(names)], capture_output=True, text=True,
                               check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert json.loads(child.stdout) == [list(seed_plan(n, k, salt=s)) for n, k, s in names]


def test_a_plan_holds_distinct_seeds_every_backend_takes() -> None:
    plan = seed_plan("many", n=2000)
    assert len(plan) == len(set(plan)) == 2000
    assert all(isinstance(seed, int) and 0 <= seed < SEED_LIMIT for seed in plan)
    assert list(seed_plan("many", n=10)) == list(plan)[:10]  # a longer plan extends a shorter one


def test_name_and_salt_change_the_seeds_and_the_label() -> None:
    plain, salted = seed_plan("p", n=3), seed_plan("p", n=3, salt="2026-11-30")
    assert set(plain).isdisjoint(salted)
    assert plain.origin(2) == ("p", 2) and salted.origin(0) == ("p@2026-11-30", 0)
    assert seed_plan("p", n=3, salt="2026-11-30") == salted  # the salt is what replays it


def test_plans_join_keeping_each_seeds_origin() -> None:
    joined = seed_plan("fixed", n=3) + seed_plan("fixed-wild", n=1, salt="x")
    assert isinstance(joined, SeedPlan) and len(joined) == 4
    assert [joined.origin(i) for i in range(4)] == [("fixed", 0), ("fixed", 1), ("fixed", 2), ("fixed-wild@x", 0)]
    assert isinstance(joined[1:], SeedPlan) and joined[1:].origin(0) == ("fixed", 1)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": ""}, "name"), ({"name": 3}, "name"), ({"name": "a\nb"}, "name"),
    ({"name": "p", "n": 0}, "n"), ({"name": "p", "n": 2.0}, "n"), ({"name": "p", "n": True}, "n"),
    ({"name": "p", "n": 100_001}, "n"), ({"name": "p", "salt": 5}, "salt"),
])
def test_a_bad_plan_is_one_line_naming_the_argument(kwargs: dict, field: str) -> None:
    with pytest.raises(SeedPlanError) as raised:
        seed_plan(**kwargs)
    message = str(raised.value)
    assert f"seed_plan({field}=" in message and "\n" not in message
    assert isinstance(raised.value, ValueError)


def test_a_sweep_over_a_plan_records_plan_and_index_per_case() -> None:
    plan = seed_plan("portraits", n=2)
    cases = expand_sweep(sweep(seeds=plan, steps=[2, 3]).kwargs, max_cases=100)
    assert [(c.seed, c.seed_plan, c.seed_index, c.steps) for c in cases] == [
        (plan[0], "portraits", 0, 2), (plan[0], "portraits", 0, 3), (plan[1], "portraits", 1, 2), (plan[1], "portraits", 1, 3)]
    # the id is the seed's alone: a seed from a list or from a plan has one baseline
    listed = expand_sweep(sweep(seeds=list(plan), steps=[2, 3]).kwargs, max_cases=100)
    assert [c.id for c in cases] == [c.id for c in listed]
    assert all(c.seed_plan == "" and c.seed_index is None for c in listed)


@pytest.mark.parametrize("seeds", [range(3), [0, 1, 2], (s for s in range(3))])
def test_a_range_a_list_or_an_iterator_are_seeds_without_a_plan(seeds: object) -> None:
    cases = expand_sweep(sweep(seeds=seeds).kwargs, max_cases=100)
    assert [(c.seed, c.seed_plan) for c in cases] == [(0, ""), (1, ""), (2, "")]
