"""The ``diffbench`` command on real run folders: list, show, report, accept.

The runs are made in-process with :class:`~pytest_diffbench.testing.FakePipeline`; the command
runs in-process too (``main([...])`` from the project folder). One test starts the installed
console script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pytest_diffbench.cli.main import main
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store.baselines import BaselineStore
from pytest_diffbench.store.files import sha256_bytes
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import RunFolder, read_latest
from pytest_diffbench.testing import run_diffbench, use_fake_pipeline

TEST_MODULE = """
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_case(diffbench):
    diffbench.generate("{prompt}")
"""

TALLY = "{created} created, {refreshed} refreshed, {rewritten} rewritten, {unchanged} unchanged, {refused} refused"


def tally(created: int = 0, refreshed: int = 0, rewritten: int = 0, unchanged: int = 0, refused: int = 0) -> str:
    """The closing line of ``diffbench accept``."""
    return TALLY.format(created=created, refreshed=refreshed, rewritten=rewritten, unchanged=unchanged, refused=refused)


def write_project(pytester: pytest.Pytester, prompt: str = "a red cube") -> None:
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TEST_MODULE.format(prompt=prompt))


def diffbench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command in the current folder: its exit status, stdout and stderr."""
    capsys.readouterr()
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


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


@pytest.fixture
def made(fake_project: pytest.Pytester) -> pytest.Pytester:
    """The project after one run without baselines (both cases missing-baseline)."""
    run_diffbench(fake_project).outcome.assert_outcomes(failed=2)
    return fake_project


# -- accept -----------------------------------------------------------------------------------


def test_accept_promotes_a_runs_outputs_without_generating(made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_folder(made)
    results = read_results(folder.results)
    status, out, err = diffbench(capsys, "accept", "latest")
    assert status == 0, out + err
    assert tally(created=2) in out
    for result in results:
        png, sidecar = baseline(made, result)
        case = case_path(result.nodeid)
        assert png.read_bytes() == folder.image(case).read_bytes()
        assert read_json(sidecar)["config_hash"] == read_json(folder.config(case))["config_hash"] == result.config_hash
    run_diffbench(made).outcome.assert_outcomes(passed=2)  # the promoted baselines are what the pipeline makes

    status, out, _ = diffbench(capsys, "accept", folder.run_id)
    assert status == 0 and tally(unchanged=2) in out


def test_accept_failed_only_and_k_replace_exactly_the_named_baselines(made: pytest.Pytester,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    diffbench(capsys, "accept", "latest")
    for result in read_results(latest_folder(made).results):
        spoil(*baseline(made, result))
    failing = run_diffbench(made)
    failing.outcome.assert_outcomes(failed=2)
    spoiled = snapshot(made.path / "baselines")

    status, out, err = diffbench(capsys, "accept", "latest", "--failed-only", "-k", "SEED1")
    assert status == 0, out + err
    assert tally(refreshed=1) in out
    seed1 = failing.result("seed1")
    after = snapshot(made.path / "baselines")
    changed = sorted(name for name in after if after[name] != spoiled[name])
    png, sidecar = baseline(made, seed1)
    assert changed == sorted(p.relative_to(made.path / "baselines").as_posix() for p in (png, sidecar))
    folder = failing.folder
    kept = folder.replaced(case_path(seed1.nodeid))
    assert kept.read_bytes() == spoiled[png.relative_to(made.path / "baselines").as_posix()]
    # the run itself is history: its results still say what the run found
    assert {r.case_id: r.outcome for r in read_results(folder.results)} == {
        r.case_id: Outcome.FAILED_QUALITY for r in failing.results}
    run_diffbench(made).outcome.assert_outcomes(passed=1, failed=1)


def test_accept_k_is_repeatable_and_a_selection_of_nothing_changes_nothing(made: pytest.Pytester,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = diffbench(capsys, "accept", "latest", "-k", "no-such-case")
    assert status == 0 and "nothing changed" in out
    assert not (made.path / "baselines").exists()
    status, out, _ = diffbench(capsys, "accept", "latest", "-k", "seed0", "-k", "seed1")
    assert status == 0 and tally(created=2) in out


def test_accept_refuses_a_case_whose_config_changed_and_changes_nothing(made: pytest.Pytester,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    diffbench(capsys, "accept", "latest")
    write_project(made, prompt="a blue cube")
    run_diffbench(made).outcome.assert_outcomes(failed=2)
    before = snapshot(made.path / "baselines")
    status, out, _ = diffbench(capsys, "accept", "latest")
    assert status == 1
    assert out.count("refused") == 3 and tally(refused=2) in out
    assert "regenerate it with pytest --diffbench --diffbench-update" in out
    assert snapshot(made.path / "baselines") == before


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


def test_accept_rewrites_a_broken_baseline(made: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    diffbench(capsys, "accept", "latest")
    folder = latest_folder(made)
    seed0 = read_results(folder.results)[0]
    png, _ = baseline(made, seed0)
    broken = png.read_bytes() + b"edited"  # the sidecar's SHA-256 no longer vouches for it
    png.write_bytes(broken)
    status, out, err = diffbench(capsys, "accept", "latest")
    assert status == 0, out + err
    assert tally(rewritten=1, unchanged=1) in out
    rewritten = next(line for line in out.splitlines() if line.startswith("rewritten"))
    assert seed0.nodeid in rewritten and "unreadable" in rewritten
    stored = BaselineStore(made.path / "baselines", seed0.pin).load(case_path(seed0.nodeid))
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


def test_errors_the_user_can_fix_are_one_line_and_exit_2(fake_project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = diffbench(capsys, "show")
    assert (status, out) == (2, "") and err.startswith("diffbench: no run yet") and err.count("\n") == 1
    status, out, _ = diffbench(capsys, "list")
    assert status == 0 and "no runs in" in out

    run_diffbench(fake_project).outcome.assert_outcomes(failed=2)
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
