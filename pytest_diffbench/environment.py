"""What a figure was measured on: library versions, device name, driver, CUDA.

Recorded in every baseline sidecar and results row. On CUDA the device name and driver come
from pynvml (NVIDIA's management library) with torch as a fallback; on the CPU the device
name is the processor's model name and the driver is empty, never invented.
"""

from __future__ import annotations

import functools
import platform
import sys
from typing import Any, Mapping

import torch

from pytest_diffbench.identity import distribution_version

#: Fields whose change between baseline and run is reported (and fails with --diffbench-strict-env).
COMPARED_FIELDS = ("device_name", "driver", "cuda", "torch", "diffusers", "transformers")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _nvml_device(index: int) -> tuple[str, str]:
    """(device name, driver version) from pynvml, or ("", "") when NVML is unavailable."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            driver = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML missing, no driver, or a device index NVML does not know
        return "", ""
    decode = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731 - old pynvml returns bytes
    return decode(name), decode(driver)


@functools.lru_cache(maxsize=None)
def collect_environment(device: str) -> Mapping[str, Any]:
    """The environment of ``device`` (e.g. ``"cpu"``, ``"cuda:0"``), cached per process."""
    dev = torch.device(device)
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": sys.platform,
        "machine": platform.machine(),
        "torch": str(torch.__version__),  # TorchVersion is a str subclass execnet cannot send
        "diffusers": distribution_version("diffusers"),
        "transformers": distribution_version("transformers"),
        "pytest_diffbench": distribution_version("pytest-diffbench"),
        "cuda": torch.version.cuda or "",
        "device_type": dev.type,
    }
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        # NVML numbers devices by PCI bus unless CUDA_DEVICE_ORDER says otherwise, so trust
        # torch for the name and take the driver from NVML.
        nvml_name, driver = _nvml_device(index)
        env["device_name"] = torch.cuda.get_device_name(index) or nvml_name
        env["driver"] = driver
        env["memory_measured"] = "torch.cuda.max_memory_allocated"
    else:
        env["device_name"] = _cpu_name() if dev.type == "cpu" else dev.type
        env["driver"] = ""
        env["memory_measured"] = "not measured (peak VRAM is measured on CUDA only)"
    return env


def environment_diff(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (baseline value, current value)}`` for the compared fields that differ."""
    return {
        key: (baseline.get(key, ""), current.get(key, ""))
        for key in COMPARED_FIELDS
        if baseline.get(key, "") != current.get(key, "")
    }
