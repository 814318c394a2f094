"""summary.md, ``diffbench show`` and the terminal summary name only files that exist.

A run killed before its end has no results.csv, environment.json, summary.md or bundle; one whose
artifact could not be written has not that one. In-process runs (FakePipeline).
"""

from __future__ import annotations

import pytest

from pytest_diffbench.cli.main import main
from pytest_diffbench.store.journal import Journal, read_journal
from pytest_diffbench.store.run_folder import RunFolder

TEST = '''
@diffbench.sweep(seeds=[0, 1], steps=2)
def test_case(diffbench):
    diffbench.generate("a red cube")
'''


def killed_run(project) -> RunFolder:
    """A run as a kill leaves it: its job list, journal and images, none of the files written at its end."""
    project.write_tests(TEST)
    folder = project.run(update="all").folder
    for path in (folder.results, folder.environment, folder.summary, folder.report, folder.plot, folder.bundle):
        path.unlink(missing_ok=True)
    return folder


def test_show_of_a_killed_run_names_the_bundle_it_rebuilt(project, monkeypatch, capsys):
    folder = killed_run(project)
    monkeypatch.chdir(project.path)
    capsys.readouterr()
    assert main(["show", folder.run_id]) == 0
    out = capsys.readouterr().out
    assert "**2** passed" in out and f"Bundle: `{folder.bundle.name}`" in out
    assert folder.bundle.is_file() and folder.results.is_file()


#: A conftest that puts a folder where the run's results.csv goes, as a full disk would fail it.
RESULTS_BLOCKED = '''
import pathlib

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    runs = sorted((pathlib.Path(str(session.config.rootpath)) / ".diffbench" / "runs").iterdir())
    (runs[-1] / "results.csv").mkdir()
'''


def test_the_terminal_names_no_results_csv_that_could_not_be_written(project):
    project.write_tests(TEST)
    project.pytester.makepyfile(conftest_blocked=RESULTS_BLOCKED)
    project.pytester.syspathinsert()
    run = project.run("-p", "conftest_blocked", update="all")
    text = project.text(run.outcome)
    assert "could not write the run's record" in text
    assert "results: " not in text



def test_show_of_a_paused_run_whose_resume_was_killed_shows_its_journal_not_the_pauses_summary(project, monkeypatch, capsys):
    project.write_tests(TEST)
    folder = project.run("-k", "seed0", update="all").folder  # as a pause leaves it: seed1 not run
    paused = folder.summary.read_text(encoding="utf-8")
    (earlier,) = read_journal(folder.journal)
    with Journal(folder.journal) as journal:  # what the killed resume journaled before the kill
        journal.append(earlier.with_changes(nodeid=earlier.nodeid.replace("seed0", "seed1"),
                                            case_id=earlier.case_id.replace("seed0", "seed1")))
    monkeypatch.chdir(project.path)
    capsys.readouterr()
    assert main(["show", folder.run_id]) == 0
    out = capsys.readouterr().out
    assert "**1** passed" in paused and "**2** passed" in out
