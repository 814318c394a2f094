"""results.csv: column order, one row per case sorted by node id, deterministic bytes, canonical
JSON for lists and dicts, empty cells for missing values, atomic writes."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from pytest_diffbench.judge.result import columns
from pytest_diffbench.spec.config import CONFIG_KEYS
from pytest_diffbench.store.results import read_results, results_csv, write_results


def row(make_result, nodeid: str = "t.py::x", **fields) -> dict:
    """A results row of one case, with ``fields`` replacing cells."""
    base = make_result(config={"loras": ["a.safetensors"], "controlnets": [], "pipeline_kwargs": {"eta": 0.5, "clip_skip": 2},
                               "negative_prompt": None},
                       scores={"ssim": 0.987654321, "psnr": float("inf"), "lpips": None}).to_row()
    return {**base, "nodeid": nodeid, "test": nodeid.split("[")[0], **fields}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_column_order():
    known = columns()
    assert known[:6] == ("run_id", "timestamp", "nodeid", "test", "case_id", "config_hash")
    assert known[6:8] == ("seed_plan", "seed_index")  # seed-plan provenance, out of the config hash
    assert known[8:8 + len(CONFIG_KEYS)] == CONFIG_KEYS
    assert len(set(known)) == len(known)
    for column in ("outcome", "message", "ssim", "min_ssim", "seconds_per_image", "peak_vram_mb",
                   "device_name", "driver", "env_diff", "pin", "baseline_path", "output_path", "tolerance_source"):
        assert column in known
    assert known[-1] == "schema_version"


def test_header_is_every_column_in_order(tmp_path, make_result):
    path = write_results(tmp_path / "results.csv", [row(make_result)])
    assert path == tmp_path / "results.csv"
    assert path.read_text().splitlines()[0].split(",") == list(columns())


def test_no_rows_give_a_header_only(tmp_path):
    path = write_results(tmp_path / "results.csv", [])
    assert path.read_text() == ",".join(columns()) + "\n"


def test_rows_are_sorted_by_nodeid(tmp_path, make_result):
    nodeids = ["t.py::b[2]", "t.py::a", "s.py::z", "t.py::b[10]", "t.py::TestX::c"]
    path = write_results(tmp_path / "results.csv", [row(make_result, n) for n in nodeids])
    assert [r["nodeid"] for r in read_rows(path)] == sorted(nodeids)
    assert [r.nodeid for r in read_results(path)] == sorted(nodeids)


def test_input_order_does_not_change_the_bytes(make_result):
    rows = [row(make_result, f"t.py::test[{i}]", seed=i, ssim=0.9 + i / 100) for i in range(6)]
    first = results_csv(rows)
    assert results_csv(list(reversed(rows))) == first
    assert results_csv([rows[i] for i in (3, 0, 5, 1, 4, 2)]) == first


def test_identical_rows_give_identical_bytes_with_unix_newlines(tmp_path, make_result):
    a = write_results(tmp_path / "a.csv", [row(make_result, "t.py::x"), row(make_result, "t.py::y", outcome="failed-quality")])
    b = write_results(tmp_path / "b.csv", [row(make_result, "t.py::x"), row(make_result, "t.py::y", outcome="failed-quality")])
    assert a.read_bytes() == b.read_bytes()
    assert b"\r\n" not in a.read_bytes() and a.read_bytes().endswith(b"\n")


def test_lists_and_dicts_are_canonical_json(tmp_path, make_result):
    path = write_results(tmp_path / "r.csv", [row(make_result, pipeline_kwargs={"zeta": 1, "alpha": [1, 2]}, loras=("l1", "l2"))])
    (cells,) = read_rows(path)
    assert cells["pipeline_kwargs"] == '{"alpha":[1,2],"zeta":1}'
    assert cells["loras"] == '["l1","l2"]'
    assert cells["controlnets"] == "[]"
    (result,) = read_results(path)
    assert result.setting("pipeline_kwargs") == {"alpha": [1, 2], "zeta": 1}
    assert result.setting("loras") == ["l1", "l2"]


def test_none_and_missing_values_are_empty(tmp_path, make_result):
    cells = row(make_result, lpips=None)
    del cells["driver"]
    path = write_results(tmp_path / "r.csv", [cells])
    (written,) = read_rows(path)
    assert written["lpips"] == "" and written["negative_prompt"] == "" and written["driver"] == ""
    assert "None" not in path.read_text()


def test_values_keep_their_types_in_the_text(tmp_path, make_result):
    partial = {"nodeid": "t.py::b", "outcome": "error", "message": "boom", "schema_version": 2}
    (a, b) = read_rows(write_results(tmp_path / "r.csv", [row(make_result, "t.py::a", seed=2**63 - 1), partial]))
    assert a["width"] == "64" and a["steps"] == "20" and a["seed"] == str(2**63 - 1)
    assert b["width"] == "" and b["seed"] == ""
    assert a["cfg"] == "7.5" and a["ssim"] == "0.987654321" and a["psnr"] == "inf"


def test_text_with_commas_quotes_and_newlines_round_trips(tmp_path, make_result):
    message = 'ssim 0.5 >= 0.95 FAIL; "quoted", and\na second line'
    path = write_results(tmp_path / "r.csv", [row(make_result, message=message, prompt="caf\u00e9, \u2615")])
    (cells,) = read_rows(path)
    assert cells["message"] == message and cells["prompt"] == "caf\u00e9, \u2615"
    (result,) = read_results(path)
    assert result.message == message and result.setting("prompt") == "caf\u00e9, \u2615"


def test_added_keys_become_columns_after_the_known_ones(tmp_path, make_result):
    path = write_results(tmp_path / "r.csv", [row(make_result, "t.py::a", zeta_team="x"), row(make_result, "t.py::b", alpha_gpu="y")])
    header = path.read_text().splitlines()[0].split(",")
    assert header == [*columns(), "alpha_gpu", "zeta_team"]
    a, b = read_results(path)
    assert a.extra == {"zeta_team": "x"} and b.extra == {"alpha_gpu": "y"}


def test_results_are_written_atomically(tmp_path, monkeypatch, make_result):
    target = write_results(tmp_path / "results.csv", [row(make_result, "t.py::old")])
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("interrupted")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="interrupted"):
        write_results(target, [row(make_result, "t.py::new")])
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_pandas_reads_the_file_back(tmp_path, make_result):
    import pandas as pd

    path = write_results(tmp_path / "r.csv", [row(make_result, "t.py::b", seed=3), row(make_result, "t.py::a", seed=1)])
    frame = pd.read_csv(path)
    assert list(frame.columns) == list(columns())
    assert frame["nodeid"].tolist() == ["t.py::a", "t.py::b"]
    assert frame["seed"].tolist() == [1, 3]


def test_reading_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="is .* a diffbench run folder"):
        read_results(tmp_path / "results.csv")


def test_canonical_json_cells_parse_back(make_result):
    text = results_csv([row(make_result)])
    (cells,) = list(csv.DictReader(text.splitlines()))
    assert json.loads(cells["pipeline_kwargs"]) == {"clip_skip": 2, "eta": 0.5}


def test_the_attempts_of_a_rerun_case_round_trip_and_default_to_one(tmp_path, make_result):
    path = write_results(tmp_path / "results.csv", [make_result().with_changes(attempts=3).to_row()])
    assert [r["attempts"] for r in read_rows(path)] == ["3"]
    assert [r.attempts for r in read_results(path)] == [3]
    older = [{key: value for key, value in row.items() if key != "attempts"} for row in read_rows(path)]
    with open(path, "w", newline="", encoding="utf-8") as handle:  # a results.csv from before the column
        writer = csv.DictWriter(handle, fieldnames=list(older[0]))
        writer.writeheader()
        writer.writerows(older)
    assert [r.attempts for r in read_results(path)] == [1]


def test_a_cell_longer_than_the_csv_modules_limit_is_read_and_the_limit_put_back(tmp_path, make_result):
    long_id = "x" * (csv.field_size_limit() * 3)
    path = write_results(tmp_path / "results.csv", [make_result().with_changes(case_id=long_id).to_row()])
    limit = csv.field_size_limit()
    assert [r.case_id for r in read_results(path)] == [long_id]
    assert csv.field_size_limit() == limit


@pytest.mark.parametrize("tail, said", [
    ("\x00\x00\x00", "line 4 is a row of NUL bytes"),
    ("\x00,\x00\n", "line 4 is a row of NUL bytes"),
    ("a,b\n", "line 4 has 2 cells where the header has"),
])
def test_a_row_not_as_wide_as_the_header_is_named_by_its_line(tmp_path, make_result, tail, said):
    path = write_results(tmp_path / "results.csv", [make_result().to_row()])
    path.write_text(path.read_text(encoding="utf-8") + "\n" + tail, encoding="utf-8")  # a blank line is passed over
    with pytest.raises(ValueError, match=said):
        read_results(path)


def test_a_header_naming_a_column_twice_is_named(tmp_path, make_result):
    path = write_results(tmp_path / "results.csv", [make_result().to_row()])
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(",outcome,", ",nodeid,", 1), encoding="utf-8")
    with pytest.raises(ValueError, match="its header names the column 'nodeid' twice"):
        read_results(path)
