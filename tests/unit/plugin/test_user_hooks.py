"""Calling user hooks one implementation at a time (pytest_diffbench.plugin.user_hooks)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Generator

import pluggy

from pytest_diffbench.plugin.user_hooks import HookFailure, call_each, cell_text

spec = pluggy.HookspecMarker("demo")
impl = pluggy.HookimplMarker("demo")


class Specs:
    @spec
    def demo_row(self, config: Any, row: dict[str, Any]) -> None:
        """A hook that edits ``row``."""


def manager(*plugins: tuple[object, str]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("demo")
    pm.add_hookspecs(Specs)
    for plugin, name in plugins:
        pm.register(plugin, name)
    return pm


def conftest(path: Path, function: Any) -> ModuleType:
    """A module standing in for a conftest.py at ``path`` that implements ``demo_row``."""
    module = ModuleType("conftest")
    module.__file__ = str(path)
    module.demo_row = impl(function)  # type: ignore[attr-defined]
    return module


def test_a_raising_implementation_is_named_and_its_changes_dropped(tmp_path: Path) -> None:
    def adds(config: Any, row: dict[str, Any]) -> None:
        row["team"] = "imaging"

    def raises(config: Any, row: dict[str, Any]) -> None:
        row["half"] = "written"
        raise RuntimeError("boom\nsecond line")

    pm = manager((conftest(tmp_path / "conftest.py", adds), "first"),
                 (conftest(tmp_path / "sub" / "conftest.py", raises), "second"))
    row: dict[str, Any] = {"outcome": "passed"}
    failures = call_each(pm.hook.demo_row, tmp_path, "row", config=None, row=row)
    assert failures == [HookFailure("demo_row", "sub/conftest.py", "RuntimeError: boom second line")]
    assert row == {"outcome": "passed", "team": "imaging"}
    assert failures[0].describe() == "the demo_row hook in sub/conftest.py raised RuntimeError: boom second line"


def test_implementations_run_in_pluggys_order(tmp_path: Path) -> None:
    """Each sees what the ones before it set, as when pluggy calls the hook whole."""
    class Late:
        @impl(trylast=True)
        def demo_row(self, row: dict[str, Any]) -> None:
            row["order"] = row.get("order", "") + "late"

    class Early:
        @impl(tryfirst=True)
        def demo_row(self, row: dict[str, Any]) -> None:
            row["order"] = row.get("order", "") + "early,"

    row: dict[str, Any] = {}
    assert call_each(manager((Late(), "late"), (Early(), "early")).hook.demo_row, tmp_path, "row", config=None, row=row) == []
    assert row == {"order": "early,late"}


def test_with_a_wrapper_the_hook_is_called_whole(tmp_path: Path) -> None:
    class Wrapper:
        @impl(wrapper=True)
        def demo_row(self, row: dict[str, Any]) -> Generator[None, None, None]:
            row["wrapped"] = "yes"
            return (yield)

    class Raising:
        @impl
        def demo_row(self, row: dict[str, Any]) -> None:
            raise ValueError("bad")

    row: dict[str, Any] = {}
    pm = manager((Wrapper(), "wrapper-plugin"))
    assert call_each(pm.hook.demo_row, tmp_path, "row", config=None, row=row) == [] and row == {"wrapped": "yes"}
    pm.register(Raising(), "raising-plugin")
    row = {}
    failures = call_each(pm.hook.demo_row, tmp_path, "row", config=None, row=row)
    assert failures == [HookFailure("demo_row", "one of raising-plugin, wrapper-plugin", "ValueError: bad")] and row == {}


def test_cell_text_writes_lists_and_dicts_as_canonical_json() -> None:
    assert [cell_text(v) for v in ({"b": 1, "a": [2]}, (1, 2), 0.5, True, "x")] == [
        '{"a":[2],"b":1}', "[1,2]", "0.5", "True", "x"]


def test_a_hook_that_exits_or_skips_is_a_failure_too(tmp_path: Path) -> None:
    """pytest.skip() and sys.exit() raise BaseException: neither may end the run from a hook."""
    import sys

    import pytest

    def skips(config: Any, row: dict[str, Any]) -> None:
        pytest.skip("not here")

    def exits(config: Any, row: dict[str, Any]) -> None:
        sys.exit(3)

    pm = manager((conftest(tmp_path / "a.py", skips), "a"), (conftest(tmp_path / "b.py", exits), "b"))
    failures = call_each(pm.hook.demo_row, tmp_path, "row", config=None, row={})
    assert [(f.plugin, f.error) for f in failures] == [("b.py", "SystemExit: 3"), ("a.py", "Skipped: not here")]
