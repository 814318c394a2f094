"""``--diffbench-deterministic`` on the built-in model, in child processes: a rerun of a case makes
the same PNG bytes; the switch goes into the config (a baseline made without it is stale, naming
``deterministic``) and into environment.json; it is on before the user's own ``diffbench_pipeline``
builds anything, in every xdist worker."""

from __future__ import annotations

import json

import pytest

from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store.paths import case_path

pytestmark = [pytest.mark.subprocess, pytest.mark.model]

#: A user's own pipeline fixture that writes, per process, whether determinism was on when it ran.
RECORDING_CONFTEST = '''
import os

import pytest
import torch

from pytest_diffbench.run.pipelines import load_pipeline


@pytest.fixture(scope="session")
def diffbench_pipeline(worker_id):
    state = [torch.are_deterministic_algorithms_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
             torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32]
    with open(f"state-{worker_id}.txt", "w") as handle:
        handle.write(repr(state))
    return load_pipeline("diffbench-tiny-random")
'''


def test_a_deterministic_rerun_makes_the_same_png_and_the_switch_is_part_of_the_config(project) -> None:
    project.use_builtin_pipeline()
    project.write_tests(project.test())

    plain = project.run(update="all", subprocess=True)
    plain.outcome.assert_outcomes(passed=1)
    assert "deterministic" not in plain.results[0].config
    assert project.read_json(plain.folder.environment)["deterministic"] is False

    first = project.run("--diffbench-deterministic", subprocess=True)
    (row,) = first.results
    assert row.outcome is Outcome.STALE_BASELINE and "deterministic" in row.message, row.message
    assert row.config["deterministic"] is True and row.config_hash != plain.results[0].config_hash

    second = project.run("--diffbench-deterministic", subprocess=True)
    assert second.results[0].config_hash == row.config_hash
    made = [run.folder.image(case_path(row.nodeid)) for run in (first, second)]
    assert made[0].read_bytes() == made[1].read_bytes()
    environment = project.read_json(second.folder.environment)
    assert environment["deterministic"] is True
    assert environment["determinism"]["deterministic_algorithms"] is True
    assert environment["determinism"]["cublas_workspace_config"] in (":16:8", ":4096:8")
    assert (environment["determinism"]["cudnn_benchmark"], environment["determinism"]["cuda_matmul_allow_tf32"]) == (False, False)


def test_the_switch_is_on_before_the_user_s_own_pipeline_is_built_in_every_xdist_worker(project) -> None:
    project.pytester.makeconftest(RECORDING_CONFTEST)
    project.write_tests(project.test(sweep="seeds=[0, 1, 2, 3], steps=2"))
    run = project.run("--diffbench-deterministic", "-n", "2", update="all", subprocess=True)
    run.outcome.assert_outcomes(passed=4)
    states = {path.name: path.read_text() for path in sorted(project.path.glob("state-*.txt"))}
    assert set(states) == {"state-gw0.txt", "state-gw1.txt"}
    assert set(states.values()) == {repr([True, ":16:8", False, False])}
    assert {row.config["deterministic"] for row in run.results} == {True}
    assert json.loads(run.folder.environment.read_text())["deterministic"] is True
