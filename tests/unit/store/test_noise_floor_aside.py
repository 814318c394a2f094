"""A broken noise-floor.json is moved aside, never overwritten, and its error's advice says where it goes."""

from __future__ import annotations

import pytest

from pytest_diffbench.store.noise_floor import BrokenNoiseFloor, read_noise_floors, set_aside


def test_set_aside_takes_the_first_free_name_and_never_overwrites(tmp_path) -> None:
    path = tmp_path / "noise-floor.json"
    (tmp_path / "noise-floor.json.corrupt-1").write_text("an earlier one")
    path.write_text("garbage{")
    assert set_aside(path) == tmp_path / "noise-floor.json.corrupt-2"
    assert not path.exists()
    assert (tmp_path / "noise-floor.json.corrupt-1").read_text() == "an earlier one"
    assert (tmp_path / "noise-floor.json.corrupt-2").read_text() == "garbage{"


def test_a_folder_in_place_of_the_file_is_moved_aside_whole(tmp_path) -> None:
    path = tmp_path / "noise-floor.json"
    path.mkdir()
    (path / "inside.txt").write_text("kept")
    with pytest.raises(BrokenNoiseFloor) as raised:
        read_noise_floors(path)
    assert "cannot be read" in raised.value.problem and "noise-floor.json.corrupt-<n>" in str(raised.value)
    kept = set_aside(path)
    assert kept.name == "noise-floor.json.corrupt-1" and (kept / "inside.txt").read_text() == "kept"
    assert read_noise_floors(path).pins == {}


def test_a_missing_file_is_not_set_aside(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        set_aside(tmp_path / "noise-floor.json")
    assert list(tmp_path.iterdir()) == []
