"""The package's shape: sub-packages import one way, no module imports itself back, and loading the
plugin stays cheap (no torch, diffusers or image stack until a case runs)."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_diffbench

PACKAGE_DIR = Path(pytest_diffbench.__file__).parent
#: What each sub-package may import from the others (its own modules are always allowed).
ALLOWED = {
    "spec": set(),
    "judge": {"spec"},
    "store": {"spec", "judge"},
    "report": {"spec", "judge", "store"},
    "run": {"spec"},
    "plugin": {"spec", "judge", "store", "report", "run"},
    "cli": {"spec", "judge", "store", "report", "run", "plugin"},
    "testing": {"spec", "judge", "store", "run"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every pytest_diffbench module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pytest_diffbench"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("pytest_diffbench")}
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    """Each module's pytest_diffbench imports, parsed once per process for every test here (the
    sources do not change during a test session)."""
    modules = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "package"


def test_every_module_lives_in_a_sub_package() -> None:
    top_level = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
    assert top_level == ["__init__.py", "testing.py"]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_sub_packages_import_one_way(layer: str) -> None:
    wrong = sorted(f"{module} -> {target}" for module, targets in _graph().items() if _layer(module) == layer
                   for target in targets if _layer(target) not in ALLOWED[layer] | {layer})
    assert not wrong, f"{layer} imports outside {sorted(ALLOWED[layer])}: {wrong}"


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path, module, target]
            if target not in state and (cycle := visit(target, [*path, module])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, " -> ".join(cycle)


@pytest.mark.subprocess
def test_loading_the_plugin_imports_no_heavy_library() -> None:
    """pytest starts as fast as before in a repository that installs the plugin: a fresh interpreter
    that imports the entry point and the public API has none of the heavy stack loaded."""
    heavy = ("torch", "diffusers", "transformers", "lpips", "pandas", "skimage", "matplotlib")
    code = ("import sys, pytest_diffbench, pytest_diffbench.plugin.hooks, pytest_diffbench.cli.main; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
