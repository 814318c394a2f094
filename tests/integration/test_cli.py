"""The ``diffbench`` command on real run folders: list, show, report, accept.

The runs are made in-process with :class:`~pytest_diffbench.testing.FakePipeline`; the command
runs in-process too (``main([...])`` from the project folder). One test starts the installed
console script.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pytest_diffbench.cli.main import main
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.bundle import manifest_mismatches
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store.baselines import BaselineStore
from pytest_diffbench.store.files import sha256_bytes
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import RunFolder, read_latest
from pytest_diffbench.testing import DiffbenchRun, run_diffbench, use_fake_pipeline

TEST_MODULE = """
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_case(diffbench):
    diffbench.generate("{prompt}")
"""

def tally(created: int = 0, refreshed: int = 0, rewritten: int = 0, unchanged: int = 0, refused: int = 0) -> str:
    """The closing line of ``diffbench accept``: the actions that happened, with their counts."""
    counts = {"created": created, "refreshed": refreshed, "rewritten": rewritten, "unchanged": unchanged, "refused": refused}
    return ", ".join(f"{count} {action}" for action, count in counts.items() if count)


def write_project(pytester: pytest.Pytester, prompt: str = "a red cube") -> None:
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TEST_MODULE.format(prompt=prompt))


def diffbench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command in the current folder: its exit status, stdout and stderr."""
    capsys.readouterr()
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def diffbench_here(*args: str) -> tuple[int, str, str]:
    """:func:`diffbench` for a module-scoped fixture, which has no ``capsys``: the command's own
    output, captured."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def latest_folder(pytester: pytest.Pytester, output_dir: str = ".diffbench") -> RunFolder:
    run_id = read_latest(pytester.path / output_dir)
    assert run_id is not None, f"no run in {output_dir}"
    return RunFolder.of(pytester.path / output_dir, run_id)


def baseline(pytester: pytest.Pytester, result: CaseResult) -> tuple[Path, Path]:
    """(PNG, sidecar) of the case's baseline, under the pin the run recorded."""
    return BaselineStore(pytester.path / "baselines", result.pin).paths(case_path(result.nodeid))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def spoil(png: Path, sidecar: Path) -> None:
    """Change a baseline's pixels (and its recorded SHA, so the pair stays consistent)."""
    with Image.open(png) as image:
        Image.new("RGB", image.size, (255, 0, 0)).save(png)
    data = read_json(sidecar)
    data["image_sha256"] = sha256_bytes(png.read_bytes())
    sidecar.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def fake_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with two cases (seeds 0 and 1), the command running in its folder."""
    write_project(pytester)
    monkeypatch.chdir(pytester.path)
    return pytester


@pytest.fixture(scope="module")
def made_once(shared_project) -> DiffbenchRun:
    """One run without baselines of :func:`write_project`'s two cases (both missing-baseline), made
    once for the module."""
    with shared_project() as project:
        write_project(project.pytester)
        run = run_diffbench(project.pytester)
        run.outcome.assert_outcomes(failed=2)
        return run


@pytest.fixture
def made(fake_project: pytest.Pytester, made_once: DiffbenchRun, copy_run) -> pytest.Pytester:
    """The project after one run without baselines (both cases missing-baseline): a copy of
    :func:`made_once` of its own."""
    copy_run(made_once, fake_project.path)
    return fake_project


@pytest.fixture(scope="module")
def accepted_once(shared_project, made_once: DiffbenchRun, copy_run) -> tuple[DiffbenchRun, str]:
    """:func:`made_once`, then ``diffbench accept latest`` (both cases' baselines created), made
    once for the module: the run, in the folder the accept wrote to, and what accept printed.

    Many tests start from accepted baselines; accept collects the test files with pytest, which
    costs about as much as a run."""
    with shared_project() as project:  # the command runs in the project's folder
        run = copy_run(made_once, project.path)
        status, out, err = diffbench_here("accept", "latest")
        assert status == 0 and tally(created=2) in out, out + err
        return run, out


@pytest.fixture
def accepted(fake_project: pytest.Pytester, accepted_once: tuple[DiffbenchRun, str], copy_run) -> pytest.Pytester:
    """The project after :func:`made` and ``diffbench accept latest``: a copy of :func:`accepted_once`
    of its own."""
    copy_run(accepted_once[0], fake_project.path)
    return fake_project


@pytest.fixture(scope="module")
def failing_once(shared_project, accepted_once: tuple[DiffbenchRun, str], copy_run) -> DiffbenchRun:
    """:func:`accepted_once`'s baselines spoiled (red), then a run that fails both cases against
    them, made once for the module."""
    with shared_project() as project:
        copy_run(accepted_once[0], project.path)
        for result in read_results(latest_folder(project.pytester).results):
            spoil(*baseline(project.pytester, result))
        failing = run_diffbench(project.pytester)
        failing.outcome.assert_outcomes(failed=2)
        return failing


@pytest.fixture
def failing(fake_project: pytest.Pytester, failing_once: DiffbenchRun, copy_run) -> DiffbenchRun:
    """The project after :func:`failing_once` (accepted baselines spoiled, then a run failing both
    cases): a copy of its own, in ``fake_project``'s folder."""
    return copy_run(failing_once, fake_project.path)


# -- accept -----------------------------------------------------------------------------------


def test_accept_promotes_a_runs_outputs_without_generating(accepted: pytest.Pytester, accepted_once: tuple[DiffbenchRun, str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The accept is :func:`accepted_once`'s (its status is asserted there); this checks what it
    printed and wrote."""
    folder = latest_folder(accepted)
    results = read_results(folder.results)
    out = accepted_once[1]
    assert tally(created=2) in out
    for result in results:
        png, sidecar = baseline(accepted, result)
        case = case_path(result.nodeid)
        assert png.read_bytes() == folder.image(case).read_bytes()
        assert read_json(sidecar)["config_hash"] == read_json(folder.config(case))["config_hash"] == result.config_hash
    run_diffbench(accepted).outcome.assert_outcomes(passed=2)  # the promoted baselines are what the pipeline makes

    status, out, _ = diffbench(capsys, "accept", folder.run_id)
    assert status == 0 and tally(unchanged=2) in out


def test_accept_failed_only_and_k_replace_exactly_the_named_baselines(fake_project: pytest.Pytester, failing: DiffbenchRun,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """After :func:`failing`: accepted baselines spoiled, then a run failing both cases."""
    spoiled = snapshot(fake_project.path / "baselines")

    status, out, err = diffbench(capsys, "accept", "latest", "--failed-only", "-k", "SEED1")
    assert status == 0, out + err
    assert tally(refreshed=1) in out
    seed1 = failing.result("seed1")
    after = snapshot(fake_project.path / "baselines")
    changed = sorted(name for name in after if after[name] != spoiled[name])
    png, sidecar = baseline(fake_project, seed1)
    assert changed == sorted(p.relative_to(fake_project.path / "baselines").as_posix() for p in (png, sidecar))
    folder = failing.folder
    kept = folder.replaced(case_path(seed1.nodeid))
    assert kept.read_bytes() == spoiled[png.relative_to(fake_project.path / "baselines").as_posix()]
    # the run itself is history: its results still say what the run found
    assert {r.case_id: r.outcome for r in read_results(folder.results)} == {
        r.case_id: Outcome.FAILED_QUALITY for r in failing.results}
    run_diffbench(fake_project).outcome.assert_outcomes(passed=1, failed=1)


def test_accept_k_is_repeatable_and_a_selection_of_nothing_changes_nothing(made: pytest.Pytester,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = diffbench(capsys, "accept", "latest", "-k", "no-such-case")
    assert status == 0 and "nothing changed" in out
    assert not (made.path / "baselines").exists()
    status, out, _ = diffbench(capsys, "accept", "latest", "-k", "seed0", "-k", "seed1")
    assert status == 0 and tally(created=2) in out


def test_accept_k_takes_pytests_keyword_expression(made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = diffbench(capsys, "accept", "latest", "-k", "seed0 and")
    assert status == 2 and "seed0 and" in err and len(err.strip().splitlines()) == 1, err
    assert not (made.path / "baselines").exists()
    status, out, _ = diffbench(capsys, "accept", "latest", "-k", "test_ and not SEED0")
    assert status == 0 and tally(created=1) in out
    accepted = [path.name for path in (made.path / "baselines").rglob("*.png")]
    assert len(accepted) == 1 and "seed1" in accepted[0], accepted
    status, out, _ = diffbench(capsys, "accept", "latest", "-k", "(seed0 or seed1) and not no-such-case")
    assert status == 0 and tally(created=1, unchanged=1) in out


def test_accept_refuses_a_case_whose_config_changed_and_changes_nothing(accepted: pytest.Pytester,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_project(accepted, prompt="a blue cube")
    run_diffbench(accepted).outcome.assert_outcomes(failed=2)
    before = snapshot(accepted.path / "baselines")
    status, out, _ = diffbench(capsys, "accept", "latest")
    assert status == 1
    assert out.count("refused") == 3 and tally(refused=2) in out
    assert "regenerate it with pytest --diffbench --diffbench-update" in out
    assert snapshot(accepted.path / "baselines") == before


def test_accept_refuses_a_case_whose_image_or_config_is_missing(made: pytest.Pytester,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    seed0, seed1 = read_results(folder.results)
    folder.image(case_path(seed0.nodeid)).unlink()
    status, out, _ = diffbench(capsys, "accept", "latest")
    assert status == 1
    assert tally(created=1, refused=1) in out
    refused = next(line for line in out.splitlines() if line.startswith("refused"))
    assert seed0.nodeid in refused and str(folder.image(case_path(seed0.nodeid))) in refused
    assert not any(p.exists() for p in baseline(made, seed0)) and all(p.exists() for p in baseline(made, seed1))

    folder.config(case_path(seed1.nodeid)).unlink()
    status, out, _ = diffbench(capsys, "accept", "latest", "-k", "seed1")
    assert status == 1 and tally(refused=1) in out and str(folder.config(case_path(seed1.nodeid))) in out


def test_accept_rewrites_a_broken_baseline(accepted: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(accepted)
    seed0 = read_results(folder.results)[0]
    png, _ = baseline(accepted, seed0)
    broken = png.read_bytes() + b"edited"  # the sidecar's SHA-256 no longer vouches for it
    png.write_bytes(broken)
    status, out, err = diffbench(capsys, "accept", "latest")
    assert status == 0, out + err
    assert tally(rewritten=1, unchanged=1) in out
    rewritten = next(line for line in out.splitlines() if line.startswith("rewritten"))
    assert seed0.nodeid in rewritten and "unreadable" in rewritten
    stored = BaselineStore(accepted.path / "baselines", seed0.pin).load(case_path(seed0.nodeid))
    assert stored is not None and png.read_bytes() == folder.image(case_path(seed0.nodeid)).read_bytes()
    assert folder.replaced(case_path(seed0.nodeid)).read_bytes() == broken


def test_accept_writes_exactly_what_diffbench_update_writes(fake_project: pytest.Pytester,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    updated = run_diffbench(fake_project, update="all")
    updated.outcome.assert_outcomes(passed=2)
    by_update = snapshot(fake_project.path / "baselines")
    assert len(by_update) == 4
    for result in updated.results:
        _, sidecar = baseline(fake_project, result)
        sidecar.unlink()
        baseline(fake_project, result)[0].unlink()

    status, out, err = diffbench(capsys, "accept", updated.folder.run_id)
    assert status == 0 and tally(created=2) in out, out + err
    by_accept = snapshot(fake_project.path / "baselines")
    sidecars = sorted(name for name in by_update if name.endswith(".json"))
    for name in sidecars:
        written, expected = json.loads(by_accept[name]), json.loads(by_update[name])
        assert sorted(written) == sorted(expected)
        assert sorted(written["environment"]) == sorted(expected["environment"])
    assert by_accept == by_update  # the same record through the same writer: the same bytes


# -- list, show, report -----------------------------------------------------------------------


def test_list_show_and_report(made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and f"{folder.run_id}  (latest)  2 missing-baseline" in out
    status, out, _ = diffbench(capsys, "show")
    summary = folder.summary.read_text(encoding="utf-8")
    assert status == 0 and out == summary

    first = folder.bundle.read_bytes()
    folder.summary.unlink()
    for grid in folder.grids.rglob("*.png"):
        grid.unlink()
    status, out, err = diffbench(capsys, "report", folder.run_id)
    assert status == 0 and err == ""
    assert f"rebuilt {folder.bundle}" in out and f"rebuilt {folder.summary}" in out
    assert folder.summary.read_text(encoding="utf-8") == summary
    assert folder.bundle.read_bytes() == first  # rebuilt from the run folder: the same bytes
    results = read_results(folder.results)
    with zipfile.ZipFile(folder.bundle) as archive:
        grids = sorted(name for name in archive.namelist() if name.startswith("grids/cases/"))
    assert grids == sorted(folder.relative(folder.case_grid(case_path(r.nodeid))) for r in results)


def test_show_rebuilds_a_missing_summary_and_report_takes_a_folder(made: pytest.Pytester,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    summary = folder.summary.read_text(encoding="utf-8")
    folder.summary.unlink()
    status, out, _ = diffbench(capsys, "show", "latest")
    assert status == 0 and out == summary == folder.summary.read_text(encoding="utf-8")
    folder.report.unlink()
    status, out, _ = diffbench(capsys, "report", str(folder.path.relative_to(made.path)))
    assert status == 0 and folder.report.is_file() and f"rebuilt {folder.report}" in out


def test_list_names_an_unreadable_run_and_lists_the_others(made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    old = latest_folder(made)
    run_diffbench(made).outcome.assert_outcomes(failed=2)
    new = latest_folder(made)
    old.results.write_text("nodeid,outcome,schema_version\nx,passed,1\n", encoding="utf-8")
    status, out, _ = diffbench(capsys, "list")
    assert status == 0
    lines = {line.split()[0]: line for line in out.splitlines()}  # two runs in one second: any order
    assert lines.keys() == {old.run_id, new.run_id}
    assert lines[old.run_id].startswith(f"{old.run_id}  unreadable: ") and "schema_version" in lines[old.run_id]
    assert lines[new.run_id] == f"{new.run_id}  (latest)  2 missing-baseline"


def test_errors_the_user_can_fix_are_one_line_and_exit_2(fake_project: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                                         made_once: DiffbenchRun, copy_run) -> None:
    """The project before any run, then after one (:func:`made_once`'s run, copied in)."""
    status, out, err = diffbench(capsys, "show")
    assert (status, out) == (2, "") and err.startswith("diffbench: no run yet") and err.count("\n") == 1
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and "no runs in" in out

    copy_run(made_once, fake_project.path)  # the run made_once asserts failed both cases
    status, out, err = diffbench(capsys, "show", "20000101T000000Z-000000")
    assert status == 2 and "no run folder '20000101T000000Z-000000'" in err and err.count("\n") == 1

    folder = latest_folder(fake_project)
    folder.results.write_bytes(b"\xff\xfe not a csv")
    folder.summary.unlink()  # else show prints it without reading results.csv
    for command in ("show", "report", "accept"):
        status, out, err = diffbench(capsys, command, "latest")
        assert status == 2 and err.startswith(f"diffbench: cannot read {folder.results}") and err.count("\n") == 1
        assert "Traceback" not in out + err


# -- settings shared with pytest ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "text"), [
    (".pytest.ini", "[pytest]\ndiffbench_output_dir = out\n"),
    ("pytest.ini", "[pytest]\ndiffbench_output_dir = out\n"),
    ("pyproject.toml", '[tool.pytest.ini_options]\ndiffbench_output_dir = "out"\n'),
    ("pyproject.toml", '[tool.pytest]\ndiffbench_output_dir = "out"\n'),
    ("tox.ini", "[pytest]\ndiffbench_output_dir = out\n"),
    ("setup.cfg", "[tool:pytest]\ndiffbench_output_dir = out\n"),
])
def test_the_command_finds_the_ini_file_pytest_uses(fake_project: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    (fake_project.path / name).write_text(text, encoding="utf-8")
    run_diffbench(fake_project).outcome.assert_outcomes(failed=2)
    folder = latest_folder(fake_project, "out")  # where pytest wrote the run
    (fake_project.path / "sub").mkdir()
    monkeypatch.chdir(fake_project.path / "sub")  # pytest looks upwards from the current folder, and so does the command
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and f"{folder.run_id}  (latest)  2 missing-baseline" in out
    status, out, _ = diffbench(capsys, "show")
    assert status == 0 and out == folder.summary.read_text(encoding="utf-8")


def test_an_empty_pytest_ini_wins_over_the_keys_of_a_later_file(fake_project: pytest.Pytester,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    fake_project.makefile(".ini", tox="[pytest]\ndiffbench_output_dir = out\n")
    fake_project.makefile(".ini", pytest="[pytest]\n")
    run_diffbench(fake_project).outcome.assert_outcomes(failed=2)
    folder = latest_folder(fake_project)  # pytest read pytest.ini: the default output folder
    assert not (fake_project.path / "out").exists()
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and f"{folder.run_id}  (latest)" in out


def test_a_flag_wins_over_the_ini_key(fake_project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    fake_project.makefile(".ini", pytest="[pytest]\ndiffbench_output_dir = out\ndiffbench_baseline_dir = refs\n")
    run_diffbench(fake_project, "--diffbench-output-dir=elsewhere").outcome.assert_outcomes(failed=2)
    folder = latest_folder(fake_project, "elsewhere")
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and "no runs in" in out
    status, out, _ = diffbench(capsys, "list", "--output-dir", "elsewhere")
    assert status == 0 and f"{folder.run_id}  (latest)" in out
    status, out, _ = diffbench(capsys, "accept", "latest", "--output-dir", "elsewhere")
    assert status == 0 and tally(created=2) in out
    assert len(list((fake_project.path / "refs").rglob("*.png"))) == 2 and not (fake_project.path / "baselines").exists()


def test_addopts_count_as_they_do_for_pytest(fake_project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    fake_project.makefile(".ini", pytest="[pytest]\naddopts = --diffbench-output-dir=from-addopts\n")
    run_diffbench(fake_project).outcome.assert_outcomes(failed=2)
    folder = latest_folder(fake_project, "from-addopts")
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and f"{folder.run_id}  (latest)" in out

    fake_project.makefile(".ini", pytest="[pytest]\naddopts = --no-such-flag\n")
    status, out, err = diffbench(capsys, "list")
    assert (status, out) == (2, "") and "unrecognized arguments: --no-such-flag" in err and err.count("\n") == 1


@pytest.mark.parametrize("strict", ["strict_config = true", "addopts = --strict-config", "strict = true"])
def test_strict_config_refuses_an_unknown_ini_key_as_pytest_does(fake_project: pytest.Pytester,
                                                                 capsys: pytest.CaptureFixture[str], strict: str) -> None:
    fake_project.makefile(".ini", pytest=f"[pytest]\n{strict}\ndiffbench_ouput_dir = out\n")
    assert fake_project.runpytest_inprocess("-p", "no:cacheprovider", "--collect-only").ret == pytest.ExitCode.USAGE_ERROR
    status, out, err = diffbench(capsys, "list")
    assert (status, out) == (2, "") and err.count("\n") == 1 and "Traceback" not in err
    assert "unknown config option diffbench_ouput_dir (did you mean diffbench_output_dir?)" in err
    assert not (fake_project.path / ".diffbench").exists()


@pytest.mark.parametrize("ini", ["diffbench_ouput_dir = out", "strict_markers = true\ndiffbench_ouput_dir = out",
                                 "strict = true\nstrict_config = false\ndiffbench_ouput_dir = out"])
def test_an_unknown_ini_key_without_strict_config_is_ignored_as_pytest_ignores_it(
        fake_project: pytest.Pytester, capsys: pytest.CaptureFixture[str], ini: str) -> None:
    fake_project.makefile(".ini", pytest=f"[pytest]\n{ini}\n")
    status, out, err = diffbench(capsys, "list")
    assert status == 0 and f"no runs in {fake_project.path / '.diffbench'}" in out and err == ""


@pytest.mark.parametrize(("line", "valid"), [
    ("diffbench_bundle_images = sometimes", "failures, all, none"),
    ("diffbench_max_cases = -1", "positive integer"),
    ("diffbench_min_ssim = high", "it must be"),
    ("diffbench_strict_env = maybe", "true or false"),
    ("diffbench_pin = {gpu}", "valid fields are"),
])
def test_a_bad_ini_value_is_one_line_exit_2_and_changes_nothing(made: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                                                line: str, valid: str) -> None:
    folder = latest_folder(made)
    folder.summary.unlink()  # show would rebuild it, had the settings been read after it
    made.makefile(".ini", pytest=f"[pytest]\n{line}\n")
    before = snapshot(made.path)
    key = line.split(" = ")[0]
    for args in (["list"], ["show"], ["report", "latest"], ["accept", "latest"]):
        status, out, err = diffbench(capsys, *args)
        assert (status, out) == (2, ""), args
        assert err.startswith("diffbench: ") and err.count("\n") == 1 and "Traceback" not in err
        assert key in err and valid in err
    assert snapshot(made.path) == before


# -- the installed command ---------------------------------------------------------------------


@pytest.mark.subprocess
def test_the_console_script_runs_without_the_report_libraries(made: pytest.Pytester) -> None:
    script = Path(sys.executable).with_name("diffbench")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}  # stderr lists every module the command imports
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run([str(script), "list"], cwd=made.path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{latest_folder(made).run_id}  (latest)  2 missing-baseline" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "pytest_diffbench.cli.main" in imported
    assert not {name for name in imported if name.split(".")[0] in ("skimage", "matplotlib", "torch", "diffusers", "pandas")}


# -- paths from data stay inside their folders ----------------------------------------------------


def set_cells(path: Path, **cells: str) -> None:
    """Give every row of the results.csv at ``path`` these cells."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, fields = list(reader), list(reader.fieldnames or [])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows({**row, **cells} for row in rows)


def one_line(err: str) -> str:
    """The command's one error line (asserting it is one line and no traceback)."""
    assert err.startswith("diffbench: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("pin", ["../../escaped-by-pin", "cpu/../../../escaped-by-pin", "nested/pin", "/abs/pin",
                                 "-rf", "--help", "NUL", "aux.txt", "com1"])
def test_accept_refuses_a_pin_that_is_not_one_folder_name(made: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                                         pin: str) -> None:
    folder = latest_folder(made)
    set_cells(folder.results, pin=pin)
    before = snapshot(made.path)
    status, out, _ = diffbench(capsys, "accept", "latest")
    assert status == 1 and tally(refused=2) in out
    refusals = [line for line in out.splitlines() if line.startswith("refused")]
    assert len(refusals) == 2 and all(repr(pin) in line and "not one folder name" in line for line in refusals)
    assert snapshot(made.path) == before
    assert not (made.path.parent / "escaped-by-pin").exists() and not Path("/abs/pin").exists()


@pytest.mark.parametrize("pin", ["CPU-FLOAT32", "Cpu-Float32"])
def test_accept_refuses_a_pin_that_differs_from_a_pin_folder_only_in_letter_case(
        accepted: pytest.Pytester, capsys: pytest.CaptureFixture[str], pin: str) -> None:
    """After :func:`accepted` (both cases' baselines created)."""
    folder = latest_folder(accepted)
    existing = read_results(folder.results)[0].pin
    set_cells(folder.results, pin=pin)
    before = snapshot(accepted.path / "baselines")
    status, out, _ = diffbench(capsys, "accept", "latest")
    assert status == 1 and tally(refused=2) in out
    refusals = [line for line in out.splitlines() if line.startswith("refused")]
    assert len(refusals) == 2 and all(repr(pin) in line and f"{existing!r}" in line and "letter case" in line
                                      for line in refusals)
    assert snapshot(accepted.path / "baselines") == before and sorted(os.listdir(accepted.path / "baselines")) == [existing]


def test_accept_refuses_a_case_path_that_differs_from_a_baseline_only_in_letter_case(
        accepted: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """A crafted results.csv (and run folder) naming test_GEN.py while baselines/<pin>/test_gen exists
    (:func:`accepted`)."""
    folder = latest_folder(accepted)
    for kind in ("images", "configs"):
        (folder.path / kind / "test_gen").rename(folder.path / kind / "test_GEN")
    rows = read_results(folder.results)
    text = folder.results.read_text(encoding="utf-8")
    folder.results.write_text(text.replace("test_gen.py::", "test_GEN.py::"), encoding="utf-8")
    before = snapshot(accepted.path / "baselines")
    status, out, _ = diffbench(capsys, "accept", "latest")
    assert status == 1 and tally(refused=len(rows)) in out
    assert all("'test_GEN'" in line and "letter case" in line for line in out.splitlines() if line.startswith("refused"))
    assert snapshot(accepted.path / "baselines") == before


def test_report_does_not_follow_a_linked_grids_folder(made: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    folder = latest_folder(made)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not diffbench's", encoding="utf-8")
    shutil.rmtree(folder.grids)
    folder.grids.symlink_to(outside, target_is_directory=True)
    folder.summary.unlink()
    status, out, err = diffbench(capsys, "report", "latest")
    assert status == 1 and "Traceback" not in err
    lines = err.splitlines()  # the grids, and the bundle (which would take grids/ in)
    assert len(lines) == 2 and all(str(folder.grids) in line and "symbolic link" in line for line in lines)
    assert sorted(p.name for p in outside.rglob("*")) == ["keep.txt"]  # nothing removed or written there
    assert folder.summary.is_file() and f"rebuilt {folder.summary}" in out  # the other artifacts still come


RARE = (3, 251, 7)  # a colour neither FakePipeline nor a spoiled baseline nor a heatmap makes


def colour_count(path: Path, colour: tuple[int, int, int]) -> int:
    with Image.open(path) as image:
        return sum(count for count, rgb in image.convert("RGB").getcolors(1 << 24) or [] if rgb == colour)


def test_report_draws_the_baseline_under_the_baseline_folder_not_a_path_results_csv_names(
        fake_project: pytest.Pytester, failing: DiffbenchRun, capsys: pytest.CaptureFixture[str]) -> None:
    """After :func:`failing`: accepted baselines spoiled (red), then a run failing both cases."""
    folder = failing.folder
    elsewhere = fake_project.path / "elsewhere.png"
    Image.new("RGB", (64, 64), RARE).save(elsewhere)
    set_cells(folder.results, baseline_path=str(elsewhere))
    status, out, err = diffbench(capsys, "report", "latest")
    assert status == 1, out + err
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(str(elsewhere) in line and "not its baseline" in line for line in warnings)
    for result in read_results(folder.results):
        grid = folder.case_grid(case_path(result.nodeid))
        assert colour_count(grid, RARE) == 0 and colour_count(grid, (255, 0, 0)) > 0  # the real (spoiled) baseline


def test_a_linked_folder_inside_the_baselines_is_neither_read_nor_written(
        fake_project: pytest.Pytester, failing: DiffbenchRun, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """After :func:`failing`: accepted baselines spoiled (red), then a run failing both cases."""
    folder = failing.folder
    pin_dir = fake_project.path / "baselines" / read_results(folder.results)[0].pin
    planted = tmp_path / "planted"
    shutil.copytree(pin_dir / "test_gen", planted)
    for png in planted.rglob("*.png"):
        Image.new("RGB", (64, 64), RARE).save(png)
    shutil.rmtree(pin_dir / "test_gen")
    (pin_dir / "test_gen").symlink_to(planted, target_is_directory=True)  # as a pull request can commit it
    before = snapshot(planted)

    status, out, err = diffbench(capsys, "report", "latest")
    assert status == 1 and len(err.splitlines()) == 2 and "symbolic link" in err and "Traceback" not in err
    for result in read_results(folder.results):
        grid = folder.case_grid(case_path(result.nodeid))
        assert colour_count(grid, RARE) == 0
    status, out, _ = diffbench(capsys, "accept", "latest")
    assert status == 1 and tally(refused=2) in out and out.count("symbolic link") == 2
    assert snapshot(planted) == before


@pytest.mark.parametrize("linked", ["configs", "images", "environment.json"])
def test_the_bundle_takes_no_linked_file(made: pytest.Pytester, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         linked: str) -> None:
    folder = latest_folder(made)
    seed0 = read_results(folder.results)[0]
    secret = tmp_path / "secret"
    secret.write_bytes(b"SECRET from outside the run folder")
    link = {"configs": folder.config(case_path(seed0.nodeid)), "images": folder.image(case_path(seed0.nodeid)),
            "environment.json": folder.environment}[linked]
    link.unlink()
    link.symlink_to(secret)
    folder.bundle.unlink()
    status, out, err = diffbench(capsys, "report", "latest", "--bundle-images", "all")
    assert status == 1 and "Traceback" not in err
    assert any(str(link) in line and "symbolic link" in line for line in err.splitlines()), err
    assert not folder.bundle.exists() and f"rebuilt {folder.report}" in out
    assert b"SECRET" not in folder.report.read_bytes()


def test_accept_reads_no_linked_image_and_writes_no_linked_replaced_folder(
        made: pytest.Pytester, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = latest_folder(made)
    seed0, seed1 = read_results(folder.results)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (64, 64), RARE).save(secret)
    image = folder.image(case_path(seed0.nodeid))
    image.unlink()
    image.symlink_to(secret)  # accept would copy an outside file into the baselines
    status, out, _ = diffbench(capsys, "accept", "latest")
    assert status == 1 and tally(created=1, refused=1) in out
    refused = next(line for line in out.splitlines() if line.startswith("refused"))
    assert seed0.nodeid in refused and str(image) in refused and "symbolic link" in refused
    assert not any(p.exists() for p in baseline(made, seed0))

    run_diffbench(made, update="all")  # a new run whose seed1 output differs from nothing: refresh needs a spoiled pair
    spoil(*baseline(made, seed1))
    run_diffbench(made).outcome.assert_outcomes(passed=1, failed=1)
    newer = latest_folder(made)
    kept_outside = tmp_path / "kept"
    kept_outside.mkdir()
    newer.replaced_dir.symlink_to(kept_outside, target_is_directory=True)  # would receive the replaced pair
    spoiled = snapshot(made.path / "baselines")
    status, out, _ = diffbench(capsys, "accept", "latest", "--failed-only")
    assert status == 1 and tally(refused=1) in out and str(newer.replaced_dir) in out
    assert list(kept_outside.iterdir()) == [] and snapshot(made.path / "baselines") == spoiled


@pytest.mark.parametrize("command", ["show", "report", "accept"])
def test_a_run_named_outside_the_runs_folder_is_refused(made: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                                        command: str) -> None:
    folder = latest_folder(made)
    copy = made.path / "elsewhere" / "runs" / folder.run_id
    shutil.copytree(folder.path, copy)
    copy.joinpath(folder.summary.name).unlink()
    before = snapshot(made.path)
    for run in (str(copy), os.path.relpath(copy), f"../../{made.path.name}/elsewhere/runs/{folder.run_id}", "..", "."):
        status, out, err = diffbench(capsys, command, run)
        assert (status, out) == (2, ""), run
        assert repr(run) in one_line(err)
    os.symlink(copy, made.path / ".diffbench" / "runs" / "linked")  # a link in runs/ is not followed either
    status, out, err = diffbench(capsys, command, "linked")
    assert (status, out) == (2, "") and "symbolic link" in one_line(err)
    os.unlink(made.path / ".diffbench" / "runs" / "linked")
    assert snapshot(made.path) == before
    status, _, err = diffbench(capsys, command, os.path.relpath(folder.path))  # its own folder still names it
    assert status == 0, err


def test_a_crafted_latest_is_one_line_and_list_still_lists(made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    latest = made.path / ".diffbench" / "latest"
    for text in ("../../../tmp\n", f"runs/{folder.run_id}\n", "\x1b[2J\n"):
        latest.write_text(text, encoding="utf-8")
        for command in ("show", "report", "accept"):
            status, out, err = diffbench(capsys, command, "latest")
            assert (status, out) == (2, "") and str(latest) in one_line(err) and "\x1b" not in err
        status, out, err = diffbench(capsys, "list")
        assert status == 0 and out == f"{folder.run_id}  2 missing-baseline\n"
        assert err.startswith("WARNING: ") and str(latest) in err and err.count("\n") == 1
    assert not (made.path / "baselines").exists()


def test_show_does_not_print_a_linked_summary(made: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    folder = latest_folder(made)
    secret = tmp_path / "secret.md"
    secret.write_text("SECRET\n", encoding="utf-8")
    folder.summary.unlink()
    folder.summary.symlink_to(secret)
    status, out, err = diffbench(capsys, "show", "latest")
    assert (status, out) == (2, "") and str(folder.summary) in one_line(err) and "symbolic link" in err
    folder.results.rename(tmp_path / "results.csv")
    folder.results.symlink_to(tmp_path / "results.csv")
    status, out, err = diffbench(capsys, "list")
    assert status == 0 and "symbolic link" in out and str(folder.results) in out


# -- input errors: one line, exit status 2 ----------------------------------------------------------


def drop_column(path: Path, column: str) -> None:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    index = rows[0].index(column)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(row[:index] + row[index + 1:] for row in rows)


def killed(folder: RunFolder) -> None:
    """Leave ``folder`` as a run killed after its cases: the journal and images, nothing of the end."""
    for path in (folder.results, folder.summary, folder.report, folder.bundle, folder.plot):
        path.unlink(missing_ok=True)
    shutil.rmtree(folder.grids, ignore_errors=True)


BAD_INPUTS: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {
    # name: (how to break the project (project, run folder), the command, what the line names)
    "a results.csv without a column": (lambda p, f: drop_column(f.results, "outcome"), ("report", "latest"),
                                       ("results.csv", "no column outcome")),
    "a results.csv with a word for a seed": (lambda p, f: set_cells(f.results, seed="forty-two"), ("accept", "latest"),
                                             ("results.csv", "seed 'forty-two'", "not a whole number")),
    "a results.csv with a word for cfg": (lambda p, f: set_cells(f.results, cfg="strong"), ("report", "latest"),
                                          ("results.csv", "cfg 'strong'", "not a number")),
    "an empty results.csv": (lambda p, f: f.results.write_bytes(b""), ("accept", "latest"),
                             ("results.csv", "no column nodeid, outcome, schema_version")),
    "a binary results.csv": (lambda p, f: f.results.write_bytes(bytes(range(256)) * 4), ("report", "latest"),
                             ("results.csv", "not UTF-8")),
    "a results.csv with an unknown outcome": (lambda p, f: set_cells(f.results, outcome="exploded"), ("accept", "latest"),
                                              ("results.csv", "unknown outcome", "exploded")),
    "a summary.md that is not UTF-8": (lambda p, f: f.summary.write_bytes(b"## run \xff\xfe\n"), ("show", "latest"),
                                       ("summary.md", "not UTF-8")),
    "a pytest.ini that is not UTF-8": (lambda p, f: (p.path / "pytest.ini").write_bytes(b"[pytest]\nx = \xe9t\xe9\n"),
                                       ("list",), ("pytest.ini", "not UTF-8")),
    "a malformed pyproject.toml": (lambda p, f: (p.path / "pyproject.toml").write_text("[tool.pytest.ini_options\n"),
                                   ("list",), ("pyproject.toml",)),
    "a baseline folder that is a file": (lambda p, f: (p.path / "baselines").write_text("not a folder"),
                                         ("accept", "latest"), ("diffbench_baseline_dir", "baselines", "not a folder")),
    "a journal line that is no case (a killed run)": (
        lambda p, f: (killed(f), f.journal.write_bytes(b'{"nodeid": 5}\n')), ("report", "latest"),
        ("journal.jsonl line 1",)),
    "a run folder with no case": (lambda p, f: (killed(f), f.journal.unlink()), ("show", "latest"),
                                  ("recorded no case", "no results.csv and no journal.jsonl")),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_an_input_error_is_one_line_naming_the_file_and_exit_2(made: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                                                name: str) -> None:
    breaking, command, named = BAD_INPUTS[name]
    breaking(made, latest_folder(made))
    before = snapshot(made.path)
    status, out, err = diffbench(capsys, *command)
    assert (status, out) == (2, ""), err
    line = one_line(err)
    assert all(text in line for text in named), line
    assert snapshot(made.path) == before


def test_an_unreadable_results_csv_is_one_line(made: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder = latest_folder(made)
    real_open = open

    def no_permission(file: Any, *args: Any, **kwargs: Any) -> Any:  # chmod 000 does not stop root
        if str(file) == str(folder.results):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_permission)
    for command in ("list", "report", "accept"):
        status, out, err = diffbench(capsys, command, *(["latest"] if command != "list" else []))
        if command == "list":
            assert status == 0 and f"unreadable: cannot read {folder.results}: Permission denied" in out
        else:
            assert (status, out) == (2, "") and f"cannot read {folder.results}: Permission denied" in one_line(err)


def test_a_broken_environment_or_case_record_is_one_line_and_the_rest_still_works(
        made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    folder.environment.write_bytes(b'{"python": "3.11", \xff')
    status, out, err = diffbench(capsys, "report", "latest")
    assert status == 1 and f"rebuilt {folder.summary}" in out and "Traceback" not in err
    assert err.count("\n") == 1 and str(folder.environment) in err and "not UTF-8" in err
    seed0 = read_results(folder.results)[0]
    config = folder.config(case_path(seed0.nodeid))
    config.write_text("{not json", encoding="utf-8")
    status, out, err = diffbench(capsys, "accept", "latest")
    assert status == 1 and tally(created=1, refused=1) in out and "Traceback" not in out + err
    assert str(config) in next(line for line in out.splitlines() if line.startswith("refused"))


# -- runs that did not finish -----------------------------------------------------------------------


def test_a_killed_run_is_listed_and_report_rebuilds_everything_from_its_journal(
        made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    finished = {path: path.read_bytes() for path in (folder.results, folder.summary, folder.bundle)}
    grids = snapshot(folder.grids)
    killed(folder)
    status, out, _ = diffbench(capsys, "list")
    assert status == 0
    assert out == (f"{folder.run_id}  (latest)  unfinished: 2 missing-baseline in its journal "
                   f"(diffbench report {folder.run_id} writes its results.csv)\n")

    status, out, err = diffbench(capsys, "report", folder.run_id)
    assert (status, err) == (0, ""), err
    assert out.splitlines()[0] == f"rebuilt {folder.results}"
    assert {path: path.read_bytes() for path in finished} == finished  # the bytes the finished run wrote
    assert snapshot(folder.grids) == grids and folder.report.is_file()
    status, out, _ = diffbench(capsys, "list")
    assert out == f"{folder.run_id}  (latest)  2 missing-baseline\n"


def test_show_and_accept_take_a_killed_runs_journal(made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    summary = folder.summary.read_text(encoding="utf-8")
    killed(folder)
    status, out, _ = diffbench(capsys, "accept", folder.run_id)
    assert status == 0 and tally(created=2) in out
    status, out, _ = diffbench(capsys, "show", folder.run_id)
    assert status == 0 and out == summary and folder.results.is_file()


def test_an_empty_run_folder_is_listed_not_hidden(made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    empty = RunFolder.of(made.path / ".diffbench", "20990101T000000Z-000000")
    empty.path.mkdir()
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and out.splitlines() == [
        f"{folder.run_id}  (latest)  2 missing-baseline",
        f"{empty.run_id}  unfinished: no case finished (it has no results.csv and no journal.jsonl)"]
    for command in ("show", "report", "accept"):
        status, out, err = diffbench(capsys, command, empty.run_id)
        assert (status, out) == (2, "") and f"run {empty.run_id} recorded no case" in one_line(err)


def test_a_run_still_going_is_listed_as_running_and_not_rebuilt(made: pytest.Pytester,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_diffbench.store.journal import Journal

    folder = latest_folder(made)
    killed(folder)
    with Journal(folder.journal):  # what the pytest process of a running run holds
        status, out, _ = diffbench(capsys, "list")
        assert out == f"{folder.run_id}  (latest)  running\n"
        status, out, err = diffbench(capsys, "report", folder.run_id)
        assert (status, out) == (2, "") and "still going" in one_line(err) and str(folder.journal) in err
        assert not folder.results.exists()


KILLED_MODULE = """
import os
import signal

import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1, 2], steps=2)
def test_case(diffbench):
    diffbench.generate("a red cube")


def test_zz_killed(request):
    from pytest_diffbench.plugin.keys import SESSION_KEY

    request.config.stash[SESSION_KEY].drain_writes()  # the background writer journals the cases first
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.subprocess
def test_a_run_killed_by_sigkill_is_reported_from_its_journal(fake_project: pytest.Pytester,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    fake_project.makepyfile(test_gen=KILLED_MODULE)
    outcome = fake_project.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "--diffbench")
    assert outcome.ret == -signal.SIGKILL
    (path,) = (fake_project.path / ".diffbench" / "runs").iterdir()
    folder = RunFolder(path)
    assert not folder.results.exists() and read_latest(fake_project.path / ".diffbench") is None
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and out == (f"{folder.run_id}  unfinished: 3 missing-baseline in its journal "
                                   f"(diffbench report {folder.run_id} writes its results.csv)\n")
    status, out, err = diffbench(capsys, "report", folder.run_id)
    assert status == 0, err
    assert sorted(r.case_id for r in read_results(folder.results)) == [f"seed{seed}-euler-2steps-cfg7.5" for seed in range(3)]
    assert folder.summary.is_file() and folder.bundle.is_file() and manifest_mismatches(folder.bundle) == []
