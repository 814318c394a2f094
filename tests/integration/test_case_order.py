"""The terminal's listings of cases (the speed table, the baseline listing) share report.html's
order: by test, then by case with numbers by value, so ``2steps`` comes before ``10steps``."""

from __future__ import annotations

import re

ORDER = ["test_a[seed2-euler-2steps-cfg7.5]", "test_a[seed2-euler-10steps-cfg7.5]",
         "test_a[seed10-euler-2steps-cfg7.5]", "test_a[seed10-euler-10steps-cfg7.5]",
         "test_b[seed2-euler-2steps-cfg7.5]"]


def shown_order(text: str) -> list[str]:
    """The cases of ORDER in the order ``text`` first names each."""
    found = {case: text.index(case) for case in ORDER}
    return sorted(found, key=found.__getitem__)


def test_cases_are_listed_by_test_then_case_with_numbers_by_value(project) -> None:
    project.write_tests(project.test("test_b", sweep="seeds=[2], steps=2"),
                        project.test("test_a", sweep="seeds=[10, 2], steps=[10, 2]"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=5)
    text = project.text(run.outcome)
    summary = text[text.index("diffbench: 5 cases"):]
    table = summary[:summary.index("results: ")]
    assert shown_order(table) == ORDER
    listing = summary[summary.index("diffbench: baselines:"):]
    created = "\n".join(line for line in listing.splitlines() if re.match(r"\s+created:", line))
    assert shown_order(created) == ORDER
