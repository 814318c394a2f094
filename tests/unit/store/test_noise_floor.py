"""noise-floor.json (issue 12, item 6): merged per pin and test, deterministic bytes, one line
naming the file when it is not a noise floor."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from forked_pytest import start_python  # tests/suite_plugin: each child forked from a warm server

from pytest_diffbench.judge.noise_floor import Floor
from pytest_diffbench.store.noise_floor import (
    NoiseFloorError,
    noise_floor_path,
    read_noise_floors,
    write_noise_floors,
)

A = Floor({"min_ssim": 0.99, "min_psnr": math.inf}, 0.02, 1.0, 3, {"batch": "not applicable"})
B = Floor({"min_ssim": 0.95, "min_psnr": 38.0}, 0.05, 2.0, 3)


def test_merge_keeps_other_pins_tests_and_cases(tmp_path) -> None:
    path = tmp_path / "noise-floor.json"
    write_noise_floors(path, {"cpu-float32": {"t.py::test_a": {"c1": A}, "t.py::test_b": {"c1": A}},
                              "cuda-float16": {"t.py::test_a": {"c1": B}}})
    floors = write_noise_floors(path, {"cpu-float32": {"t.py::test_a": {"c2": B}}})
    assert floors == read_noise_floors(path)
    cpu = floors.pins["cpu-float32"]
    assert set(cpu["t.py::test_a"].cases) == {"c1", "c2"} and set(cpu) == {"t.py::test_a", "t.py::test_b"}
    assert cpu["t.py::test_a"].test.figures["min_ssim"] == 0.95  # recomputed over both cases
    assert floors.pins["cuda-float16"]["t.py::test_a"].cases["c1"] == B
    assert floors.lookup("cpu-float32", "t.py::test_a", "c1") == (A, "case")
    assert floors.lookup("cpu-float32", "t.py::test_a", "c9") == (cpu["t.py::test_a"].test, "test")
    assert floors.lookup("cpu-float16", "t.py::test_a", "c1") is None


def test_same_floors_same_bytes(tmp_path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    write_noise_floors(one, {"p": {"t::b": {"c": B}, "t::a": {"c": A}}})
    write_noise_floors(two, {"p": {"t::a": {"c": A}}})
    write_noise_floors(two, {"p": {"t::b": {"c": B}}})
    assert one.read_bytes() == two.read_bytes()
    assert json.loads(one.read_text())["format"] == 1


@pytest.mark.parametrize("content, why", [
    ("{not json", "Expecting property name"),
    ('{"format": 7, "pins": {}}', "not a noise floor of format 1"),
    ('{"format": 1, "pins": {"p": {"t::a": {"test": {}, "cases": []}}}}', "'t::a'"),
    ('{"format": 1, "pins": {"p": {"t::a": {"test": {"repeats": "x"}, "cases": {}}}}}', "'repeats' holds 'x'"),
])
def test_a_corrupt_file_is_one_line_naming_it_and_is_never_overwritten(tmp_path, content, why) -> None:
    path = tmp_path / "noise-floor.json"
    path.write_text(content)
    with pytest.raises(NoiseFloorError) as raised:
        write_noise_floors(path, {"p": {"t::a": {"c": A}}})
    message = str(raised.value)
    assert str(path) in message and why in message and "\n" not in message
    assert path.read_text() == content


def test_a_folder_in_place_of_the_file_is_one_line_naming_it(tmp_path) -> None:
    path = tmp_path / "noise-floor.json"
    path.mkdir()
    with pytest.raises(NoiseFloorError) as raised:
        write_noise_floors(path, {"p": {"t::a": {"c": A}}})
    assert str(path) in str(raised.value) and "cannot be read" in str(raised.value)
    assert path.is_dir()


def test_a_missing_file_holds_no_floors(tmp_path) -> None:
    assert read_noise_floors(tmp_path / "noise-floor.json").pins == {}


def test_a_link_in_place_of_the_file_is_refused(tmp_path) -> None:
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    (tmp_path / "baselines").mkdir()
    os.symlink(outside, tmp_path / "baselines" / "noise-floor.json")
    with pytest.raises(NoiseFloorError, match="symbolic link"):
        noise_floor_path(tmp_path / "baselines")


#: A child that merges 15 cases of test ``argv[2]`` into noise-floor.json ``argv[1]``. It is code of
#: its own, not a function of this module: a spawned child imports its target's module by name,
#: which --import-mode=importlib does not make importable ("No module named 'unit'").
WRITER = f"""
import sys
from math import inf
from pathlib import Path

from pytest_diffbench.judge.noise_floor import Floor
from pytest_diffbench.store.noise_floor import write_noise_floors

for number in range(15):
    write_noise_floors(Path(sys.argv[1]), {{"cpu-float32": {{sys.argv[2]: {{f"case{{number}}": {A!r}}}}}}})
"""


@pytest.mark.subprocess
def test_two_processes_merging_at_once_lose_no_entry(tmp_path) -> None:
    path = tmp_path / "noise-floor.json"
    writers = [start_python(["-c", WRITER, str(path), test]) for test in ("t::a", "t::b")]  # both at once
    assert [writer.wait(120) for writer in writers] == [0, 0]  # a child's traceback is in the captured stderr
    tests = read_noise_floors(path).pins["cpu-float32"]
    assert {test: len(entry.cases) for test, entry in tests.items()} == {"t::a": 15, "t::b": 15}
    assert tests["t::a"].cases["case0"] == A
