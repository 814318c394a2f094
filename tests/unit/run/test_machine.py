"""Collecting the machine record on the CPU (no CUDA needed, no torch import)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from pytest_diffbench.run.machine import collect_machine_info
from pytest_diffbench.spec.machine import COMPARED_FIELDS


def test_collect_machine_info_on_cpu():
    info = collect_machine_info("cpu")
    assert info.device_type == "cpu"
    assert info.driver == ""
    assert info.device_name.strip()
    assert "not measured" in info.memory_measured
    assert info.torch.split("+")[0] == metadata.version("torch").split("+")[0]
    for key in COMPARED_FIELDS:
        assert isinstance(info.as_dict()[key], str)
    assert not any("vram" in key.lower() or "total_memory" in key.lower() for key in info.as_dict())


def test_collect_machine_info_is_cached_per_device():
    assert collect_machine_info("cpu") is collect_machine_info("cpu")


def test_collecting_on_the_cpu_imports_no_torch():
    code = ("import sys\nfrom pytest_diffbench.run.machine import collect_machine_info\n"
            "info = collect_machine_info('cpu')\nprint(bool(info.torch), 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]
