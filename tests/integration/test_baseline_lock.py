"""The baselines' pair-write lock as a user on a shared machine meets it: it lives in a folder
private to the user, so a link another user plants at a predictable name in ``/tmp`` is either
never used or one line per case naming it and what to do."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine's shared temporary folder, as ``tempfile.gettempdir()`` sees it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_link_planted_at_the_old_shared_lock_name_is_never_used(project, tmp_path: Path, temp_folder: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("a file of the user's")
    key = hashlib.sha256(str(project.baselines.resolve()).encode()).hexdigest()[:32]
    (temp_folder / f"pytest-diffbench-{key}.lock").symlink_to(victim)
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=2)
    assert {row.baseline_action for row in run.results} == {BaselineAction.CREATED}
    assert victim.read_text() == "a file of the user's"


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="the per-user folder is checked on POSIX")
@pytest.mark.parametrize("planted", ["link", "file"])
def test_a_lock_folder_planted_by_someone_else_is_one_line_per_case_naming_it_and_the_remedy(
        project, tmp_path: Path, temp_folder: Path, planted: str) -> None:
    folder = temp_folder / f"pytest-diffbench-{os.getuid()}"
    if planted == "link":
        (tmp_path / "attacker").mkdir()
        folder.symlink_to(tmp_path / "attacker", target_is_directory=True)
    else:
        folder.write_text("")
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    run = project.run(update="missing")
    run.outcome.assert_outcomes(failed=2)
    text = project.text(run.outcome)
    assert "Traceback" not in text and "INTERNALERROR" not in text
    what = "a symbolic link" if planted == "link" else "not a folder"
    for row in run.results:
        assert row.outcome is Outcome.MISSING_BASELINE and row.baseline_action is BaselineAction.NONE
        assert "\n" not in row.message
        assert (f"the baseline lock folder {folder} is {what}, so diffbench does not use it; delete it (no diffbench run "
                "of this user needs it between runs), or set TMPDIR to another folder") in row.message
    assert not project.baselines.exists() or not any(project.baselines.rglob("*.png"))

    folder.unlink()  # the remedy
    project.run(update="missing").outcome.assert_outcomes(passed=2)
    assert oct(folder.lstat().st_mode & 0o777) == oct(0o700)
