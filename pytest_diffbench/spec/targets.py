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
