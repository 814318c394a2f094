"""The fixtures: ``diffbench`` (one case), ``diffbench_pipeline`` and ``diffbench_device``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_diffbench.plugin.keys import CASE_KEY, SESSION_KEY
from pytest_diffbench.spec.sweep import Case

if TYPE_CHECKING:
    import torch

    from pytest_diffbench.run.case import DiffbenchCase


@pytest.fixture
def _diffbench_case() -> Case:
    """The case of a test without a sweep; a sweep parametrizes this fixture away."""
    return Case()


@pytest.fixture(scope="session")
def diffbench_device(pytestconfig: pytest.Config) -> "torch.device":
    """The device of the diffbench_pipeline fixture (``--diffbench-device``, ``auto`` picks CUDA when present)."""
    from pytest_diffbench.run.pipelines import resolve_device

    # read_settings has checked the value: resolve_device cannot refuse it.
    return resolve_device(pytestconfig.stash[SESSION_KEY].settings.device)


@pytest.fixture(scope="session")
def diffbench_pipeline(pytestconfig: pytest.Config, request: pytest.FixtureRequest, diffbench_device: "torch.device") -> Any:
    """The pipeline under test: ``--diffbench-model`` (the shipped diffbench-tiny by default).

    Override it in conftest.py with your own (session scope) for full control of loading; a
    :class:`pytest_diffbench.testing.FakePipeline` tests a setup without torch or diffusers, and
    ``diffbench.two_stage(base, refiner, handoff=0.8)`` runs a base then its refiner for each case.
    A local folder that is not a diffusers pipeline was refused before any case ran
    (``read_settings``). When loading fails here (a hub id that cannot be fetched, a broken
    folder), the case errors with one line naming ``diffbench_model`` (no traceback) and the run
    stops after it: pytest keeps a session fixture's error, so every further case would repeat it.
    """
    from pytest_diffbench.run.pipelines import default_dtype, load_pipeline, parse_dtype

    settings = pytestconfig.stash[SESSION_KEY].settings
    # read_settings has checked the dtype name against DTYPE_NAMES: parse_dtype cannot refuse it.
    dtype = default_dtype(diffbench_device) if settings.dtype == "auto" else parse_dtype(settings.dtype)
    try:
        return load_pipeline(settings.model, device=diffbench_device, dtype=dtype, folder=settings.model_folder)
    except ValueError as exc:
        problem = f"diffbench_model: {exc}"
    # Outside the except clause, so that pytest shows no chained exception.
    request.session.shouldstop = "diffbench: the model of diffbench_model could not be loaded; no further case ran"
    pytest.fail(problem, pytrace=False)


@pytest.fixture
def diffbench(request: pytest.FixtureRequest, _diffbench_case: Case, diffbench_pipeline: Any) -> "DiffbenchCase":
    """One case of the sweep: ``generate(prompt, negative_prompt=None, **pipeline_kwargs)``.

    Fails the case (one line) when ``diffbench_pipeline`` gave something that is not a pipeline
    (for ``diffbench.two_stage``: a stage that is not a diffusers pipeline, a handoff not between 0 and 1).
    """
    from pytest_diffbench.run.protocol import pipeline_problem
    from pytest_diffbench.run.stages import TwoStage, two_stage_problem

    if isinstance(diffbench_pipeline, TwoStage):
        problem = two_stage_problem(diffbench_pipeline, pipeline_problem)
    else:
        problem = pipeline_problem(diffbench_pipeline)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    dcase = request.config.stash[SESSION_KEY].start_case(request.node, _diffbench_case, diffbench_pipeline)
    request.node.stash[CASE_KEY] = dcase
    return dcase
