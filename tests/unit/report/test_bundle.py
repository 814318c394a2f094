"""The run bundle: contents by image choice, deterministic bytes, manifest, README."""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from pytest_diffbench.report.bundle import build_bundle, bundle_files, manifest_mismatches, write_bundle
from pytest_diffbench.store.files import PathEscapeError, encode_png
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import write_results
from pytest_diffbench.store.run_folder import RunFolder

RUN_ID = "20261128T000000Z-abcdef"
CASES = {"t/test_a/test_a/seed0": "passed", "t/test_a/test_a/seed1": "failed-quality"}


@pytest.fixture
def results(make_result):
    return [make_result(i, test="t/test_a.py::test_a", outcome=outcome).with_changes(nodeid=f"t/test_a.py::test_a[seed{i}]")
            for i, outcome in enumerate(CASES.values())]


@pytest.fixture
def folder(tmp_path: Path, results, astronaut_photo) -> RunFolder:
    """A run folder as a diffbench run leaves it: results, environment, summary, configs, images."""
    folder = RunFolder(tmp_path / ".diffbench" / "runs" / RUN_ID)
    image = astronaut_photo(64)
    for i, result in enumerate(results):
        case = case_path(result.nodeid)
        assert case in CASES
        folder.write_case(case, encode_png(image.rotate(90 * i)), json.dumps({"config_hash": str(i)}))
    write_results(folder.results, [r.to_row() for r in results])
    folder.environment.write_text("{}\n")
    folder.summary.write_text("## run\n")
    return folder


def test_failures_bundle_holds_only_the_failed_cases_images(folder, results):
    files = bundle_files(folder, results, "failures")
    assert "images/t/test_a/test_a/seed1.png" in files
    assert "images/t/test_a/test_a/seed0.png" not in files
    assert {"results.csv", "environment.json", "summary.md"} <= set(files)
    assert {f for f in files if f.startswith("configs/")} == {f"configs/{case}.json" for case in CASES}


def test_image_choices(folder, results):
    def images(choice: str) -> set[str]:
        return {f for f in bundle_files(folder, results, choice) if f.startswith("images/")}

    assert images("all") == {f"images/{case}.png" for case in CASES}
    assert images("none") == set()
    with pytest.raises(ValueError, match="valid values are failures, all, none"):
        bundle_files(folder, results, "some")


def test_same_run_folder_gives_the_same_bytes_whatever_the_file_times(folder, results):
    first = hashlib.sha256(build_bundle(folder, results)).hexdigest()
    for path in folder.path.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    assert hashlib.sha256(build_bundle(folder, results)).hexdigest() == first
    folder.summary.write_text("## run, edited\n")
    assert hashlib.sha256(build_bundle(folder, results)).hexdigest() != first


def test_bundle_entries_manifest_and_readme(folder, results):
    path = write_bundle(folder, results, "failures")
    assert path == folder.bundle and path.name == f"diffbench-{RUN_ID}.zip"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        manifest = json.loads(archive.read("manifest.json"))
        readme = archive.read("README.md").decode()
        for name in set(names) - {"manifest.json"}:
            assert manifest["files"][name] == hashlib.sha256(archive.read(name)).hexdigest()
        assert archive.read("results.csv") == folder.results.read_bytes()
    assert manifest["run_id"] == RUN_ID
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    assert 'pytest --diffbench "t/test_a.py::test_a[seed0]"' in readme
    assert manifest_mismatches(path) == []


def test_manifest_mismatches_name_a_tampered_entry(folder, results, tmp_path: Path):
    original = write_bundle(folder, results)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            target.writestr(info, b"edited\n" if info.filename == "summary.md" else source.read(info))
    assert manifest_mismatches(tampered) == ["summary.md"]


@pytest.mark.parametrize("link", ["configs/t/test_a/test_a/seed0.json", "configs", "environment.json", "grids"])
def test_a_linked_file_or_folder_is_refused_not_bundled(folder, results, tmp_path: Path, link: str) -> None:
    outside = tmp_path / "outside"
    (outside / "t").mkdir(parents=True)
    (outside / "t" / "secret.json").write_text("SECRET")
    (outside / "secret.json").write_text("SECRET")
    path = folder.path / link
    if link in ("configs", "grids"):
        if path.exists():
            os.rename(path, tmp_path / "moved")
        path.symlink_to(outside, target_is_directory=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.symlink_to(outside / "secret.json")
    with pytest.raises(PathEscapeError, match=f"{re.escape(str(folder.path))}/{link.split('/')[0]}.* is a symbolic link"):
        write_bundle(folder, results, "all")
    assert not folder.bundle.exists()
