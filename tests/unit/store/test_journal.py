"""The run journal: one durable line per finished case, read back after a kill; stale temp files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store import journal as journal_module
from pytest_diffbench.store.files import atomic_write_bytes
from pytest_diffbench.store.journal import TEMP_NAME, Journal, JournalError, read_journal, read_journal_entries, remove_temp_files


def result(nodeid: str, outcome: Outcome = Outcome.PASSED, **changes: object) -> CaseResult:
    base = CaseResult(run_id="20260101T000000Z-aaaaaa", timestamp="2026-01-01T00:00:00+00:00", nodeid=nodeid,
                      case_id="seed0", outcome=outcome, message="a\nmessage with \u2028 and \x1b[31m",
                      failure_text="the full\ntext", config={"seed": 0, "prompt": "a red cube \u00e9"})
    return base.with_changes(**changes)


def test_each_result_is_one_line_read_back_whole(tmp_path):
    path = tmp_path / "journal.jsonl"
    written = [result("t.py::a[x]"), result("t.py::b", Outcome.ERROR)]
    with Journal(path) as journal:
        for one in written:
            journal.append(one)
            assert path.read_bytes().endswith(b"\n")  # on disk before append returns
    assert path.read_bytes().count(b"\n") == 2
    assert path.read_bytes().isascii()
    assert [r.to_transport() for r in read_journal(path)] == [r.to_transport() for r in written]


def test_append_fsyncs_before_returning(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(journal_module.os, "fsync", lambda fd: synced.append(fd))
    with Journal(tmp_path / "journal.jsonl") as journal:
        journal.append(result("t.py::a"))
        journal.append(result("t.py::b"))
    assert len(synced) == 2


@pytest.mark.parametrize("cut", [1, 10, -2, -1])
def test_a_last_line_cut_by_a_kill_is_ignored(tmp_path, cut):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append(result("t.py::a"))
        journal.append(result("t.py::b"))
    data = path.read_bytes()
    first_end = data.index(b"\n") + 1
    path.write_bytes(data[:first_end + cut] if cut > 0 else data[:cut])
    assert [r.nodeid for r in read_journal(path)] == ["t.py::a"]


def test_the_last_line_of_a_node_id_wins(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append(result("t.py::a", Outcome.ERROR))
        journal.append(result("t.py::b"))
        journal.append(result("t.py::a", Outcome.PASSED, attempts=2))
    read = read_journal(path)
    assert [(r.nodeid, r.outcome, r.attempts) for r in read] == [("t.py::a", Outcome.PASSED, 2), ("t.py::b", Outcome.PASSED, 1)]


def test_a_damaged_complete_line_is_one_error_naming_file_and_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append(result("t.py::a"))
    path.write_bytes(path.read_bytes() + b'{"nodeid": 3}\n')
    with pytest.raises(JournalError) as error:
        read_journal(path)
    assert str(error.value).startswith(f"{path} line 2 is not a diffbench case result")
    assert "\n" not in str(error.value)
    path.write_bytes(b"[1, 2]\n")
    with pytest.raises(JournalError, match="line 1"):
        read_journal(path)


def test_an_empty_journal_has_no_results_and_a_missing_one_is_named(tmp_path):
    path = tmp_path / "journal.jsonl"
    Journal(path).close()
    assert read_journal(path) == []
    with pytest.raises(FileNotFoundError):
        read_journal(tmp_path / "none.jsonl")


def test_a_closed_journal_refuses_appends(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.close()
    journal.close()
    with pytest.raises(ValueError, match="is closed"):
        journal.append(result("t.py::a"))


def test_temp_name_is_the_name_of_atomic_writes_temporary_files(tmp_path, monkeypatch):
    seen = []

    def killed(source, target):
        seen.append(os.path.basename(source))
        raise KeyboardInterrupt  # as a kill between the write and the rename

    monkeypatch.setattr(os, "replace", killed)
    for name in ("a.png", "seed0-euler-2steps-cfg7.5.json", ".hidden", "x"):
        with pytest.raises(KeyboardInterrupt):
            atomic_write_bytes(tmp_path / name, b"data")
    assert len(seen) == 4 and all(TEMP_NAME.fullmatch(name) for name in seen), seen


def _temp_file(folder, name="a.png"):
    """A temporary file as a write killed before its rename leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.abc_1234.diffbench-tmp"
    path.write_bytes(b"half")
    return path


def test_remove_temp_files_removes_only_temp_names_and_never_follows_links(tmp_path):
    root = tmp_path / "baselines"
    stale = [_temp_file(root / "cpu-float32" / "t"), _temp_file(root, "b.json")]
    keep = [root / "a.tmp", root / ".a.png.tmp", root / ".a.png.ABCDEFGH.tmp", root / "x.png",
            root / ".a.png.abcdefgh.tmp", root / ".state.json.k2j4h5g6.tmp"]  # other programs' mkstemp files
    for path in keep:
        path.write_bytes(b"user file")
    outside = tmp_path / "outside"
    outside_temp = _temp_file(outside)
    (root / "linked").symlink_to(outside)
    (root / ".c.png.abcd1234.diffbench-tmp").symlink_to(outside_temp)
    assert remove_temp_files([root, tmp_path / "no-such-folder"]) == sorted(stale)
    assert all(path.exists() for path in keep)
    assert outside_temp.exists() and (root / ".c.png.abcd1234.diffbench-tmp").is_symlink()


def test_remove_temp_files_skips_the_folders_it_is_told_to(tmp_path):
    live = _temp_file(tmp_path / "runs" / "live")
    dead = _temp_file(tmp_path / "runs" / "dead")
    assert remove_temp_files([tmp_path], skip=[tmp_path / "runs" / "live"]) == [dead]
    assert live.exists()


def test_a_skip_after_a_result_in_the_journal_wins(tmp_path: Path) -> None:
    """A node id's last journal line, of either kind, says how it ended (and the other way round)."""
    result = CaseResult(run_id="r", timestamp="t", nodeid="t.py::a", case_id="a", outcome=Outcome.PASSED)
    with Journal(tmp_path / "journal.jsonl") as journal:
        journal.append(result)
        journal.append_skip("t.py::a", "skipped: later")
        journal.append_skip("t.py::b", "skipped: b")
        journal.append(result.with_changes(nodeid="t.py::b"))
    entries = read_journal_entries(tmp_path / "journal.jsonl")
    assert [r.nodeid for r in entries.results] == ["t.py::b"] and entries.skipped == {"t.py::a": "skipped: later"}
    line = json.loads((tmp_path / "journal.jsonl").read_text().splitlines()[1])
    assert line == {"skipped": {"nodeid": "t.py::a", "reason": "skipped: later"}}
