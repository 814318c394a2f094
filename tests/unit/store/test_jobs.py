"""The job list's format (deterministic bytes, read back whole or refused in one line), the job hash,
how two job lists differ, and which run ``--diffbench-resume`` may reopen."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store.jobs import (Job, JobChanges, JobsError, compare_jobs, job_hash, jobs_bytes, pipeline_fields,
                                         read_jobs, still_to_run, write_jobs)
from pytest_diffbench.store.journal import Journal
from pytest_diffbench.store.run_folder import ResumeError, RunFolder, resumable_run

POINT = {"seed": 0, "sampler": "euler", "steps": 2, "cfg": 7.5}
JOBS = [Job("t.py::test_a[seed0]", "a" * 64), Job("t.py::test_a[seed1]", "b" * 64), Job("t.py::test_b", "c" * 64)]
#: The format's golden bytes (guards the format: a change needs a new JOBS_FORMAT).
GOLDEN = ('{"format": 1, "jobs": [\n'
          '{"hash": "' + "a" * 64 + '", "nodeid": "t.py::test_a[seed0]"},\n'
          '{"hash": "' + "b" * 64 + '", "nodeid": "t.py::test_a[seed1]"},\n'
          '{"hash": "' + "c" * 64 + '", "nodeid": "t.py::test_b"}\n'
          ']}\n')


def test_a_job_list_has_one_form_and_reads_back(tmp_path):
    path = tmp_path / "jobs.json"
    write_jobs(path, JOBS)
    assert path.read_text(encoding="ascii") == GOLDEN == jobs_bytes(list(JOBS))
    assert read_jobs(path) == JOBS
    write_jobs(path, [])
    assert read_jobs(path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["jobs.json"]  # no temporary file left


def test_a_non_ascii_node_id_is_escaped_and_kept(tmp_path):
    path = tmp_path / "jobs.json"
    write_jobs(path, [Job("t.py::test[ü-日本]", "d" * 64)])
    assert path.read_bytes().isascii()
    assert read_jobs(path) == [Job("t.py::test[ü-日本]", "d" * 64)]


@pytest.mark.parametrize("text, said", [
    ("{", "is not a diffbench job list"),
    ('{"format": 2, "jobs": []}', "format 2, this diffbench reads format 1"),
    ('{"format": 1, "jobs": [{"nodeid": "x"}]}', "is not a diffbench job list"),
    ('[1]', "is not a diffbench job list"),
])
def test_a_file_that_is_not_a_job_list_is_one_line_naming_it(tmp_path, text, said):
    path = tmp_path / "jobs.json"
    path.write_text(text, encoding="ascii")
    with pytest.raises(JobsError) as raised:
        read_jobs(path)
    assert str(path) in str(raised.value) and said in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(FileNotFoundError):
        read_jobs(tmp_path / "none.json")


def test_the_job_hash_follows_each_part_and_is_the_same_in_another_process():
    base = job_hash("def test(): pass\n", POINT, "1", False)
    variants = [job_hash("def test(): pass  # edited\n", POINT, "1", False),
                job_hash("def test(): pass\n", {**POINT, "seed": 1}, "1", False),
                job_hash("def test(): pass\n", {**POINT, "width": 96}, "1", False),
                job_hash("def test(): pass\n", POINT, "2", False),
                job_hash("def test(): pass\n", POINT, "1", True)]
    assert len({base, *variants}) == 6
    assert job_hash("def test(): pass\n", {**POINT, "cfg": 7.5}, "1", False) == base
    code = ("from pytest_diffbench.store.jobs import job_hash; "
            f"print(job_hash('def test(): pass\\n', {POINT!r}, '1', False))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    assert other == base


def test_changes_are_added_removed_and_changed_and_named_up_to_five():
    now = [Job("t.py::test_a[seed0]", "a" * 64), Job("t.py::test_a[seed1]", "x" * 64), Job("t.py::new", "e" * 64)]
    changes = compare_jobs(JOBS, now)
    assert changes == JobChanges(added=("t.py::new",), removed=("t.py::test_b",), changed=("t.py::test_a[seed1]",))
    assert changes.describe() == "1 added (t.py::new); 1 removed (t.py::test_b); 1 changed (t.py::test_a[seed1])"
    assert not compare_jobs(JOBS, list(reversed(JOBS)))  # order aside, the same jobs
    many = compare_jobs([], [Job(f"t.py::test_{i}", "f" * 64) for i in range(8)])
    assert many.describe() == ("8 added (t.py::test_0, t.py::test_1, t.py::test_2, t.py::test_3, t.py::test_4, "
                               "and 3 more)")


def test_still_to_run_keeps_the_order_of_the_list():
    assert still_to_run(JOBS, ["t.py::test_a[seed1]"]) == [JOBS[0], JOBS[2]]


def test_pipeline_fields_leave_out_what_a_journal_line_leaves_empty():
    config = {"model": "m", "vae": "", "loras": [], "pipeline_config": None, "deterministic": False, "seed": 3}
    assert pipeline_fields(config) == {"model": "m"}
    assert pipeline_fields({**config, "dtype": "float16"}) == {"model": "m", "dtype": "float16"}


# -- which run may be resumed -----------------------------------------------------------------


def result(nodeid: str) -> CaseResult:
    return CaseResult(run_id="r", timestamp="t", nodeid=nodeid, case_id="c", outcome=Outcome.PASSED)


def make_run(output_dir, run_id: str, finished: list[str]) -> RunFolder:
    folder = RunFolder.of(output_dir, run_id)
    folder.path.mkdir(parents=True)
    write_jobs(folder.jobs, JOBS)
    with Journal(folder.journal) as journal:
        for nodeid in finished:
            journal.append(result(nodeid))
    return folder


def test_resume_takes_the_newest_run_folder_or_the_one_named(tmp_path):
    older = make_run(tmp_path, "20261130T010000Z-000000", [JOBS[0].nodeid])
    newer = make_run(tmp_path, "20261130T020000Z-000000", [])
    assert resumable_run(tmp_path, "latest") == newer
    assert resumable_run(tmp_path, older.run_id) == older
    assert older.jobs_left() == (JOBS, JOBS[1:])


@pytest.mark.parametrize("problem, said", [
    ("complete", "is already complete: all 3 cases of its job list finished"),
    ("running", "is still running"),
    ("no job list", "has no job list"),
    ("bad job list", "is not a diffbench job list"),
    ("unknown", "there is no run '20261130T030000Z-000000'"),
    ("not an id", "there is no run '../x'"),
])
def test_resume_refuses_in_one_line(tmp_path, problem, said):
    folder = make_run(tmp_path, "20261130T010000Z-000000",
                      [job.nodeid for job in JOBS] if problem == "complete" else [])
    if problem == "no job list":
        folder.jobs.unlink()
    if problem == "bad job list":
        folder.jobs.write_text("{", encoding="ascii")
    name = {"unknown": "20261130T030000Z-000000", "not an id": "../x"}.get(problem, "latest")
    with Journal(folder.journal) if problem == "running" else contextlib.nullcontext():
        with pytest.raises(ResumeError) as raised:
            resumable_run(tmp_path, name)
    assert said in str(raised.value) and "\n" not in str(raised.value)


def test_resume_without_any_run_says_so(tmp_path):
    with pytest.raises(ResumeError, match="there is no run to resume in"):
        resumable_run(tmp_path, "latest")
