"""With LPIPS's gate off (``diffbench_max_lpips = off`` or a test's ``max_lpips=None``), LPIPS is
neither loaded nor warned about, even in the default ``diffbench_lpips = auto`` (issue 10, item 2)."""

from __future__ import annotations

import pytest

from pytest_diffbench.judge.metrics import lpips as lpips_metric


@pytest.fixture
def lpips_loads(monkeypatch) -> list[str]:
    """The devices LPIPS was asked to load on (it then fails as without AlexNet weights)."""
    loads: list[str] = []

    def load(device: str) -> lpips_metric.LpipsScorer:
        loads.append(device)
        raise lpips_metric.LpipsUnavailable(lpips_metric.lpips_advice(lpips_metric.NO_WEIGHTS), lpips_metric.NO_WEIGHTS)

    monkeypatch.setattr(lpips_metric, "load_lpips", load)
    return loads


@pytest.mark.parametrize("where", ["ini", "marker"])
def test_lpips_gate_off_neither_loads_nor_warns(project, lpips_loads, where) -> None:
    if where == "ini":
        project.write_ini(max_lpips="off")
        project.write_tests(project.test("test_case"))
    else:
        project.write_tests(project.test("test_case", decorators=["@diffbench.tolerance(max_lpips=None)"]))
    for update in ("all", None):
        run = project.run(update=update, lpips=None)  # diffbench_lpips = auto, the default
        run.outcome.assert_outcomes(passed=1)
        assert run.results[0].metric_status["lpips"] == "off"
        assert "LPIPS" not in project.text(run.outcome)
    assert lpips_loads == []


def test_with_its_gate_on_lpips_is_tried_and_warned_about_once(project, lpips_loads) -> None:
    project.write_tests(project.test("test_case", sweep="seeds=[0, 1], steps=2"))
    run = project.run(update="all", lpips=None)
    run.outcome.assert_outcomes(passed=2)
    assert lpips_loads
    text = project.text(run.outcome)
    assert text.count("WARNING: LPIPS was not computed") == 1
    assert text.count(lpips_metric.ALEXNET_URL) == 1


def test_required_loads_lpips_even_with_its_gate_off(project, lpips_loads) -> None:
    project.write_ini(max_lpips="off")
    project.write_tests(project.test("test_case"))
    run = project.run(update="all", lpips="required")
    assert lpips_loads and run.results[0].outcome.value == "error"
