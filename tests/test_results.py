"""Unit tests of pytest_diffbench.results: run ids, run folders and results.csv."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from pytest_diffbench import results
from pytest_diffbench.config import REQUIRED_KEYS
from pytest_diffbench.results import (
    COLUMNS,
    LATEST_FILE,
    RESULTS_FILE,
    create_run_folder,
    mark_latest,
    new_run_id,
    write_case_files,
    write_results,
)

RUN_ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


def record(nodeid: str, **fields):
    return {
        "run_id": "20260101T000000Z-abcdef", "timestamp": "2026-01-01T00:00:00+00:00", "nodeid": nodeid,
        "test": nodeid.split("[")[0], "case_id": nodeid.split("[")[-1].rstrip("]"), "config_hash": "ab" * 32,
        "seed": 0, "sampler": "Euler", "steps": 20, "cfg": 7.5, "width": 64, "height": 64,
        "loras": ["a.safetensors"], "controlnets": [], "pipeline_kwargs": {"eta": 0.5, "clip_skip": 2},
        "negative_prompt": None, "outcome": "passed", "ssim": 0.987654321, "psnr": float("inf"), "lpips": None,
        **fields,
    }


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# -- run ids and folders ---------------------------------------------------------------------


def test_run_id_format_uses_the_utc_time():
    now = datetime(2026, 11, 28, 4, 15, 0, tzinfo=timezone.utc)
    run_id = new_run_id(now)
    assert RUN_ID_RE.fullmatch(run_id), run_id
    assert run_id.startswith("20261128T041500Z-")


def test_run_id_without_a_time_uses_now():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    run_id = new_run_id()
    after = datetime.now(timezone.utc)
    stamp = datetime.strptime(run_id.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert RUN_ID_RE.fullmatch(run_id)
    assert before <= stamp <= after


def test_run_ids_are_unique():
    # 3 random bytes per id: 50 ids within one second collide with probability < 1e-4.
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = [new_run_id(now) for _ in range(50)]
    assert len(set(ids)) == len(ids)


def test_run_ids_sort_by_time():
    start = datetime(2026, 12, 31, 23, 59, 58, tzinfo=timezone.utc)
    times = [start + timedelta(seconds=s) for s in (0, 1, 2, 3, 3600, 86400 * 40)]
    ids = [new_run_id(t) for t in times]
    assert sorted(ids) == ids
    assert sorted(reversed(ids)) == ids


def test_create_run_folder(tmp_path):
    run_id, run_dir = create_run_folder(tmp_path / "out")
    assert RUN_ID_RE.fullmatch(run_id)
    assert run_dir == tmp_path / "out" / "runs" / run_id
    assert run_dir.is_dir() and list(run_dir.iterdir()) == []


def test_create_run_folder_gives_distinct_folders(tmp_path):
    claimed = [create_run_folder(tmp_path) for _ in range(20)]
    assert len({run_id for run_id, _ in claimed}) == 20
    assert len(list((tmp_path / "runs").iterdir())) == 20


def test_create_run_folder_never_reuses_an_existing_folder(tmp_path, monkeypatch):
    taken = "20260101T000000Z-aaaaaa"
    existing = tmp_path / "runs" / taken
    existing.mkdir(parents=True)
    (existing / RESULTS_FILE).write_text("old run\n")
    ids = iter([taken, taken, "20260101T000000Z-bbbbbb"])
    calls = []

    def fake_new_run_id(now=None):
        calls.append(now)
        return next(ids)

    monkeypatch.setattr(results, "new_run_id", fake_new_run_id)
    run_id, run_dir = create_run_folder(tmp_path)
    assert run_id == "20260101T000000Z-bbbbbb"
    assert run_dir == tmp_path / "runs" / run_id and run_dir.is_dir()
    assert len(calls) == 3
    assert (existing / RESULTS_FILE).read_text() == "old run\n"
    assert sorted(p.name for p in existing.iterdir()) == [RESULTS_FILE]


def test_mark_latest(tmp_path):
    mark_latest(tmp_path, "run-1")
    mark_latest(tmp_path, "run-2")
    assert (tmp_path / LATEST_FILE).read_text() == "run-2\n"
    assert [p.name for p in tmp_path.iterdir()] == [LATEST_FILE]


def test_write_case_files(tmp_path):
    path = write_case_files(tmp_path, "tests/test_a/test_b/seed0", b"\x89PNG fake", '{"config":{}}\n')
    assert path == tmp_path / "images" / "tests/test_a/test_b/seed0.png"
    assert path.read_bytes() == b"\x89PNG fake"
    assert (tmp_path / "configs" / "tests/test_a/test_b/seed0.json").read_text() == '{"config":{}}\n'


# -- results.csv -----------------------------------------------------------------------------


def test_column_order():
    assert COLUMNS[:6] == ("run_id", "timestamp", "nodeid", "test", "case_id", "config_hash")
    assert COLUMNS[6:6 + len(REQUIRED_KEYS)] == REQUIRED_KEYS
    assert len(set(COLUMNS)) == len(COLUMNS)
    for column in ("outcome", "message", "ssim", "min_ssim", "seconds_per_image", "peak_vram_mb",
                   "device_name", "driver", "env_diff", "pin", "baseline_path", "output_path"):
        assert column in COLUMNS


def test_header_is_every_column_in_order(tmp_path):
    path = write_results(tmp_path, [record("t.py::a")])
    assert path == tmp_path / RESULTS_FILE
    header = path.read_text().splitlines()[0]
    assert header.split(",") == list(COLUMNS)


def test_empty_records_give_a_header_only(tmp_path):
    path = write_results(tmp_path, [])
    assert path.read_text() == ",".join(COLUMNS) + "\n"


def test_rows_are_sorted_by_nodeid(tmp_path):
    nodeids = ["t.py::b[2]", "t.py::a", "s.py::z", "t.py::b[10]", "t.py::TestX::c"]
    path = write_results(tmp_path, [record(n) for n in nodeids])
    assert [row["nodeid"] for row in read_rows(path)] == sorted(nodeids)


def test_input_order_does_not_change_the_bytes(tmp_path):
    records = [record(f"t.py::test[{i}]", seed=i, ssim=0.9 + i / 100) for i in range(6)]
    first = write_results(tmp_path / "one", records).read_bytes()
    second = write_results(tmp_path / "two", list(reversed(records))).read_bytes()
    third = write_results(tmp_path / "three", [records[i] for i in (3, 0, 5, 1, 4, 2)]).read_bytes()
    assert first == second == third


def test_identical_records_give_identical_bytes(tmp_path):
    a = write_results(tmp_path / "a", [record("t.py::x"), record("t.py::y", outcome="failed-quality")])
    b = write_results(tmp_path / "b", [record("t.py::x"), record("t.py::y", outcome="failed-quality")])
    assert a.read_bytes() == b.read_bytes()
    assert b"\r\n" not in a.read_bytes()


def test_lists_and_dicts_are_canonical_json(tmp_path):
    path = write_results(tmp_path, [record("t.py::x", pipeline_kwargs={"zeta": 1, "alpha": [1, 2]}, loras=("l1", "l2"))])
    (row,) = read_rows(path)
    assert row["pipeline_kwargs"] == '{"alpha":[1,2],"zeta":1}'
    assert row["loras"] == '["l1","l2"]'
    assert row["controlnets"] == "[]"
    assert json.loads(row["pipeline_kwargs"]) == {"alpha": [1, 2], "zeta": 1}


def test_none_and_missing_values_are_empty(tmp_path):
    path = write_results(tmp_path, [record("t.py::x", lpips=None)])
    (row,) = read_rows(path)
    assert row["lpips"] == "" and row["negative_prompt"] == ""
    assert row["driver"] == ""  # not in the record at all
    assert "None" not in path.read_text()


def test_values_keep_their_types_in_the_text(tmp_path):
    rows = [record("t.py::a", seed=2**63 - 1), {"nodeid": "t.py::b", "outcome": "error", "message": "boom"}]
    (a, b) = read_rows(write_results(tmp_path, rows))
    assert a["width"] == "64" and a["steps"] == "20" and a["seed"] == str(2**63 - 1)
    assert b["width"] == "" and b["seed"] == ""
    assert a["cfg"] == "7.5" and a["ssim"] == "0.987654321" and a["psnr"] == "inf"


def test_text_with_commas_quotes_and_newlines_round_trips(tmp_path):
    message = 'ssim 0.5 >= 0.95 FAIL; "quoted", and\na second line'
    (row,) = read_rows(write_results(tmp_path, [record("t.py::x", message=message, prompt="caf\u00e9, \u2615")]))
    assert row["message"] == message
    assert row["prompt"] == "caf\u00e9, \u2615"


def test_unknown_keys_are_ignored(tmp_path):
    path = write_results(tmp_path, [record("t.py::x", not_a_column="secret")])
    assert "secret" not in path.read_text()


def test_results_are_written_atomically(tmp_path, monkeypatch):
    write_results(tmp_path, [record("t.py::old")])
    before = (tmp_path / RESULTS_FILE).read_bytes()

    def broken_replace(src, dst):
        raise OSError("interrupted")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="interrupted"):
        write_results(tmp_path, [record("t.py::new")])
    monkeypatch.undo()
    assert (tmp_path / RESULTS_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULTS_FILE]


def test_pandas_reads_the_file_back(tmp_path):
    import pandas as pd

    path = write_results(tmp_path, [record("t.py::b", seed=3), record("t.py::a", seed=1)])
    frame = pd.read_csv(path)
    assert list(frame.columns) == list(COLUMNS)
    assert frame["nodeid"].tolist() == ["t.py::a", "t.py::b"]
    assert frame["seed"].tolist() == [1, 3]
    with io.open(path, encoding="utf-8") as handle:
        assert handle.read().endswith("\n")
