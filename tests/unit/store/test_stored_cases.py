"""BaselineStore.stored_cases: the cases whose baseline pairs lie in a test's folder; lone_files: the halves without a pair."""

from __future__ import annotations

import os

import pytest

from pytest_diffbench.store.baselines import BaselineStore


def test_stored_cases_lists_each_pair_once_plain_files_only(tmp_path) -> None:
    folder = tmp_path / "cpu-float32" / "tests" / "test_a" / "test_x"
    folder.mkdir(parents=True)
    for name in ("seed0.png", "seed0.json", "seed1.png", "seed2.json", ".seed3.png.abc.diffbench-tmp", "notes.txt"):
        (folder / name).write_bytes(b"x")
    (folder / "seed4.png").mkdir()  # a folder where a file goes is no stored case
    (folder / "TestNested").mkdir()
    (folder / "TestNested" / "seed5.png").write_bytes(b"x")
    os.symlink(folder / "seed0.png", folder / "seed6.png")
    store = BaselineStore(tmp_path, "cpu-float32")
    assert store.stored_cases("tests/test_a/test_x") == ["seed0"]
    assert store.lone_files("tests/test_a/test_x") == ["seed1.png", "seed2.json"]


@pytest.mark.parametrize("folder", ["tests/missing", "../outside", "/etc", "linked/test_x"])
def test_stored_cases_of_a_missing_escaping_or_linked_folder_is_empty(tmp_path, folder) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "test_x").mkdir()
    (real / "test_x" / "seed0.png").write_bytes(b"x")
    (tmp_path / "pin").mkdir()
    os.symlink(real, tmp_path / "pin" / "linked")
    assert BaselineStore(tmp_path, "pin").stored_cases(folder) == []
    assert BaselineStore(tmp_path, "pin").lone_files(folder) == []
