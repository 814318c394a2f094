"""torch's CPU threads inside a real pipeline follow the thread policy: in the single process,
in each xdist worker (its share), and as OMP_NUM_THREADS says when the user set it. The cores
and load average the child processes read are pinned by the project's conftest."""

from __future__ import annotations

import pytest

#: The plugin's own diffbench_pipeline (--diffbench-model), on a machine of $TEST_CORES cores at
#: load average $TEST_LOAD.
CONFTEST = '''
import os

from pytest_diffbench.run import threads

threads.available_cores = lambda: int(os.environ["TEST_CORES"])
threads.load_average = lambda: float(os.environ["TEST_LOAD"])
'''

TESTS = '''
import os

import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_case(diffbench):
    import torch

    diffbench.generate("a red cube")
    assert torch.get_num_threads() == int(os.environ["EXPECTED_THREADS"])
'''


@pytest.mark.subprocess
@pytest.mark.model
@pytest.mark.parametrize(("args", "cores", "load", "omp", "expected"), [
    ((), 4, 1.0, None, {"threads": 3, "cores": 4, "workers": 1, "load": 1.0, "source": "load"}),
    (("-n", "2"), 4, 0.0, None, {"threads": 2, "cores": 4, "workers": 2, "load": 0.0, "source": "cores"}),
    ((), 4, 0.0, "3", {"threads": 3, "cores": 4, "workers": 1, "load": 0.0, "source": "OMP_NUM_THREADS"}),
], ids=["single-process-busy", "two-workers", "omp-num-threads"])
def test_torch_threads_in_the_pipeline_follow_the_policy(project, monkeypatch: pytest.MonkeyPatch, args, cores, load,
                                                          omp, expected) -> None:
    project.pytester.makeconftest(CONFTEST)
    project.pytester.makepyfile(test_gen=TESTS)
    monkeypatch.setenv("TEST_CORES", str(cores))
    monkeypatch.setenv("TEST_LOAD", str(load))
    monkeypatch.setenv("EXPECTED_THREADS", str(expected["threads"]))
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    run = project.run("--diffbench-model=diffbench-tiny-random", *args, update="all", subprocess=True)
    run.outcome.assert_outcomes(passed=2)
    assert {row.worker for row in run.results} == ({"gw0", "gw1"} if args else {"main"})
    assert project.read_json(run.folder.environment)["threads"] == expected
