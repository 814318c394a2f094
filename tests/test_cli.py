"""The diffbench command on real run folders: list, show, report, accept."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from helpers import (
    baseline_pair,
    diffbench_test,
    latest_rows,
    latest_run_dir,
    read_json,
    run,
    sha256_file,
    snapshot,
    write_tests,
)
from PIL import Image

from pytest_diffbench.cli import find_ini, main

CASES = ("seed0-euler-2steps-cfg7.5", "seed1-euler-2steps-cfg7.5")


def diffbench(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the command in the pytester folder; its exit status and what it printed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pytester.path)
        status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def spoil(png: Path, sidecar: Path) -> None:
    """Change a baseline's pixels (and its recorded SHA, so the pair stays consistent)."""
    with Image.open(png) as image:
        Image.new("RGB", image.size, (255, 0, 0)).save(png)
    data = read_json(sidecar)
    data["image_sha256"] = sha256_file(png)
    sidecar.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def made(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose two cases ran once without baselines (missing-baseline)."""
    write_tests(pytester, diffbench_test(sweep="seeds=[0, 1], steps=2"))
    run(pytester).assert_outcomes(failed=2)
    return pytester


def test_accept_promotes_a_runs_outputs_without_generating(made: pytest.Pytester, capsys):
    run_dir = latest_run_dir(made)
    status, out = diffbench(made, capsys, "accept", "latest")
    assert status == 0, out
    assert "2 created, 0 replaced, 0 unchanged, 0 refused" in out
    for case in CASES:
        png, sidecar = baseline_pair(made, "test_gen", "test_case", case)
        assert png.read_bytes() == (run_dir / "images" / "test_gen" / "test_case" / f"{case}.png").read_bytes()
        assert read_json(sidecar)["config_hash"] == read_json(run_dir / "configs" / "test_gen" / "test_case" / f"{case}.json")["config_hash"]
    run(made).assert_outcomes(passed=2)  # the promoted baselines are what the pipeline makes

    status, out = diffbench(made, capsys, "accept", run_dir.name)
    assert status == 0 and "0 created, 0 replaced, 2 unchanged, 0 refused" in out


def test_accept_failed_only_and_k_replace_exactly_the_named_baselines(made: pytest.Pytester, capsys):
    diffbench(made, capsys, "accept", "latest")
    for case in CASES:
        spoil(*baseline_pair(made, "test_gen", "test_case", case))
    run(made).assert_outcomes(failed=2)
    spoiled = snapshot(made.path / "baselines")

    status, out = diffbench(made, capsys, "accept", "latest", "--failed-only", "-k", "SEED1")
    assert status == 0 and "0 created, 1 replaced, 0 unchanged, 0 refused" in out
    after = snapshot(made.path / "baselines")
    changed = sorted(name for name in after if after[name] != spoiled[name])
    assert [name.rsplit("/", 1)[-1] for name in changed] == [f"{CASES[1]}.json", f"{CASES[1]}.png"]
    replaced = latest_run_dir(made) / "replaced-baselines" / "test_gen" / "test_case"
    assert (replaced / f"{CASES[1]}.png").read_bytes() == spoiled[f"cpu-float32/test_gen/test_case/{CASES[1]}.png"]
    rows = {row["case_id"]: row["outcome"] for row in latest_rows(made)}
    assert rows == {CASES[0]: "failed-quality", CASES[1]: "failed-quality"}  # the run itself is history
    result = run(made)
    result.assert_outcomes(passed=1, failed=1)


def test_accept_refuses_a_case_whose_config_changed_and_changes_nothing(made: pytest.Pytester, capsys):
    diffbench(made, capsys, "accept", "latest")
    write_tests(made, diffbench_test(sweep="seeds=[0, 1], steps=2", body='diffbench.generate("a blue cube")'))
    run(made).assert_outcomes(failed=2)
    before = snapshot(made.path / "baselines")
    status, out = diffbench(made, capsys, "accept", "latest")
    assert status == 1
    assert out.count("refused") == 3 and "0 created, 0 replaced, 0 unchanged, 2 refused" in out
    assert "regenerate it with pytest --diffbench --diffbench-update" in out
    assert snapshot(made.path / "baselines") == before


def test_list_show_and_report(made: pytest.Pytester, capsys):
    run_dir = latest_run_dir(made)
    status, out = diffbench(made, capsys, "list")
    assert status == 0 and f"{run_dir.name}  (latest)  2 missing-baseline" in out
    status, out = diffbench(made, capsys, "show")
    assert status == 0 and out == (run_dir / "summary.md").read_text()

    bundle = run_dir / f"diffbench-{run_dir.name}.zip"
    first = bundle.read_bytes()
    (run_dir / "summary.md").unlink()
    for grid in (run_dir / "grids").rglob("*.png"):
        grid.unlink()
    status, out = diffbench(made, capsys, "report", run_dir.name)
    assert status == 0 and f"rebuilt {bundle}" in out
    assert bundle.read_bytes() == first  # rebuilt from the run folder: the same bytes
    with zipfile.ZipFile(bundle) as archive:
        grids = [name for name in archive.namelist() if name.startswith("grids/cases/")]
    assert sorted(grids) == [f"grids/cases/test_gen/test_case/{case}.png" for case in CASES]


def test_unknown_run_is_a_clear_error(made: pytest.Pytester, capsys):
    status, out = diffbench(made, capsys, "show", "20000101T000000Z-000000")
    assert status == 2 and "no run folder '20000101T000000Z-000000'" in out


def test_settings_come_from_the_same_ini_as_pytest(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\ndiffbench_output_dir = out\n")  # tox.ini
    (pytester.path / "sub").mkdir()
    assert find_ini(pytester.path / "sub") == (pytester.path, {"diffbench_output_dir": "out"})
    (pytester.path / "tox.ini").unlink()
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ndiffbench_baseline_dir = "b"\n')
    assert find_ini(pytester.path) == (pytester.path, {"diffbench_baseline_dir": "b"})
    (pytester.path / "pytest.ini").write_text("[pytest]\n")  # pytest.ini wins, even when empty
    assert find_ini(pytester.path) == (pytester.path, {})
