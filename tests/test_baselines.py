"""Unit tests of pytest_diffbench.baselines (paths, pin keys, the store) and pytest_diffbench.files."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench import files
from pytest_diffbench.baselines import SIDECAR_FORMAT, BaselineError, BaselineStore, case_path, pin_key, safe_segment
from pytest_diffbench.files import atomic_write_bytes, atomic_write_text, encode_png, sha256_bytes

CASE = "tests/test_a/test_b/seed0-euler-20steps-cfg7.5"
CONFIG = {"prompt": "an astronaut", "seed": 0, "cfg": 7.5, "loras": []}
ENVIRONMENT = {"device_name": "cpu", "torch": "2.0"}
MEASUREMENT = {"seconds_per_image": 1.5, "peak_vram_mb": None, "device_name": "cpu"}


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((48, 40), Image.Resampling.BILINEAR)


def write(store: BaselineStore, image: Image.Image, case: str = CASE, config_hash: str = "h" * 64):
    """Write a pair; replaced pairs go to a run folder under the store's root."""
    return store.write(case, image, config=CONFIG, config_hash=config_hash, environment=ENVIRONMENT, measurement=MEASUREMENT,
                       keep_replaced_in=store.root / "run")


def leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".tmp"))


# -- case_path -------------------------------------------------------------------------------


@pytest.mark.parametrize("nodeid, expected", [
    ("tests/test_a.py::test_b[seed0-euler-20steps-cfg7.5]", "tests/test_a/test_b/seed0-euler-20steps-cfg7.5"),
    ("tests/test_a.py::TestX::test_b[seed0-euler_a-20steps-cfg5.5]", "tests/test_a/TestX/test_b/seed0-euler_a-20steps-cfg5.5"),
    ("tests/test_a.py::test_b", "tests/test_a/test_b/default"),
    ("tests/test_a.py::TestX::test_b", "tests/test_a/TestX/test_b/default"),
    ("test_top.py::test_b[x]", "test_top/test_b/x"),
    ("a/b/c/test_deep.py::test_b[x]", "a/b/c/test_deep/test_b/x"),
])
def test_case_path(nodeid, expected):
    assert case_path(nodeid) == expected


@pytest.mark.parametrize("param, expected", [
    ("a/b", "a_b"),
    ("a b", "a_b"),
    ("x[1]", "x_1"),
    ("a[b", "a_b"),
    ("..", "_"),
    ("caf\u00e9 \u2615", "caf"),
    ("seed0-dpmpp_2m-cfg7.5", "seed0-dpmpp_2m-cfg7.5"),
])
def test_case_path_sanitises_odd_ids(param, expected):
    path = case_path(f"tests/test_a.py::test_b[{param}]")
    assert path == f"tests/test_a/test_b/{expected}"
    assert path.count("/") == 3  # no extra folders from '/' in the id


def test_case_path_never_climbs_out():
    path = case_path("../outside/test_a.py::test_b[../../x]")
    assert ".." not in path.split("/")
    assert not path.startswith("/")


def test_safe_segment():
    assert safe_segment("NVIDIA H100 80GB HBM3") == "NVIDIA_H100_80GB_HBM3"
    assert safe_segment("2.4.1+cu121") == "2.4.1_cu121"
    assert safe_segment("cuda:0") == "cuda_0"
    assert safe_segment("") == "_"
    assert safe_segment("._.") == "_"


# -- pin_key ---------------------------------------------------------------------------------


FIELDS = {"device": "cuda", "dtype": "float16", "device_name": "NVIDIA H100 80GB HBM3", "torch": "2.4.1+cu121",
          "diffusers": "0.31.0", "platform": "linux"}


def test_pin_key_default_template():
    assert pin_key("{device}-{dtype}", FIELDS) == "cuda-float16"
    assert pin_key("{device}-{dtype}", {**FIELDS, "device": "cpu", "dtype": "float32"}) == "cpu-float32"


def test_pin_key_custom_template_sanitises_values():
    assert pin_key("{device_name}-{dtype}", FIELDS) == "NVIDIA_H100_80GB_HBM3-float16"
    assert pin_key("{platform}-torch{torch}", FIELDS) == "linux-torch2.4.1_cu121"


def test_pin_key_is_one_segment_even_with_separators_in_the_template():
    key = pin_key("{device}/{dtype} x", FIELDS)
    assert key == "cuda_float16_x"
    assert "/" not in key and " " not in key


def test_pin_key_values_cannot_escape():
    key = pin_key("{device_name}", {**FIELDS, "device_name": "../../etc"})
    assert "/" not in key and key != ".."


# -- files: deterministic PNG and atomic writes ----------------------------------------------


def test_encode_png_is_deterministic_and_lossless(astronaut):
    first, second = encode_png(astronaut), encode_png(astronaut.copy())
    assert first == second
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(first)) as decoded:
        assert decoded.size == (48, 40)
        assert np.array_equal(np.asarray(decoded.convert("RGB")), np.asarray(astronaut))


def test_encode_png_depends_only_on_the_pixels(astronaut):
    again = Image.fromarray(np.asarray(astronaut).copy())
    again.info["icc_profile"] = b"\x00" * 128
    again.info["comment"] = "something"
    assert encode_png(again) == encode_png(astronaut)
    assert again.info["icc_profile"]  # the caller's image is left alone
    assert b"tEXt" not in encode_png(astronaut) and b"tIME" not in encode_png(astronaut)


def test_encode_png_differs_for_different_pixels(astronaut):
    changed = astronaut.copy()
    changed.putpixel((0, 0), (0, 0, 0) if astronaut.getpixel((0, 0)) != (0, 0, 0) else (1, 1, 1))
    assert encode_png(changed) != encode_png(astronaut)


def test_sha256_bytes():
    assert sha256_bytes(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_atomic_write_creates_folders_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_atomic_write_text_is_utf8_with_unix_newlines(tmp_path):
    target = tmp_path / "t.txt"
    atomic_write_text(target, "caf\u00e9\nline\n")
    assert target.read_bytes() == "caf\u00e9\nline\n".encode("utf-8")


def test_failed_replace_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    target = tmp_path / "file.txt"
    atomic_write_text(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old")

    def broken_fsync(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


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
    written = write(store, astronaut, config_hash="c" * 64)
    loaded = store.load(CASE)
    assert loaded is not None
    assert loaded.image_path == written.image_path and loaded.sidecar_path == written.sidecar_path
    assert loaded.config == CONFIG
    assert loaded.config_hash == "c" * 64
    assert loaded.environment == ENVIRONMENT
    assert loaded.measurement == MEASUREMENT
    assert loaded.sidecar["format"] == SIDECAR_FORMAT
    assert loaded.sidecar["case"] == CASE
    assert loaded.sidecar["image_sha256"] == sha256_bytes(written.image_path.read_bytes())
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
    write(store, astronaut, config_hash="1" * 64)
    first = {path.suffix: path.read_bytes() for path in store.paths(CASE)}
    flipped = astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    write(store, flipped, config_hash="2" * 64)
    loaded = store.load(CASE)
    assert loaded.config_hash == "2" * 64
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
    write(store, astronaut, config_hash="1" * 64)
    before = {p: p.read_bytes() for p in store.paths(CASE)}

    def broken_replace(src, dst):
        raise OSError("no space left")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="no space left"):
        write(store, astronaut.transpose(Image.Transpose.FLIP_TOP_BOTTOM), config_hash="2" * 64)
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in store.paths(CASE)} == before
    assert leftovers(tmp_path) == []
    assert store.load(CASE).config_hash == "1" * 64


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


@pytest.mark.parametrize("drop", [["config"], ["config_hash"], ["image_sha256"], ["config", "image_sha256"]])
def test_missing_keys(stored, drop):
    store, _, sidecar_path = stored
    data = json.loads(sidecar_path.read_text())
    for key in drop:
        del data[key]
    sidecar_path.write_text(json.dumps(data))
    message = load_error(store)
    assert str(sidecar_path) in message
    assert f"lacks {', '.join(drop)}" in message


def test_edited_png_is_a_sha_mismatch(stored, astronaut):
    store, image_path, sidecar_path = stored
    recorded = json.loads(sidecar_path.read_text())["image_sha256"]
    edited = astronaut.copy()
    edited.putpixel((3, 3), (255, 0, 255))
    image_path.write_bytes(encode_png(edited))
    message = load_error(store)
    assert str(image_path) in message
    assert recorded[:12] in message
    assert sha256_bytes(image_path.read_bytes())[:12] in message


def test_same_pixels_saved_differently_is_still_a_mismatch(stored, astronaut):
    store, image_path, _ = stored
    buffer = io.BytesIO()
    astronaut.save(buffer, format="PNG", compress_level=1)
    assert buffer.getvalue() != image_path.read_bytes()
    image_path.write_bytes(buffer.getvalue())
    assert "SHA-256" in load_error(store)
