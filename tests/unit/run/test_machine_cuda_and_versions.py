"""CUDA is reported only for a CUDA device, torch's version is spelled one way, and baselines
made before that report no difference for it (issue 10, item 4)."""

from __future__ import annotations

import pytest

from pytest_diffbench.run import machine
from pytest_diffbench.run.machine import collect_machine_info, distribution_version, torch_build
from pytest_diffbench.spec.machine import MachineInfo


@pytest.fixture
def cuda_build(monkeypatch):
    """torch as a CUDA 13.0 build, whatever is installed."""
    collect_machine_info.cache_clear()
    monkeypatch.setattr(machine, "torch_build", lambda: ("2.14.1+cu130", "13.0"))
    yield
    collect_machine_info.cache_clear()


def test_a_cpu_run_of_a_cuda_build_reports_no_cuda(cuda_build):
    info = collect_machine_info("cpu")
    assert (info.cuda, info.driver, info.torch) == ("", "", "2.14.1+cu130")
    assert info.device_fields()["cuda"] == ""
    assert collect_machine_info("mps").cuda == ""


def test_torch_is_spelled_as_torch_spells_itself_everywhere():
    assert distribution_version("torch") == torch_build()[0] == collect_machine_info("cpu").torch
    assert distribution_version("no-such-distribution-here") == ""


def test_a_cpu_baseline_recorded_with_the_cuda_build_is_no_environment_difference():
    ours = MachineInfo(torch="2.14.1+cu130", device_type="cpu", device_name="AMD EPYC")
    old = {**ours.as_dict(), "cuda": "13.0"}
    assert ours.diff(old) == {}
    assert ours.diff({**old, "device_name": "Intel(R) Xeon(R) Processor"}) == {
        "device_name": ("Intel(R) Xeon(R) Processor", "AMD EPYC")}


def test_cuda_still_differs_between_cuda_devices():
    ours = MachineInfo(cuda="13.0", device_type="cuda", device_name="H200")
    assert ours.diff({**ours.as_dict(), "cuda": "12.4"}) == {"cuda": ("12.4", "13.0")}
    # a CUDA run against a CPU baseline: the device differs, and CUDA is new
    cpu = {**ours.as_dict(), "device_type": "cpu", "device_name": "AMD EPYC", "cuda": "13.0"}
    assert ours.diff(cpu) == {"device_name": ("AMD EPYC", "H200"), "cuda": ("", "13.0")}
