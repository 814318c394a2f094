"""A pin folder that differs from an existing one only in letter case (one folder on macOS and
Windows) is refused by the plugin, not written beside it."""

from __future__ import annotations

from pytest_diffbench.spec.outcomes import Outcome


def test_a_pin_template_giving_a_letter_case_twin_of_an_existing_pin_is_one_error_and_writes_nothing(project):
    project.write_tests(project.test())
    project.run(update="all").outcome.assert_outcomes(passed=1)
    before = project.snapshot(project.baselines)

    project.write_ini(pin="{device}-FLOAT32")  # CPU-FLOAT32 would be cpu-float32's folder on macOS and Windows
    for update in ("all", "missing", None):
        run = project.run(update=update)
        run.outcome.assert_outcomes(failed=1)
        (row,) = run.results
        assert row.outcome is Outcome.ERROR and "differs from 'cpu-FLOAT32' only in letter case" in row.message
        assert "\n" not in row.message
    assert project.snapshot(project.baselines) == before
