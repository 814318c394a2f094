"""Grids of a run folder: which cases get a comparison grid, how sweep sheets are grouped."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from skimage import data

from pytest_diffbench.files import encode_png
from pytest_diffbench.reports import grid_labels, write_grids


def record(seed: int, sampler: str, steps: int, outcome: str = "passed", action: str = "", **extra) -> dict:
    slug = {"Euler": "euler", "DDIM": "ddim"}[sampler]
    case_id = f"seed{seed}-{slug}-{steps}steps-cfg7.5"
    return {"nodeid": f"tests/test_a.py::test_a[{case_id}]", "test": "tests/test_a.py::test_a", "case_id": case_id,
            "outcome": outcome, "baseline_action": action, "sampler": sampler, "steps": steps, "cfg": 7.5, "seed": seed,
            "config_hash": "f" * 64, "ssim": 0.5, "min_ssim": 0.95, "psnr": float("inf"), "min_psnr": 25.0,
            "lpips": None, "max_lpips": 0.05, "seconds_per_image": 0.4, "device_name": "Intel Xeon",
            "baseline_path": "", **extra}


def make_run(tmp_path: Path, records: list[dict]) -> Path:
    run_dir = tmp_path / "run"
    image = Image.fromarray(data.astronaut()).resize((64, 64))
    for i, r in enumerate(records):
        path = run_dir / "images" / "tests" / "test_a" / "test_a" / f"{r['case_id']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_png(image.rotate(10 * i)))
    return run_dir


def test_grid_labels_show_each_metric_against_its_tolerance_and_the_trace():
    lines = grid_labels(record(0, "Euler", 20, outcome="failed-quality"))
    assert lines[0] == "failed-quality · tests/test_a.py::test_a[seed0-euler-20steps-cfg7.5]"
    assert lines[1] == "sampler Euler · steps 20 · cfg 7.5 · seed 0 · config ffffffffffff"
    assert lines[2] == "ssim 0.5 >= 0.95 FAIL · psnr inf dB >= 25 dB ok · lpips -"
    assert lines[3] == "0.4 s/img · Intel Xeon"


def test_comparison_grids_only_for_failed_or_written_cases_and_one_sheet_per_seed(tmp_path: Path):
    records = [record(seed, sampler, steps, outcome="failed-quality" if (seed, sampler, steps) == (0, "DDIM", 20) else "passed",
                      action="created" if (seed, sampler, steps) == (1, "Euler", 4) else "")
               for seed in (0, 1) for sampler in ("Euler", "DDIM") for steps in (4, 20)]
    run_dir = make_run(tmp_path, records)
    (run_dir / "grids" / "old.png").parent.mkdir(parents=True)
    (run_dir / "grids" / "old.png").write_bytes(b"stale")
    written = write_grids(run_dir, tmp_path, records)
    names = sorted(p.relative_to(run_dir / "grids").as_posix() for p in written)
    assert names == ["cases/tests/test_a/test_a/seed0-ddim-20steps-cfg7.5.png",
                     "cases/tests/test_a/test_a/seed1-euler-4steps-cfg7.5.png",
                     "sheets/tests/test_a/test_a/seed0-cfg7.5.png",
                     "sheets/tests/test_a/test_a/seed1-cfg7.5.png"]
    assert not (run_dir / "grids" / "old.png").exists()
    with Image.open(run_dir / "grids" / "sheets/tests/test_a/test_a/seed0-cfg7.5.png") as sheet:
        # 2 samplers x 2 step counts of 256 px cells (64 px images shown x4), plus labels
        assert sheet.width > 2 * 256 and sheet.height > 2 * 256
        assert sheet.width < 3 * 256 and sheet.height < 3 * 256


def test_cases_without_an_image_are_skipped(tmp_path: Path):
    records = [record(0, "Euler", 4, outcome="error")]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert write_grids(run_dir, tmp_path, records) == []
