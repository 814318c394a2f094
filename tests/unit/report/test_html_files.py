"""report.html finds the run folder's files in one walk of it: each link it makes or leaves out
is the one the check of every part of the path (:func:`~pytest_diffbench.report.bundle.in_run`)
gives, links and all."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_diffbench.report.html import _run_files, _target
from pytest_diffbench.store.run_folder import RunFolder


def test_the_walk_of_the_run_folder_links_what_the_path_check_links(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "x.png").write_bytes(b"x")
    (outside / "y.png").write_bytes(b"y")
    for name in ("results.csv", "images/t/a.png", "grids/cases/t/a.png", "configs/t/a.json"):
        (folder.path / name).parent.mkdir(parents=True, exist_ok=True)
        (folder.path / name).write_bytes(b"-")
    (folder.path / "grids" / "cases" / "t" / "linked.png").symlink_to(outside / "y.png")  # a linked file
    (folder.path / "grids" / "sheets").symlink_to(outside, target_is_directory=True)  # a linked folder
    (folder.path / "images" / "t" / "folder.png").mkdir()  # not a file
    os.mkfifo(folder.path / "images" / "t" / "fifo.png")  # not a regular file

    present = _run_files(folder)
    assert present == {"results.csv", "images/t/a.png", "grids/cases/t/a.png", "configs/t/a.json"}
    names = ["results.csv", "images/t/a.png", "grids/cases/t/a.png", "grids/cases/t/linked.png", "grids/sheets/y.png",
             "grids/sheets/deep/x.png", "images/t/folder.png", "images/t/fifo.png", "images/t/missing.png", "nothing/a.png"]
    for bundled in (None, frozenset({"results.csv", "grids/cases/t/a.png"})):
        for name in names:
            path = folder.path / name
            assert _target(folder, path, bundled, present) == _target(folder, path, bundled), name
    assert _run_files(RunFolder(tmp_path / "absent")) == frozenset()
