"""``diffbench accept`` refuses cases the current test files no longer collect.

A run's images of a case whose sweep, test or file changed since the run would become baselines
no run uses; accept checks each case against pytest's collection of the current files (without
``--diffbench``: no torch), and ``--allow-uncollected`` accepts them anyway. A test file that
cannot be collected is one line and exit status 2, nothing written.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_diffbench.cli.main import main
from pytest_diffbench.testing import DiffbenchRun, run_diffbench, use_fake_pipeline

TWO_SEEDS = """
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_case(diffbench):
    diffbench.generate("a red cube")
"""
SEED0 = "test_gen.py::test_case[seed0-euler-2steps-cfg7.5]"
SEED1 = "test_gen.py::test_case[seed1-euler-2steps-cfg7.5]"


@pytest.fixture(scope="module")
def two_seeds_run(shared_project) -> DiffbenchRun:
    """A run of two cases without baselines, made once for the module."""
    with shared_project() as project:
        use_fake_pipeline(project.pytester)
        project.pytester.makepyfile(test_gen=TWO_SEEDS)
        run = run_diffbench(project.pytester)
        run.outcome.assert_outcomes(failed=2)
        return run


@pytest.fixture
def ran(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, two_seeds_run: DiffbenchRun,
        copy_run) -> pytest.Pytester:
    """The project after :func:`two_seeds_run`, a copy of its own; the command runs in its folder."""
    copy_run(two_seeds_run, pytester.path)
    monkeypatch.chdir(pytester.path)
    return pytester


def accept(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    capsys.readouterr()
    status = main(["accept", "latest", *args])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def baselines(pytester: pytest.Pytester) -> list[str]:
    folder = pytester.path / "baselines"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) if folder.is_dir() else []


def test_accept_refuses_a_case_the_sweep_no_longer_makes(ran, capsys) -> None:
    ran.makepyfile(test_gen=TWO_SEEDS.replace("seeds=[0, 1]", "seeds=[0]"))
    status, out, err = accept(capsys)
    assert status == 1 and err == ""
    assert out[0].startswith(f"created   {SEED0}: ")
    assert out[1] == (f"refused   {SEED1}: the current test files do not collect this case (its test, sweep or file "
                      "changed since the run), so no run would use its baseline; accept a run of the current tests, "
                      "or pass --allow-uncollected")
    assert out[2] == "1 created, 1 refused"
    assert baselines(ran) == ["cpu-float32/test_gen/test_case/seed0-euler-2steps-cfg7.5.png"]

    status, out, _ = accept(capsys, "--allow-uncollected")
    assert status == 0 and out[0].startswith(f"unchanged {SEED0}: ") and out[1].startswith(f"created   {SEED1}: ")
    assert out[1].endswith(" (not collected by the current tests)") and "not collected" not in out[0]
    assert out[-1] == "1 created, 1 unchanged; 1 of them not collected by the current tests (no run uses those baselines)"
    assert len(baselines(ran)) == 2

    # Accepted again: unchanged, still marked and counted.
    status, out, _ = accept(capsys, "--allow-uncollected", "-k", "seed1")
    assert out == [out[0], "1 unchanged; 1 of them not collected by the current tests (no run uses those baselines)"]
    assert out[0].startswith(f"unchanged {SEED1}: ") and out[0].endswith(" (not collected by the current tests)")


def test_allow_uncollected_accepts_when_the_test_files_cannot_be_collected_and_says_it_could_not_check(ran, capsys) -> None:
    ran.makepyfile(test_gen="def test_case(:\n")
    status, out, err = accept(capsys, "--allow-uncollected")
    assert status == 0 and err == ""
    assert out[0].startswith("note: cannot collect the current test files to check the run's cases: test_gen.py: ")
    assert out[0].endswith("; accepting without marking the cases they do not collect")
    assert out[-1] == "2 created" and len(baselines(ran)) == 2


@pytest.mark.parametrize("change", ["renamed test", "removed file"])
def test_accept_refuses_cases_of_a_renamed_test_or_a_removed_file(ran, capsys, change) -> None:
    if change == "renamed test":
        ran.makepyfile(test_gen=TWO_SEEDS.replace("def test_case", "def test_renamed"))
    else:
        (ran.path / "test_gen.py").unlink()
    status, out, _ = accept(capsys)
    assert status == 1
    assert [line.split(": ", 1)[0] for line in out[:2]] == [f"refused   {SEED0}", f"refused   {SEED1}"]
    assert all(line.split(": ", 1)[1].startswith("the current test files do not collect this case") for line in out[:2])
    assert out[2] == "2 refused"
    assert baselines(ran) == []


def test_the_test_file_is_read_anew_by_each_accept(ran, capsys) -> None:
    ran.makepyfile(test_gen=TWO_SEEDS.replace("seeds=[0, 1]", "seeds=[1]"))
    status, out, _ = accept(capsys, "-k", "seed0")
    assert status == 1 and out[0].startswith(f"refused   {SEED0}")
    ran.makepyfile(test_gen=TWO_SEEDS)
    status, out, _ = accept(capsys, "-k", "seed0")
    assert status == 0 and out[0].startswith(f"created   {SEED0}")


@pytest.mark.parametrize("source, says", [
    ("def test_case(:\n", "SyntaxError"),
    ("import no_such_module_anywhere\n", "ModuleNotFoundError: No module named 'no_such_module_anywhere'"),
], ids=["syntax-error", "import-error"])
def test_a_test_file_that_cannot_be_collected_is_one_line_and_nothing_is_written(ran, capsys, source, says) -> None:
    ran.makepyfile(test_gen=source)
    status, out, err = accept(capsys)
    assert status == 2 and out == []
    assert len(err.splitlines()) == 1
    assert err.startswith("diffbench: cannot collect the current test files to check the run's cases: test_gen.py: ")
    assert says in err and err.rstrip().endswith("fix it, or pass --allow-uncollected")
    assert baselines(ran) == []


def test_the_collection_imports_neither_torch_nor_diffusers(ran) -> None:
    """In a child process: this one may have imported torch already."""
    script = ("import sys\nfrom pytest_diffbench.cli.main import main\nstatus = main(['accept', 'latest'])\n"
              "print(status, 'torch' in sys.modules, 'diffusers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ran.path, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 False False", done.stdout + done.stderr
