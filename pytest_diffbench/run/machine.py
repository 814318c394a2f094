"""Collecting :class:`~pytest_diffbench.spec.machine.MachineInfo`: library versions, device name,
driver, CUDA.

Versions come from the installed distributions' metadata, so collecting them imports neither
torch nor diffusers. On CUDA the device name comes from torch and the driver from NVML (pynvml);
on the CPU the device name is the processor's model name and the driver is empty, never invented.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

from pytest_diffbench.spec.machine import MachineInfo


def distribution_version(distribution: str) -> str:
    """The installed version of ``distribution`` as the library spells it itself, "" when it is
    not installed: torch's with the build tag of ``torch.__version__`` (``2.4.1+cu124``,
    ``2.4.1+cpu``), which the metadata of a wheel from PyPI lacks, so that environment.json's
    ``versions`` and its ``devices`` (and every sidecar) say one thing."""
    if distribution == "torch":
        return torch_build()[0]
    return _metadata_version(distribution)


@functools.lru_cache(maxsize=None)
def _metadata_version(distribution: str) -> str:
    """The version in ``distribution``'s installed metadata, "" when it is not installed. Read once
    per process (each read scans sys.path and parses a METADATA file; a run asks for about ten)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


@functools.lru_cache(maxsize=None)
def torch_build() -> tuple[str, str]:
    """(``torch.__version__``, ``torch.version.cuda``) with the local build tag (``2.4.1+cu124``),
    read from torch/version.py without importing torch; ("", "") without torch."""
    if "torch" in sys.modules:
        import torch

        return str(torch.__version__), str(torch.version.cuda or "")
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return "", ""
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return _metadata_version("torch"), ""

    def field(name: str) -> str:
        match = re.search(rf"^{name}\s*(?::[^=]*)?=\s*['\"]([^'\"]*)['\"]", text, flags=re.MULTILINE)
        return match.group(1) if match else ""

    return field("__version__") or _metadata_version("torch"), field("cuda")


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

    def decode(value: bytes | str) -> str:  # old pynvml returns bytes
        return value.decode() if isinstance(value, bytes) else str(value)

    return decode(name), decode(driver)


@functools.lru_cache(maxsize=None)
def collect_machine_info(device: str) -> MachineInfo:
    """The machine of ``device`` (``"cpu"``, ``"cuda:0"``, ``"mps"``), cached per process.

    ``cuda`` (torch's CUDA build), ``driver`` and peak memory are a CUDA device's only: on the
    CPU or MPS they are empty, whatever torch was built with. Only a CUDA device imports torch
    (for its name and current index).
    """
    device_type, _, index_text = device.partition(":")
    software = MachineInfo(
        python=platform.python_version(), platform=sys.platform, machine=platform.machine(),
        torch=torch_build()[0], diffusers=distribution_version("diffusers"),
        transformers=distribution_version("transformers"), pytest_diffbench=distribution_version("pytest-diffbench"),
        device_type=device_type,
    )
    if device_type == "cuda":
        import torch

        index = int(index_text) if index_text else torch.cuda.current_device()
        # NVML numbers devices by PCI bus unless CUDA_DEVICE_ORDER says otherwise, so trust torch
        # for the name and take the driver from NVML.
        nvml_name, driver = _nvml_device(index)
        return dataclasses.replace(software, device_name=torch.cuda.get_device_name(index) or nvml_name, driver=driver,
                                   cuda=torch_build()[1], memory_measured="torch.cuda.max_memory_allocated")
    return dataclasses.replace(software, device_name=_cpu_name() if device_type == "cpu" else device_type,
                               memory_measured="not measured (peak VRAM is measured on CUDA only)")
