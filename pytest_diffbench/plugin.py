"""pytest hooks and fixtures of pytest-diffbench: thin, each hands off to the session.

Without ``--diffbench`` this module imports neither torch nor diffusers: sweeps still expand
(so ``--collect-only`` lists the cases) and diffbench tests are skipped with a reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

import pytest

from pytest_diffbench.options import add_options, read_settings
from pytest_diffbench.session import RUN_DIR_KEY, RUN_ID_KEY, DiffbenchSession
from pytest_diffbench.summary import junit_properties
from pytest_diffbench.sweep import SWEEP_MARK, TOLERANCE_MARK, Case, SweepError

if TYPE_CHECKING:
    import torch

    from pytest_diffbench.case import DiffbenchCase

SESSION_KEY = pytest.StashKey[DiffbenchSession]()
CASE_KEY = pytest.StashKey["DiffbenchCase"]()
RECORD_KEY = pytest.StashKey[dict]()
CASE_FIXTURE = "_diffbench_case"
SKIP_REASON = "diffbench tests run only with --diffbench"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{SWEEP_MARK}(**axes): diffbench sweep (use @pytest_diffbench.sweep)")
    config.addinivalue_line("markers", f"{TOLERANCE_MARK}(**tolerances): diffbench tolerances (use @pytest_diffbench.tolerance)")
    session = DiffbenchSession(config, read_settings(config))
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(RecordCollector(session), "diffbench-records")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "diffbench-xdist")


class RecordCollector:
    """Collects the records that ride on test reports, from this process or xdist workers."""

    def __init__(self, session: DiffbenchSession) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "diffbench", None)
        if record is not None:
            self.session.add_record(record)


class XdistHooks:
    """Registered only when xdist is present: its hooks are unknown to pytest otherwise."""

    def __init__(self, session: DiffbenchSession) -> None:
        self.session = session

    def pytest_configure_node(self, node: Any) -> None:
        """Workers write their images into the controller's run folder."""
        if self.session.run_dir is not None:
            node.workerinput[RUN_ID_KEY] = self.session.run_id
            node.workerinput[RUN_DIR_KEY] = str(self.session.run_dir)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    uses_fixture = CASE_FIXTURE in metafunc.fixturenames
    if metafunc.definition.get_closest_marker(SWEEP_MARK) and not uses_fixture:
        pytest.fail(f"{metafunc.definition.nodeid}: @diffbench.sweep needs the test to take the 'diffbench' fixture", pytrace=False)
    if not uses_fixture:
        return
    try:
        cases = metafunc.config.stash[SESSION_KEY].expand(metafunc.definition)
    except SweepError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:  # raised outside the except block, so pytest shows the message alone
        pytest.fail(f"{metafunc.definition.nodeid}: invalid diffbench sweep: {error}", pytrace=False)
    if metafunc.definition.get_closest_marker(SWEEP_MARK):
        metafunc.parametrize(CASE_FIXTURE, cases, ids=[case.id for case in cases])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash[SESSION_KEY].settings.enabled:
        return
    for item in items:
        if CASE_FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    """Run the test body, then compare its image: a regression fails the test itself."""
    dcase = pyfuncitem.stash.get(CASE_KEY, None)
    if dcase is None:
        return (yield)
    session = pyfuncitem.config.stash[SESSION_KEY]
    try:
        result = yield
        record, failure = session.finish_case(pyfuncitem, dcase)
    except (pytest.skip.Exception, pytest.xfail.Exception, KeyboardInterrupt):
        raise
    except BaseException as exc:  # the test body raised, or the evaluation itself broke
        pyfuncitem.stash[RECORD_KEY] = session.error_record(pyfuncitem, dcase.case, f"{type(exc).__name__}: {exc}")
        raise
    pyfuncitem.stash[RECORD_KEY] = record
    pyfuncitem.user_properties.extend(junit_properties(record))  # shown by CI systems reading JUnit XML
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the case's record to its report: it travels to the xdist controller with it."""
    report = yield
    if report.when == "call" and RECORD_KEY in item.stash:
        report.diffbench = item.stash[RECORD_KEY]  # type: ignore[attr-defined]
    elif report.when == "setup" and report.failed and CASE_FIXTURE in getattr(item, "fixturenames", ()):
        case = item.callspec.params.get(CASE_FIXTURE, Case()) if hasattr(item, "callspec") else Case()
        message = str(call.excinfo.value) if call.excinfo else "setup failed"
        report.diffbench = item.config.stash[SESSION_KEY].error_record(item, case, f"setup failed: {message}")  # type: ignore[attr-defined]
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[SESSION_KEY].finish()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash[SESSION_KEY].summary_lines()
    if lines:
        terminalreporter.section("diffbench")
        for line in lines:
            terminalreporter.write_line(line, yellow=line.startswith("WARNING"))


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def _diffbench_case() -> Case:
    """The case of a test without a sweep; a sweep parametrizes this fixture away."""
    return Case()


@pytest.fixture(scope="session")
def diffbench_device(pytestconfig: pytest.Config) -> "torch.device":
    """The device of the diffbench_pipeline fixture (``--diffbench-device``, ``auto`` picks CUDA when present)."""
    from pytest_diffbench.pipelines import resolve_device

    # read_settings has checked the value: resolve_device cannot refuse it.
    return resolve_device(pytestconfig.stash[SESSION_KEY].settings.device)


@pytest.fixture(scope="session")
def diffbench_pipeline(pytestconfig: pytest.Config, diffbench_device: "torch.device") -> Any:
    """The pipeline under test: ``--diffbench-model`` (the shipped diffbench-tiny by default).

    Override it in conftest.py with your own (session scope) for full control of loading.
    """
    from pytest_diffbench.pipelines import default_dtype, load_pipeline, parse_dtype

    settings = pytestconfig.stash[SESSION_KEY].settings
    # read_settings has checked the dtype name against DTYPE_NAMES: parse_dtype cannot refuse it.
    dtype = default_dtype(diffbench_device) if settings.dtype == "auto" else parse_dtype(settings.dtype)
    try:
        return load_pipeline(settings.model, device=diffbench_device, dtype=dtype, root=pytestconfig.rootpath)
    except ValueError as exc:
        raise pytest.UsageError(f"diffbench_model: {exc}") from None


@pytest.fixture
def diffbench(request: pytest.FixtureRequest, _diffbench_case: Case, diffbench_pipeline: Any) -> "DiffbenchCase":
    """One case of the sweep: ``generate(prompt, negative_prompt=None, **pipeline_kwargs)``."""
    dcase = request.config.stash[SESSION_KEY].start_case(request.node, _diffbench_case, diffbench_pipeline)
    request.node.stash[CASE_KEY] = dcase
    return dcase
