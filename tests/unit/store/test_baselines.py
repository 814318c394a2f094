"""store.baselines: the version-pinned pair of PNG and sidecar, every way a pair can be broken,
pair writes a reader never sees mixed, and the lock that keeps two runs from both "winning"."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image, PngImagePlugin

from pytest_diffbench.spec.config import config_hash
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.sidecar import Sidecar
from pytest_diffbench.store import baselines
from pytest_diffbench.store.baselines import (
    ABSENT, BaselineConflict, BaselineError, BaselineStore, lock_path, pixels_sha256)
from pytest_diffbench.store.files import TMP_SUFFIX, encode_png, sha256_bytes

CASE = "tests/test_a/test_b/seed0-euler-20steps-cfg7.5"
CONFIG = {"prompt": "an astronaut", "seed": 0, "cfg": 7.5, "loras": []}
ENVIRONMENT = MachineInfo(device_name="cpu", torch="2.0")
MEASUREMENT = Measurement(1.5, None)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((48, 40), Image.Resampling.BILINEAR)


def sidecar_for(config: dict = CONFIG) -> Sidecar:
    return Sidecar(case="", config=config, config_hash=config_hash(config), environment=ENVIRONMENT,
                   measurement=MEASUREMENT, device_name="cpu")


def write(store: BaselineStore, image: Image.Image, case: str = CASE, config: dict = CONFIG,
          expected: str | None = None):
    """Write a pair; replaced pairs go to a run folder's replaced-baselines/ under the store's root."""
    return store.write(case, encode_png(image), sidecar_for(config), keep_replaced_in=store.root / "run" / "replaced-baselines",
                       expected=expected)


def leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(TMP_SUFFIX))


# -- BaselineStore ---------------------------------------------------------------------------


def test_paths_keep_dots_in_the_case_name(tmp_path):
    image_path, sidecar_path = BaselineStore(tmp_path, "cpu-float32").paths(CASE)
    assert image_path == tmp_path / "cpu-float32" / (CASE + ".png")
    assert sidecar_path == tmp_path / "cpu-float32" / (CASE + ".json")


def test_load_returns_none_when_absent(tmp_path):
    assert BaselineStore(tmp_path, "cpu-float32").load(CASE) is None
    assert BaselineStore(tmp_path / "nowhere", "cpu-float32").load(CASE) is None


def test_write_then_load_round_trip(tmp_path, astronaut):
    store = BaselineStore(tmp_path, "cpu-float32")
    written = write(store, astronaut, config=CONFIG)
    loaded = store.load(CASE)
    assert loaded is not None
    assert loaded.image_path == written.image_path and loaded.sidecar_path == written.sidecar_path
    assert loaded.sidecar.config == CONFIG
    assert loaded.sidecar.config_hash == config_hash(CONFIG)
    assert loaded.sidecar.environment == ENVIRONMENT
    assert loaded.sidecar.measurement == MEASUREMENT and loaded.sidecar.device_name == "cpu"
    assert json.loads(loaded.sidecar_path.read_text())["format"] == 2
    assert loaded.sidecar.case == CASE
    assert loaded.sidecar.image_sha256 == sha256_bytes(written.image_path.read_bytes())
    assert loaded.sidecar.pixels_sha256 == pixels_sha256(astronaut)
    assert loaded.stamp == written.stamp == store.read(CASE).stamp != ABSENT
    assert loaded.sidecar == written.sidecar
    image = loaded.load_image()
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(astronaut))


def test_written_sidecar_is_sorted_indented_json(tmp_path, astronaut):
    written = write(BaselineStore(tmp_path, "p"), astronaut)
    text = written.sidecar_path.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def test_written_png_bytes_are_deterministic(tmp_path, astronaut):
    a = write(BaselineStore(tmp_path / "one", "p"), astronaut)
    b = write(BaselineStore(tmp_path / "two", "p"), astronaut.copy())
    assert a.image_path.read_bytes() == b.image_path.read_bytes()
    assert a.image_path.read_bytes() == encode_png(astronaut)
    assert a.sidecar_path.read_bytes() == b.sidecar_path.read_bytes()


def test_rewrite_replaces_the_pair(tmp_path, astronaut):
    store = BaselineStore(tmp_path, "p")
    write(store, astronaut, config={**CONFIG, "seed": 1})
    first = {path.suffix: path.read_bytes() for path in store.paths(CASE)}
    flipped = astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    write(store, flipped, config={**CONFIG, "seed": 2})
    loaded = store.load(CASE)
    assert loaded.sidecar.config_hash == config_hash({**CONFIG, "seed": 2})
    assert np.array_equal(np.asarray(loaded.load_image()), np.asarray(flipped))
    assert leftovers(tmp_path) == []
    # The replaced pair is kept, byte for byte, in the run folder.
    kept = tmp_path / "run" / "replaced-baselines"
    assert {suffix: (kept / f"{CASE}{suffix}").read_bytes() for suffix in first} == first


def test_pins_are_kept_apart(tmp_path, astronaut):
    write(BaselineStore(tmp_path, "cpu-float32"), astronaut)
    assert BaselineStore(tmp_path, "cuda-float16").load(CASE) is None
    assert BaselineStore(tmp_path, "cpu-float32").load(CASE) is not None


def test_write_leaves_no_temp_files(tmp_path, astronaut):
    write(BaselineStore(tmp_path, "p"), astronaut)
    assert leftovers(tmp_path) == []
    folder = tmp_path / "p" / "tests" / "test_a" / "test_b"
    assert sorted(p.name for p in folder.iterdir()) == [
        "seed0-euler-20steps-cfg7.5.json", "seed0-euler-20steps-cfg7.5.png"]


def test_failed_write_keeps_the_previous_baseline(tmp_path, astronaut, monkeypatch):
    store = BaselineStore(tmp_path, "p")
    write(store, astronaut, config={**CONFIG, "seed": 1})
    before = {p: p.read_bytes() for p in store.paths(CASE)}

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(BaselineError, match="could not be written \\(No space left on device: "):
        write(store, astronaut.transpose(Image.Transpose.FLIP_TOP_BOTTOM), config={**CONFIG, "seed": 2})
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in store.paths(CASE)} == before
    assert leftovers(tmp_path) == []
    assert store.load(CASE).sidecar.config_hash == config_hash({**CONFIG, "seed": 1})


# -- BaselineError cases ---------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path, astronaut):
    store = BaselineStore(tmp_path, "p")
    write(store, astronaut)
    image_path, sidecar_path = store.paths(CASE)
    return store, image_path, sidecar_path


def load_error(store: BaselineStore) -> str:
    with pytest.raises(BaselineError) as excinfo:
        store.load(CASE)
    return str(excinfo.value)


def test_only_png(stored):
    store, image_path, sidecar_path = stored
    sidecar_path.unlink()
    message = load_error(store)
    assert str(image_path) in message and str(sidecar_path) in message
    assert "does not" in message and "--diffbench-update" in message


def test_only_json(stored):
    store, image_path, sidecar_path = stored
    image_path.unlink()
    message = load_error(store)
    assert message.startswith(f"baseline {sidecar_path} exists but {image_path} does not")


@pytest.mark.parametrize("text", ["{not json", "", "\xff\xfe"], ids=["broken", "empty", "not-utf8"])
def test_invalid_json(stored, text):
    store, _, sidecar_path = stored
    sidecar_path.write_bytes(text.encode("latin-1"))
    message = load_error(store)
    assert str(sidecar_path) in message and "not readable JSON" in message


@pytest.mark.parametrize("text", ["5", "null", "[]", '"config"'])
def test_json_that_is_not_an_object(stored, text):
    store, _, sidecar_path = stored
    sidecar_path.write_text(text)
    message = load_error(store)
    assert str(sidecar_path) in message


@pytest.mark.parametrize("drop", [["config"], ["config_hash"], ["image_sha256"], ["pixels_sha256"], ["format"],
                                  ["environment"], ["measurement"], ["case"], ["config", "image_sha256"]])
def test_missing_keys(stored, drop):
    store, _, sidecar_path = stored
    data = json.loads(sidecar_path.read_text())
    for key in drop:
        del data[key]
    sidecar_path.write_text(json.dumps(data))
    message = load_error(store)
    assert str(sidecar_path) in message
    assert f"lacks {', '.join(drop)}" in message


def _set(path: str, value):
    def edit(data: dict) -> None:
        *parents, key = path.split(".")
        for parent in parents:
            data = data[parent]
        data[key] = value
    return edit


# (edit of the sidecar's JSON, the field the one-line message names)
WRONG_FIELDS = {
    "config_hash-number": (_set("config_hash", 123), "config_hash of type number"),
    "config-string": (_set("config", "a string"), "config of type string"),
    "measurement-array": (_set("measurement", []), "measurement of type array"),
    "seconds-string": (_set("measurement.seconds_per_image", "fast"), 'measurement.seconds_per_image = "fast"'),
    "seconds-negative": (_set("measurement.seconds_per_image", -1), "measurement.seconds_per_image = -1"),
    "vram-bool": (_set("measurement.peak_vram_mb", True), "measurement.peak_vram_mb = true"),
    "workers-zero": (_set("measurement.workers", 0), "measurement.workers = 0"),
    "workers-fraction": (_set("measurement.workers", 2.5), "measurement.workers = 2.5"),
    "device-name-number": (_set("measurement.device_name", 7), "measurement.device_name of type number"),
    "environment-array": (_set("environment", ["cpu"]), "environment of type array"),
    "environment-torch-number": (_set("environment.torch", 2.4), "environment.torch of type number"),
    "case-null": (_set("case", None), "case of type null"),
    "hash-of-another-config": (_set("config.seed", 99), "but its config hashes to"),
    "config-hash-not-hex": (_set("config_hash", "h" * 64), "config_hash = \"hhhhhhhhh"),
    "image-sha-short": (_set("image_sha256", "abc"), 'image_sha256 = "abc"'),
    "pixels-sha-number": (_set("pixels_sha256", 5), "pixels_sha256 of type number"),
    "format-unknown": (_set("format", 3), "format 3; this pytest-diffbench reads formats 1 and 2"),
    "format-string": (_set("format", "2"), 'format "2"'),
    "format-bool": (_set("format", True), "format true"),
    "unknown-key": (_set("config_hahs", "x"), "unknown key \"config_hahs\""),
    "unknown-measurement-key": (_set("measurement.secs", 1), "unknown key measurement.\"secs\""),
    "ansi-in-value": (_set("format", "\x1b[2J"), 'format "\\u001b[2J"'),
}


@pytest.mark.parametrize("edit, field", WRONG_FIELDS.values(), ids=WRONG_FIELDS.keys())
def test_a_sidecar_of_wrong_types_is_one_error_naming_the_file_and_field(stored, edit, field):
    store, _, sidecar_path = stored
    data = json.loads(sidecar_path.read_text())
    edit(data)
    sidecar_path.write_text(json.dumps(data))
    message = load_error(store)
    assert message.startswith(f"baseline sidecar {sidecar_path} ") and field in message
    assert "\n" not in message and "\x1b" not in message
    assert message.endswith("rewrite the pair with pytest --diffbench --diffbench-update=missing")
    assert store.read(CASE).fault == message


def test_edited_png_is_a_pixel_mismatch(stored, astronaut):
    store, image_path, sidecar_path = stored
    recorded = json.loads(sidecar_path.read_text())["pixels_sha256"]
    edited = astronaut.copy()
    edited.putpixel((3, 3), (255, 0, 255))
    image_path.write_bytes(encode_png(edited))
    message = load_error(store)
    assert message.startswith(f"baseline image {image_path} has pixels of SHA-256 {pixels_sha256(edited)[:12]} ")
    assert f"its sidecar {sidecar_path.name} records {recorded[:12]}" in message and "the pair disagrees" in message
    assert store.read(CASE).mixed


def _reencoded(image: Image.Image, how: str) -> bytes:
    buffer = io.BytesIO()
    if how == "compress-9":
        image.save(buffer, format="PNG", compress_level=9)
    elif how == "optimize":
        image.save(buffer, format="PNG", optimize=True)
    elif how == "rgba-opaque":
        image.convert("RGBA").save(buffer, format="PNG")
    elif how == "palette":
        image.quantize(colors=256, dither=Image.Dither.NONE).save(buffer, format="PNG")
    elif how == "text-chunk":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", "an image optimiser")
        image.save(buffer, format="PNG", pnginfo=info, dpi=(72, 72))
    return buffer.getvalue()


@pytest.mark.parametrize("how", ["compress-9", "optimize", "rgba-opaque", "palette", "text-chunk"])
def test_a_losslessly_reencoded_png_is_the_same_baseline(tmp_path, astronaut, how):
    store = BaselineStore(tmp_path, "p")
    few_colours = astronaut.quantize(colors=64, dither=Image.Dither.NONE).convert("RGB")  # a palette holds them all
    written = write(store, few_colours)
    data = _reencoded(few_colours, how)
    assert data != written.image_path.read_bytes()
    written.image_path.write_bytes(data)
    loaded = store.load(CASE)
    assert loaded is not None and loaded.sidecar == written.sidecar
    assert np.array_equal(np.asarray(loaded.load_image()), np.asarray(few_colours))


def test_pixel_digest_is_of_rgb_size_and_pixels():
    image = Image.new("RGB", (2, 1))
    image.putdata([(0, 0, 0), (255, 128, 0)])
    golden = "53dfcb56dff9e9e7cfc6486a5b1b2ecd96d4d9d4b26440e2fbcb6badd715784f"  # sha256(b"RGB 2x1\n" + pixels)
    assert pixels_sha256(image) == golden
    assert pixels_sha256(image.convert("RGBA")) == golden
    assert pixels_sha256(Image.new("RGB", (1, 2))) != pixels_sha256(Image.new("RGB", (2, 1)))


# -- format 1 sidecars (committed before the pixel digest) ---------------------------------------


def _as_format_1(sidecar_path: Path) -> None:
    data = json.loads(sidecar_path.read_text())
    del data["pixels_sha256"]
    data["format"] = 1
    sidecar_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def test_a_format_1_sidecar_is_read_and_vouches_by_bytes(stored, astronaut):
    store, image_path, sidecar_path = stored
    _as_format_1(sidecar_path)
    text = sidecar_path.read_text()
    loaded = store.load(CASE)
    assert loaded.sidecar.format == 1 and loaded.sidecar.pixels_sha256 == ""
    assert loaded.sidecar.to_json() == text
    image_path.write_bytes(_reencoded(astronaut, "compress-9"))
    message = load_error(store)
    assert f"has SHA-256 {sha256_bytes(image_path.read_bytes())[:12]} but its sidecar {sidecar_path.name} records" in message


def test_a_format_1_sidecar_may_not_carry_a_pixel_digest(stored):
    store, _, sidecar_path = stored
    data = json.loads(sidecar_path.read_text())
    data["format"] = 1
    sidecar_path.write_text(json.dumps(data))
    assert 'unknown key "pixels_sha256"' in load_error(store)


# -- damaged PNGs -------------------------------------------------------------------------------


def _damaged(png: bytes, how: str) -> bytes:
    if how == "zero-bytes":
        return b""
    if how == "garbage":
        return b"this is not an image\n" * 20
    if how == "signature-only":
        return png[:8]
    if how == "truncated-half":
        return png[: len(png) // 2]
    if how == "truncated-before-iend":
        return png[:-12]
    if how == "bytes-after-iend":
        return png + b"edited"
    if how == "corrupt-image-data":
        middle = len(png) // 2
        return png[:middle] + bytes(b ^ 0xFF for b in png[middle:middle + 16]) + png[middle + 16:]
    if how == "jpeg":
        buffer = io.BytesIO()
        Image.open(io.BytesIO(png)).save(buffer, format="JPEG", quality=100)
        return buffer.getvalue()
    raise AssertionError(how)


DAMAGE = {
    "zero-bytes": "is empty (0 bytes)",
    "garbage": "is not a PNG (no PNG signature)",
    "signature-only": "is truncated",
    "truncated-half": "is truncated",
    "truncated-before-iend": "is truncated",
    "bytes-after-iend": "has 6 bytes after the PNG's end (IEND)",
    "corrupt-image-data": "does not decode",
    "jpeg": "is not a PNG (no PNG signature)",
}


@pytest.mark.parametrize("how, fault", DAMAGE.items(), ids=DAMAGE.keys())
def test_a_damaged_png_is_one_error_naming_the_file(stored, how, fault):
    store, image_path, _ = stored
    image_path.write_bytes(_damaged(image_path.read_bytes(), how))
    message = load_error(store)
    assert message.startswith(f"baseline image {image_path} {fault}")
    assert "\n" not in message and "--diffbench-update=missing" in message


def _folder(path: Path, outside: Path) -> str:
    path.unlink()
    path.mkdir()
    (path / "notes.txt").write_text("a user's file")
    return "is a folder, not a file"


def _fifo(path: Path, outside: Path) -> str:
    path.unlink()
    os.mkfifo(path)  # opening it would block forever
    return "is not a plain file (a FIFO"


def _link_to_file(path: Path, outside: Path) -> str:
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    return "is a symbolic link"


def _link_to_folder(path: Path, outside: Path) -> str:
    outside.mkdir()
    (outside / "secret").write_text("not diffbench's")
    path.unlink()
    path.symlink_to(outside, target_is_directory=True)
    return "is a symbolic link"


def _file_for_folder(path: Path, outside: Path) -> str:
    shutil.rmtree(path.parent)
    path.parent.write_text("a user's file where the test's folder goes")
    return "is a file, not a folder"


def _linked_folder(path: Path, outside: Path) -> str:
    shutil.move(path.parent, outside)
    path.parent.symlink_to(outside, target_is_directory=True)
    return "is a symbolic link"


OBSTACLES = {"folder": _folder, "fifo": _fifo, "link-to-file": _link_to_file, "link-to-folder": _link_to_folder,
             "file-for-folder": _file_for_folder, "linked-folder": _linked_folder}


def _tree(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links not followed): a link's target, a file's text, "fifo" or "dir"."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            entries[path.relative_to(folder).as_posix()] = f"-> {os.readlink(path)}"
        elif path.is_fifo():
            entries[path.relative_to(folder).as_posix()] = "fifo"
        elif path.is_file():
            entries[path.relative_to(folder).as_posix()] = sha256_bytes(path.read_bytes())
    return entries


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("which", [0, 1], ids=["png", "sidecar"])
@pytest.mark.parametrize("obstacle", OBSTACLES)
def test_what_stands_where_the_pair_goes_is_one_error_then_moved_aside_whole_by_a_write(stored, tmp_path, astronaut,
                                                                                        obstacle, which):
    """A folder, FIFO or link where a file goes, a file or link where a folder goes: one line
    naming it and the repair; a write moves it, unopened and unfollowed, into replaced-baselines/."""
    store, *pair = stored
    outside = tmp_path / "outside"
    fault = OBSTACLES[obstacle](pair[which], outside)
    thing = pair[which].parent if obstacle in ("file-for-folder", "linked-folder") else pair[which]
    link = thing.is_symlink()
    elsewhere = _tree(outside) if outside.is_dir() else outside.read_bytes() if outside.exists() else None
    found = store.read(CASE)
    assert found.baseline is None and found.stamp == ""
    assert f"{thing} {fault}" in found.fault and "\n" not in found.fault
    assert "--diffbench-update=missing moves it (a link as a link) into the run folder's replaced-baselines/" in found.fault
    before = _tree(thing) if thing.is_dir() and not thing.is_symlink() else None
    mode = thing.lstat().st_mode

    write(store, astronaut, config={**CONFIG, "seed": 5}, expected=found.stamp)
    assert store.load(CASE).sidecar.config["seed"] == 5
    kept = store.root / "run" / "replaced-baselines" / thing.relative_to(store.root / "p")
    kept = kept.with_name(kept.name + ".link") if link else kept
    assert kept.lstat().st_mode == mode  # the same kind of thing, moved as it was
    if kept.is_symlink():
        assert kept.readlink() == outside
    if before is not None:
        assert _tree(kept) == before
    if elsewhere is not None:  # what a link pointed to is untouched
        assert (_tree(outside) if outside.is_dir() else outside.read_bytes()) == elsewhere


def test_a_write_moves_a_linked_pin_folder_as_a_link(tmp_path, astronaut):
    elsewhere = tmp_path / "elsewhere"
    write(BaselineStore(elsewhere, "p"), astronaut)
    before = _tree(elsewhere)
    root = tmp_path / "baselines"
    root.mkdir()
    (root / "p").symlink_to(elsewhere / "p", target_is_directory=True)
    store = BaselineStore(root, "p")
    write(store, astronaut.transpose(Image.Transpose.FLIP_TOP_BOTTOM), expected=store.read(CASE).stamp)
    assert store.load(CASE) is not None and not (root / "p").is_symlink()
    assert (root / "run" / "replaced-baselines" / "p.link").readlink() == elsewhere / "p"
    assert _tree(elsewhere) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("obstacle", ["folder", "fifo", "link-to-file", "link-to-folder"])
def test_across_file_systems_the_obstacle_is_moved_without_being_followed_or_opened(stored, tmp_path, astronaut,
                                                                                    monkeypatch, obstacle):
    """The run folder on another file system (rename gives EXDEV): links made anew, folders copied."""
    import errno as errnos

    store, image_path, _ = stored
    outside = tmp_path / "outside"
    OBSTACLES[obstacle](image_path, outside)
    before = _tree(image_path) if obstacle == "folder" else None
    elsewhere = _tree(outside) if outside.is_dir() else outside.read_bytes() if outside.exists() else None

    def rename(src, dst):
        raise OSError(errnos.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", rename)
    write(store, astronaut, expected="")
    assert store.load(CASE) is not None
    kept = store.root / "run" / "replaced-baselines" / f"{CASE}.png{'.link' if obstacle.startswith('link') else ''}"
    if obstacle == "folder":
        assert _tree(kept) == before
    elif obstacle == "fifo":
        assert kept.is_fifo()
    else:
        assert kept.readlink() == outside
        assert (_tree(outside) if outside.is_dir() else outside.read_bytes()) == elsewhere


def test_nothing_kept_is_overwritten(stored, astronaut):
    """A second write of the same case into one run folder keeps the first pair it replaced too."""
    store, image_path, sidecar_path = stored
    first = image_path.read_bytes()
    write(store, astronaut.transpose(Image.Transpose.FLIP_TOP_BOTTOM), config={**CONFIG, "seed": 1})
    second = image_path.read_bytes()
    write(store, astronaut, config={**CONFIG, "seed": 2})
    kept = store.root / "run" / "replaced-baselines"
    assert (kept / f"{CASE}.png").read_bytes() == first and (kept / f"{CASE}.png.1").read_bytes() == second


@pytest.mark.parametrize("link", ["p", "p/tests/test_a"])
def test_a_symlinked_folder_inside_the_baselines_is_never_followed(tmp_path, astronaut, link):
    elsewhere = tmp_path / "elsewhere"
    write(BaselineStore(elsewhere, "p"), astronaut)  # a valid pair outside the baseline folder
    root = tmp_path / "baselines"
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(elsewhere / link, target_is_directory=True)
    store = BaselineStore(root, "p")
    message = load_error(store)
    assert f"{root / link} is a symbolic link" in message and "\n" not in message
    before = {p: p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()}
    write(store, astronaut.transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    assert {p: p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("pin, case", [("..", CASE), ("p", "../../outside"), ("/tmp", CASE)])
def test_a_pin_or_case_that_leaves_the_baseline_folder_is_refused(tmp_path, astronaut, pin, case):
    store = BaselineStore(tmp_path / "baselines", pin)
    found = store.read(case)
    assert found.baseline is None and "is not a path inside" in found.fault and "link" not in found.fault
    with pytest.raises(BaselineError, match="is not a path inside"):
        write(store, astronaut, case=case)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


# -- pair writes a reader never sees mixed -----------------------------------------------------


class Killed(BaseException):
    """A SIGKILL between two steps of a write: nothing after it runs."""


@pytest.mark.parametrize("before", [False, True], ids=["creating", "refreshing"])
def test_a_write_killed_at_any_point_never_leaves_a_mixed_pair_a_reader_uses(tmp_path, astronaut, monkeypatch, before):
    old, new = astronaut, astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    real_replace = os.replace
    points = 0
    while True:
        store = BaselineStore(tmp_path / f"kill{points}", "p")
        if before:
            write(store, old, config={**CONFIG, "seed": 1})
        calls = []

        def replace(src, dst):
            if len(calls) == points:
                raise Killed
            calls.append(dst)
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        try:
            write(store, new, config={**CONFIG, "seed": 2}, expected=store.read(CASE).stamp)
            finished = True
        except Killed:
            finished = False
        monkeypatch.setattr(os, "replace", real_replace)
        found = store.read(CASE)
        if found.baseline is not None:  # a pair a reader uses is one whole pair, old or new
            pixels = np.asarray(found.baseline.image)
            seed = found.baseline.sidecar.config["seed"]
            assert (seed, pixels.tolist()) in ((1, np.asarray(old).tolist()), (2, np.asarray(new).tolist()))
        else:
            assert found.fault or not before  # a half pair reads as broken, never as a baseline
        # The next write (an update) repairs whatever is there.
        write(store, new, config={**CONFIG, "seed": 2}, expected=found.stamp)
        assert store.load(CASE).sidecar.config["seed"] == 2
        if finished:
            break
        points += 1
    assert points >= 2  # the PNG and the sidecar (and the kept copies when refreshing)


def test_a_new_png_beside_the_old_sidecar_reads_as_a_mixed_pair(stored, astronaut):
    store, image_path, _ = stored
    image_path.write_bytes(encode_png(astronaut.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
    found = store.read(CASE)
    assert found.baseline is None and found.mixed and "the pair disagrees" in found.fault


def test_an_image_to_write_that_is_no_png_is_refused_before_anything_is_written(stored):
    store, image_path, sidecar_path = stored
    before = {p: p.read_bytes() for p in (image_path, sidecar_path)}
    with pytest.raises(BaselineError, match=f"the image to write to {image_path} is truncated .*; nothing was written"):
        store.write(CASE, image_path.read_bytes()[:-20], sidecar_for(), keep_replaced_in=store.root / "run")
    assert {p: p.read_bytes() for p in (image_path, sidecar_path)} == before


def test_a_broken_pair_is_kept_byte_for_byte_before_it_is_rewritten(stored, astronaut):
    store, image_path, sidecar_path = stored
    image_path.write_bytes(b"garbage")
    sidecar = sidecar_path.read_bytes()
    write(store, astronaut, expected=store.read(CASE).stamp)
    kept = store.root / "run" / "replaced-baselines"
    assert (kept / f"{CASE}.png").read_bytes() == b"garbage"
    assert (kept / f"{CASE}.json").read_bytes() == sidecar
    assert store.load(CASE) is not None


# -- the lock and conflicts --------------------------------------------------------------------


def test_write_refuses_a_pair_another_run_created_meanwhile(tmp_path, astronaut):
    store = BaselineStore(tmp_path, "p")
    read = store.read(CASE)
    assert read.stamp == ABSENT
    other = write(store, astronaut)  # another run
    with pytest.raises(BaselineConflict, match=r"was changed by another run after this run read it"):
        write(store, astronaut.transpose(Image.Transpose.FLIP_TOP_BOTTOM), expected=read.stamp)
    assert store.load(CASE).sidecar == other.sidecar
    assert not (tmp_path / "run").exists()  # nothing was replaced, so nothing was kept


def test_write_refuses_a_pair_another_run_refreshed_or_removed_meanwhile(stored, astronaut):
    store, image_path, sidecar_path = stored
    read = store.read(CASE)
    write(store, astronaut, config={**CONFIG, "seed": 5}, expected=read.stamp)  # the other run refreshes
    refreshed = {p: p.read_bytes() for p in (image_path, sidecar_path)}
    with pytest.raises(BaselineConflict):
        write(store, astronaut, config={**CONFIG, "seed": 6}, expected=read.stamp)
    assert {p: p.read_bytes() for p in (image_path, sidecar_path)} == refreshed
    second = store.read(CASE)
    image_path.unlink()
    sidecar_path.unlink()  # and then someone removes it
    with pytest.raises(BaselineConflict, match="was removed by another run"):
        write(store, astronaut, expected=second.stamp)
    assert store.read(CASE).stamp == ABSENT


def test_write_refuses_a_broken_pair_another_run_repaired_meanwhile(stored, astronaut):
    store, image_path, _ = stored
    image_path.write_bytes(b"")
    broken = store.read(CASE)
    assert broken.fault
    write(store, astronaut, config={**CONFIG, "seed": 3}, expected=broken.stamp)
    with pytest.raises(BaselineConflict):
        write(store, astronaut, config={**CONFIG, "seed": 4}, expected=broken.stamp)
    assert store.load(CASE).sidecar.config["seed"] == 3


def test_the_lock_is_outside_the_baseline_folder_and_shared_through_links(tmp_path, astronaut):
    """``git add baselines/`` finds only pairs: the lock lives in the user's private temporary folder."""
    write(BaselineStore(tmp_path / "baselines", "p"), astronaut)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        f"baselines/p/{CASE}.json", f"baselines/p/{CASE}.png"]
    (tmp_path / "link").symlink_to(tmp_path / "baselines", target_is_directory=True)
    assert lock_path(tmp_path / "link") == lock_path(tmp_path / "baselines") != lock_path(tmp_path / "other")
    folder = lock_path(tmp_path / "baselines").parent
    assert folder == Path(tempfile.gettempdir()) / f"pytest-diffbench-{os.getuid()}"
    assert oct(folder.lstat().st_mode & 0o777) == oct(0o700)


@pytest.fixture
def temp_folder(tmp_path, monkeypatch) -> Path:
    """A temporary folder of this test's own, as ``tempfile.gettempdir()``."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_lock_file_planted_at_the_old_shared_name_is_not_used(tmp_path, temp_folder, astronaut):
    victim = tmp_path / "victim"
    victim.write_text("a file of the user's")
    key = lock_path(tmp_path / "baselines").stem
    (temp_folder / f"pytest-diffbench-{key}.lock").symlink_to(victim)
    write(BaselineStore(tmp_path / "baselines", "p"), astronaut)
    assert victim.read_text() == "a file of the user's"


@pytest.mark.parametrize("planted", ["link", "file", "wide", "other-user"])
def test_a_lock_folder_not_private_to_the_user_is_one_error_naming_it_and_the_remedy(tmp_path, temp_folder, astronaut,
                                                                                    monkeypatch, planted):
    folder = temp_folder / f"pytest-diffbench-{os.getuid()}"
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    if planted == "link":
        folder.symlink_to(elsewhere, target_is_directory=True)
    elif planted == "file":
        folder.write_text("")
    else:
        folder.mkdir(mode=0o777)
        folder.chmod(0o777)
    if planted == "other-user":  # made by this user, seen by a user of the next id
        other = os.getuid() + 1
        folder = folder.rename(temp_folder / f"pytest-diffbench-{other}")
        monkeypatch.setattr(os, "getuid", lambda: other)
    store = BaselineStore(tmp_path / "baselines", "p")
    if planted == "wide":  # the user's own folder, made private
        write(store, astronaut)
        assert oct(folder.lstat().st_mode & 0o777) == oct(0o700)
        return
    with pytest.raises(BaselineError) as raised:
        write(store, astronaut)
    message = str(raised.value)
    assert message.startswith(f"the baseline lock folder {folder} ") and "\n" not in message
    assert "so diffbench does not use it; delete it" in message
    assert list(elsewhere.iterdir()) == [] and store.read(CASE).stamp == ABSENT


def test_a_lock_file_that_is_a_link_is_one_error_naming_it_and_the_remedy(tmp_path, temp_folder, astronaut):
    path = lock_path(tmp_path / "baselines")
    path.parent.mkdir(mode=0o700)
    path.symlink_to(tmp_path / "victim")
    with pytest.raises(BaselineError) as raised:
        write(BaselineStore(tmp_path / "baselines", "p"), astronaut)
    assert str(raised.value) == (f"the baseline lock {path} cannot be taken (it is a symbolic link); delete {path} "
                                 "(no diffbench run needs it between runs)")
    assert not (tmp_path / "victim").exists()


def test_a_held_lock_is_one_error_and_nothing_is_written(tmp_path, astronaut, monkeypatch):
    monkeypatch.setattr(baselines, "LOCK_TIMEOUT", 0.01)
    store = BaselineStore(tmp_path, "p")
    with FileLock(lock_path(tmp_path)):  # another run, mid-write (its own lock object, as another process has)
        with pytest.raises(BaselineError, match="another diffbench run held the baseline lock .* for over 0 s"):
            write(store, astronaut)
    assert store.read(CASE).stamp == ABSENT


def test_a_reader_rereads_a_disagreeing_pair_under_the_lock(stored, astronaut, monkeypatch):
    """A pair read between the writer's two renames disagrees; read under the lock, it is whole."""
    store, image_path, sidecar_path = stored
    new = astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image_path.write_bytes(encode_png(new))  # the writer renamed the PNG ...
    real_lock = BaselineStore._lock

    def lock(self):  # ... and renames the sidecar before it lets the lock go
        monkeypatch.setattr(BaselineStore, "_lock", real_lock)
        write(BaselineStore(store.root, "p"), new, config={**CONFIG, "seed": 8})
        return real_lock(self)

    monkeypatch.setattr(BaselineStore, "_lock", lock)
    loaded = store.load(CASE)
    assert loaded.sidecar.config["seed"] == 8


# -- the committed example baselines (format 2) -----------------------------------------------

COMMITTED = Path(__file__).resolve().parents[3] / "baselines"


@pytest.mark.parametrize("sidecar", sorted(COMMITTED.glob("cpu-float32/**/*.json")),
                         ids=lambda p: p.relative_to(COMMITTED).as_posix())
def test_the_committed_baselines_load_as_they_are(sidecar: Path):
    """Read as committed (format 2, vouched by their pixels), never rewritten to be readable."""
    case = sidecar.relative_to(COMMITTED / "cpu-float32").with_suffix("").as_posix()
    before = sidecar.read_bytes()
    loaded = BaselineStore(COMMITTED, "cpu-float32").load(case)
    assert loaded is not None and loaded.sidecar.format == 2 and loaded.sidecar.to_json().encode() == before
    assert loaded.image.size == (loaded.sidecar.config["width"], loaded.sidecar.config["height"])


@pytest.mark.parametrize("existing, pin", [("CPU-FLOAT32", "cpu-float32"), ("cpu-float32", "Cpu-Float32")])
def test_a_pin_folder_differing_only_in_letter_case_is_refused_for_reading_and_writing(tmp_path, astronaut, existing, pin):
    write(BaselineStore(tmp_path, existing), astronaut)
    store = BaselineStore(tmp_path, pin)
    message = load_error(store)
    assert f"{tmp_path / existing} differs from {pin!r} only in letter case" in message and "\n" not in message
    with pytest.raises(BaselineError, match="only in letter case"):
        write(store, astronaut)
    assert sorted(path.name for path in tmp_path.iterdir()) == [existing]


def test_a_case_file_differing_only_in_letter_case_is_refused(tmp_path, astronaut):
    store = BaselineStore(tmp_path, "p")
    write(store, astronaut)
    image_path, sidecar_path = store.paths(CASE)
    image_path.rename(image_path.with_name(image_path.name.upper()))
    sidecar_path.rename(sidecar_path.with_name(sidecar_path.name.upper()))
    assert "only in letter case" in load_error(store)
