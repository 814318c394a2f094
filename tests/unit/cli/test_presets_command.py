"""``diffbench presets lock|list`` (issue 12, item 3): list says where each preset stands against the
lock, lock records new and bumped presets and refuses one changed without a version bump."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_diffbench.cli.presets import command_presets
from pytest_diffbench.cli.settings import CommandError
from pytest_diffbench.spec.presets import LOCK_NAME, read_lock

PRESETS = """
[tool.diffbench.presets.a]
version = "1"
steps = 2
[tool.diffbench.presets.b]
version = "1"
cfg = 4
"""


def write(root: Path, text: str) -> None:
    (root / "pyproject.toml").write_text(textwrap.dedent(text), encoding="utf-8")


def test_lock_records_every_preset_and_list_shows_each_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, PRESETS)
    assert command_presets("list", None, tmp_path) == 0
    assert capsys.readouterr().out.splitlines() == ["a  version 1  never locked", "b  version 1  never locked"]
    assert command_presets("lock", None, tmp_path) == 0
    assert "locked a version 1\nlocked b version 1\nwrote " in capsys.readouterr().out
    first = (tmp_path / LOCK_NAME).read_bytes()
    assert command_presets("lock", None, tmp_path) == 0  # nothing new: the same bytes
    assert (tmp_path / LOCK_NAME).read_bytes() == first
    write(tmp_path, PRESETS.replace("steps = 2", "steps = 3").replace('version = "1"\ncfg', 'version = "2"\ncfg = 5\n#'))
    capsys.readouterr()
    assert command_presets("list", None, tmp_path) == 0
    assert capsys.readouterr().out.splitlines() == ["a  version 1  changed without a version bump: steps: 2 -> 3",
                                                    "b  version 2  version not locked (the lock has 1)"]
    assert command_presets("lock", None, tmp_path) == 1  # b's bump is recorded, a's edit refused
    out = capsys.readouterr().out
    assert "locked b version 2 (was 1)" in out
    assert "refused a: changed without a version bump (steps: 2 -> 3); bump its version, then lock again" in out
    lock = read_lock(tmp_path / LOCK_NAME)
    assert (lock["a"]["version"], lock["a"]["values"], lock["b"]["version"]) == ("1", {"steps": 2}, "2")


def test_removed_presets_stay_in_the_lock(tmp_path: Path) -> None:
    write(tmp_path, PRESETS)
    command_presets("lock", None, tmp_path)
    write(tmp_path, '[tool.diffbench.presets.a]\nversion = "1"\nsteps = 2\n')
    command_presets("lock", None, tmp_path)
    assert set(read_lock(tmp_path / LOCK_NAME)) == {"a", "b"}


def test_no_presets_or_a_broken_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert command_presets("lock", None, tmp_path) == 0
    assert capsys.readouterr().out == f"no presets in {tmp_path / 'pyproject.toml'} (add [tool.diffbench.presets.NAME] tables)\n"
    assert not (tmp_path / LOCK_NAME).exists()
    write(tmp_path, '[tool.diffbench.presets.a]\nsteps = 2\n')
    with pytest.raises(CommandError, match="preset 'a' \\(pyproject.toml\\): version = None is not valid"):
        command_presets("list", None, tmp_path)
