"""The session end's figures and bundle streamed from disk: the same bytes as made in memory, one
image (or one file's chunk) held at a time, and a bundle that is never half-written."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.report import bundle as bundle_module
from pytest_diffbench.report.bundle import MANIFEST, _entry, _readme, bundle_files, write_bundle
from pytest_diffbench.report.draw import sweep_sheet
from pytest_diffbench.report.grids import write_grids
from pytest_diffbench.report.html import render_report
from pytest_diffbench.store.files import TMP_SUFFIX, encode_png
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import write_results
from pytest_diffbench.store.run_folder import RunFolder

RUN_ID = "20261128T000000Z-abcdef"


@pytest.fixture
def run(tmp_path: Path, make_result, astronaut_photo):
    """A run of 2 samplers x 2 step counts, one case failing, one output a 1024x1024 noise image
    (about 3 MiB: more than one read chunk)."""
    folder = RunFolder(tmp_path / ".diffbench" / "runs" / RUN_ID)
    results, images = [], {}
    for i, (sampler, steps) in enumerate([("Euler", 10), ("Euler", 20), ("DDIM", 10), ("DDIM", 20)]):
        result = make_result(0, sampler, steps, outcome="failed-quality" if i == 1 else "passed")
        image = (Image.fromarray(np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
                 if i == 3 else astronaut_photo(64).rotate(30 * i))
        images[(sampler, str(steps))] = image
        folder.write_case(case_path(result.nodeid), encode_png(image), json.dumps({"config_hash": str(i)}))
        results.append(result)
    write_results(folder.results, [r.to_row() for r in results])
    folder.environment.write_text("{}\n")
    folder.summary.write_text("## run\n")
    folder.report.write_text("<html></html>\n")
    return folder, results, images


def in_memory_bundle(folder: RunFolder, results, images: str) -> bytes:
    """The bundle as it was built before streaming: every file read, then zipped from memory."""
    files = bundle_files(folder, results, images)
    contents = {name: (folder.path / name).read_bytes() for name in files}
    contents["report.html"] = render_report(folder, results, {}, bundled=frozenset(files)).encode("utf-8")
    contents["README.md"] = _readme(folder, results, files, images).encode("utf-8")
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())}
    contents[MANIFEST] = (json.dumps({"run_id": folder.run_id, "files": manifest}, indent=2, sort_keys=True) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(contents):
            archive.writestr(_entry(name), contents[name], compresslevel=6)
    return buffer.getvalue()


@pytest.mark.parametrize("images", ["all", "failures"])
def test_the_bundle_written_as_it_is_built_has_the_in_memory_bytes(run, images):
    folder, results, _ = run
    written = write_bundle(folder, results, images).read_bytes()
    assert written == in_memory_bundle(folder, results, images)
    assert bundle_module.build_bundle(folder, results, images) == written
    assert [p.name for p in folder.path.iterdir() if p.name.endswith(TMP_SUFFIX)] == []


def test_a_bundle_that_fails_while_written_leaves_the_last_one_whole_and_no_temporary_file(run, monkeypatch):
    folder, results, _ = run
    before = write_bundle(folder, results, "all").read_bytes()
    hashed = bundle_module._file_digest

    def vanish(path: Path) -> str:  # a file removed between its hash and its entry
        digest = hashed(path)
        if path.suffix == ".png":
            path.unlink()
        return digest

    monkeypatch.setattr(bundle_module, "_file_digest", vanish)
    with pytest.raises(FileNotFoundError):
        write_bundle(folder, results, "all")
    assert folder.bundle.read_bytes() == before
    assert [p.name for p in folder.path.iterdir() if p.name.endswith(TMP_SUFFIX)] == []


def test_a_sheet_drawn_from_files_has_the_bytes_of_one_drawn_from_images(run):
    folder, results, images = run
    paths = {key: folder.image(case_path(r.nodeid)) for key, r in zip(images, results)}
    args = (["Euler", "DDIM"], ["10", "20"], "test_a · seed0 · cfg7.5", "sampler", "steps", {("Euler", "20"): "failed"})
    assert encode_png(sweep_sheet(paths, *args)) == encode_png(sweep_sheet(images, *args))


def test_write_grids_draws_the_sheet_of_the_in_memory_images(run, tmp_path):
    folder, results, images = run
    written = write_grids(folder, tmp_path, results)
    sheets = [path for path in written if "sheets" in path.parts]
    assert len(sheets) == 1
    marks = {("Euler", "20"): "failed-quality"}
    title = "test_a · seed0 · cfg7.5"
    expected = sweep_sheet(images, ["DDIM", "Euler"], ["10", "20"], title, "sampler", "steps", marks)  # rows by node id
    assert np.array_equal(np.asarray(Image.open(sheets[0])), np.asarray(expected))
    assert sheets[0].read_bytes() == encode_png(expected)


def test_the_bundle_stores_images_as_they_are_and_deflates_the_other_files(run):
    """PNG data is deflated already: deflating it again would cost the bundle most of its time
    for a few percent of its size. The images come out byte for byte."""
    folder, results, _ = run
    with zipfile.ZipFile(io.BytesIO(bundle_module.build_bundle(folder, results, "all"))) as archive:
        kinds = {info.filename: info.compress_type for info in archive.infolist()}
        assert all(archive.read(name) == (folder.path / name).read_bytes() for name in kinds if name.endswith(".png"))
    assert {kinds[name] for name in kinds if name.endswith(".png")} == {zipfile.ZIP_STORED}
    assert {kinds[name] for name in kinds if not name.endswith(".png")} == {zipfile.ZIP_DEFLATED}
    assert "results.csv" in kinds and any(name.startswith("images/") for name in kinds)
