"""The case column of the terminal table and summary.md tells apart cases that share a test name
and case id in two files (``a/test_x.py::test_c[...]``, ``b/test_x.py::test_c[...]``), and stays
the short id where it is unique."""

from __future__ import annotations

from typing import Any

SWEEP = "import pytest_diffbench as diffbench\n\n\n@diffbench.sweep(seeds=[0, 1], steps=2)\ndef test_c(diffbench):\n" \
        "    diffbench.generate('a red circle')\n"
CASES = ("test_c[seed0-euler-2steps-cfg7.5]", "test_c[seed1-euler-2steps-cfg7.5]")


def test_cases_that_share_a_name_in_two_files_are_told_apart_and_unique_ones_stay_short(project: Any) -> None:
    for package in ("a", "b"):
        project.pytester.mkpydir(package)
        (project.path / package / "test_x.py").write_text(SWEEP, encoding="utf-8")
    project.write_tests("@diffbench.sweep(seeds=0, steps=2)\ndef test_other(diffbench):\n"
                        "    diffbench.generate('a blue square')\n", module="test_y")
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=5)
    rows = [line.split()[0] for line in run.outcome.outlines if line.split()[1:2] == ["passed"]]
    labelled = [f"{package}/test_x.py::{case}" for package in ("a", "b") for case in CASES]
    assert rows == [*labelled, "test_other[seed0-euler-2steps-cfg7.5]"]
    speed = run.folder.summary.read_text(encoding="utf-8").split("### Speed", 1)[1]
    assert [line.split(" | ")[0].strip("| ") for line in speed.splitlines() if " | passed | " in line] == rows

    for package in ("a", "b"):  # failing cases: summary.md's failure table labels them alike
        (project.path / package / "test_x.py").write_text(SWEEP.replace("red circle", "green circle"), encoding="utf-8")
    failing = project.run()
    summary = failing.folder.summary.read_text(encoding="utf-8").split("### Speed", 1)[0]
    assert all(f"`{label}`" in summary for label in labelled)
