"""pytest-xdist wiring: workers write into the controller's run folder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_diffbench.plugin.session import DiffbenchSession

#: workerinput key: the path of the controller's run folder.
RUN_DIR_KEY = "diffbench_run_dir"


class XdistHooks:
    """Registered only when xdist is present: its hooks are unknown to pytest otherwise."""

    def __init__(self, session: "DiffbenchSession") -> None:
        self.session = session

    def pytest_configure_node(self, node: Any) -> None:
        """Workers write their images into the controller's run folder."""
        if self.session.folder is not None:
            node.workerinput[RUN_DIR_KEY] = str(self.session.folder.path)
