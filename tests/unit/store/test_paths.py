"""Case paths and pin keys: where a case's files go, one safe segment at a time."""

from __future__ import annotations

import hashlib

import pytest

from pytest_diffbench.store import paths
from pytest_diffbench.store.paths import case_path, pin_key, safe_segment


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


@pytest.mark.parametrize("param, readable", [
    ("a/b", "a_b-"),
    ("a b", "a_b-"),
    ("x[1]", "x_1-"),
    ("a[b", "a_b-"),
    ("..", ""),
    ("caf\u00e9 \u2615", "caf-"),
])
def test_case_path_sanitises_odd_ids(param, readable):
    """A segment that cleaning changes is its readable cleaned text plus the hash of the original
    (so ``a/b`` and ``a b`` keep two files; see test_case_paths.py)."""
    path = case_path(f"tests/test_a.py::test_b[{param}]")
    assert path == f"tests/test_a/test_b/{readable}{hashlib.sha256(param.encode()).hexdigest()[:8]}"
    assert path.count("/") == 3  # no extra folders from '/' in the id


def test_case_path_keeps_clean_ids():
    assert case_path("tests/test_a.py::test_b[seed0-dpmpp_2m-cfg7.5]") == "tests/test_a/test_b/seed0-dpmpp_2m-cfg7.5"


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
    key = pin_key("{device_name}-{dtype}", FIELDS)
    assert key.startswith("NVIDIA_H100_80GB_HBM3-float16-") and len(key) == len("NVIDIA_H100_80GB_HBM3-float16-") + 8
    assert pin_key("{platform}-torch{torch}", FIELDS).startswith("linux-torch2.4.1_cu121-")
    assert pin_key("{platform}-{diffusers}", FIELDS) == "linux-0.31.0"  # clean: kept as it is


def test_pin_key_is_one_segment_even_with_separators_in_the_template():
    key = pin_key("{device}/{dtype} x", FIELDS)
    assert key.startswith("cuda_float16_x-")
    assert "/" not in key and " " not in key


def test_pin_key_values_cannot_escape():
    key = pin_key("{device_name}", {**FIELDS, "device_name": "../../etc"})
    assert "/" not in key and key != ".."




def test_case_folder_is_the_case_path_without_the_case():
    assert paths.case_folder("tests/test_a.py::TestX::test_b[seed0]") == "tests/test_a/TestX/test_b"
