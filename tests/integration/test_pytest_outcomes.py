"""Each diffbench case's row, the terminal line's counts and the JUnit XML agree with pytest's own
outcome of the test: a teardown error, a strict xfail that passes, an xfail, a skip in the body,
and pytest-rerunfailures' reruns (in one process and under xdist)."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

MODULE = '''
import pytest
import pytest_diffbench as diffbench


def first_attempt(name):
    """True the first time a test of this name asks (a flaky test's first try)."""
    import pathlib
    flag = pathlib.Path(__file__).with_name(name + ".flag")
    if flag.exists():
        return False
    flag.write_text("tried")
    return True


@diffbench.sweep(seeds=0, steps=2)
def test_flaky(diffbench):
    diffbench.generate("a red cube")
    if first_attempt("test_flaky"):
        raise RuntimeError("flaky once")


@diffbench.sweep(seeds=0, steps=2)
def test_always_fail(diffbench):
    diffbench.generate("a green cube")
    raise RuntimeError("always")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")


@diffbench.sweep(seeds=0, steps=2)
def test_teardown_fail(diffbench, broken_teardown):
    diffbench.generate("a white cube")


@diffbench.sweep(seeds=0, steps=2)
def test_skip_after(diffbench):
    diffbench.generate("a black cube")
    pytest.skip("skipped after generate")


@diffbench.sweep(seeds=0, steps=2)
@pytest.mark.xfail(reason="known")
def test_xfail(diffbench):
    diffbench.generate("a yellow cube")
    raise RuntimeError("x")


@diffbench.sweep(seeds=0, steps=2)
@pytest.mark.xfail(reason="known", strict=True)
def test_xpass(diffbench):
    diffbench.generate("a yellow cube 2")


@diffbench.sweep(seeds=0, steps=2)
@pytest.mark.xfail(reason="not strict")
def test_loose_xpass(diffbench):
    diffbench.generate("a purple cube")
'''

#: (outcome, message) of each case's row, by test name.
ROWS = {
    "test_flaky": ("passed", ""),
    "test_always_fail": ("error", "RuntimeError: always"),
    "test_teardown_fail": ("error", "teardown failed: RuntimeError: teardown broke"),
    "test_xfail": ("xfailed", "xfailed (known): RuntimeError: x"),
    "test_xpass": ("error", "the image passed but pytest failed the test: [XPASS(strict)] known"),
    "test_loose_xpass": ("passed", ""),
}


def junit_cases(path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(test name, child element tags other than properties, diffbench_* properties) of each <testcase>."""
    found = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        properties = {p.get("name", ""): p.get("value", "") for p in case.iter("property")
                      if p.get("name", "").startswith("diffbench_")}
        found.append((case.get("name", "").split("[")[0], [child.tag for child in case if child.tag != "properties"],
                      properties))
    return found


@pytest.mark.parametrize("workers", [(), ("-n", "1")], ids=["one process", "xdist"])
def test_rows_counts_and_junit_agree_with_pytest(project, workers) -> None:
    """Under xdist each test runs on one worker, which reports its outcome to the controller (the
    results keyed by node id): one worker process shows whether the controller agrees with pytest."""
    project.write_tests(MODULE)
    run = project.run(*workers, "--junitxml=junit.xml", update="all")
    text = project.text(run.outcome)
    # pytest counts test_teardown_fail both passed (its call) and error (its teardown)
    run.outcome.assert_outcomes(passed=1, failed=3, errors=1, skipped=1, xfailed=1, xpassed=1)
    rows = {r.short_id.split("[")[0]: (r.outcome.value, r.message) for r in run.results}
    expected = {**ROWS, "test_flaky": ("error", "RuntimeError: flaky once")}  # no rerun: its first try fails
    assert rows == expected
    assert "diffbench: 6 cases: 4 error, 1 passed, 1 xfailed" in text
    cases = junit_cases(project.path / "junit.xml")
    for name, (outcome, _) in expected.items():
        properties = [p for case, _, p in cases if case == name and p]
        assert [p["diffbench_outcome"] for p in properties] == [outcome], name
        assert properties[0]["diffbench_attempts"] == "1"
    teardown = [children for case, children, p in cases if case == "test_teardown_fail" and p]
    assert teardown == [["error"]]  # pytest's <error> beside diffbench_outcome=error


def test_under_reruns_each_attempt_is_pytests_element_and_the_last_carries_diffbench(project) -> None:
    project.write_tests(MODULE)
    run = project.run("-p", "rerunfailures", "--reruns", "1", "--junitxml=junit.xml", update="all")
    text = project.text(run.outcome)
    counts = {key: value for key, value in run.outcome.parseoutcomes().items() if not key.startswith("warning")}
    assert counts["rerun"] == 4 and counts["xfailed"] == 1 and counts["skipped"] == 1, counts
    rows = {r.short_id.split("[")[0]: (r.outcome.value, r.message, r.attempts) for r in run.results}
    assert {name: row[:2] for name, row in rows.items()} == ROWS
    assert {name: row[2] for name, row in rows.items()} == {
        "test_flaky": 2, "test_always_fail": 2, "test_teardown_fail": 2, "test_xfail": 1, "test_xpass": 2,
        "test_loose_xpass": 1}
    assert "diffbench: 6 cases: 3 error, 2 passed, 1 xfailed, 4 rerun" in text
    cases = junit_cases(project.path / "junit.xml")
    for name, (outcome, _, attempts) in rows.items():
        elements = [p for case, _, p in cases if case == name]
        assert len(elements) == attempts, name  # as pytest-rerunfailures writes any test
        assert [p.get("diffbench_outcome") for p in elements] == [None] * (attempts - 1) + [outcome], name
        assert elements[-1]["diffbench_attempts"] == str(attempts)
