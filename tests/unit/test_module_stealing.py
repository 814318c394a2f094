"""The suite's worksteal scheduler (tests/suite_plugin/module_stealing.py) steals whole modules."""

from __future__ import annotations

import pytest
from module_stealing import whole_modules  # tests/suite_plugin

COLLECTION = ["a.py::t1", "a.py::t2", "b.py::t1", "b.py::t2", "b.py::t3", "c.py::t1", "c.py::t2"]


@pytest.mark.parametrize("indices, stolen", [
    ([3, 4, 5, 6], [5, 6]),      # b.py's t1 stays behind: its t2 and t3 stay with it
    ([2, 3, 4, 5, 6], [2, 3, 4, 5, 6]),  # starts at b.py's first test: as asked
    ([4], [4]),                  # only part of one module: better than nothing to do
    ([6], [6]),
    ([0, 1], [0, 1]),
    ([], []),
], ids=["drops-the-split-module", "starts-at-a-module", "part-of-one-module", "last-test", "from-the-start", "none"])
def test_a_steal_leaves_a_split_modules_tests_together(indices, stolen):
    assert whole_modules(COLLECTION, indices) == stolen


@pytest.mark.parametrize("dist, expected", [("worksteal", "ModuleStealing"), ("load", "LoadScheduling")])
def test_the_hook_gives_worksteal_runs_the_module_stealing_scheduler(pytester, dist, expected):
    """A run whose conftest implements ``pytest_xdist_make_scheduler`` with :func:`scheduler`
    steals whole modules under ``--dist worksteal`` and keeps xdist's own scheduler otherwise."""
    pytester.makeconftest("""
        import module_stealing


        def pytest_xdist_make_scheduler(config, log):
            return module_stealing.scheduler(config, log)
    """)
    pytester.makepyfile(test_a="def test_one():\n    pass\n", test_b="def test_two():\n    pass\n")
    schedulers = []

    class Probe:
        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(self, session):
            dsession = session.config.pluginmanager.getplugin("dsession")
            if dsession is not None:
                schedulers.append(type(dsession.sched).__name__)

    result = pytester.inline_run("-n", "2", "--dist", dist, "-p", "no:cacheprovider", plugins=[Probe()])
    result.assertoutcome(passed=2)
    assert schedulers == [expected]
