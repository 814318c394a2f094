"""A diffbench case is stored by its node id, which pytest makes relative to the rootdir: cases of
test files outside the rootdir (node ids ``::test_x``) or one node id collected twice would share
one baseline, so they are collection errors, each named once."""

from __future__ import annotations

import pytest

CASE = 'import pytest_diffbench as diffbench\n\n\ndef test_x(diffbench):\n    diffbench.generate("{prompt}")\n'


def write(project, relative: str, source: str) -> None:
    path = project.path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


def test_cases_of_files_outside_the_rootdir_are_refused_naming_their_files(project) -> None:
    write(project, "proj/pytest.ini", "[pytest]\n")
    write(project, "other/test_z.py", CASE.format(prompt="a red cube"))
    write(project, "other2/test_w.py", CASE.format(prompt="a blue sphere"))
    write(project, "other2/test_plain.py", "def test_plain():\n    pass\n")
    outcome = project.run_plain("--diffbench", "--diffbench-lpips=off", "--rootdir=proj",
                                "other/test_z.py", "other2/test_w.py", "other2/test_plain.py")
    text = project.text(outcome)
    assert outcome.ret == pytest.ExitCode.INTERRUPTED, text
    outcome.assert_outcomes(errors=2)
    for path in (project.path / "other" / "test_z.py", project.path / "other2" / "test_w.py"):
        (line,) = [line for line in text.splitlines() if line.startswith(f"{path}::test_x: ")]
        assert "outside the rootdir" in line and "--rootdir" in line, line
    assert not project.baselines.exists() and not (project.path / "proj" / "baselines").exists()
    # the same files under the rootdir are cases of their own
    outcome = project.run_plain("--diffbench", "--diffbench-lpips=off", "--diffbench-update=all", "--rootdir=.",
                                "other/test_z.py", "other2/test_w.py")
    outcome.assert_outcomes(passed=2)


def test_a_node_id_collected_twice_is_refused_naming_it_once(project) -> None:
    project.write_tests(project.test())
    outcome = project.run_plain("--diffbench", "--diffbench-lpips=off", "--keep-duplicates", "test_gen.py", "test_gen.py")
    text = project.text(outcome)
    assert outcome.ret == pytest.ExitCode.INTERRUPTED, text
    (line,) = [line for line in text.splitlines() if "collected twice" in line]
    assert line.count("test_gen.py::test_case") == 1, line
    assert not project.baselines.exists()


def test_a_test_folder_linked_into_the_rootdir_is_inside_it(project) -> None:
    """The node id, which is relative to the rootdir, decides; not where a link leads."""
    write(project, "elsewhere/test_z.py", CASE.format(prompt="a red cube"))
    (project.path / "linked").symlink_to(project.path / "elsewhere")
    outcome = project.run_plain("--diffbench", "--diffbench-lpips=off", "--diffbench-update=all", "linked/test_z.py")
    outcome.assert_outcomes(passed=1)
