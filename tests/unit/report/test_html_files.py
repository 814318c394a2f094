"""report.html and the bundle find the run folder's files in one walk of it: each link the page
makes or leaves out, and each file the bundle takes, is the one the check of every part of the
path (:func:`~pytest_diffbench.report.bundle.in_run`) gives, links and all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_diffbench.report import bundle
from pytest_diffbench.report.bundle import in_run
from pytest_diffbench.report.html import _target
from pytest_diffbench.store.files import PathEscapeError, inside, regular_files
from pytest_diffbench.store.run_folder import RunFolder


def passes_the_path_check(folder: RunFolder, name: str) -> bool:
    """Whether ``name`` is a file of the run folder with no symbolic link on the way, checked part
    by part (as :func:`~pytest_diffbench.report.bundle.in_run` checks)."""
    try:
        return inside(folder.path, name).is_file()
    except PathEscapeError:
        return False


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

    walked, complete = regular_files(folder.path)
    present = frozenset(walked)
    assert present == {"results.csv", "images/t/a.png", "grids/cases/t/a.png", "configs/t/a.json"} and not complete
    names = ["results.csv", "images/t/a.png", "grids/cases/t/a.png", "grids/cases/t/linked.png", "grids/sheets/y.png",
             "grids/sheets/deep/x.png", "images/t/folder.png", "images/t/fifo.png", "images/t/missing.png", "nothing/a.png"]
    assert {name for name in names if name in present} == {name for name in names if passes_the_path_check(folder, name)}
    for bundled in (None, frozenset({"results.csv", "grids/cases/t/a.png"})):
        for name in names:
            link, note = _target(folder, folder.path / name, bundled, present)
            if not passes_the_path_check(folder, name):
                assert (link, note) == ("", ""), name
            elif bundled is None or name in bundled:
                assert (link, note) == (name, ""), name
            else:
                assert link == "" and note == f"not in the bundle: {name} in the run folder {folder.run_id}", name
    assert regular_files(tmp_path / "absent") == ([], True)


def test_the_bundle_lists_by_one_walk_the_files_the_path_checks_list(tmp_path: Path) -> None:
    """Without a link, one walk of each folder; with a link anywhere in it, the path-by-path check
    that names the link (:func:`~pytest_diffbench.report.bundle.in_run`)."""
    folder = RunFolder(tmp_path / "run")
    for name in ("configs/t/a.json", "configs/.hidden", "images/t/a.png", "images/t/a.PNG", "images/t/notes.txt",
                 "grids/cases/t/a.png", "inputs/0123.png"):
        (folder.path / name).parent.mkdir(parents=True, exist_ok=True)
        (folder.path / name).write_bytes(b"-")
    (folder.path / "images" / "t" / "dir.png").mkdir()
    os.mkfifo(folder.path / "images" / "t" / "fifo.png")

    def path_by_path(tree: Path, pattern: str) -> set[str]:
        return {folder.relative(in_run(folder, p)) for p in tree.rglob(pattern) if p.is_file() or p.is_symlink()}

    for tree, pattern in [("configs", "*"), ("images", "*.png"), ("grids", "*"), ("inputs", "*"), ("absent", "*")]:
        assert regular_files(folder.path / tree)[1]  # no link: the one walk is complete
        assert bundle._files(folder, folder.path / tree, pattern) == path_by_path(folder.path / tree, pattern), tree
    assert bundle._files(folder, folder.path / "images", "*.png") == {"images/t/a.png"}

    (tmp_path / "elsewhere").mkdir()
    (folder.path / "configs" / "t" / "b.json").symlink_to(tmp_path / "elsewhere")
    assert not regular_files(folder.path / "configs")[1]
    with pytest.raises(PathEscapeError, match="b.json is a symbolic link"):
        bundle._files(folder, folder.path / "configs", "*")
