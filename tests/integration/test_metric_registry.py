"""One registration of a metric reaches everything: a TEST-ONLY metric, registered for one test
with ``REGISTRY.registered(metric)``, gets its results.csv columns, its ini key (validated), its
gate, its lines in the failure text, report.html, JUnit properties, grid labels and plot panel.

What the metric needed: the class below and the one ``REGISTRY.registered(...)`` line; no other
file knows of it.
"""

from __future__ import annotations

import csv
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pytest

from pytest_diffbench.judge.metrics import REGISTRY, Direction, MetricInputs, MetricKind
from pytest_diffbench.report.grids import grid_labels
from pytest_diffbench.report.plot import panels
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.testing import FAKE_PIPELINE_ENV, run_diffbench, use_fake_pipeline

#: FakePipeline's keywords for a run whose every image drifts from its baseline (a quality regression).
DRIFT = json.dumps({"drift": 0.5})
TESTS = '''
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_gen(diffbench):
    diffbench.generate("a red cube")
'''


@dataclass(frozen=True)
class MeanAbsDiff:
    """Mean absolute difference of the RGB values (0 to 255): full-reference, lower is better."""

    name: str = "mean_abs_diff"
    label: str = "MAD"
    kind: MetricKind = MetricKind.FULL_REFERENCE
    direction: Direction = Direction.LOWER_IS_BETTER
    unit: str = ""
    default_tolerance: float | None = 10.0
    valid_tolerance: str = "a number of levels >= 0"
    reports_status: bool = False
    plotted: bool = True

    def accepts(self, tolerance: float) -> bool:
        return tolerance >= 0

    def check_available(self, inputs: MetricInputs) -> None:
        return None

    def compute(self, inputs: MetricInputs) -> float:
        assert inputs.baseline is not None
        return float(np.mean(np.abs(inputs.output.astype(np.float64) - inputs.baseline.astype(np.float64))))


@pytest.fixture
def metric() -> Iterator[MeanAbsDiff]:
    with REGISTRY.registered(MeanAbsDiff()) as registered:  # the one registration line
        yield registered
    assert REGISTRY.get("mean_abs_diff") is None


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """The project's runs use a FakePipeline; $DIFFBENCH_FAKE_PIPELINE and $GITHUB_STEP_SUMMARY are
    unset by tests/conftest.py's autouse fixture."""
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TESTS)
    return pytester


def header(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


@pytest.mark.real_plot  # its plot.png has one panel per plotted score
def test_one_registration_gives_columns_gate_report_junit_labels_and_plot(project, metric, monkeypatch):
    # Only the test metric gates: the built-in quality checks are switched off in the ini file.
    project.makeini("[pytest]\ndiffbench_min_ssim = off\ndiffbench_min_psnr = off\n")
    created = run_diffbench(project, update="all")
    created.outcome.assert_outcomes(passed=2)
    assert {r.scores["mean_abs_diff"] for r in created.results} == {0.0}

    monkeypatch.setenv(FAKE_PIPELINE_ENV, DRIFT)
    run = run_diffbench(project, "--junitxml=junit.xml")
    run.outcome.assert_outcomes(failed=2)
    columns = header(run.folder.results)
    assert columns.index("max_mean_abs_diff") == columns.index("mean_abs_diff") + 1
    result = run.result("seed0")
    assert result.outcome is Outcome.FAILED_QUALITY
    assert result.scores["mean_abs_diff"] > 10.0 and result.tolerances["max_mean_abs_diff"] == 10.0
    assert result.message.startswith("mean_abs_diff")

    text = run.outcome.stdout.str()
    fail_lines = [line.strip() for line in text.splitlines() if line.strip().startswith("mean_abs_diff")]
    assert len(fail_lines) == 2 and all(line.split()[2:] == ["<=", "10", "FAIL"] for line in fail_lines)
    assert not [line for line in text.splitlines() if line.split()[:1] == ["ssim"] and "FAIL" in line]

    page = run.folder.report.read_text(encoding="utf-8")
    assert '<th data-key="mean_abs_diff">MAD</th>' in page

    (case,) = [case for case in ET.parse(project.path / "junit.xml").iter("testcase") if "seed0" in case.get("name", "")]
    properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
    assert float(properties["diffbench_mean_abs_diff"]) == pytest.approx(result.scores["mean_abs_diff"], rel=1e-6)

    assert any(part.startswith("mean_abs_diff ") and part.endswith("<= 10 FAIL") for part in grid_labels(result)[2].split(" · "))
    # SSIM's gate is off: it is not computed, and the grid says "off" as the failure message does.
    assert "ssim - off" in grid_labels(result)[2].split(" · ")
    assert any(line.split() == ["ssim", "-", "off"] for line in text.splitlines())
    assert [name for name, _, _ in panels(run.results)] == ["mean_abs_diff"]
    from PIL import Image

    with Image.open(run.folder.plot) as plot:
        assert plot.width == 640  # one 6.4-inch panel per plotted score at 100 dpi


def test_the_ini_key_is_accepted_and_applied(project, metric, monkeypatch):
    run_diffbench(project, update="all").outcome.assert_outcomes(passed=2)
    monkeypatch.setenv(FAKE_PIPELINE_ENV, DRIFT)
    project.makeini("[pytest]\ndiffbench_min_ssim = off\ndiffbench_min_psnr = off\ndiffbench_max_mean_abs_diff = 250\n")
    run = run_diffbench(project)
    run.outcome.assert_outcomes(passed=2)
    assert {r.tolerances["max_mean_abs_diff"] for r in run.results} == {250.0}


def test_a_negative_ini_value_is_a_usage_error_naming_the_key(project, metric):
    project.makeini("[pytest]\ndiffbench_max_mean_abs_diff = -1\n")
    run = run_diffbench(project)
    assert run.outcome.ret == pytest.ExitCode.USAGE_ERROR
    errors = run.outcome.stderr.str()
    assert "diffbench_max_mean_abs_diff" in errors and "a number of levels >= 0" in errors
    assert not (project.path / ".diffbench").exists()


def test_without_the_registration_there_is_no_such_column(project):
    run = run_diffbench(project, update="all")
    run.outcome.assert_outcomes(passed=2)
    assert "mean_abs_diff" not in header(run.folder.results)
    assert os.environ.get(FAKE_PIPELINE_ENV) is None


CONFTEST_METRIC = '''
from dataclasses import dataclass

import numpy as np

from pytest_diffbench.judge.metrics import REGISTRY, Direction, MetricKind


@dataclass(frozen=True)
class MaxAbsDiff:
    name: str = "max_abs_diff"
    label: str = "max |diff|"
    kind: MetricKind = MetricKind.FULL_REFERENCE
    direction: Direction = Direction.LOWER_IS_BETTER
    unit: str = ""
    default_tolerance: float | None = 0.0
    valid_tolerance: str = "a number of levels >= 0"
    reports_status: bool = False
    plotted: bool = False

    def accepts(self, tolerance):
        return tolerance >= 0

    def check_available(self, inputs):
        return None

    def compute(self, inputs):
        return float(np.max(np.abs(inputs.output.astype(int) - inputs.baseline.astype(int))))


REGISTRY.register(MaxAbsDiff())  # each run imports this file again: registering it again changes nothing
'''


@pytest.fixture
def conftest_metric(project: pytest.Pytester) -> Iterator[pytest.Pytester]:
    """A project whose conftest.py registers a metric when pytest imports it (after the plugin
    declared its ini keys); the registration is undone afterwards."""
    use_fake_pipeline(project, extra=CONFTEST_METRIC)
    try:
        yield project
    finally:
        REGISTRY.unregister("max_abs_diff")


def test_a_metric_registered_in_conftest_gates_and_gets_its_ini_key(conftest_metric: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run_diffbench(conftest_metric, update="all").outcome.assert_outcomes(passed=2)
    monkeypatch.setenv(FAKE_PIPELINE_ENV, DRIFT)
    failed = run_diffbench(conftest_metric)
    failed.outcome.assert_outcomes(failed=2)
    assert "max_abs_diff" in header(failed.folder.results)
    assert all(r.scores["max_abs_diff"] and r.scores["max_abs_diff"] > 0 for r in failed.results)
    failed.outcome.stdout.fnmatch_lines(["*max_abs_diff*<= 0*FAIL*"])
    # Its tolerance key exists although conftest.py was imported after the plugin declared its options.
    conftest_metric.makeini("[pytest]\ndiffbench_max_max_abs_diff = 255\ndiffbench_min_ssim = off\ndiffbench_min_psnr = off\n")
    run_diffbench(conftest_metric).outcome.assert_outcomes(passed=2)
    conftest_metric.makeini("[pytest]\ndiffbench_max_max_abs_diff = -1\n")
    outcome = run_diffbench(conftest_metric).outcome
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "diffbench_max_max_abs_diff" in outcome.stderr.str() and "Traceback" not in outcome.stderr.str()


def test_a_conftest_metric_survives_the_conftest_s_second_import_by_diffbench_accept(
        conftest_metric: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``diffbench accept`` imports conftest.py for its settings and again to collect the tests."""
    from pytest_diffbench.cli.main import main

    run_diffbench(conftest_metric).outcome.assert_outcomes(failed=2)  # no baselines yet
    monkeypatch.chdir(conftest_metric.path)
    assert main(["accept", "latest"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.splitlines()[-1] == "2 created"
    run_diffbench(conftest_metric).outcome.assert_outcomes(passed=2)


def test_another_metric_under_a_conftest_metric_s_name_is_one_line(conftest_metric: pytest.Pytester) -> None:
    other = CONFTEST_METRIC.replace("MaxAbsDiff", "Other").replace('label: str = "max |diff|"', 'label: str = "other"')
    use_fake_pipeline(conftest_metric, extra=CONFTEST_METRIC + other)  # one run, two declarations of one name
    outcome = run_diffbench(conftest_metric).outcome
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in outcome.stderr.str().splitlines() if line.strip()]
    assert line.startswith("ERROR: diffbench: metric 'max_abs_diff' (conftest.Other) cannot be registered: ")
    assert "another metric of that name, 'max_abs_diff' (conftest.MaxAbsDiff), is already registered" in line


@pytest.mark.parametrize(("name", "says"), [
    ("steps", "its value column 'steps' is a results.csv column of diffbench"),
    ("outcome", "its value column 'outcome' is a results.csv column of diffbench"),
    ("cases", "its ini key 'diffbench_max_cases' is an ini key of diffbench"),
    ("max-diff", "must be lowercase letters, digits and underscores, starting with a letter"),
])
def test_a_conftest_metric_whose_name_diffbench_cannot_use_is_one_line(project: pytest.Pytester, name: str,
                                                                        says: str) -> None:
    """Before, ``steps`` wrote a results.csv diffbench could not read back and ``outcome`` ended
    in an INTERNALERROR."""
    use_fake_pipeline(project, extra=CONFTEST_METRIC.replace('"max_abs_diff"', repr(name)))
    outcome = run_diffbench(project, update="all").outcome
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in outcome.stderr.str().splitlines() if line.strip()]
    assert line.startswith("ERROR: diffbench: metric ") and says in line
    assert REGISTRY.get(name) is None and not (project.path / ".diffbench").exists()


@pytest.mark.subprocess
def test_a_plugin_metric_that_diffbench_refuses_after_it_loaded_is_one_line(project: pytest.Pytester) -> None:
    """A ``-p`` plugin is imported before diffbench's own modules, which reserve their names as
    they load (a child started from scratch): before, diffbench's plugin failed to load with a traceback."""
    project.makepyfile(early_metric=CONFTEST_METRIC.replace('"max_abs_diff"', '"outcome"'))
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-p", "early_metric", "--diffbench")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.str().splitlines() if line.strip()] == [
        "ERROR: diffbench: metric 'outcome' (early_metric.MaxAbsDiff) cannot be registered: 'outcome', its value "
        "column, is a results.csv column of diffbench; give the metric another name"]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_a_metric_registered_by_a_nested_conftest_is_refused_saying_where_to_register(
        pytester: pytest.Pytester, workers: list[str]) -> None:
    """sub/conftest.py is imported at collection, after the run read its tolerances (and under
    xdist only by the workers): before, every case errored with a KeyError of its tolerance."""
    use_fake_pipeline(pytester)
    pytester.makepyfile(**{"sub/test_gen": TESTS, "sub/conftest": CONFTEST_METRIC})
    run = run_diffbench(pytester, "-p", "xdist", *workers, update="all")
    assert run.outcome.ret == (pytest.ExitCode.TESTS_FAILED if workers else pytest.ExitCode.INTERRUPTED)
    text = run.outcome.stdout.str()
    assert "KeyError" not in text and "Traceback" not in text and "passed" not in text
    (line,) = [line for line in text.splitlines() if line.startswith("diffbench: metric 'max_abs_diff'")]
    assert "was registered after pytest read diffbench's settings" in line
    assert line.endswith("register it in the rootdir's conftest.py or in a plugin, which pytest loads before it configures")
    assert REGISTRY.get("max_abs_diff") is None


def test_a_metric_registered_while_cases_run_is_refused(project: pytest.Pytester) -> None:
    """A test of a ``--diffbench`` run that registers a metric: the run's tolerances lack it."""
    # The metric's class is defined in the test module itself: no module imports a test module by name.
    project.makepyfile(test_late=CONFTEST_METRIC.replace("REGISTRY.register(MaxAbsDiff())",
                                                         "def test_registers():\n    REGISTRY.register(MaxAbsDiff())"))
    run = run_diffbench(project, update="all")
    run.outcome.assert_outcomes(passed=2, failed=1)
    run.outcome.stdout.fnmatch_lines(["E   *LateRegistration: metric 'max_abs_diff' (test_late.MaxAbsDiff) was registered "
                                      "after pytest read diffbench's settings*"])
    assert REGISTRY.get("max_abs_diff") is None
    # Without --diffbench nothing reads the tolerances: allowed (as this suite does).
    try:
        project.runpytest_inprocess("-p", "no:cacheprovider", "test_late.py").assert_outcomes(passed=1)
        assert REGISTRY.get("max_abs_diff") is not None
    finally:
        REGISTRY.unregister("max_abs_diff")


def test_a_run_without_diffbench_takes_a_nested_conftest_metric(pytester: pytest.Pytester) -> None:
    """A plain run judges nothing: a sub-folder's conftest.py that registers a metric blocks none of its tests."""
    use_fake_pipeline(pytester)
    pytester.makepyfile(**{"sub/test_gen": TESTS, "sub/conftest": CONFTEST_METRIC, "sub/test_plain": "def test_plain(): pass\n"})
    try:
        pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=2)
    finally:
        REGISTRY.unregister("max_abs_diff")


#: conftest.py source: a metric that cannot run, whose MetricUnavailable gives a short reason and a
#: longer message but has no ``advice`` method (LPIPS has one) to rebuild the message from the reason.
CONFTEST_UNAVAILABLE = CONFTEST_METRIC.replace("REGISTRY.register(MaxAbsDiff())", '''
from pytest_diffbench.judge.metrics import MetricUnavailable


@dataclass(frozen=True)
class Weightless(MaxAbsDiff):
    name: str = "weightless"
    label: str = "Weightless"
    reports_status: bool = True

    def check_available(self, inputs):
        raise MetricUnavailable("Weightless needs /opt/weightless.bin: download it there, or set diffbench_weightless = off",
                                "no weights")


REGISTRY.register(Weightless())
''')


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_an_unavailable_metric_without_advice_warns_its_message_and_records_its_short_reason(
        project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: tuple[str, ...]) -> None:
    from pytest_diffbench.judge import metrics

    monkeypatch.setattr(metrics, "_UNAVAILABLE_MESSAGES", {})  # none kept by an earlier run of this process
    use_fake_pipeline(project, extra=CONFTEST_UNAVAILABLE)
    try:
        run = run_diffbench(project, *workers, update="all")
    finally:
        REGISTRY.unregister("weightless")
    run.outcome.assert_outcomes(passed=2)
    warnings = [line for line in run.outcome.outlines if line.startswith("WARNING: Weightless")]
    assert warnings == ["WARNING: Weightless was not computed: Weightless needs /opt/weightless.bin: download it "
                        "there, or set diffbench_weightless = off"]
    with open(run.folder.results, newline="", encoding="utf-8") as handle:
        assert {row["weightless_status"] for row in csv.DictReader(handle)} == {"unavailable: no weights"}
