"""ssim_vs_most_steps of a pytest run, scored as its cases finish (judge.convergence.ReferenceScorer):
the scores equal the ones read back from the run folder's PNG files, with one process or two xdist
workers, and a single process reads no file for them at the end."""

from __future__ import annotations

import pytest
from PIL import Image

from pytest_diffbench.judge import convergence
from pytest_diffbench.judge.convergence import with_reference_ssim
from pytest_diffbench.judge.metrics.images import to_rgb_array
from pytest_diffbench.store.paths import case_path

#: 4 groups (seed x cfg) of 3 step counts, run interleaved: each group waits for its 4-steps case.
SWEEP = "seeds=[0, 1], steps=[1, 2, 4], cfg=[5.0, 7.5]"


@pytest.fixture
def file_groups(monkeypatch) -> list[list[str]]:
    """The node ids of each group the session end scores from the files (this process's)."""
    groups: list[list[str]] = []
    from_files = convergence.reference_ssim

    def counted(results, pixels, *args):
        groups.append([r.nodeid for r in results])
        return from_files(results, pixels, *args)

    monkeypatch.setattr(convergence, "reference_ssim", counted)
    return groups


def from_the_files(run) -> list[float | None]:
    """The run's scores as read back from its PNG files (the session end before issue 13)."""
    def pixels(result):
        path = run.folder.image(case_path(result.nodeid))
        if not path.is_file():  # a case whose test failed: it has no output image
            return None
        with Image.open(path) as image:
            return to_rgb_array(image)

    bare = [r.with_changes(ssim_vs_most_steps=None) for r in run.results]
    return [r.ssim_vs_most_steps for r in with_reference_ssim(bare, pixels)]


def test_one_process_scores_every_group_as_it_runs_and_reads_no_file_for_it(project, file_groups):
    project.write_tests(project.test("test_case", sweep=SWEEP))
    run = project.run("-p", "no:xdist", update="all")
    run.outcome.assert_outcomes(passed=12)
    assert file_groups == []
    scores = [r.ssim_vs_most_steps for r in run.results]
    assert scores == from_the_files(run) and all(score is not None for score in scores)


def test_two_xdist_workers_give_the_scores_of_the_files(project, file_groups):
    """Two modules of two groups each, one module per worker (``--dist loadfile``): every group is
    run whole by one worker, scored there, and none is read from the files at the end."""
    for seed in (0, 1):
        project.write_tests(project.test("test_case", sweep=f"seeds=[{seed}], steps=[1, 2, 4], cfg=[5.0, 7.5]"),
                            module=f"test_gen_seed{seed}")
    run = project.run("-n", "2", "-p", "xdist", "--dist", "loadfile", update="all")
    run.outcome.assert_outcomes(passed=12)
    assert {r.worker for r in run.results} == {"gw0", "gw1"}
    assert file_groups == []
    scores = [r.ssim_vs_most_steps for r in run.results]
    assert scores == from_the_files(run) and all(score is not None for score in scores)


#: SWEEP's test, failing (after it generated) in the case whose id contains $STOP_AT, so ``-x`` stops there.
STOPPABLE = f"""
import os


@diffbench.sweep({SWEEP})
def test_case(diffbench, request):
    diffbench.generate("a red cube")
    assert os.environ.get("STOP_AT", "<no case>") not in request.node.name, "stopped here"
"""


def test_a_resumed_run_scores_its_earlier_cases_with_the_new_ones(project, monkeypatch, file_groups):
    project.write_tests(STOPPABLE)
    monkeypatch.setenv("STOP_AT", "seed0-euler-2steps-cfg5")
    first = project.run("-p", "no:xdist", "-x", update="all")
    first.outcome.assert_outcomes(passed=2, failed=1)
    assert len(file_groups) == 1  # seed 0 at cfg 5: two step counts, one without an image
    monkeypatch.delenv("STOP_AT")
    file_groups.clear()
    run = project.run("-p", "no:xdist", f"--diffbench-resume={first.folder.run_id}", update="all")
    run.outcome.assert_outcomes(passed=9)
    assert len(file_groups) == 2  # the groups of seed 0, which the first session began
    scores = [r.ssim_vs_most_steps for r in run.results]
    assert len(scores) == 12 and scores == from_the_files(run)
    assert sum(score is None for score in scores) == 1  # the case whose test failed made no image
