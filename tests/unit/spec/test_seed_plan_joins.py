"""Seed plan labels are unambiguous ("@" only separates the salt), one name in two Unicode
spellings is one plan, and plain seeds join a plan with ``+`` from either side."""

from __future__ import annotations

import pytest

from pytest_diffbench.spec.seeds import SeedPlan, SeedPlanError, seed_plan
from pytest_diffbench.spec.sweep import expand_sweep


def test_a_name_with_an_at_sign_is_refused_naming_the_salted_call() -> None:
    with pytest.raises(SeedPlanError) as caught:
        seed_plan("x@2026-11-30", n=2)
    message = str(caught.value)
    assert "\n" not in message and "'@'" in message and "seed_plan('x', salt='2026-11-30')" in message
    assert seed_plan("x", n=2, salt="a@b").origin(0) == ("x@a@b", 0)  # a salt may hold "@": the first one splits


@pytest.mark.parametrize("nfc, nfd", [("caf\u00e9", "cafe\u0301"), ("\u00c5ngstr\u00f6m", "A\u030angstro\u0308m")])
def test_both_unicode_spellings_of_a_name_or_salt_are_one_plan(nfc: str, nfd: str) -> None:
    assert seed_plan(nfd, n=3) == seed_plan(nfc, n=3)
    assert seed_plan("p", n=3, salt=nfd) == seed_plan("p", n=3, salt=nfc)
    assert seed_plan(nfd, n=1).origin(0) == (nfc, 0)


@pytest.mark.parametrize("plain", [[0, 1, 2], (0, 1, 2), range(3)])
def test_plain_seeds_join_a_plan_from_either_side_without_a_plan(plain: object) -> None:
    wild = seed_plan("wild", n=1, salt="2026-11-30")
    before, after = plain + wild, wild + plain  # type: ignore[operator]
    assert isinstance(before, SeedPlan) and isinstance(after, SeedPlan)
    assert list(before) == [0, 1, 2, *wild] and list(after) == [*wild, 0, 1, 2]
    assert [before.origin(i) for i in range(4)] == [("", None)] * 3 + [("wild@2026-11-30", 0)]
    cases = expand_sweep({"seeds": before}, max_cases=10)
    assert [(case.seed, case.seed_plan, case.seed_index) for case in cases] == [
        (0, "", None), (1, "", None), (2, "", None), (wild[0], "wild@2026-11-30", 0)]
    assert [case.id for case in cases] == [case.id for case in expand_sweep({"seeds": [0, 1, 2, wild[0]]}, max_cases=10)]


@pytest.mark.parametrize("bad", [["x"], [-1], [True], [2**63]])
def test_a_list_joined_to_a_plan_holding_no_seed_is_one_line(bad: list[object]) -> None:
    with pytest.raises(SeedPlanError, match=r"^seed_plan\(\.\.\.\) \+ .* is not a seed; seeds are integers"):
        seed_plan("p", n=1) + bad


def test_other_values_joined_to_a_plan_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="unsupported operand"):
        seed_plan("p", n=1) + 5  # type: ignore[operator]
