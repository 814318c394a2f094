"""The ``diffbench`` command registers the subcommands of issue 12: replay and presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_diffbench.cli.main import main


def test_presets_and_replay_are_commands_of_diffbench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n", encoding="utf-8")
    assert main(["presets", "list"]) == 0
    assert capsys.readouterr().out.startswith(f"no presets in {tmp_path / 'pyproject.toml'}")
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--help"])
    assert exited.value.code == 0
    assert "BUNDLE_OR_RUN" in capsys.readouterr().out
