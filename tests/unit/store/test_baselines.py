"""store.baselines: the version-pinned pair of PNG and sidecar, and every way a pair can be broken."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.sidecar import Sidecar
from pytest_diffbench.store.baselines import BaselineError, BaselineStore
from pytest_diffbench.store.files import encode_png, sha256_bytes

CASE = "tests/test_a/test_b/seed0-euler-20steps-cfg7.5"
CONFIG = {"prompt": "an astronaut", "seed": 0, "cfg": 7.5, "loras": []}
ENVIRONMENT = MachineInfo(device_name="cpu", torch="2.0")
MEASUREMENT = Measurement(1.5, None)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((48, 40), Image.Resampling.BILINEAR)


def write(store: BaselineStore, image: Image.Image, case: str = CASE, config_hash: str = "h" * 64):
    """Write a pair; replaced pairs go to a run folder's replaced-baselines/ under the store's root."""
    sidecar = Sidecar(case="", config=CONFIG, config_hash=config_hash, environment=ENVIRONMENT, measurement=MEASUREMENT,
                      device_name="cpu")
    return store.write(case, encode_png(image), sidecar, keep_replaced_in=store.root / "run" / "replaced-baselines")


def leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".tmp"))


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
    assert loaded.sidecar.config == CONFIG
    assert loaded.sidecar.config_hash == "c" * 64
    assert loaded.sidecar.environment == ENVIRONMENT
    assert loaded.sidecar.measurement == MEASUREMENT and loaded.sidecar.device_name == "cpu"
    assert json.loads(loaded.sidecar_path.read_text())["format"] == 1
    assert loaded.sidecar.case == CASE
    assert loaded.sidecar.image_sha256 == sha256_bytes(written.image_path.read_bytes())
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
    assert loaded.sidecar.config_hash == "2" * 64
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
    assert store.load(CASE).sidecar.config_hash == "1" * 64


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
