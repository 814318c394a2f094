"""An in-process ``pytest --diffbench`` run of this suite imports nothing the test process has not
imported already (tests/conftest.py's ``_preloaded_modules``), apart from the project's own test
modules and conftest. pytester drops what a run imported when the run ends, so a module imported
there would be imported (executed) again by every one of the suite's ~900 in-process runs."""

from __future__ import annotations

import json
import sys

from pytest_diffbench.testing import use_fake_pipeline

#: Appended to the project's conftest: the names in sys.modules as the run ends (after its artifacts).
RECORD_MODULES = '''
import json
import sys


def pytest_unconfigure(config):
    with open("modules.json", "w", encoding="utf-8") as handle:
        json.dump(sorted(sys.modules), handle)
'''


def test_an_in_process_run_imports_only_the_projects_own_modules(project):
    use_fake_pipeline(project.pytester, extra=RECORD_MODULES)
    project.write_tests(project.test(sweep="seeds=[0, 1], samplers=['Euler', 'DDIM'], steps=[2, 3]"))
    before = set(sys.modules)
    for update in ("all", None):  # the update writes baselines, the rerun compares with them
        project.run(update=update).outcome.assert_outcomes(passed=8)
        imported = set(json.loads((project.path / "modules.json").read_text(encoding="utf-8"))) - before
        assert sorted(imported - {"conftest", "test_gen"}) == [], " ".join(sorted(imported))
