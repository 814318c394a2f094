"""xdist's ``--dist worksteal``, with steals that take whole test modules.

Under worksteal, a worker whose queue runs out asks the other for the end of its queue. That end
may begin in the middle of a module: then the module's tests run in both workers, and each sets
up the module's module-scoped fixtures. The suite's ``shared_project`` fixtures make runs that
several tests read (seconds of CPU each), so a split module pays them twice. Here a steal leaves
the split module's tests with the worker that has its earlier ones, unless the steal would then
take nothing. The first even split of the collection between the workers is xdist's own.
"""

from __future__ import annotations

from typing import Any, Sequence

import pytest


def whole_modules(collection: Sequence[str], indices: Sequence[int]) -> list[int]:
    """``indices`` (positions in ``collection``, the node ids: the end of a worker's queue that a
    steal asks for, in queue order) without the tests of their first module when the test just
    before them in ``collection`` is of that module too; all of ``indices`` when that would leave
    none."""
    def module(index: int) -> str:
        return collection[index].split("::")[0]

    if not indices or indices[0] == 0 or module(indices[0] - 1) != module(indices[0]):
        return list(indices)
    whole = [index for index in indices if module(index) != module(indices[0])]
    return whole or list(indices)


def scheduler(config: pytest.Config, log: Any) -> Any:
    """For ``pytest_xdist_make_scheduler``: with ``--dist worksteal``, a WorkStealingScheduling
    whose steal requests go through :func:`whole_modules`; None (xdist's own) otherwise."""
    if config.getoption("dist", None) != "worksteal":
        return None
    from xdist.scheduler import WorkStealingScheduling

    class ModuleStealing(WorkStealingScheduling):
        def add_node(self, node: Any) -> None:
            super().add_node(node)
            send_steal = node.send_steal
            node.send_steal = lambda indices: send_steal(whole_modules(self.collection or [], indices))

    return ModuleStealing(config, log)
