"""RunFolder: run ids, claiming a folder, ``latest``, and the names of a run's files."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from pytest_diffbench.store import run_folder
from pytest_diffbench.store.run_folder import RunFolder, new_run_id, read_latest

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


def test_run_ids_are_unique():
    # 3 random bytes per id: 50 ids within one second collide with probability < 1e-4.
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = [new_run_id(now) for _ in range(50)]
    assert len(set(ids)) == len(ids)


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


def test_mark_latest_names_the_newest_run(tmp_path):
    assert read_latest(tmp_path) is None
    first, second = RunFolder.of(tmp_path, "run-1"), RunFolder.of(tmp_path, "run-2")
    first.mark_latest()
    second.mark_latest()
    assert (tmp_path / "latest").read_text() == "run-2\n"
    assert read_latest(tmp_path) == "run-2"
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]


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
