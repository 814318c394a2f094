"""Fixtures of the pipeline-family tests: the tiny builders (builders.py) and projects using them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BUILDERS_PATH = Path(__file__).resolve().parent / "builders.py"


@pytest.fixture(scope="session")
def builders() -> ModuleType:
    """tests/families/builders.py, imported by path (it imports torch: only tests that use it pay)."""
    name = "diffbench_family_builders"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BUILDERS_PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
