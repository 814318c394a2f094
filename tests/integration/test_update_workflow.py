"""A baseline workflow that says what it did, through ``pytest --diffbench`` in this process.

After an update the terminal lists what was created, refreshed, rewritten, left unchanged and
not written; a test whose new cases have no baselines while baselines of the same test went
unused says so; timing references are rewritten only with their image or on request
(``--diffbench-update-timing``), never as a side effect of ``--diffbench-update``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome

CASE = "seed0-euler-2steps-cfg7.5"


def lines_after(text: str, start: str) -> list[str]:
    """The terminal lines from the first one starting with ``start``, until pytest's next section."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    end = next((i for i in range(first + 1, len(lines)) if lines[i].startswith(("=", "diffbench: ", "note:", "WARNING",
                                                                             "create missing"))), len(lines))
    return lines[first:end]


# -- the listing after an update ---------------------------------------------------------------------


def test_an_update_lists_what_it_created_refreshed_left_unchanged_and_did_not_write(project) -> None:
    project.write_tests(project.test("test_a", sweep="seeds=[0, 1], steps=2"), project.test("test_b"))
    run = project.run(update="all")
    text = project.text(run.outcome)
    assert lines_after(text, "diffbench: baselines:") == [
        "diffbench: baselines: 3 created",
        f"  created:     test_gen.py::test_a[{CASE}]",
        "  created:     test_gen.py::test_a[seed1-euler-2steps-cfg7.5]",
        f"  created:     test_gen.py::test_b[{CASE}]",
    ]

    # One more seed (created), a changed prompt (refreshed), a broken sidecar (rewritten), the rest unchanged.
    project.write_tests(project.test("test_a", sweep="seeds=[0, 1, 2], steps=2"),
                        project.test("test_b", body='diffbench.generate("a blue cube")'),
                        project.test("test_c"))
    project.run(update="all")
    project.baseline_pair("test_c")[1].write_text("{", encoding="utf-8")
    project.write_tests(project.test("test_a", sweep="seeds=[0, 1, 2, 3], steps=2"),
                        project.test("test_b", body='diffbench.generate("a green cube")'),
                        project.test("test_c"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=6)
    assert lines_after(project.text(run.outcome), "diffbench: baselines:") == [
        "diffbench: baselines: 1 created, 1 refreshed, 1 rewritten, 3 unchanged",
        "  created:     test_gen.py::test_a[seed3-euler-2steps-cfg7.5]",
        f"  refreshed:   test_gen.py::test_b[{CASE}]",
        f"  rewritten:   test_gen.py::test_c[{CASE}]",
        f"  unchanged:   test_gen.py::test_a[{CASE}]",
        "  unchanged:   test_gen.py::test_a[seed1-euler-2steps-cfg7.5]",
        "  unchanged:   test_gen.py::test_a[seed2-euler-2steps-cfg7.5]",
        f"  the replaced pairs are kept in {run.folder.replaced_dir}",
    ]


@pytest.fixture(scope="module")
def two_tests_created(shared_project):
    """A run that created the baselines of test_a and test_b (one case each), made once for the
    module; each test changes its own copy (``copy_run``)."""
    with shared_project() as project:
        project.write_tests(project.test("test_a"), project.test("test_b"))
        run = project.run(update="all")
        run.outcome.assert_outcomes(passed=2)
        return run


def test_update_missing_says_which_failing_cases_it_did_not_write_and_why(project, two_tests_created, copy_run) -> None:
    copy_run(two_tests_created, project.path)
    project.write_tests(project.test("test_a", body='diffbench.generate("a blue cube")'), project.test("test_b"))
    run = project.run(update="missing")
    run.outcome.assert_outcomes(passed=1, failed=1)
    assert lines_after(project.text(run.outcome), "diffbench: baselines:") == [
        "diffbench: baselines: 1 unchanged, 1 not written",
        f"  unchanged:   test_gen.py::test_b[{CASE}]",
        f"  not written: test_gen.py::test_a[{CASE}]",
        "  not written: --diffbench-update=missing writes only missing and unreadable baselines; review the failures "
        "above, then refresh them with --diffbench-update",
    ]


def test_many_cases_of_one_kind_are_counted_not_named(project) -> None:
    project.write_tests(project.test("test_a", sweep="seeds=list(range(11)), steps=2"))
    run = project.run(update="all")
    assert lines_after(project.text(run.outcome), "diffbench: baselines:") == [
        "diffbench: baselines: 11 created",
        "  created:     11 cases (see baseline_action and outcome in results.csv)",
    ]


# -- timing is not ratcheted ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timed_run(shared_project):
    """The run that timed :func:`timed`'s baseline, made once for the module."""
    with shared_project() as project:
        project.write_ini(time_regression=0.5)
        project.write_tests(project.test("test_a"))
        project.fake(seconds_per_image=0.01)
        run = project.run(update="all")
        run.outcome.assert_outcomes(passed=1)
        return run


@pytest.fixture
def timed(project, timed_run, copy_run):
    """A project of one case whose baseline was timed at 0.01 s per image, gated at 50% slowdown
    (a copy of :func:`timed_run`; its FakePipeline still takes 0.01 s per image). Also the project
    with one baseline for the tests of other steps."""
    copy_run(timed_run, project.path)
    project.fake(seconds_per_image=0.01)
    return project


def test_a_run_without_update_lists_no_baselines(timed) -> None:
    assert "diffbench: baselines:" not in timed.text(timed.run().outcome)


def test_an_update_that_changes_nothing_writes_no_byte(timed) -> None:
    before = timed.snapshot(timed.baselines)
    for args, update in (((), "all"), ((), "missing"), (("--diffbench-update-timing",), None),
                         (("--diffbench-update-timing",), "all")):
        run = timed.run(*args, update=update)
        run.outcome.assert_outcomes(passed=1)
        assert run.results[0].baseline_action is BaselineAction.NONE
        assert timed.snapshot(timed.baselines) == before, (args, update)
        assert lines_after(timed.text(run.outcome), "diffbench: baselines:")[0] == "diffbench: baselines: 1 unchanged"


@pytest.mark.parametrize("update", ["all", "missing"])
def test_a_slower_case_under_update_keeps_the_stored_timing_and_says_how_to_accept_it(timed, update) -> None:
    before = timed.snapshot(timed.baselines)
    timed.fake(seconds_per_image=0.05)
    run = timed.run(update=update)
    run.outcome.assert_outcomes(failed=1)
    (row,) = run.results
    assert (row.outcome, row.baseline_action, row.baseline_seconds_per_image) == (Outcome.FAILED_SPEED, BaselineAction.NONE, 0.01)
    assert timed.snapshot(timed.baselines) == before
    text = timed.text(run.outcome)
    assert "if the new speed is expected, accept it with: pytest --diffbench --diffbench-update-timing " \
           "(--diffbench-update keeps the baseline's timing)" in text
    assert f"  not written: test_gen.py::test_a[{CASE}]" in text
    why = {"all": "1 slower than the baseline only: --diffbench-update does not rewrite a timing reference alone; "
                  "if the new speed is expected, accept it with --diffbench-update-timing",
           "missing": "--diffbench-update=missing writes only missing and unreadable baselines"}[update]
    assert f"  not written: {why}" in text


def test_an_update_says_why_it_did_not_write_each_kind_of_failing_case(timed) -> None:
    timed.write_tests(timed.test("test_a"),
                      timed.test("test_budget", decorators=["@diffbench.tolerance(max_seconds=0.03)"]),
                      timed.test("test_raises", sweep="seeds=[0, 1], steps=2",
                                 body='diffbench.generate("a red cube")\nif diffbench.seed == 1:\n    raise RuntimeError("boom")'),
                      timed.test("test_nogen", body="pass"))
    timed.run(update="all")
    timed.fake(seconds_per_image=0.05)
    run = timed.run(update="all")
    run.outcome.assert_outcomes(failed=5)
    why = [line for line in timed.text(run.outcome).splitlines() if line.startswith("  not written:") and "::" not in line]
    assert why == [
        "  not written: 2 errored (the test raised or never called diffbench.generate(), or a required metric could "
        "not run): there is no checked output to write; fix the error shown above",
        "  not written: 1 over an absolute budget (diffbench_max_seconds or diffbench_max_vram_mb): it fails with any "
        "baseline; raise the budget or make the case fit it",
        "  not written: 2 slower than the baseline only: --diffbench-update does not rewrite a timing reference alone; "
        "if the new speed is expected, accept it with --diffbench-update-timing",
    ]

    # Errors alone: no word about timing.
    timed.fake(seconds_per_image=0.01)
    text = timed.text(timed.run(update="all").outcome)
    assert "timing reference" not in text and "absolute budget" not in text
    assert "  not written: 2 errored (" in text


BLACK_FOR_NOTHING = """
import pytest
from PIL import Image

from pytest_diffbench.testing import FakePipeline


class BlackPipeline(FakePipeline):
    \"\"\"A black output (an fp16 VAE overflow) for the prompt "nothing".\"\"\"

    def draw(self, sampler, seed, call_kwargs):
        picture = super().draw(sampler, seed, call_kwargs)
        return Image.new("RGB", picture.size, (0, 0, 0)) if call_kwargs.get("prompt") == "nothing" else picture


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return BlackPipeline()
"""


def test_an_update_says_an_invalid_output_is_never_written(project) -> None:
    project.pytester.makeconftest(BLACK_FOR_NOTHING)
    project.write_tests(project.test("test_a"), project.test("test_black", body='diffbench.generate("nothing")'))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1, failed=1)
    why = [line for line in project.text(run.outcome).splitlines() if line.startswith("  not written:") and "::" not in line]
    assert why == ["  not written: 1 with an invalid output (flat, non-finite or too small): such an output never becomes "
                   "a baseline; see its reason above"]


def test_update_timing_rewrites_the_timing_and_keeps_the_image(timed) -> None:
    png, sidecar = timed.baseline_pair("test_a")
    image = png.read_bytes()
    old = timed.read_json(sidecar)
    timed.fake(seconds_per_image=0.05)
    run = timed.run("--diffbench-update-timing")
    run.outcome.assert_outcomes(passed=1)
    (row,) = run.results
    assert (row.outcome, row.baseline_action, row.baseline_seconds_per_image) == (Outcome.PASSED, BaselineAction.RETIMED, 0.05)
    assert row.message == ("timing reference rewritten (--diffbench-update-timing): 0.01 s -> 0.05 s per image; "
                           "the image is the baseline's")
    assert png.read_bytes() == image
    new = timed.read_json(sidecar)
    assert new["measurement"]["seconds_per_image"] == 0.05
    assert {k: v for k, v in new.items() if k != "measurement"} == {k: v for k, v in old.items() if k != "measurement"}
    assert sorted(p.name for p in run.folder.replaced_dir.rglob("*") if p.is_file()) == [f"{CASE}.json", f"{CASE}.png"]
    assert lines_after(timed.text(run.outcome), "diffbench: baselines:") == [
        "diffbench: baselines: 1 retimed",
        f"  retimed:     test_gen.py::test_a[{CASE}]",
        f"  the replaced pairs are kept in {run.folder.replaced_dir}",
    ]
    # The next run passes against the new timing and writes nothing.
    after = timed.snapshot(timed.baselines)
    timed.run().outcome.assert_outcomes(passed=1)
    assert timed.snapshot(timed.baselines) == after


def test_an_image_change_rewrites_image_and_timing_together(timed) -> None:
    png, sidecar = timed.baseline_pair("test_a")
    image = png.read_bytes()
    timed.fake(seconds_per_image=0.05, drift=0.5)
    run = timed.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    assert run.results[0].baseline_action is BaselineAction.REFRESHED
    assert png.read_bytes() != image
    assert timed.read_json(sidecar)["measurement"]["seconds_per_image"] == 0.05


# -- baselines a changed sweep left behind --------------------------------------------------------------

STEPS4 = "seeds=[0, 1, 2], steps=4"
STEPS8 = "seeds=[0, 1, 2], steps=8"
OLD = ["seed0-euler-4steps-cfg7.5", "seed1-euler-4steps-cfg7.5", "seed2-euler-4steps-cfg7.5"]


def hint_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "were not used" in line or "was not used" in line]


def removal(text: str) -> list[str]:
    """The command the hint advises to remove the unused baselines, split as a shell splits it."""
    found = re.search(r"remove them with: (.*)$", text, flags=re.MULTILINE)
    assert found is not None, text
    return shlex.split(found.group(1))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def git_project_created(shared_project):
    """A git work tree whose test module lies in sub/ (the rootdir above it), after the run that
    created its STEPS4 baselines, made once for the module; each test changes its own copy."""
    with shared_project() as project:
        (project.path / "sub").mkdir()
        project.write_ini()  # the rootdir is the project, above the folder pytest runs in
        project.write_tests(project.test("test_steps", sweep=STEPS4), module="sub/test_gen")
        git(project.path, "init", "-q")
        return project.run(update="all")


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "untracked"])
def test_the_removal_advice_works_from_a_subfolder_in_a_git_project(project, monkeypatch, git_project_created, copy_run,
                                                                    committed) -> None:
    copy_run(git_project_created, project.path)
    sub = project.path / "sub"
    if committed:
        git(project.path, "add", "baselines")
        git(project.path, "commit", "-q", "-m", "baselines")
    project.write_tests(project.test("test_steps", sweep=STEPS8), module="sub/test_gen")
    monkeypatch.chdir(sub)
    text = project.text(project.run().outcome)
    command = removal(text)
    assert command[:command.index("--") + 1] == (["git", "rm", "-q", "--"] if committed else ["rm", "--"])
    subprocess.run(command, cwd=sub, check=True, capture_output=True)
    folder = project.baselines / project.PIN / "sub" / "test_gen" / "test_steps"
    assert not any((folder / f"{name}{suffix}").exists() for name in OLD for suffix in (".png", ".json"))
    if committed:  # staged as deletions, ready to commit
        assert sorted(git(project.path, "diff", "--cached", "--name-only").split()) == sorted(
            f"baselines/{project.PIN}/sub/test_gen/test_steps/{name}{suffix}" for name in OLD for suffix in (".png", ".json"))


@pytest.fixture(scope="module")
def steps4_created(shared_project):
    """A run that created the baselines of test_steps's STEPS4 sweep and of test_other, made once
    for the module; each test changes the sweep in its own copy (``copy_run``)."""
    with shared_project() as project:
        project.write_tests(project.test("test_steps", sweep=STEPS4), project.test("test_other"))
        run = project.run(update="all")
        run.outcome.assert_outcomes(passed=4)
        return run


def test_new_cases_without_baselines_name_the_baselines_of_the_test_no_case_uses(project, steps4_created, copy_run) -> None:
    copy_run(steps4_created, project.path)
    project.write_tests(project.test("test_steps", sweep=STEPS8), project.test("test_other"))
    run = project.run()
    run.outcome.assert_outcomes(passed=1, failed=3)
    text = project.text(run.outcome)
    where = (project.baselines / project.PIN / "test_gen" / "test_steps").resolve()
    assert hint_lines(text) == [
        f"diffbench: test_gen.py::test_steps: 3 new cases without baselines; 3 baselines of this test were not used "
        f"({', '.join(OLD)}): did a sampler or step count change?"]
    assert f"review them in {where}/; remove them with: rm -- " in text  # not a git work tree: plain rm
    assert removal(text) == ["rm", "--"] + [f"{where}/{name}{suffix}" for name in OLD for suffix in (".png", ".json")]

    # -k selecting one new case: the hint counts the test's whole sweep, not what ran.
    run = project.run("-k", "test_steps and seed0")
    assert hint_lines(project.text(run.outcome)) == [
        f"diffbench: test_gen.py::test_steps: 1 new case without baselines; 3 baselines of this test were not used "
        f"({', '.join(OLD)}): did a sampler or step count change?"]

    # --diffbench-update=missing creates the new ones and says the old ones remain.
    run = project.run(update="missing")
    text = project.text(run.outcome)
    assert hint_lines(text) == [
        f"diffbench: test_gen.py::test_steps: 3 new baselines created; 3 baselines of this test were not used "
        f"({', '.join(OLD)}): did a sampler or step count change?"]
    assert f"  the old baselines remain; review them in {where}/" in text
    assert all((project.baselines / project.PIN / "test_gen" / "test_steps" / f"{name}.png").is_file() for name in OLD)


def test_a_stray_file_without_its_pair_is_no_unused_baseline_and_is_named_apart(project, steps4_created, copy_run) -> None:
    copy_run(steps4_created, project.path)
    folder = project.baselines / project.PIN / "test_gen" / "test_steps"
    (folder / "extra.png").write_bytes((folder / f"{OLD[0]}.png").read_bytes())
    (folder / "notes.json").write_text("{}", encoding="utf-8")
    (folder / "NOTES.txt").write_text("mine", encoding="utf-8")
    project.write_tests(project.test("test_steps", sweep=STEPS8), project.test("test_other"))
    text = project.text(project.run().outcome)
    assert hint_lines(text) == [
        f"diffbench: test_gen.py::test_steps: 3 new cases without baselines; 3 baselines of this test were not used "
        f"({', '.join(OLD)}): did a sampler or step count change?"]
    assert "  also there, without the other half of a pair (so no baseline): extra.png, notes.json" in text
    remove = next(line for line in text.splitlines() if "remove them with:" in line)
    assert "extra" not in remove and "notes" not in remove


def test_many_unused_baselines_are_counted_with_the_tool_that_removes_them(project) -> None:
    many = "seeds=list(range(11)), steps=4"
    project.write_tests(project.test("test_steps", sweep=many))
    project.run(update="all")
    project.write_tests(project.test("test_steps", sweep=many.replace("steps=4", "steps=8")))
    text = project.text(project.run("-k", "seed0").outcome)
    where = (project.baselines / project.PIN / "test_gen" / "test_steps").resolve()
    assert f"  review them in {where}/ and remove the unused ones with rm" in text.splitlines()
    git(project.path, "init", "-q")
    git(project.path, "add", "baselines")
    git(project.path, "commit", "-q", "-m", "baselines")
    text = project.text(project.run("-k", "seed0").outcome)
    assert f"  review them in {where}/ and remove the unused ones with git rm" in text.splitlines()


@pytest.mark.parametrize("args", [("-k", "seed0"), ("test_gen.py::test_steps[seed3-euler-4steps-cfg7.5]",), ()],
                         ids=["k", "nodeid", "all"])
def test_no_hint_when_every_stored_baseline_belongs_to_the_sweep(project, steps4_created, copy_run, args) -> None:
    copy_run(steps4_created, project.path)
    project.write_tests(project.test("test_steps", sweep="seeds=[0, 1, 2, 3], steps=4"), project.test("test_other"))  # one new seed
    run = project.run(*args)
    assert hint_lines(project.text(run.outcome)) == []


def sized(sweep: str) -> str:
    """A diffbench test with a pytest parametrization beside its sweep (its node ids hold both)."""
    return f"""import pytest


@pytest.mark.parametrize("size", [1])
@diffbench.sweep({sweep})
def test_steps(diffbench, size):
    diffbench.generate("a red cube")
"""


def test_no_hint_when_another_parametrization_names_the_cases(project) -> None:
    project.write_tests(sized(STEPS4))
    project.run(update="all").outcome.assert_outcomes(passed=3)
    project.write_tests(sized(STEPS8))
    run = project.run()
    run.outcome.assert_outcomes(failed=3)
    assert hint_lines(project.text(run.outcome)) == []


def test_the_hint_under_xdist_comes_from_the_workers_sweeps(project, steps4_created, copy_run) -> None:
    copy_run(steps4_created, project.path)
    project.write_tests(project.test("test_steps", sweep=STEPS8), project.test("test_other"))
    run = project.run("-n", "2", "-k", "seed1")
    assert hint_lines(project.text(run.outcome)) == [
        f"diffbench: test_gen.py::test_steps: 1 new case without baselines; 3 baselines of this test were not used "
        f"({', '.join(OLD)}): did a sampler or step count change?"]


# -- other steps that were silent -------------------------------------------------------------------------


def test_a_run_without_cases_says_it_wrote_no_run_folder(timed) -> None:
    text = timed.text(timed.run("-k", "no_such_test").outcome)
    assert "diffbench: no diffbench case ran, so no run folder was written (latest still names the last run that " \
           "had cases)" in text


def test_update_timing_implies_diffbench_and_is_no_ini_key(timed) -> None:
    outcome = timed.run_plain("--diffbench-update-timing", "--diffbench-lpips=off")
    outcome.assert_outcomes(passed=1)
    assert "diffbench: baselines: 1 unchanged" in timed.text(outcome)
    help_text = timed.text(timed.run_plain("--help"))
    assert "--diffbench-update-timing" in help_text and "diffbench_update_timing" not in help_text


def test_cases_missing_under_this_pin_name_the_pin_that_has_their_baselines(project, two_tests_created, copy_run) -> None:
    copy_run(two_tests_created, project.path)
    project.write_ini(pin="gpu-{dtype}")
    run = project.run()
    run.outcome.assert_outcomes(failed=2)
    assert ("diffbench: 2 cases without baselines under pin gpu-float32 have baselines under another pin: "
            "cpu-float32 (2); run on the device and dtype they were made with (diffbench_pin names the pin folder), "
            "or create baselines for this pin with --diffbench-update=missing") in project.text(run.outcome)
    # Cases new everywhere: no such line.
    project.write_ini()
    project.write_tests(project.test("test_a"), project.test("test_c"))
    assert "under another pin" not in project.text(project.run().outcome)
