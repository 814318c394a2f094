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
    once per device in each process that runs cases (each xdist worker), when its first case finishes.

    A hook that raises fails the case with one line naming the hook and its conftest.py or plugin:
    the record goes into the case's baseline sidecar and its environment check, so a case is not
    recorded without it. The hook is tried again for the next case.
    """


def pytest_diffbench_result_row(config: pytest.Config, result: "CaseResult", row: dict[str, Any]) -> None:
    """Add columns to one case's results.csv row, or change ones you added, in place.

    Called once per case that ran (again for a rerun attempt, or when a teardown error changes
    the case's result), in the process that ran it (an xdist worker), as pytest calls its own hooks
    through ``item.ihook``: a conftest.py's hook applies to the tests under its folder. ``row`` is
    the case's row as it finished (``ssim_vs_most_steps`` is scored later). The added columns are
    kept with the case's result (as text; lists and dicts as JSON): they travel to the xdist
    controller, go into the journal, and so are the same in results.csv with or without xdist,
    after a resume and after ``diffbench report`` rebuilds it.

    Columns that diffbench does not know come after its own, sorted by name; a change to one of
    diffbench's own columns is dropped with a warning. A hook that raises adds no column to that
    case's row: the run goes on with one warning naming the hook and its conftest.py or plugin.
    """
