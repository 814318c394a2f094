"""``diffbench accept`` repairs what stands where a baseline goes, as both update modes do: the
folder or link is moved (a link as a link, never followed) into the run's replaced-baselines/."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_diffbench.cli.main import main
from pytest_diffbench.spec.outcomes import Outcome


def test_accept_moves_a_folder_and_a_link_out_of_the_baselines_way(project, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    project.run(update="all").outcome.assert_outcomes(passed=2)
    png0, _ = project.baseline_pair("test_case", "seed0-euler-2steps-cfg7.5")
    png0.unlink()
    png0.mkdir()
    (png0 / "notes.txt").write_text("a user's file")
    _, sidecar1 = project.baseline_pair("test_case", "seed1-euler-2steps-cfg7.5")
    outside = tmp_path / "outside.json"
    outside.write_bytes(sidecar1.read_bytes())
    sidecar1.unlink()
    sidecar1.symlink_to(outside)
    run = project.run()
    assert {row.outcome for row in run.results} == {Outcome.ERROR}

    capsys.readouterr()
    status = main(["accept", "latest"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "\n2 rewritten\n" in out
    kept = run.folder.replaced_dir / "test_gen/test_case"
    assert (kept / "seed0-euler-2steps-cfg7.5.png" / "notes.txt").read_text() == "a user's file"
    assert (kept / "seed1-euler-2steps-cfg7.5.json.link").readlink() == outside
    assert outside.is_file() and not sidecar1.is_symlink()
    project.run().outcome.assert_outcomes(passed=2)
