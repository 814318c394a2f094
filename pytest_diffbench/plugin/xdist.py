"""pytest-xdist wiring: workers write into the controller's run folder."""

from __future__ import annotations

from typing import Any, Callable

from pytest_diffbench.store.run_folder import RunFolder

#: workerinput key: the path of the controller's run folder.
RUN_DIR_KEY = "diffbench_run_dir"


class XdistHooks:
    """Registered only when xdist is present: its hooks are unknown to pytest otherwise.

    ``run_folder`` returns the controller's run folder (None when diffbench is off);
    ``collected`` is told each worker's id when it has collected (the controller collects nothing itself).
    """

    def __init__(self, run_folder: Callable[[], RunFolder | None], collected: Callable[[str], None]) -> None:
        self.run_folder = run_folder
        self.collected = collected

    def pytest_configure_node(self, node: Any) -> None:
        """Workers write their images into the controller's run folder."""
        folder = self.run_folder()
        if folder is not None:
            node.workerinput[RUN_DIR_KEY] = str(folder.path)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """A worker collected (and left its jobs in the run folder): the run's job list is settled."""
        if self.run_folder() is not None:
            self.collected(str(node.workerinput["workerid"]))
