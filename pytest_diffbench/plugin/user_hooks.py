"""Calling the hooks diffbench offers to users (:mod:`pytest_diffbench.plugin.hookspecs`).

Each implementation is called on its own, in pluggy's order, with its own copy of the mapping it
edits: one that raises is named (its conftest.py relative to the rootdir, or its plugin's name) by
a :class:`HookFailure`, and its changes are dropped while the others' are kept. What a failure
means is the caller's: a results row's columns are left out with a warning, a machine record that
cannot be made fails the case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple


class HookFailure(NamedTuple):
    """An implementation of ``hook`` in ``plugin`` (its conftest.py, or its plugin's name) raised
    ``error`` (``RuntimeError: boom``, on one line)."""

    hook: str
    plugin: str
    error: str

    def describe(self) -> str:
        """``the pytest_diffbench_result_row hook in conftest.py raised RuntimeError: boom``."""
        return f"the {self.hook} hook in {self.plugin} raised {self.error}"


def call_each(caller: Any, rootdir: Path, edited: str, **kwargs: Any) -> list[HookFailure]:
    """Call each implementation of the hook ``caller`` (``config.hook.X`` or ``item.ihook.X``) with
    ``kwargs``; the mapping ``kwargs[edited]`` is updated in place with what each implementation
    that returned set in its copy. The failures, one per implementation that raised.

    A wrapper implementation (``wrapper=True``) changes how the others run, so with one the hook is
    called whole, and a failure names every plugin that implements it."""
    impls = caller.get_hookimpls()
    target = kwargs[edited]
    if any(impl.wrapper or impl.hookwrapper for impl in impls):
        copy = dict(target)
        try:
            caller(**{**kwargs, edited: copy})
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # pytest.skip(), sys.exit() too: a hook cannot end the run
            plugins = ", ".join(_plugin_name(impl, rootdir) for impl in impls)
            return [HookFailure(caller.name, f"one of {plugins}", _error(exc))]
        target.update(copy)
        return []
    failures = []
    for impl in reversed(impls):  # pluggy's call order: the last registered (and tryfirst) first
        copy = dict(target)
        arguments = {**kwargs, edited: copy}
        try:
            impl.function(*[arguments[name] for name in impl.argnames])
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # pytest.skip(), sys.exit() too: a hook cannot end the run
            failures.append(HookFailure(caller.name, _plugin_name(impl, rootdir), _error(exc)))
            continue
        target.clear()
        target.update(copy)
    return failures


def cell_text(value: Any) -> str:
    """A column a hook added, as text: lists and dicts as canonical JSON (as results.csv writes
    diffbench's own), anything else as ``str``."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return str(value)


def _plugin_name(impl: Any, rootdir: Path) -> str:
    """Where ``impl`` comes from: its conftest.py relative to the rootdir, else its plugin's name."""
    name = str(impl.plugin_name)
    file = getattr(impl.plugin, "__file__", None)
    if file:
        try:
            return Path(file).resolve().relative_to(Path(rootdir).resolve()).as_posix()
        except ValueError:
            return name if not Path(name).is_absolute() else Path(file).as_posix()
    return name


def _error(exc: BaseException) -> str:
    """``RuntimeError: boom``, on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())
