"""``--diffbench-batch=N`` as a user runs it (issue 13, item 4), in-process with FakePipeline: the
cases of one sweep point that differ only in their seed run as one call per chunk of N, and each
case still gets its own row, image, comparison and verdict; the batch joins the config (so an
unbatched baseline is stale, naming ``batch``); a chunk split by ``-k`` or by a resume still
makes its cases' images (and configs) as the full run does."""

from __future__ import annotations

import pytest

from pytest_diffbench.spec.config import config_hash
from pytest_diffbench.spec.outcomes import Outcome

#: Three seeds of one sweep point (chunks at batch 2: seeds 0 and 1, then seed 2 alone) and a
#: test of one seed.
TESTS = '''
import os


@diffbench.sweep(seeds=[0, 1, 2], steps=2)
def test_many(diffbench, request):
    diffbench.generate("a red cube")
    stop = os.environ.get("STOP_AT")
    assert not stop or stop not in request.node.name, "stopped here"


@diffbench.sweep(seeds=5, steps=2)
def test_one(diffbench):
    diffbench.generate("a red cube")
'''


def rows(run) -> dict[tuple[str, int], object]:
    return {(r.test.split("::")[-1], r.setting("seed")): r for r in run.results}


def batch_of(result) -> int:
    batch = result.setting("batch")
    assert batch is None or type(batch) is int
    return batch or 1


def test_batched_cases_get_their_own_rows_and_an_unbatched_baseline_is_stale_naming_batch(project) -> None:
    project.write_tests(TESTS)
    project.fake(seconds_per_image=0.01, batch_seconds=0.5)
    alone = rows(project.run(update="all"))
    batched_run = project.run("--diffbench-batch=2")
    batched = rows(batched_run)
    assert sorted(batched) == sorted(alone) == [("test_many", 0), ("test_many", 1), ("test_many", 2), ("test_one", 5)]
    assert "batch: <absent> -> 2" in project.text(batched_run.outcome)
    for key, result in batched.items():
        together = key in (("test_many", 0), ("test_many", 1))
        assert result.outcome is (Outcome.STALE_BASELINE if together else Outcome.PASSED)  # compare like with like
        assert batch_of(result) == (2 if together else 1)
        assert result.measurement.seconds_per_image == pytest.approx(0.25 if together else 0.01)
        assert (result.config_hash == alone[key].config_hash) is not together
        # results.csv reads the batch back as it was (its empty cells, vae "" and no negative prompt, come back absent)
        assert config_hash({"vae": "", "negative_prompt": None, **result.config}) == result.config_hash
        with open(result.output_path, "rb") as mine, open(alone[key].output_path, "rb") as twin:
            assert mine.read() == twin.read()  # FakePipeline's batched images equal its single ones
    assert len({r.output_path for r in batched.values()}) == 4


def test_a_chunk_split_by_k_makes_its_case_as_the_full_run_does(project) -> None:
    project.write_tests(TESTS)
    project.run("--diffbench-batch=2", update="all").outcome.assert_outcomes(passed=4)
    run = project.run("--diffbench-batch=2", "-k", "seed1")
    run.outcome.assert_outcomes(passed=1)
    (result,) = run.results
    assert result.outcome is Outcome.PASSED and batch_of(result) == 2


def test_a_resume_runs_the_rest_of_a_chunk_as_the_full_run_would(project, monkeypatch) -> None:
    project.write_tests(TESTS)
    project.run("--diffbench-batch=3", update="all").outcome.assert_outcomes(passed=4)
    monkeypatch.setenv("STOP_AT", "seed1")
    stopped = project.run("-x", "--diffbench-batch=3")
    monkeypatch.delenv("STOP_AT")
    assert stopped.outcome.ret == 1
    resumed = project.run("--diffbench-resume", "--diffbench-batch=3")
    left = {key: r for key, r in rows(resumed).items() if key in (("test_many", 2), ("test_one", 5))}
    assert {key: (r.outcome, batch_of(r)) for key, r in left.items()} == {
        ("test_many", 2): (Outcome.PASSED, 3), ("test_one", 5): (Outcome.PASSED, 1)}

