"""results.csv files the plugin wrote are read back by the plugin's own readers (the
``diffbench`` command included), however long a cell; a damaged one is named for what is wrong
with it, not taken for a file of another version."""

from __future__ import annotations

import csv

import pytest

from pytest_diffbench.cli.main import main
from pytest_diffbench.store.results import read_results
from pytest_diffbench.testing import DiffbenchRun, run_diffbench, use_fake_pipeline

#: Longer than the csv module's default cell limit (131072 characters) many times over.
LONG = 5_000_000

TESTS = """
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_long(diffbench):
    diffbench.generate("a" * {length})
"""


def diffbench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the ``diffbench`` command in the current folder: its exit status, stdout and stderr."""
    capsys.readouterr()
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def long_run(shared_project) -> DiffbenchRun:
    """A finished run of two cases whose prompt is :data:`LONG` characters, made once for the module."""
    with shared_project() as project:
        use_fake_pipeline(project.pytester)
        project.pytester.makepyfile(test_long=TESTS.format(length=LONG))
        run = run_diffbench(project.pytester, update="all")
        run.outcome.assert_outcomes(passed=2)
        return run


@pytest.fixture
def run(pytester: pytest.Pytester, long_run: DiffbenchRun, copy_run) -> DiffbenchRun:
    """:func:`long_run` copied into this test's project folder (the command's working folder)."""
    return copy_run(long_run, pytester.path)


def test_a_prompt_longer_than_the_csv_cell_limit_is_read_back(run, capsys):
    limit = csv.field_size_limit()
    results = read_results(run.folder.results)
    assert [len(result.setting("prompt")) for result in results] == [LONG, LONG]
    assert csv.field_size_limit() == limit  # the process-wide limit is put back
    status, out, err = diffbench(capsys, "list")
    assert status == 0 and "unreadable" not in out + err and run.folder.run_id in out
    status, out, err = diffbench(capsys, "report", "latest")
    assert status == 0, err
    status, out, err = diffbench(capsys, "accept", "latest")
    assert status == 0, err


@pytest.mark.parametrize("damage, said", [
    (lambda text: text.replace(",seed,", ",nodeid,", 1), "its header names the column 'nodeid' twice"),
    (lambda text: text + "\x00" * 40, "line 4 is a row of NUL bytes"),
    (lambda text: text + "\x00" * 40 + "\n", "line 4 is a row of NUL bytes"),
    (lambda text: text + "x,y\n", "line 4 has 2 cells where the header has"),
])
def test_a_damaged_results_csv_is_named_for_what_is_wrong(run, capsys, damage, said):
    path = run.folder.results
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(damage(text))
    with pytest.raises(ValueError, match=said):
        read_results(path)
    for command in ("report", "accept"):
        status, out, err = diffbench(capsys, command, run.folder.run_id)
        assert status == 2 and f"cannot read {path}: " in err, err
        assert said in err and "schema_version" not in err and "rerun" not in err, err
        assert len(err.strip().splitlines()) == 1
    status, out, err = diffbench(capsys, "list")
    assert f"unreadable: cannot read {path}: " in out and said in out, out
