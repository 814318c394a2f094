"""``--diffbench-deterministic``'s switch (run/determinism.py): what it sets, what it keeps, what it
puts back, how environment.json records it, and the one line of an op torch cannot run
deterministically (the warm-up call, the case's call and a refiner's call all go through it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from PIL import Image

from pytest_diffbench.run.determinism import (
    CUBLAS_VARIABLE,
    current_determinism,
    enable_determinism,
    nondeterministic_op,
    restore_determinism,
)
from pytest_diffbench.run.identity import run_environment
from pytest_diffbench.run.threads import ThreadPolicy

#: torch's messages, as ``at::globalContext().alertNotDeterministic`` and its cuBLAS check word them
#: (no CPU op lacks a deterministic implementation, so a CPU test cannot make torch raise them).
TORCH_OP_ERROR = ("_histc_cuda does not have a deterministic implementation, but you set "
                  "'torch.use_deterministic_algorithms(True)'. You can turn off determinism just for this operation, "
                  "or you can use the 'warn_only=True' option, if that's acceptable for your application.")
TORCH_CUBLAS_ERROR = ("Deterministic behavior was enabled with either `torch.use_deterministic_algorithms(True)` or "
                      "`at::Context::setDeterministicAlgorithms(true)`, but this operation is not deterministic because "
                      "it uses CuBLAS and you have CUDA >= 10.2. To enable deterministic behavior in this case, you "
                      "must set an environment variable before running your PyTorch application: "
                      "CUBLAS_WORKSPACE_CONFIG=:4096:8 or CUBLAS_WORKSPACE_CONFIG=:16:8.")


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's settings put back after the test (through monkeypatch for the variable)."""
    monkeypatch.delenv(CUBLAS_VARIABLE, raising=False)
    before = current_determinism()
    yield
    restore_determinism(before)


def test_the_switch_sets_what_diffusers_enable_full_determinism_sets_and_restore_puts_it_back(restored):
    import torch

    before = current_determinism()
    assert before.cublas_workspace_config is None and not before.deterministic_algorithms
    state = enable_determinism()
    assert state.as_dict() == {"deterministic_algorithms": True, "cublas_workspace_config": ":16:8",
                               "cudnn_deterministic": True, "cudnn_benchmark": False,
                               "cuda_matmul_allow_tf32": False, "cudnn_allow_tf32": False}
    assert torch.are_deterministic_algorithms_enabled() and os.environ[CUBLAS_VARIABLE] == ":16:8"
    assert state == current_determinism()
    restore_determinism(before)
    assert current_determinism() == before and CUBLAS_VARIABLE not in os.environ


def test_a_deterministic_cublas_value_the_user_set_is_kept_and_another_replaced(restored, monkeypatch):
    monkeypatch.setenv(CUBLAS_VARIABLE, ":4096:8")
    assert enable_determinism().cublas_workspace_config == ":4096:8"
    monkeypatch.setenv(CUBLAS_VARIABLE, ":0:0")
    assert enable_determinism().cublas_workspace_config == ":16:8"


def test_environment_json_says_whether_the_run_was_deterministic_and_with_what(tmp_path: Path):
    threads = ThreadPolicy(threads=1, cores=1, workers=1, load=0.0, source="cores")
    plain = run_environment(run_id="r", args=[], rootdir=tmp_path, machines=[], threads=threads)
    assert plain["deterministic"] is False and "determinism" not in plain
    settings = {"deterministic_algorithms": True, "cublas_workspace_config": ":16:8"}
    switched = run_environment(run_id="r", args=[], rootdir=tmp_path, machines=[], threads=threads,
                               determinism=settings)
    assert switched["deterministic"] is True and switched["determinism"] == settings


class RaisingPipeline:
    """A pipeline whose call raises ``error`` (the warm-up call first: every call of a case goes
    through the same timed call)."""

    device = "cpu"

    def __init__(self, error: BaseException) -> None:
        from diffusers import EulerDiscreteScheduler

        self.scheduler = EulerDiscreteScheduler()
        self.error = error

    def __call__(self, prompt: str, output_type: str = "pil", num_inference_steps: int = 2,
                 generator: Any = None) -> Any:
        raise self.error


@pytest.mark.parametrize(("error", "named"), [(TORCH_OP_ERROR, "_histc_cuda has no deterministic implementation"),
                                              (TORCH_CUBLAS_ERROR, "a cuBLAS call is not deterministic here")])
def test_an_op_torch_cannot_run_deterministically_is_one_line_naming_the_switch(error, named):
    from pytest_diffbench.run.generation import ImageGenerator
    from pytest_diffbench.run.protocol import PipelineCallError

    with pytest.raises(PipelineCallError) as caught:
        ImageGenerator().generate(RaisingPipeline(RuntimeError(error)), "Euler", 0,
                                  {"prompt": "a red cube", "num_inference_steps": 2, "output_type": "pil"})
    message = str(caught.value)
    assert message.startswith(f"RaisingPipeline's call: {named}") and "\n" not in message
    assert "--diffbench-deterministic" in message and caught.value.__cause__ is None


def test_any_other_runtime_error_of_a_call_is_left_as_it_is():
    from pytest_diffbench.run.generation import ImageGenerator

    with pytest.raises(RuntimeError, match="out of memory"):
        ImageGenerator().generate(RaisingPipeline(RuntimeError("CUDA out of memory")), "Euler", 0,
                                  {"prompt": "a red cube", "num_inference_steps": 2, "output_type": "pil"})
    assert nondeterministic_op(ValueError(TORCH_OP_ERROR)) is None


@pytest.mark.model
def test_a_real_pipeline_runs_under_the_switch_with_no_op_refused(restored):
    from pytest_diffbench.run.generation import ImageGenerator
    from pytest_diffbench.run.pipelines import build_random_pipeline

    enable_determinism()
    call = {"prompt": "a red cube", "num_inference_steps": 2, "output_type": "pil"}
    first, _ = ImageGenerator().generate(build_random_pipeline(), "Euler", 3, call)
    second, _ = ImageGenerator().generate(build_random_pipeline(), "Euler", 3, call)
    assert isinstance(first, Image.Image) and first.tobytes() == second.tobytes()
