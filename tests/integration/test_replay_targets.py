"""``diffbench replay``'s -k is pytest's keyword expression, and what it takes as a bundle: a zip
re-made with directory entries, the folder a bundle was unzipped into, and a missing zip named as
one (FakePipeline runs in this process; every check here ends before a pipeline would load)."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from pytest_diffbench.cli.keywords import keyword_filter
from pytest_diffbench.cli.settings import CommandError
from pytest_diffbench.testing import DiffbenchRun, run_diffbench, use_fake_pipeline

from .test_replay_refusals import replay

TESTS = """
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_case(diffbench):
    diffbench.generate("a red cube")


@diffbench.sweep(seeds=[0], steps=2)
def test_other(diffbench):
    diffbench.generate("a blue cube")
"""
NODEIDS = ["test_gen.py::test_case[seed0-euler-2steps-cfg7.5]", "test_gen.py::test_case[seed1-euler-2steps-cfg7.5]",
           "test_gen.py::test_other[seed0-euler-2steps-cfg7.5]"]


@pytest.fixture(scope="module")
def bundled_run(shared_project) -> DiffbenchRun:
    """A run of :data:`TESTS` bundling every image, made once for the module."""
    with shared_project() as project:
        use_fake_pipeline(project.pytester)
        project.pytester.makepyfile(test_gen=TESTS)
        run = run_diffbench(project.pytester, "--diffbench-bundle-images=all", update="all")
        run.outcome.assert_outcomes(passed=3)
        return run


@pytest.fixture
def bundle(pytester: pytest.Pytester, bundled_run: DiffbenchRun, copy_run):
    """The bundle of :func:`bundled_run`, in this test's copy of its project."""
    return copy_run(bundled_run, pytester.path).folder.bundle


@pytest.mark.parametrize(("expressions", "chosen"), [
    (["test_case and seed0"], [0]),
    (["seed0 and not test_other"], [0]),
    (["TEST_CASE and (seed1 or cfg7.5) and not seed0"], [1]),
    (["not seed0"], [1]),
    (["test_gen.py::test_case[seed1-euler"], [1]),
    (["test_other", "seed1"], [1, 2]),  # several -k widen
    ([], [0, 1, 2]),
])
def test_k_is_pytest_s_keyword_expression_over_the_node_id(expressions, chosen) -> None:
    matches = keyword_filter(expressions)
    assert [nodeid for nodeid in NODEIDS if matches(nodeid)] == [NODEIDS[i] for i in chosen]


@pytest.mark.parametrize("expression", ["test_case and", "a b", "(seed0", "seed0(x=1)"])
def test_a_bad_k_expression_is_one_line(expression) -> None:
    with pytest.raises(CommandError) as raised:
        keyword_filter([expression])(NODEIDS[0])
    assert f"-k {expression!r}" in str(raised.value) and "\n" not in str(raised.value)


def test_replay_refuses_a_bad_expression_in_one_line_and_says_when_one_matches_nothing(bundle, capsys) -> None:
    status, out, err = replay(capsys, str(bundle), "-k", "test_case and")
    assert (status, out) == (2, "")
    assert err.startswith("diffbench: -k 'test_case and' is not a valid expression") and err.count("\n") == 1
    status, out, err = replay(capsys, str(bundle), "-k", "test_other and seed1")
    assert (status, out) == (2, "")
    assert err.startswith(f"diffbench: no case of {bundle} matches -k test_other and seed1 (its 3 cases: ")


def rezipped(source, target, *, top: str = "") -> None:
    """``source``'s files zipped again into ``target`` under the folder ``top``, with directory entries
    as ``zip -r`` makes them."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        names = old.namelist()
        for folder in sorted({top + name.rsplit("/", 1)[0] + "/" for name in names if "/" in name}):
            new.writestr(folder, b"")
        for name in names:
            new.writestr(top + name, old.read(name))


def test_a_bundle_zipped_again_with_directory_entries_or_unzipped_is_still_the_bundle(bundle, pytester, capsys) -> None:
    again, as_folder = pytester.path / "again.zip", pytester.path / "as_folder.zip"
    rezipped(bundle, again)
    rezipped(bundle, as_folder, top="unzipped/")  # zip -r as_folder.zip unzipped/
    unzipped = pytester.path / "unzipped"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(unzipped)
    for target in (again, as_folder, unzipped):
        # -k matching nothing: the bundle was read and matched its manifest, and nothing is generated
        status, out, err = replay(capsys, str(target), "-k", "nothing")
        assert (status, out) == (2, "")
        assert err.startswith(f"diffbench: no case of {target} matches -k nothing (its 3 cases: "), err


def test_a_changed_file_of_an_unzipped_bundle_is_named_as_corrupt(bundle, pytester, capsys) -> None:
    unzipped = pytester.path / "unzipped"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(unzipped)
    (unzipped / "results.csv").write_text("nodeid\n")
    (unzipped / "extra.txt").write_text("not in the manifest")
    status, out, err = replay(capsys, str(unzipped))
    assert (status, out) == (2, "")
    assert err == f"diffbench: {unzipped} is corrupt: extra.txt, results.csv do not match its manifest.json; " \
                  "replay an intact copy of the bundle\n"
    (unzipped / "extra.txt").unlink()
    status, _, err = replay(capsys, str(unzipped))
    assert status == 2 and "corrupt: results.csv does not match its manifest.json" in err


def test_a_missing_zip_a_folder_without_manifest_and_a_file_that_is_no_zip_are_named_for_what_they_are(
        bundle, pytester, capsys) -> None:
    status, out, err = replay(capsys, "nothere.zip")
    assert (status, out, err) == (2, "", f"diffbench: no bundle nothere.zip: {pytester.path / 'nothere.zip'} does not exist\n")
    folder = pytester.path / "somewhere"
    folder.mkdir()
    shutil.copy(bundle, folder / "copy.zip")
    status, out, err = replay(capsys, str(folder))
    assert (status, out) == (2, "")
    assert err.endswith(f"or pass a bundle: its diffbench-<run_id>.zip, or the folder it was unzipped into "
                        f"(it holds manifest.json, and {folder} does not)\n") and err.count("\n") == 1
    text = pytester.path / "notes.txt"
    text.write_text("no zip")
    status, out, err = replay(capsys, str(text))
    assert (status, out) == (2, "")
    assert err.startswith(f"diffbench: cannot read the bundle {text}: File is not a zip file") and err.count("\n") == 1
