"""store.files: deterministic PNG bytes and atomic writes."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.store import files
from pytest_diffbench.store.files import TMP_SUFFIX, PathEscapeError, atomic_write_bytes, atomic_write_text, encode_png, inside, sha256_bytes


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((48, 40), Image.Resampling.BILINEAR)


def leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(TMP_SUFFIX))


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


def test_sha256_bytes_golden():
    assert sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


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




@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "a" / "file.png", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "file.png").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/passwd", "", "a/\x00b"])
def test_inside_refuses_paths_that_leave_the_root(tmp_path, relative):
    with pytest.raises(PathEscapeError):
        inside(tmp_path / "root", relative)


def test_inside_refuses_a_symbolic_link_on_the_way_or_at_the_target(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "pin").mkdir(parents=True)
    outside.mkdir()
    (root / "pin" / "linked").symlink_to(outside)
    (root / "pin" / "file.json").symlink_to(outside / "secret.json")
    for relative in ("pin/linked/case.png", "pin/file.json"):
        with pytest.raises(PathEscapeError, match="symbolic link"):
            inside(root, relative)
    assert inside(root, "pin/new/case.png") == root / "pin" / "new" / "case.png"


def test_inside_accepts_a_root_that_is_itself_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert inside(tmp_path / "link", "a/b.png") == tmp_path / "link" / "a" / "b.png"
