"""The run bundle: one deterministic zip with everything a reviewer needs.

``diffbench-<run_id>.zip`` holds results.csv, environment.json, summary.md, report.html,
plot.png, configs/, inputs/ and grids/ (when present), the chosen output images, a README.md that
lists what the bundle holds and says how to replay it, and manifest.json with every other file's
SHA-256. It carries what ``diffbench replay`` needs to make every case again from the bundle alone
(:mod:`pytest_diffbench.cli.replay`): each case's frozen config, the input images its config names
by digest, the tolerances of results.csv, and the images to compare with. Entries
are sorted and carry a fixed timestamp and permissions, so the same run folder always gives the
same bytes; images are stored as they are (PNG is compressed already), every other file deflated.

The bundle's report.html is rendered for the bundle: it links only files the bundle holds and
names the others (output images left out by ``diffbench_bundle_images``) as files of the run
folder, so every link works wherever the bundle is unzipped.

Every file goes in through :func:`in_run`: a symbolic link in the run folder (a linked
``configs/x.json``, a linked ``grids/``) is refused, never followed into the bundle.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.html import render_report
from pytest_diffbench.store.files import atomic_writer, inside, regular_files
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import CONFIGS_DIR, GRIDS_DIR, IMAGES_DIR, INPUTS_DIR, RunFolder

#: Which output images go into the bundle (``--diffbench-bundle-images``).
BUNDLE_IMAGES = ("failures", "all", "none")
#: The bundle's file of every other file's SHA-256.
MANIFEST = "manifest.json"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold

README = """# diffbench run {run_id}

This bundle is one pytest-diffbench run. It holds:

{contents}
- `manifest.json`: the SHA-256 of every file above.
{left_out}
## Replaying the bundle

Install the versions environment.json lists (pytest-diffbench included) and the model the configs
name, then

    diffbench replay diffbench-{run_id}.zip

makes every case whose output image the bundle holds again, from its frozen config in configs/
alone (model and weight fingerprint, sampler, steps, cfg, seed, size, dtype, device, pipeline
keywords, the input images in inputs/, the determinism switch), and says per case `identical`,
`within tolerance` (the tolerances of results.csv) or `different`; it exits with 1 on any
difference; the folder the bundle was unzipped into replays the same. `-k EXPR` picks cases
(pytest's -k expression over the node id: `-k "test_x and seed0"`), `--device cpu` replays a GPU
run on the CPU.
Cases a config alone cannot rebuild (a refiner, LoRAs, a pipeline of the test's own) are listed
with why (exit status 3 when nothing differed).

## Running a case again

Check out the commit in environment.json and run the case by its node id (the `nodeid` column), e.g.

    pytest --diffbench "{example}"

A run whose config hashes to the same value made the same image on the same software.
"""

#: The README's line of each file or folder, listed only when the bundle holds it.
_README_ENTRIES = (
    ("results.csv", "one row per case: its frozen config and hash, outcome, every metric next to its "
                    "tolerance, seconds per image, peak VRAM, device, driver and library versions"),
    ("environment.json", "the command line, git commit, OS, library versions, devices, and `threads`: how many "
                         "threads torch's CPU pool got per pytest process, from how many cores, workers and load"),
    ("summary.md", "counts, failing cases and the speed table, as posted on a pull request"),
    ("report.html", "the whole run on one page (open it from the unzipped folder; it links the files of this bundle "
                    "and names the ones it leaves out)"),
    ("plot.png", "seconds per image against SSIM (and LPIPS), per case"),
    (f"{CONFIGS_DIR}/", "`<test path>/<case>.json`: each case's frozen config and its SHA-256"),
    (f"{INPUTS_DIR}/", "`<digest>.png`: the input images of the cases (img2img, inpaint, ControlNet ...), named in "
                       "their configs by the digest of their pixels"),
    (f"{GRIDS_DIR}/", "labeled baseline | output | difference images of the failing cases, and the sweep sheets"),
    (f"{IMAGES_DIR}/", "output images of {images}"),
)


def _readme(folder: RunFolder, results: Sequence[CaseResult], files: Sequence[str], images: str) -> str:
    """The bundle's README.md: what it holds (of ``files``) and how to replay a case."""
    chosen = {"failures": "the failing cases", "all": "every case", "none": "no case"}[images]
    contents = "\n".join(f"- `{name}`: {text.format(images=chosen)}" for name, text in _README_ENTRIES
                         if any(f == name or (name.endswith("/") and f.startswith(name)) for f in files))
    left_out = {"failures": "the passing cases", "none": "every case"}.get(images)
    note = (f"\nNot in this bundle (bundle images = {images}): the output images of {left_out}; they are in the "
            f"run folder's `{IMAGES_DIR}/`.\n" if left_out else "")
    return README.format(run_id=folder.run_id, contents=contents, left_out=note, example=_example_nodeid(results))


def in_run(folder: RunFolder, path: Path) -> Path:
    """``path`` (a file of the run), checked to lie inside the run folder with no symbolic link on
    the way, the file included (images/, grids/, configs/ of a crafted run folder may be links).

    Raises :class:`~pytest_diffbench.store.files.PathEscapeError` naming the link otherwise.
    """
    return inside(folder.path, folder.relative(path))


def _files(folder: RunFolder, tree: Path, pattern: str) -> set[str]:
    """The files under ``tree`` matching ``pattern``, relative to the run folder, each checked by
    :func:`in_run` (a linked file, or any file under a linked folder, raises PathEscapeError).

    One walk of ``tree`` when it holds no symbolic link at all (the usual run folder); otherwise
    each path found is checked part by part, and the first link found is the one named."""
    walked, complete = regular_files(tree)
    if complete:
        top = folder.relative(tree)
        return {f"{top}/{name}" for name in walked if fnmatch.fnmatch(name.rsplit("/", 1)[-1], pattern)}
    return {folder.relative(in_run(folder, path)) for path in tree.rglob(pattern) if path.is_file() or path.is_symlink()}


def bundle_files(folder: RunFolder, results: Sequence[CaseResult], images: str = "failures") -> list[str]:
    """The run folder's files that go into the bundle, as sorted POSIX paths relative to it.

    Raises ValueError naming the valid values when ``images`` is not one of :data:`BUNDLE_IMAGES`,
    and PathEscapeError naming the link when a file that would go in is (or lies under) a symbolic link.
    """
    if images not in BUNDLE_IMAGES:
        raise ValueError(f"bundle images {images!r} is not valid; valid values are {', '.join(BUNDLE_IMAGES)}")
    always = (folder.results, folder.environment, folder.summary, folder.report, folder.plot)
    chosen = {folder.relative(path) for path in always if in_run(folder, path).is_file()}
    for tree in (folder.path / CONFIGS_DIR, folder.inputs, folder.grids):
        chosen |= _files(folder, tree, "*")
    all_images = _files(folder, folder.path / IMAGES_DIR, "*.png")
    if images == "all":
        chosen |= all_images
    elif images == "failures":
        chosen |= all_images & {folder.relative(folder.image(case_path(r.nodeid))) for r in results if not r.passed}
    return sorted(chosen)


#: Files stored in the bundle as they are: PNG data is deflated already, and deflating it again
#: costs more than all else the bundle does for a few percent of its size at most.
_STORED_SUFFIXES = (".png",)


def _entry(name: str) -> zipfile.ZipInfo:
    """The zip entry of the bundle's file ``name``: a fixed time and permissions, deflated (a
    PNG image stored, see :data:`_STORED_SUFFIXES`)."""
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_STORED if name.endswith(_STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.create_system = 3  # unix, whatever the platform writing it
    return info


def _example_nodeid(results: Sequence[CaseResult]) -> str:
    """The node id the README's replay example shows: the first case of the results (sorted by node id)."""
    nodeids = sorted(r.nodeid for r in results)
    return nodeids[0] if nodeids else "tests/test_x.py::test_x[seed0-euler-20steps-cfg7.5]"


def _environment(folder: RunFolder) -> Any:
    """The run's environment.json as the bundle's report.html shows it: {} when it is absent or
    not a JSON object (the file itself goes into the bundle as it is)."""
    try:
        data = json.loads(in_run(folder, folder.environment).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def build_bundle(folder: RunFolder, results: Sequence[CaseResult], images: str = "failures") -> bytes:
    """The bundle's bytes (see the module docstring), in memory; :func:`write_bundle` writes the
    same bytes to disk as they are made."""
    buffer = io.BytesIO()
    _write_zip(buffer, folder, results, images)
    return buffer.getvalue()


def write_bundle(folder: RunFolder, results: Sequence[CaseResult], images: str = "failures") -> Path:
    """Write ``diffbench-<run_id>.zip`` into the run folder as it is built: a temporary file in the
    run folder, renamed over the bundle once complete (a bundle is never half-written; a failure
    removes the temporary file). Holds one file's chunk at a time, not the bundle."""
    with atomic_writer(folder.bundle) as handle:
        _write_zip(handle, folder, results, images)
    return folder.bundle


#: Bytes read from a file at a time while it is hashed or zipped.
_CHUNK = 1 << 20


def _write_zip(handle: BinaryIO, folder: RunFolder, results: Sequence[CaseResult], images: str) -> None:
    """The bundle into the seekable ``handle``: the run folder's files streamed from disk (hashed
    first, for the manifest, then zipped chunk by chunk), the bundle's own files (README.md,
    manifest.json, its report.html) from memory; entries sorted, so the bytes depend only on the content."""
    files = bundle_files(folder, results, images)
    generated: dict[str, bytes] = {}
    if folder.relative(folder.report) in files:
        page = render_report(folder, results, _environment(folder), bundled=frozenset(files))
        generated[folder.relative(folder.report)] = page.encode("utf-8")
    generated["README.md"] = _readme(folder, results, files, images).encode("utf-8")
    on_disk = {name: inside(folder.path, name) for name in files if name not in generated}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in generated.items()}
    digests |= {name: _file_digest(path) for name, path in on_disk.items()}
    manifest = {"run_id": folder.run_id, "files": dict(sorted(digests.items()))}
    generated[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    with zipfile.ZipFile(handle, "w") as archive:
        for name in sorted([*generated, *on_disk]):
            info = _entry(name)
            if name in generated:
                archive.writestr(info, generated[name], compresslevel=_LEVEL)
                continue
            path = on_disk[name]
            info.file_size = path.stat().st_size  # as writestr sets it: the same header (and zip64 choice)
            _set_level(info)
            with archive.open(info, "w") as entry, path.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    entry.write(chunk)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


#: zlib level of every deflated entry.
_LEVEL = 6


def _set_level(info: zipfile.ZipInfo) -> None:
    """Give ``info`` the zlib level :meth:`zipfile.ZipFile.writestr` would (``compresslevel=_LEVEL``);
    :meth:`zipfile.ZipFile.open` has no argument for it (the attribute is public from Python 3.13)."""
    setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", _LEVEL)


def manifest_mismatches(bundle: Path) -> list[str]:
    """The files of the zip ``bundle`` whose bytes do not match its manifest, and the files one of
    them lacks (empty when it is intact). Directory entries (``configs/``, as ``zip -r`` stores
    them) are no files and are not checked; every file is (:func:`zip_names`). Raises KeyError without a manifest.json,
    ValueError or TypeError for one that is not a manifest, zipfile.BadZipFile for no zip."""
    with zipfile.ZipFile(bundle) as archive:
        names = zip_names(archive)
        return _mismatches(list(names), lambda name: archive.read(names[name]))


def zip_names(archive: zipfile.ZipFile) -> dict[str, str]:
    """The bundle's file names (as the manifest names them) and each one's entry in ``archive``:
    directory entries left out, and the one top folder stripped when the bundle's unzipped folder was
    zipped again as a folder (``zip -r again.zip unzipped/``: every entry under ``unzipped/``)."""
    stored = [info.filename for info in archive.infolist() if not info.is_dir()]
    tops = {name.split("/", 1)[0] for name in stored}
    if MANIFEST not in stored and len(tops) == 1 and all("/" in name for name in stored):
        top = f"{tops.pop()}/"
        return {name.removeprefix(top): name for name in stored}
    return {name: name for name in stored}


def folder_manifest_mismatches(folder: Path) -> list[str]:
    """:func:`manifest_mismatches` of a bundle unzipped into ``folder``. Raises as it does, and
    PathEscapeError for a symbolic link in the folder (never followed)."""
    names = [path.relative_to(folder).as_posix() for path in Path(folder).rglob("*")
             if not path.is_dir() or path.is_symlink()]

    def read(name: str) -> bytes:
        try:
            return inside(Path(folder), name).read_bytes()
        except FileNotFoundError:
            raise KeyError(name) from None

    return _mismatches(names, read)


def _mismatches(names: Sequence[str], read: Callable[[str], bytes]) -> list[str]:
    """Of the bundle's files ``names`` (``read`` gives one's bytes), those that do not match its manifest."""
    manifest = json.loads(read(MANIFEST))["files"]
    if not isinstance(manifest, dict):
        raise ValueError(f"{MANIFEST}'s files are not a mapping of names to SHA-256 digests")
    files = set(names) - {MANIFEST}
    bad = sorted(files ^ set(manifest))
    bad += [n for n in sorted(files & set(manifest)) if hashlib.sha256(read(n)).hexdigest() != manifest[n]]
    return bad
