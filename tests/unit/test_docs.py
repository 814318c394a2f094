"""What a newcomer copies from the docs works today: the Quickstart's two commands, the CPU-only
torch install, the .gitignore advice, and a CI workflow that installs pytest-diffbench from where
it is (its git repository; it is not published on PyPI)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_quickstart_keeps_its_two_commands(readme: str) -> None:
    commands = [line for block in _bash_blocks(_section(readme, "Quickstart")) for line in block.splitlines() if line]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/pytest --diffbench examples/",
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest -n 2 tests/',
    ]


def test_install_names_the_cpu_only_torch_build_before_the_package(readme: str) -> None:
    (block, *_) = _bash_blocks(_section(readme, "Install"))
    lines = block.splitlines()
    cpu_torch = ".venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert lines.index(cpu_torch) < lines.index(".venv/bin/pip install -e .")


def test_gitignore_advice_matches_the_repositorys_own(readme: str) -> None:
    assert "```gitignore\n.diffbench/\n```" in _section(readme, "Install")
    assert ".diffbench/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_the_ci_workflow_installs_pytest_diffbench_from_its_repository() -> None:
    workflow = (ROOT / "docs" / "github-actions-diffbench.yml").read_text(encoding="utf-8")
    installs = [line.split("#")[0] for line in workflow.splitlines() if re.search(r"\bpip install\b", line.split("#")[0])]
    named = [line for line in installs if "pytest-diffbench" in line]
    assert named and all('"pytest-diffbench @ $DIFFBENCH_SOURCE"' in line for line in named), installs
    assert re.search(r'^  DIFFBENCH_SOURCE: "git\+https://', workflow, flags=re.M)
