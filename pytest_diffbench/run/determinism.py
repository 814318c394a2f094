"""``--diffbench-deterministic``: torch's deterministic mode, as diffusers' own tests set it.

:func:`enable_determinism` does what ``diffusers.utils.torch_utils.enable_full_determinism``
does, before any pipeline is built, in every pytest process of a run (the controller and each
xdist worker) and in ``diffbench replay`` of a case made with it:

* ``torch.use_deterministic_algorithms(True)``: an op without a deterministic implementation
  raises instead of running a nondeterministic kernel (a case then fails in one line naming
  the op and ``--diffbench-deterministic``, see :func:`nondeterministic_op`);
* ``CUBLAS_WORKSPACE_CONFIG=:16:8`` (the value diffusers sets; a value the user set already,
  ``:4096:8`` or ``:16:8``, is kept): cuBLAS on CUDA >= 10.2 is deterministic only with it;
* cuDNN deterministic, and no cuDNN benchmark (which picks kernels by timing them);
* TF32 off for matmuls and cuDNN convolutions.

diffusers also sets ``CUDA_LAUNCH_BLOCKING=1``; it is not set here: with
``CUBLAS_WORKSPACE_CONFIG`` set it adds no determinism, and it serialises every kernel launch,
which would falsify the seconds per image the run measures.

The switch can change the numerics (other kernels), so it is recorded in each case's frozen
config (``deterministic``) and in environment.json (:meth:`DeterminismState.as_dict`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

#: The environment variable cuBLAS reads for its workspace (deterministic only when set).
CUBLAS_VARIABLE = "CUBLAS_WORKSPACE_CONFIG"
#: The value :func:`enable_determinism` sets (diffusers' choice: the smaller workspace).
CUBLAS_VALUE = ":16:8"
#: The values PyTorch documents as deterministic; one of them set already is kept.
CUBLAS_DETERMINISTIC_VALUES = (":16:8", ":4096:8")
#: The text of torch's error for an op that has no deterministic implementation.
NONDETERMINISTIC_TEXT = "does not have a deterministic implementation"
#: The text of torch's error for a cuBLAS call made while ``CUBLAS_WORKSPACE_CONFIG`` was unset
#: when CUDA started (a pipeline built before the switch, in a process that set no variable).
CUBLAS_TEXT = "this operation is not deterministic because it uses CuBLAS"


@dataclass(frozen=True)
class DeterminismState:
    """The process's determinism settings (what :func:`enable_determinism` changes)."""

    deterministic_algorithms: bool
    cublas_workspace_config: str | None
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    cuda_matmul_allow_tf32: bool
    cudnn_allow_tf32: bool

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON values, keyed by the names above (environment.json's ``determinism``)."""
        return asdict(self)


def current_determinism() -> DeterminismState:
    """This process's settings now."""
    import torch

    return DeterminismState(
        deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
        cublas_workspace_config=os.environ.get(CUBLAS_VARIABLE),
        cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        cuda_matmul_allow_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
        cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32),
    )


def enable_determinism() -> DeterminismState:
    """Turn on deterministic algorithms, cuBLAS's deterministic workspace, cuDNN deterministic
    without benchmark, and TF32 off (see the module docstring); the settings it leaves (the
    ``CUBLAS_WORKSPACE_CONFIG`` kept when it was already a deterministic value). Call it before
    any pipeline is built: cuBLAS reads its variable when CUDA starts."""
    import torch

    if os.environ.get(CUBLAS_VARIABLE) not in CUBLAS_DETERMINISTIC_VALUES:
        os.environ[CUBLAS_VARIABLE] = CUBLAS_VALUE
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return current_determinism()


def restore_determinism(state: DeterminismState) -> None:
    """Put back the settings of ``state`` (from :func:`current_determinism` before
    :func:`enable_determinism`): for a process that goes on after a deterministic run (an
    in-process pytester run, a test)."""
    import torch

    if state.cublas_workspace_config is None:
        os.environ.pop(CUBLAS_VARIABLE, None)
    else:
        os.environ[CUBLAS_VARIABLE] = state.cublas_workspace_config
    torch.use_deterministic_algorithms(state.deterministic_algorithms)
    torch.backends.cudnn.deterministic = state.cudnn_deterministic
    torch.backends.cudnn.benchmark = state.cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = state.cuda_matmul_allow_tf32
    torch.backends.cudnn.allow_tf32 = state.cudnn_allow_tf32


def nondeterministic_op(exc: BaseException) -> str | None:
    """One line for torch's error about an op without a deterministic implementation (raised
    under :func:`enable_determinism`): the op, as torch names it, and what to do; None for any
    other error."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, RuntimeError):
        return None
    if CUBLAS_TEXT in text:
        return (f"a cuBLAS call is not deterministic here: CUDA started before {CUBLAS_VARIABLE} was set, and "
                f"--diffbench-deterministic (ini diffbench_deterministic) asks for determinism; set "
                f"{CUBLAS_VARIABLE}={CUBLAS_VALUE} in the environment of pytest, or build no pipeline before the "
                "session starts")
    if NONDETERMINISTIC_TEXT not in text:
        return None
    op = text.split(NONDETERMINISTIC_TEXT)[0].strip() or "an op"
    return (f"{op} has no deterministic implementation, and --diffbench-deterministic (ini diffbench_deterministic) "
            "asks for one; run this case without --diffbench-deterministic, or on a device where the op has one")
