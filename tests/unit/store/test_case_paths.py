"""Case paths are one-to-one and bounded (issue 9): two ids that clean to the same text keep two
files, and no id is too long for a file name; clean short segments keep their exact form."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

import pytest

from pytest_diffbench.store.files import TMP_SUFFIX, atomic_write_bytes
from pytest_diffbench.store import paths
from pytest_diffbench.store.paths import HASH_CHARS, MAX_SEGMENT, case_path, case_path_clashes, path_segment, pin_key


def nodeid(param: str, test: str = "test_b") -> str:
    return f"tests/test_a.py::{test}[{param}]"


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


# -- one-to-one ------------------------------------------------------------------------------


@pytest.mark.parametrize("ids", [
    pytest.param(["a red circle, on a blue background", "a red circle on a blue background"], id="issue-parametrize"),
    pytest.param(["stylex", "stylex."], id="issue-sweep-x-and-x."),
    pytest.param(["a/b", "a_b", "a b", "a:b", "a\\b"], id="separators"),
    pytest.param(["v1", "v1_", "v1.", "v1..", "_v1", ".v1"], id="leading-and-trailing-dots-and-underscores"),
    pytest.param(["caf\\xe9", "caf_xe9", "caf\u00e9", "caf"], id="non-ascii-and-its-escapes"),
    pytest.param(["x[1]", "x_1", "x(1)"], id="brackets"),
])
def test_ids_that_clean_alike_get_distinct_case_paths(ids):
    paths = [case_path(nodeid(i)) for i in ids]
    assert len(set(paths)) == len(ids), paths
    assert case_path_clashes(nodeid(i) for i in ids) == []


@pytest.mark.parametrize("param", ["a red circle on a blue background", "x.", "a/b", "caf\u00e9 \u2615", ".."])
def test_a_cleaned_segment_is_readable_text_plus_the_hash_of_the_original(param):
    segment = case_path(nodeid(param)).rsplit("/", 1)[1]
    assert segment.endswith(short_hash(param))
    readable = segment[: -HASH_CHARS].rstrip("-")
    assert readable == "" or readable in param.replace(" ", "_").replace("/", "_").replace(",", "_")


@pytest.mark.parametrize("nodeid_, expected", [
    # the committed example baselines live at these paths: they must not move
    ("examples/test_shapes.py::test_red_circle[seed0-euler_a-20steps-cfg5.5]",
     "examples/test_shapes/test_red_circle/seed0-euler_a-20steps-cfg5.5"),
    ("examples/test_shapes.py::test_sizes[seed0-ddim-10steps-cfg7.5-width96-height64]",
     "examples/test_shapes/test_sizes/seed0-ddim-10steps-cfg7.5-width96-height64"),
    ("tests/test_a.py::TestX::test_b", "tests/test_a/TestX/test_b/default"),
    ("tests/test_a.py::test_b[a.b_c-d]", "tests/test_a/test_b/a.b_c-d"),
])
def test_clean_short_segments_keep_their_exact_form(nodeid_, expected):
    assert case_path(nodeid_) == expected


def test_a_path_never_climbs_out_or_gains_folders():
    for param in ("../../x", "a/b/c", "/etc/passwd", ".."):
        path = case_path(f"../outside/test_a.py::test_b[{param}]")
        assert ".." not in path.split("/") and not path.startswith("/")
        assert path.count("/") == 4, path


# -- bounded ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    pytest.param("p" * 242, id="issue-242-characters"),
    pytest.param("q" * 300, id="issue-300-characters"),
    pytest.param("\u00e9" * 127 + "e", id="255-bytes-of-two-byte-utf8"),
    pytest.param("\u2615" * 85, id="255-bytes-of-three-byte-utf8"),
    pytest.param("s" * (MAX_SEGMENT + 1), id="one-over-the-cap"),
    pytest.param("a b " * 100, id="long-and-unclean"),
])
def test_every_segment_is_capped_and_its_temporary_file_fits(tmp_path, text):
    segment = path_segment(text)
    assert len(segment.encode("utf-8")) <= MAX_SEGMENT
    assert segment.endswith(short_hash(text))
    # the longest file name written from a segment, and the temporary file atomic_write_bytes makes
    for suffix in (".png", ".json"):
        target = tmp_path / f"{segment}{suffix}"
        atomic_write_bytes(target, b"data")
        assert target.read_bytes() == b"data"
        assert len(f".{target.name}.XXXXXXXX{TMP_SUFFIX}".encode()) < 255


def test_long_ids_that_share_a_prefix_stay_distinct():
    a, b = "p" * 300 + "a", "p" * 300 + "b"
    assert path_segment(a) != path_segment(b)
    assert path_segment(a)[:100] == path_segment(b)[:100]  # readable: the same prefix


def test_a_segment_at_the_cap_is_kept():
    assert path_segment("s" * MAX_SEGMENT) == "s" * MAX_SEGMENT


def test_long_function_and_class_names_are_capped_too():
    path = case_path(f"tests/test_a.py::Test{'C' * 200}::test_{'f' * 250}[seed0]")
    assert all(len(part) <= MAX_SEGMENT for part in path.split("/"))
    assert path.endswith("/seed0") and paths.case_folder(f"tests/test_a.py::Test{'C' * 200}::test_{'f' * 250}[seed0]") == path[: -len("/seed0")]


# -- clashes ---------------------------------------------------------------------------------


def test_clashes_name_the_earlier_and_the_later_node_id():
    forged = f"x-{short_hash('x.')}"  # a clean id spelled like the cleaned form of "x."
    ids = [nodeid("x."), nodeid("y"), nodeid(forged)]
    assert case_path_clashes(ids) == [(ids[0], ids[2])]


@pytest.mark.parametrize("first, second", [
    (nodeid("A"), nodeid("a")),
    (nodeid("seed0", test="test_Red"), nodeid("seed0", test="test_red")),
    ("tests/Test_a.py::test_b[x]", "tests/test_a.py::test_b[x]"),
])
def test_ids_that_differ_only_in_letter_case_clash(first, second):
    """Decision: case is kept (``A`` and ``a`` are two paths on Linux), but a pair that differs only
    in case is refused everywhere, since macOS and Windows would give it one file."""
    assert case_path(first) != case_path(second)
    assert case_path_clashes([first, second, nodeid("other")]) == [(first, second)]


def test_a_repeated_node_id_clashes_with_itself():
    assert case_path_clashes([nodeid("x"), nodeid("x")]) == [(nodeid("x"), nodeid("x"))]


# -- pin keys and sheets go through the same function ----------------------------------------


FIELDS = {"device": "cuda", "dtype": "float16", "device_name": "NVIDIA H100 80GB HBM3", "torch": "2.4.1+cu121"}


def test_the_default_pin_key_keeps_its_form():
    assert pin_key("{device}-{dtype}", FIELDS) == "cuda-float16"


@pytest.mark.parametrize("first, second", [
    ({"device_name": "A B"}, {"device_name": "A_B"}),
    ({"torch": "2.4.1+cu121"}, {"torch": "2.4.1_cu121"}),
    ({"device_name": "GPU."}, {"device_name": "GPU"}),
])
def test_pin_keys_of_distinct_machines_stay_distinct(first, second):
    template = "{device_name}-torch{torch}"
    assert pin_key(template, {**FIELDS, **first}) != pin_key(template, {**FIELDS, **second})


def test_a_long_pin_key_is_capped_and_one_segment():
    key = pin_key("{device_name}/{torch}", {**FIELDS, "device_name": "../" + "G" * 300})
    assert "/" not in key and len(key) <= MAX_SEGMENT and not key.startswith(".")


def test_the_temporary_name_of_a_capped_segment_is_what_mkstemp_makes(tmp_path):
    """Guards the arithmetic above against a change in mkstemp's random part."""
    fd, name = tempfile.mkstemp(prefix=".n.", suffix=TMP_SUFFIX, dir=tmp_path)
    os.close(fd)
    assert len(os.path.basename(name)) == len(".n.") + 8 + len(TMP_SUFFIX)


# -- names a shell or Windows would take for something else ------------------------------------


@pytest.mark.parametrize("text", ["CON", "con", "Prn", "AUX", "nul", "NUL", "COM1", "com9", "LPT1", "lpt9", "COM0",
                                  "aux.txt", "NUL.png", "Con.tar.gz", "nul.", "CON ", "x.", "x "])
def test_windows_device_names_and_names_windows_trims_get_the_hash_form(text):
    segment = path_segment(text)
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    assert segment.endswith(f"-{digest}") or segment == digest
    stem = segment.split(".")[0].upper()
    assert stem not in {"CON", "PRN", "AUX", "NUL"} and not re.fullmatch(r"(COM|LPT)\d", stem)
    assert not segment.endswith((".", " "))


@pytest.mark.parametrize("text", ["console", "CONX", "auxiliary", "nullable", "COM10", "LPT", "CON-x", "my.nul"])
def test_names_that_only_look_like_device_names_are_kept(text):
    assert path_segment(text) == text


@pytest.mark.parametrize("text", ["-rf", "-", "--", "--help", "-x_y", "-.a", "-1"])
def test_a_segment_never_starts_with_a_dash(text):
    segment = path_segment(text)
    assert not segment.startswith("-")
    assert segment.endswith(hashlib.sha256(text.encode()).hexdigest()[:8])


def test_case_paths_and_pin_keys_of_such_names_are_safe_in_every_segment():
    path = case_path("tests/CON.py::aux::-rf[nul.txt]")
    assert [segment[:4] for segment in path.split("/")] == ["test", "CON-", "aux-", "rf-6", "nul_"]
    assert pin_key("{device}", {"device": "-rf"}).startswith("rf-")
    assert pin_key("{device}", {"device": "NUL"}).startswith("NUL-")
    assert case_path_clashes(["t.py::test_a[-x]", "t.py::test_a[x]"]) == []  # -x hashed, x kept: two files
