"""pytest hooks of pytest-diffbench (the plugin's entry point): thin, each hands off to the session.

Without ``--diffbench`` this module imports neither torch nor diffusers: sweeps still expand (so
``--collect-only`` lists the cases) and diffbench tests are skipped with a reason.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import PurePosixPath
from typing import Any, Generator

import pytest

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.plugin import hookspecs
from pytest_diffbench.plugin.keys import CASE_FIXTURE, CASE_KEY, RESULT_KEY, SESSION_KEY
from pytest_diffbench.plugin.options import OptionDeclarations, read_settings
from pytest_diffbench.plugin.session import DiffbenchSession, MachineInfoError
from pytest_diffbench.plugin.xdist import XdistHooks
from pytest_diffbench.report.junit import set_junit_properties
from pytest_diffbench.spec.sweep import SWEEP_MARK, TOLERANCE_MARK, Case, SweepError

pytest_plugins = ["pytest_diffbench.plugin.fixtures"]

SKIP_REASON = "diffbench tests run only with --diffbench"
#: Libraries a diffbench run imports lazily (see pytest_runtest_setup).
IN_PROCESS_PRELOAD = ("numpy", "numpy.fft", "PIL.Image", "pandas", "pandas.io.formats.csvs", "matplotlib.figure",
                      "matplotlib.backends.backend_agg", "scipy.linalg", "skimage.metrics",
                      "skimage.metrics._structural_similarity", "skimage.io", "skimage.data",
                      # diffbench's own lazily imported modules (none imports torch): pytester would drop
                      # them after every in-process run, and each run would import them again
                      "pytest_diffbench.report.artifacts", "pytest_diffbench.judge.lifecycle",
                      "pytest_diffbench.run.case", "pytest_diffbench.store.results")
#: The attribute of a TestReport that carries a case's result to the xdist controller.
REPORT_ATTRIBUTE = "diffbench"
#: The attribute of a TestReport of a diffbench case pytest skipped: why (see DiffbenchSession.add_skip).
SKIP_ATTRIBUTE = "diffbench_skipped"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.register(OptionDeclarations(parser), "diffbench-options")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{SWEEP_MARK}(**axes): diffbench sweep (use @pytest_diffbench.sweep)")
    config.addinivalue_line("markers", f"{TOLERANCE_MARK}(**tolerances): diffbench tolerances (use @pytest_diffbench.tolerance)")
    session = DiffbenchSession(config, read_settings(config))
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(ResultCollector(session), "diffbench-results")
    if session.settings.enabled:  # the noise floor's plugins; imported only for a diffbench run
        from pytest_diffbench.plugin.calibrate import register_calibration

        register_calibration(config, session)
    config.pluginmanager.register(JobList(session), "diffbench-jobs")
    config.pluginmanager.register(BatchPlanner(session), "diffbench-batches")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(lambda: session.folder, session.jobs_of_worker), "diffbench-xdist")


class JobList:
    """Hands the run's diffbench cases to the session once collection ended (after ``-k``, ``-m``
    and every other deselection), deselects the cases a resumed run finished before, and tells
    the session when its first test begins."""

    def __init__(self, session: DiffbenchSession) -> None:
        self.session = session

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.session.folder is None:  # no run: diffbench off, --collect-only
            return
        cases = [(item, _case_of(item)) for item in items if CASE_FIXTURE in getattr(item, "fixturenames", ())]
        jobs = [self.session.job(item, case) for item, case in cases]
        finished = self.session.collected(jobs)
        if finished:
            config.hook.pytest_deselected(items=[item for item in items if item.nodeid in finished])
            items[:] = [item for item in items if item.nodeid not in finished]
        for item, case in cases:  # ssim_vs_most_steps is scored as the cases this process runs finish
            if item.nodeid not in finished:
                self.session.reference.expect(item.nodeid, case)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        """A test began (here or on an xdist worker): the run started, so a stop now pauses it."""
        self.session.tests_began = True


class BatchPlanner:
    """Plans seed batches (``--diffbench-batch``) from the whole collection, before ``-k``, ``-m``
    and a resume deselect anything, so a case's chunk is the same whatever runs."""

    def __init__(self, session: DiffbenchSession) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.session.settings.enabled and self.session.settings.batch > 1:
            self.session.plan_batches([(item.nodeid, _case_of(item)) for item in items
                                       if CASE_FIXTURE in getattr(item, "fixturenames", ())])


def _case_of(item: pytest.Item) -> Case:
    """The sweep case a diffbench item runs (a test without a sweep: the default case)."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get(CASE_FIXTURE, Case()) if callspec is not None else Case()
    return case if isinstance(case, Case) else Case()


class ResultCollector:
    """Collects the results that ride on test reports, from this process or from xdist workers:
    first of all logreport hooks, so a case is journaled before pytest reports it."""

    def __init__(self, session: DiffbenchSession) -> None:
        self.session = session
        #: Node ids whose current attempt pytest-rerunfailures runs again (a report said "rerun").
        self._rerun: set[str] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if data is not None:
            self.session.add_result(CaseResult.from_transport(data), same_attempt=report.when == "teardown")
        skipped = getattr(report, SKIP_ATTRIBUTE, None)
        if skipped is not None:
            self.session.add_skip(report.nodeid, skipped)
        if report.outcome == "rerun":
            self._rerun.add(report.nodeid)
        if report.when == "teardown" and report.nodeid in self._rerun:
            # JUnit's element of an attempt run again carries no diffbench properties: they are
            # the final attempt's (pytest's junitxml reads them from the teardown report)
            self._rerun.discard(report.nodeid)
            report.user_properties[:] = [p for p in report.user_properties if not str(p[0]).startswith("diffbench_")]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Claim the run folder before xdist starts its workers (they are told where it is)."""
    session.config.stash[SESSION_KEY].start()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test that drives diffbench in-process (it uses ``pytester`` and its session imported
    :mod:`pytest_diffbench.testing`): import what a run imports lazily. pytester drops the modules a
    test imported when it ends, and numpy cannot be imported twice in one process, so a second such
    test would fail; imported before pytester's snapshot, they stay."""
    if "pytester" in getattr(item, "fixturenames", ()) and "pytest_diffbench.testing" in sys.modules:
        for name in IN_PROCESS_PRELOAD:
            importlib.import_module(name)


#: Each invalid sweep of the session, by its test's node id: the message of its collection error.
INVALID_SWEEPS = pytest.StashKey[dict[str, str]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Expand a diffbench test's sweep into its cases. An invalid sweep is noted, not raised, so
    that every invalid sweep of a module is reported (see :func:`refuse_invalid_sweeps`)."""
    nodeid = metafunc.definition.nodeid
    uses_fixture = CASE_FIXTURE in metafunc.fixturenames
    swept = metafunc.definition.get_closest_marker(SWEEP_MARK) is not None
    if swept and not uses_fixture:
        problem = f"{nodeid}: @diffbench.sweep needs the test to take the 'diffbench' fixture"
    elif not uses_fixture:
        return
    else:
        try:
            cases = metafunc.config.stash[SESSION_KEY].expand(metafunc.definition)
        except SweepError as exc:
            problem = f"{nodeid}: invalid diffbench sweep: {exc}"
        else:
            if swept:
                metafunc.parametrize(CASE_FIXTURE, cases, ids=[case.id for case in cases])
            return
    metafunc.config.stash.setdefault(INVALID_SWEEPS, {})[nodeid] = problem


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    refuse_invalid_sweeps(config, items)
    if config.stash[SESSION_KEY].settings.enabled:
        refuse_cases_outside_rootdir(config, items)
        refuse_shared_case_paths(config, items)
        return
    for item in items:
        if CASE_FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def refuse_invalid_sweeps(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test with an invalid sweep (noted by :func:`pytest_generate_tests`) becomes one
    collection error naming it, so one run reports them all; its items leave the run. As with
    any collection error, pytest then runs nothing (exit status 2) unless
    ``--continue-on-collection-errors``."""
    invalid = config.stash.get(INVALID_SWEEPS, {})
    reported: set[str] = set()
    for item in [item for item in items if _definition_id(item) in invalid]:
        test = _definition_id(item)
        if test in reported:  # another parameter of the same test (pytest.mark.parametrize)
            items.remove(item)
        else:
            reported.add(test)
            _refuse(config, items, item, invalid[test])


def _definition_id(item: pytest.Item) -> str:
    """The node id of the test function ``item`` was made from (without its parameters)."""
    parent = item.parent.nodeid if item.parent is not None else ""
    return f"{parent}::{getattr(item, 'originalname', item.name)}"


def _refuse(config: pytest.Config, items: list[pytest.Item], item: pytest.Item, message: str) -> None:
    """Take ``item`` out of the run and report ``message`` as its collection error."""
    items.remove(item)
    config.hook.pytest_collectreport(report=pytest.CollectReport(item.nodeid, "failed", message, []))


def refuse_cases_outside_rootdir(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A diffbench case whose test file is not under the rootdir (pytest gives it a node id without
    its file, ``::test_x``, or one with ``..``) becomes a collection error: diffbench stores a
    case's files by its node id, so such cases of different files would share one baseline."""
    for item in [item for item in items if CASE_FIXTURE in getattr(item, "fixturenames", ())]:
        file_part = PurePosixPath(item.nodeid.split("::", 1)[0].replace("\\", "/"))
        if not file_part.parts or file_part.is_absolute() or ".." in file_part.parts:
            _refuse(config, items, item, f"{item.path}::{item.name}: this test file is outside the rootdir "
                    f"{config.rootpath}, and diffbench stores each case's baseline by its path relative to the "
                    "rootdir; move the test under the rootdir or pass --rootdir=<a folder above it>")


def refuse_shared_case_paths(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Two diffbench cases whose files would be one (same case path, letter case ignored, see
    :mod:`pytest_diffbench.store.paths`): the later one becomes a collection error naming both."""
    from pytest_diffbench.store.paths import case_path, case_path_clashes

    cases = [item for item in items if CASE_FIXTURE in getattr(item, "fixturenames", ())]
    clashes = case_path_clashes(item.nodeid for item in cases)
    for earlier, later in clashes:
        item = next(item for item in reversed(items) if item.nodeid == later)
        if earlier == later:  # one node id twice (--keep-duplicates, a file named twice)
            message = (f"{later}: this node id is collected twice, and diffbench would store both cases' baselines "
                       f"and images at {case_path(later)}; name each test file once")
        else:
            same = case_path(earlier) == case_path(later)
            why = ("" if same else ", letter case aside (case-insensitive file systems such as macOS's and "
                   "Windows' would give both one file)")
            message = (f"{later}: diffbench would store this case's baseline and images at {case_path(later)}, the "
                       f"path of {earlier}{why}; give one of them another id (pytest.param(..., id=...)) or rename it")
        _refuse(config, items, item, message)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    """Run the test body, then judge its image: a regression fails the test itself."""
    dcase = pyfuncitem.stash.get(CASE_KEY, None)
    if dcase is None:
        return (yield)
    session = pyfuncitem.config.stash[SESSION_KEY]
    try:
        outcome = yield
        result = session.finish_case(pyfuncitem, dcase)
    except (pytest.skip.Exception, pytest.xfail.Exception, KeyboardInterrupt):
        raise
    except MachineInfoError as exc:  # a user's machine-info hook raised: one line naming it, not our traceback
        result = session.error_result(pyfuncitem, dcase.case, str(exc))
    except BaseException as exc:  # the test body raised, or judging the case broke
        pyfuncitem.stash[RESULT_KEY] = session.error_result(pyfuncitem, dcase.case, f"{type(exc).__name__}: {exc}")
        raise
    pyfuncitem.stash[RESULT_KEY] = result
    if not result.passed:
        pytest.fail(result.failure_text or result.message, pytrace=False)
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the case's result to its report (it travels to the xdist controller with it) and to
    the test's JUnit XML properties: every case that has a result, errors included. After the
    teardown the item lets go of its :class:`~pytest_diffbench.run.case.DiffbenchCase` (and so of
    its image, inputs and arrays; the background writer holds what it still has to write)."""
    report = yield
    session = item.config.stash[SESSION_KEY]
    if report.when == "teardown" and CASE_KEY in item.stash:
        del item.stash[CASE_KEY]  # the case's image and arrays: nothing keeps a finished case's image alive
    result: CaseResult | None = None
    if report.when == "setup" and RESULT_KEY in item.stash:
        del item.stash[RESULT_KEY]  # an earlier attempt's (pytest-rerunfailures)
    if report.when in ("call", "teardown") and RESULT_KEY in item.stash:
        stashed = item.stash[RESULT_KEY]
        result = session.as_reported(stashed, report, call)
        if report.when == "teardown" and result is stashed:
            result = None  # the call's report carried it already
    elif report.when == "setup" and report.failed and CASE_FIXTURE in getattr(item, "fixturenames", ()):
        message = str(call.excinfo.value) if call.excinfo else "setup failed"
        result = session.error_result(item, _case_of(item), f"setup failed: {message}")
    elif report.skipped and report.when in ("setup", "call") and CASE_FIXTURE in getattr(item, "fixturenames", ()):
        setattr(report, SKIP_ATTRIBUTE, _skip_reason(report))  # finished without a result: not left to run
    if result is not None:
        result = result.with_changes(attempts=max(1, getattr(item, "execution_count", 1)))  # pytest-rerunfailures' count
        result = session.with_added_columns(item, result)  # the result_row hooks that apply to this test
        item.stash[RESULT_KEY] = result
        setattr(report, REPORT_ATTRIBUTE, result.to_transport())
        set_junit_properties(item.user_properties, result)  # pytest's junitxml reads them from the teardown report
        if report.when == "teardown":
            set_junit_properties(report.user_properties, result)
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    """Why pytest skipped a case: ``skipped: <reason>`` or, for an xfail that did not run or was
    raised, ``xfailed: <reason>``."""
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        how, reason = "xfailed", str(wasxfail)
    else:
        longrepr = report.longrepr
        how, reason = "skipped", longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
        reason = reason.removeprefix("Skipped: ")
    return f"{how}: {reason}" if reason else how


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the run's files; a case whose files could not be written (in the background, after
    pytest reported it) fails the run."""
    diffbench = session.config.stash[SESSION_KEY]
    diffbench.finish()
    if diffbench.write_failures and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash[SESSION_KEY].summary_lines()
    if lines:
        terminalreporter.section("diffbench")
        for line in lines:
            terminalreporter.write_line(line, yellow=line.startswith("WARNING"))
