"""The run bundle: contents by image choice, determinism, manifest."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from pytest_diffbench.bundle import build_bundle, bundle_files, bundle_name, manifest_mismatches, write_bundle
from pytest_diffbench.files import encode_png

RUN_ID = "20261128T000000Z-abcdef"
CASES = {"t/test_a/test_a/seed0": "passed", "t/test_a/test_a/seed1": "failed-quality"}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder as a diffbench run leaves it: results, environment, summary, configs, images."""
    folder = tmp_path / ".diffbench" / "runs" / RUN_ID
    image = Image.fromarray(data.astronaut()).resize((64, 64))
    rows = []
    for i, (case, outcome) in enumerate(CASES.items()):
        png = folder / "images" / f"{case}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(encode_png(image.rotate(90 * i)))
        config = folder / "configs" / f"{case}.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps({"config_hash": str(i)}))
        rows.append({"nodeid": f"t/test_a.py::test_a[seed{i}]", "outcome": outcome,
                     "output_path": f".diffbench/runs/{RUN_ID}/images/{case}.png"})
    with (folder / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (folder / "environment.json").write_text("{}\n")
    (folder / "summary.md").write_text("## run\n")
    return folder


def test_failures_bundle_holds_only_the_failed_cases_images(run_dir: Path):
    files = bundle_files(run_dir, "failures")
    assert "images/t/test_a/test_a/seed1.png" in files
    assert "images/t/test_a/test_a/seed0.png" not in files
    assert {"results.csv", "environment.json", "summary.md"} <= set(files)
    assert {f for f in files if f.startswith("configs/")} == {f"configs/{case}.json" for case in CASES}


def test_image_choices(run_dir: Path):
    images = lambda choice: {f for f in bundle_files(run_dir, choice) if f.startswith("images/")}  # noqa: E731
    assert images("all") == {f"images/{case}.png" for case in CASES}
    assert images("none") == set()
    with pytest.raises(ValueError, match="valid values are failures, all, none"):
        bundle_files(run_dir, "some")


def test_same_run_folder_gives_the_same_bytes_whatever_the_file_times(run_dir: Path):
    first = hashlib.sha256(build_bundle(run_dir, RUN_ID)).hexdigest()
    for path in run_dir.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    assert hashlib.sha256(build_bundle(run_dir, RUN_ID)).hexdigest() == first
    (run_dir / "summary.md").write_text("## run, edited\n")
    assert hashlib.sha256(build_bundle(run_dir, RUN_ID)).hexdigest() != first


def test_bundle_entries_manifest_and_readme(run_dir: Path):
    path = write_bundle(run_dir, RUN_ID, "failures")
    assert path == run_dir / bundle_name(RUN_ID) and path.name == f"diffbench-{RUN_ID}.zip"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        manifest = json.loads(archive.read("manifest.json"))
        readme = archive.read("README.md").decode()
        for name in set(names) - {"manifest.json"}:
            assert manifest["files"][name] == hashlib.sha256(archive.read(name)).hexdigest()
        assert archive.read("results.csv") == (run_dir / "results.csv").read_bytes()
    assert manifest["run_id"] == RUN_ID
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    assert 'pytest --diffbench "t/test_a.py::test_a[seed0]"' in readme
    assert manifest_mismatches(path) == []


def test_manifest_mismatches_name_a_tampered_entry(run_dir: Path, tmp_path: Path):
    original = write_bundle(run_dir, RUN_ID)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            content = b"edited\n" if info.filename == "summary.md" else source.read(info)
            target.writestr(info, content)
    assert manifest_mismatches(tampered) == ["summary.md"]
