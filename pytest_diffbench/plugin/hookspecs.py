"""Hooks pytest-diffbench offers to conftest.py files and plugins (in the style of
pytest-benchmark's ``pytest_benchmark_update_machine_info``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_diffbench.judge.result import CaseResult



def pytest_diffbench_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add to or change the machine record of a device before cases use it.

    ``machine_info`` holds the fields of :class:`~pytest_diffbench.spec.machine.MachineInfo`
    (``device_name``, ``driver``, ``torch``, ...) as text; set keys in place. Fields you add go into
    every baseline sidecar made on this machine (``environment``) and into environment.json. Called
    once per device in each process that runs cases (each xdist worker).
    """


def pytest_diffbench_result_row(config: pytest.Config, result: "CaseResult", row: dict[str, Any]) -> None:
    """Add columns to one case's results.csv row, or change ones you added, in place.

    Called on the controller when results.csv is written. Columns that diffbench does not know
    come after its own, sorted by name; changing one of diffbench's own columns is refused.
    """
