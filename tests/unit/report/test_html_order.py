"""report.html's rows in test then case order, numbers by value, whatever characters the ids hold."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pytest_diffbench.report.html import render_report
from pytest_diffbench.store.run_folder import RunFolder


def test_rows_are_in_test_then_case_order_with_step_counts_by_value(tmp_path: Path, make_result) -> None:
    results = [make_result(0, "Euler", steps, test=test) for test in ("t.py::test_b", "t.py::test_a") for steps in (20, 4, 10)]
    results.append(make_result(0, "Euler", 4, test="t.py::test_a").with_changes(nodeid="t.py::test_a[x²-4]"))
    page = render_report(RunFolder(tmp_path / "run"), results, {})
    rows = json.loads(re.search(r'id="diffbench-rows">(.*?)</script>', page, re.S).group(1))
    assert [(row["test"], row["case"]) for row in rows] == [
        ("t.py::test_a", "seed0-euler-4steps-cfg7.5"), ("t.py::test_a", "seed0-euler-10steps-cfg7.5"),
        ("t.py::test_a", "seed0-euler-20steps-cfg7.5"), ("t.py::test_a", "x²-4"),
        ("t.py::test_b", "seed0-euler-4steps-cfg7.5"), ("t.py::test_b", "seed0-euler-10steps-cfg7.5"),
        ("t.py::test_b", "seed0-euler-20steps-cfg7.5")]
