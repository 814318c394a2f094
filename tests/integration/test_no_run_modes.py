"""A pytest mode that runs no test claims no run folder, and a run that ends without one leaves nothing.

``--collect-only``, ``--setup-plan``, ``--setup-only``, ``--fixtures``, ``--fixtures-per-test``,
``--markers`` and ``--version`` with ``--diffbench``: the run folders and ``latest`` stay as they
were, and no resume command or "no diffbench case ran" line is printed. A run that selected no case,
stopped at a collection error or at a ``--strict-config`` error leaves no ``.diffbench/`` at all.
"""

from __future__ import annotations

import pytest

SWEEP = "seeds=[0, 1], steps=2"
NO_TEST_MODES = ["--collect-only", "--setup-plan", "--setup-only", "--fixtures", "--fixtures-per-test", "--markers",
                 "--version"]


@pytest.fixture(scope="module")
def after_each_mode(shared_project) -> dict[str, tuple[bool, int, str]]:
    """A project with one finished run, then ``pytest --diffbench MODE`` for each mode: by mode,
    whether the run folders and ``latest`` were left as they were, its exit status and its output."""
    found = {}
    with shared_project() as project:
        project.write_tests(project.test("test_c", sweep=SWEEP))
        project.run(update="all").outcome.assert_outcomes(passed=2)
        for mode in NO_TEST_MODES:
            runs, latest = project.runs(), project.latest()
            outcome = project.run_plain("--diffbench", "--diffbench-lpips=off", mode)
            found[mode] = ((project.runs(), project.latest()) == (runs, latest), outcome.ret, project.text(outcome))
    return found


@pytest.mark.parametrize("mode", NO_TEST_MODES)
def test_a_mode_that_runs_no_test_leaves_the_runs_as_they_were(after_each_mode, mode: str) -> None:
    unchanged, status, text = after_each_mode[mode]
    assert unchanged and status == 0
    assert "resume it with" not in text and "paused" not in text
    assert "no diffbench case ran" not in text


@pytest.mark.parametrize("args", [("-k", "nomatch"), ("--strict-config", "-o", "bogus_key=1"), ("test_broken.py",)],
                         ids=["deselected", "strict-config", "collection-error"])
def test_a_run_without_a_run_folder_leaves_no_output_folder(project, args: tuple[str, ...]) -> None:
    project.write_tests(project.test("test_c", sweep=SWEEP))
    project.pytester.makepyfile(test_broken="x = (\n")
    outcome = project.run_plain("--diffbench", "--diffbench-lpips=off", *args)
    assert outcome.ret != 0
    assert not project.output_dir.exists()


def test_an_output_folder_that_was_there_stays(project) -> None:
    """Only the folders the run made go: one the user had (holding their file) stays whole."""
    project.write_tests(project.test("test_c", sweep=SWEEP))
    project.output_dir.mkdir()
    project.output_dir.joinpath("notes.txt").write_text("mine", encoding="utf-8")
    project.run_plain("--diffbench", "--diffbench-lpips=off", "-k", "nomatch")
    assert sorted(path.name for path in project.output_dir.iterdir()) == ["notes.txt"]
