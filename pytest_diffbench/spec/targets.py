"""What a run targets, by name and without torch: the built-in models, devices and dtypes."""

from __future__ import annotations

import re
from typing import Any

#: Models ``--diffbench-model`` names without a folder or hub id (see run.pipelines.load_pipeline).
BUILTIN_MODELS = ("diffbench-tiny", "diffbench-tiny-random")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
#: dtype names the options accept, each with the torch dtype it means.
DTYPE_ALIASES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
                 "bfloat16": "bfloat16", "bf16": "bfloat16"}
#: ``auto`` is float16 on CUDA, else float32.
DTYPE_NAMES = ("auto", *DTYPE_ALIASES)


def check_device(spec: Any) -> str:
    """A device option, checked without importing torch: auto, cpu, cuda, cuda:N or mps.

    Raises ValueError listing the valid devices.
    """
    value = str(spec).strip().lower()
    if not DEVICE_PATTERN.fullmatch(value):
        raise ValueError("valid devices are auto, cpu, cuda, cuda:N and mps")
    return value


def device_names(cuda_count: int, mps: bool) -> list[str]:
    """The device options a machine with ``cuda_count`` CUDA devices (and MPS or not) can use."""
    cuda = ["cuda", *(f"cuda:{index}" for index in range(cuda_count))] if cuda_count else []
    return ["auto", "cpu", *cuda, *(["mps"] if mps else [])]


def check_available(device: str, *, cuda_count: int, mps: bool) -> str:
    """``device`` (checked by :func:`check_device`) if this machine has it, given what torch sees:
    ``cuda_count`` CUDA devices and MPS or not.

    Raises ValueError naming the devices this machine has.
    """
    available = device_names(cuda_count, mps)
    if device not in available:
        raise ValueError(f"this machine has no such device (torch sees {cuda_count} CUDA device(s)"
                         f"{' and MPS' if mps else ', no MPS'}); available here: {', '.join(available)}")
    return device
