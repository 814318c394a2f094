"""RunFolder: run ids, claiming a folder, ``latest``, and the names of a run's files."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from pytest_diffbench.store import run_folder
from pytest_diffbench.store.journal import Journal
from pytest_diffbench.store.run_folder import LatestError, RunFolder, new_run_id, read_latest

RUN_ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
CASE = "tests/test_a/test_b/seed0"


def test_run_id_format_uses_the_utc_time():
    run_id = new_run_id(datetime(2026, 11, 28, 4, 15, 0, tzinfo=timezone.utc))
    assert RUN_ID_RE.fullmatch(run_id), run_id
    assert run_id.startswith("20261128T041500Z-")


def test_run_id_without_a_time_uses_now():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    run_id = new_run_id()
    after = datetime.now(timezone.utc)
    stamp = datetime.strptime(run_id.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert RUN_ID_RE.fullmatch(run_id)
    assert before <= stamp <= after


def test_run_ids_of_one_microsecond_differ_only_in_a_random_digit():
    now = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    ids = {new_run_id(now) for _ in range(200)}
    assert {run_id[:-1] for run_id in ids} == {f"20260101T000000Z-{123456 * 16:06x}"[:-1]}
    assert len(ids) == 16  # 200 draws of 1 in 16 miss one with probability < 1e-4


def test_run_ids_sort_by_the_microsecond_within_a_second():
    second = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = [new_run_id(second.replace(microsecond=us)) for us in (0, 1, 2, 15, 16, 4096, 500000, 999999)]
    assert sorted(ids) == ids and all(RUN_ID_RE.fullmatch(run_id) for run_id in ids)


def test_run_ids_sort_by_time():
    start = datetime(2026, 12, 31, 23, 59, 58, tzinfo=timezone.utc)
    ids = [new_run_id(start + timedelta(seconds=s)) for s in (0, 1, 2, 3, 3600, 86400 * 40)]
    assert sorted(ids) == ids
    assert sorted(reversed(ids)) == ids


def test_create_claims_an_empty_folder_under_runs(tmp_path):
    folder = RunFolder.create(tmp_path / "out")
    assert RUN_ID_RE.fullmatch(folder.run_id)
    assert folder.path == tmp_path / "out" / "runs" / folder.run_id
    assert folder.path.is_dir() and folder.is_empty()
    assert folder.output_dir == tmp_path / "out"
    assert RunFolder.of(tmp_path / "out", folder.run_id) == folder


def test_create_gives_distinct_folders(tmp_path):
    claimed = [RunFolder.create(tmp_path) for _ in range(20)]
    assert len({folder.run_id for folder in claimed}) == 20
    assert sorted(folder.run_id for folder in claimed) == [folder.run_id for folder in claimed]  # newest last
    assert len(list((tmp_path / "runs").iterdir())) == 20


def test_create_never_reuses_an_existing_folder(tmp_path, monkeypatch):
    taken = "20260101T000000Z-aaaaaa"
    existing = tmp_path / "runs" / taken
    existing.mkdir(parents=True)
    (existing / "results.csv").write_text("old run\n")
    ids = iter([taken, taken, "20260101T000000Z-bbbbbb"])
    calls = []

    def fake_new_run_id(now=None):
        calls.append(now)
        return next(ids)

    monkeypatch.setattr(run_folder, "new_run_id", fake_new_run_id)
    folder = RunFolder.create(tmp_path)
    assert folder.run_id == "20260101T000000Z-bbbbbb" and folder.path.is_dir()
    assert len(calls) == 3
    assert (existing / "results.csv").read_text() == "old run\n"
    assert sorted(p.name for p in existing.iterdir()) == ["results.csv"]


def _claimed(output_dir, *run_ids):
    folders = [RunFolder.of(output_dir, run_id) for run_id in run_ids]
    for folder in folders:
        folder.path.mkdir(parents=True)
    return folders


def test_mark_latest_names_the_newest_run(tmp_path):
    assert read_latest(tmp_path) is None
    first, second = _claimed(tmp_path, "20260101T000000Z-aaaaaa", "20260101T000001Z-000000")
    assert first.mark_latest() is True
    assert second.mark_latest() is True
    assert (tmp_path / "latest").read_text() == "20260101T000001Z-000000\n"
    assert read_latest(tmp_path) == second.run_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "runs"]


def test_a_run_that_started_earlier_but_finished_later_leaves_latest_to_the_newer_run(tmp_path):
    older, newer = _claimed(tmp_path, "20260101T000000Z-ffffff", "20260101T000001Z-000000")
    assert newer.mark_latest() is True
    assert older.mark_latest() is False
    assert read_latest(tmp_path) == newer.run_id


def test_mark_latest_replaces_a_latest_that_names_no_run(tmp_path):
    (folder,) = _claimed(tmp_path, "20260101T000000Z-aaaaaa")
    (tmp_path / "latest").write_text("99999999T999999Z-ffffff\n")  # newer by its text, but no such folder
    assert folder.mark_latest() is True
    assert read_latest(tmp_path) == folder.run_id


@pytest.mark.parametrize("text", ["../../../x", "/etc", "runs/../x", "", "20260101T000000Z-aaaaaa/..",
                                  "20260101T000000Z-aaaaaa\x1b[31m", "x" * 1000])
def test_read_latest_refuses_anything_but_a_plain_run_id(tmp_path, text):
    _claimed(tmp_path, "20260101T000000Z-aaaaaa")
    (tmp_path / "x").mkdir()
    (tmp_path / "latest").write_text(text)
    with pytest.raises(LatestError) as refused:
        read_latest(tmp_path)
    message = str(refused.value)
    assert "\n" not in message and "\x1b" not in message and str(tmp_path / "latest") in message
    assert "run id such as" in message


def test_read_latest_refuses_a_run_id_without_its_folder_or_a_linked_one(tmp_path):
    outside = tmp_path / "elsewhere" / "20260101T000000Z-aaaaaa"
    outside.mkdir(parents=True)
    output_dir = tmp_path / "out"
    (output_dir / "runs").mkdir(parents=True)
    (output_dir / "latest").write_text("20260101T000000Z-bbbbbb\n")
    with pytest.raises(LatestError, match="not a run folder"):
        read_latest(output_dir)
    (output_dir / "runs" / "20260101T000000Z-aaaaaa").symlink_to(outside)
    (output_dir / "latest").write_text("20260101T000000Z-aaaaaa\n")
    with pytest.raises(LatestError, match="not a run folder"):
        read_latest(output_dir)


def test_read_latest_refuses_a_latest_that_is_a_link_a_folder_or_binary(tmp_path):
    (run,) = _claimed(tmp_path, "20260101T000000Z-aaaaaa")
    target = tmp_path / "target"
    target.write_text(run.run_id)
    (tmp_path / "latest").symlink_to(target)
    with pytest.raises(LatestError, match="is not a plain file"):
        read_latest(tmp_path)
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").mkdir()
    with pytest.raises(LatestError, match="is not a plain file"):
        read_latest(tmp_path)
    (tmp_path / "latest").rmdir()
    (tmp_path / "latest").write_bytes(b"\xff\xfe")
    with pytest.raises(LatestError, match="cannot be read"):
        read_latest(tmp_path)


def test_a_run_is_finished_when_its_results_are_written(tmp_path):
    folder = RunFolder.create(tmp_path)
    assert folder.journal == folder.path / "journal.jsonl"
    assert not folder.finished
    folder.results.write_text("nodeid\n")
    assert folder.finished


def test_a_run_is_running_while_its_journal_is_open(tmp_path):
    folder = RunFolder.create(tmp_path)
    assert not folder.running
    with Journal(folder.journal):
        assert folder.running
    assert not folder.running


def test_an_empty_run_folder_is_removed_with_its_empty_journal(tmp_path):
    folder = RunFolder.create(tmp_path)
    Journal(folder.journal).close()
    assert folder.is_empty()
    folder.remove_empty()
    assert not folder.path.exists()


def test_write_case_writes_the_image_and_its_record(tmp_path):
    folder = RunFolder(tmp_path / "runs" / "r")
    path = folder.write_case(CASE, b"\x89PNG fake", '{"config":{}}\n')
    assert path == folder.path / "images" / f"{CASE}.png" == folder.image(CASE)
    assert path.read_bytes() == b"\x89PNG fake"
    assert folder.config(CASE) == folder.path / "configs" / f"{CASE}.json"
    assert folder.config(CASE).read_text() == '{"config":{}}\n'


def test_the_names_of_a_run_folder(tmp_path):
    folder = RunFolder(tmp_path / "runs" / "r1")
    named = {folder.relative(p) for p in (folder.results, folder.environment, folder.summary, folder.plot, folder.report,
                                          folder.bundle, folder.case_grid(CASE), folder.sheet("tests/test_a/test_b", "seed0-cfg7.5"),
                                          folder.replaced(CASE), folder.replaced(CASE, ".json"))}
    assert named == {"results.csv", "environment.json", "summary.md", "plot.png", "report.html", "diffbench-r1.zip",
                     f"grids/cases/{CASE}.png", "grids/sheets/tests/test_a/test_b/seed0-cfg7.5.png",
                     f"replaced-baselines/{CASE}.png", f"replaced-baselines/{CASE}.json"}
    assert folder.latest == tmp_path / "latest"


def test_stale_temp_files_go_except_a_running_runs_and_baselines_being_written(tmp_path, monkeypatch):
    from filelock import FileLock

    from pytest_diffbench.store.baselines import lock_path

    output_dir = tmp_path / "out"
    baselines = output_dir / "baselines"  # inside the output folder: still only under its lock
    dead, live = RunFolder.create(output_dir), RunFolder.create(output_dir)
    stale = [dead.path / "images" / ".a.png.abcdefgh.diffbench-tmp", output_dir / ".latest.abcdefgh.diffbench-tmp"]
    kept = [live.path / ".results.csv.abcdefgh.diffbench-tmp", baselines / "pin" / ".a.png.abcdefgh.diffbench-tmp"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    monkeypatch.setattr(run_folder, "BASELINE_LOCK_WAIT", 0.01)
    with Journal(live.journal), FileLock(lock_path(baselines)):
        assert run_folder.remove_stale_temp_files(output_dir, baselines) == sorted(stale)
    assert all(path.exists() for path in kept)
    assert run_folder.remove_stale_temp_files(output_dir, baselines) == sorted(kept)


def test_remove_empty_removes_the_folders_create_made(tmp_path):
    """A run that leaves nothing leaves no ``runs/`` or output folder it made either."""
    folder = RunFolder.create(tmp_path / "out" / "diffbench")
    folder.remove_empty()
    assert list(tmp_path.iterdir()) == []


def test_remove_empty_keeps_a_folder_another_run_uses_or_that_was_there(tmp_path):
    (tmp_path / "out").mkdir()
    first, second = RunFolder.create(tmp_path / "out"), RunFolder.create(tmp_path / "out")
    first.remove_empty()  # it made runs/, which the second run's folder still uses
    assert [path.name for path in (tmp_path / "out" / "runs").iterdir()] == [second.run_id]
    second.remove_empty()
    assert (tmp_path / "out").is_dir()  # out/ was there before


def test_create_makes_runs_again_when_another_run_removed_it(tmp_path, monkeypatch):
    """Between the check and the claim another run may remove an empty ``runs/``: the claim still succeeds."""
    ids = iter(["20261130T000000Z-000000", "20261130T000000Z-000001"])

    def next_id() -> str:
        run_id = next(ids)
        if run_id.endswith("0"):
            (tmp_path / "runs").rmdir()  # another run's remove_empty, just now
        return run_id

    monkeypatch.setattr(run_folder, "new_run_id", next_id)
    folder = RunFolder.create(tmp_path)
    assert folder.path.is_dir() and folder.run_id == "20261130T000000Z-000001"
