"""Case paths through pytest (issue 9): ids that clean alike keep their own baselines and images,
long ids run like short ones and never cost the run its results, and two cases that would share
files are a collection error naming both.

Every scenario is a test module of its own in one of two projects run once for this module (the
cases of different modules never share a path), and each test reads its own module's cases."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest

from pytest_diffbench.store.paths import MAX_SEGMENT, case_path
from pytest_diffbench.testing import DiffbenchRun

PIN = "cpu-float32"

ISSUE_PROMPTS = ["a red circle, on a blue background", "a red circle on a blue background"]


def parametrized(values: list[str], sweep: bool = True) -> str:
    """A diffbench test parametrized over ``values``, each of them its prompt; with ``sweep``, a
    one-case sweep too (else its ids are the values alone)."""
    return (f"@pytest.mark.parametrize('prompt', {values!r})\n" + ("@diffbench.sweep(seeds=0, steps=2)\n" if sweep else "")
            + "def test_prompt(diffbench, prompt):\n    diffbench.generate(prompt)\n")


#: pytest parametrize values that clean alike, by scenario (each test function's cases keep their own files).
CLEAN_ALIKE = {
    "issue-comma": ISSUE_PROMPTS,
    "separators": ["a/b", "a_b", "a b"],
    "trailing-dot-and-underscore": ["red.", "red", "red_"],
    "non-ascii-and-its-escape": ["caf\u00e9", "caf\\xe9"],
}
#: Sweep values (of the extra axis ``style``) that clean alike.
SWEEP_ALIKE = {
    "issue-x-and-x.": ["x", "x."],
    "several-trailing-dots": ["v1.", "v1..", "v1"],
    "number-like": ["0.5", "0.5."],
}
#: Values a shell or Windows would misread as something else than a file name.
MISREAD = {
    "leading-dash": ["-rf", "rf"],
    "windows-device-names": ["nul", "CON", "aux.txt", "com1"],
}
LONG_IDS = {
    "issue-242": "p" * 242,
    "issue-300": "q" * 300,
    "utf8-255-bytes": "\u00e9" * 127 + "e",
    "three-byte-utf8": "\u2615" * 85,
}
LONG_NAME = "test_" + "f" * 250


def module_of(kind: str, name: str) -> str:
    """The test module of :func:`paths_runs`'s project that holds scenario ``name`` of ``kind``."""
    return f"test_{kind}_{re.sub(r'[^a-z0-9]+', '_', name).strip('_')}"


def modules(project) -> dict[str, tuple[str, ...]]:
    """Every scenario of this file that runs cases, each its own test module (module name: its tests)."""
    found = {module_of("param", name): ("import pytest\n\n" + parametrized(values),) for name, values in CLEAN_ALIKE.items()}
    found |= {module_of("sweep", name): (project.test("test_style", sweep=f"seeds=0, steps=2, style={values!r}"),)
              for name, values in SWEEP_ALIKE.items()}
    found |= {module_of("misread", name): ("import pytest\n\n" + parametrized(values, sweep=False),) for name, values in MISREAD.items()}
    found |= {module_of("long", name): ("import pytest\n\n"
                                        f"@pytest.mark.parametrize('prompt', [pytest.param('a long one', id={long_id!r})])\n"
                                        "@diffbench.sweep(seeds=0, steps=2)\n"
                                        "def test_long(diffbench, prompt):\n    diffbench.generate(prompt)\n",
                                        project.test("test_short_a"), project.test("test_short_b"))
              for name, long_id in LONG_IDS.items()}
    found[module_of("name", "long")] = (project.test(LONG_NAME), project.test("test_short"))
    return found


@dataclasses.dataclass
class PathsRuns:
    """The runs of one project holding every scenario (see :func:`paths_runs`)."""

    root: Path
    created: DiffbenchRun  # --diffbench-update=missing on a project without baselines
    again: DiffbenchRun  # the same cases again, without update
    updated: DiffbenchRun  # --diffbench-update=all
    before: dict  # the baselines' files before ``updated``
    after: dict  # and after it
    count: int  # the cases of all scenarios

    def rows(self, run: DiffbenchRun, module: str) -> list:
        """The run's results of one scenario's module, by node id."""
        return [r for r in run.results if r.nodeid.startswith(f"{module}.py::")]


@pytest.fixture(scope="module")
def paths_runs(shared_project) -> PathsRuns:
    """One project holding every scenario of this file that runs cases, each in its own test module
    (so no two scenarios' cases can share a path), run three times once for the module: created
    (--diffbench-update=missing), run again, updated (--diffbench-update=all). Each test reads its
    own module's cases."""
    with shared_project() as project:
        project.fake(extra_keywords=["style"])  # the sweep scenarios' extra axis
        for module, tests in modules(project).items():
            project.write_tests(*tests, module=module)
        created = project.run(update="missing")
        again = project.run()  # before the fix, one of each pair was stale here, and flipped on every update
        before = project.snapshot(project.baselines)
        updated = project.run(update="all")  # nothing to refresh: no case overwrites another's baseline
        return PathsRuns(project.path, created, again, updated, before, project.snapshot(project.baselines),
                         len(created.results))


def files_of(results, run, root) -> tuple[set, set]:
    """(baseline PNGs, output images) the cases of ``results`` (of ``run``) name."""
    baselines = {root / r.baseline_path for r in results}
    outputs = {run.folder.image(case_path(r.nodeid)) for r in results}
    return baselines, outputs


def assert_each_case_keeps_its_files(runs: PathsRuns, module: str, count: int) -> None:
    """The ``count`` cases of ``module`` each keep their own baseline and output image, pass when
    run again, and an update refreshes none of them."""
    created = runs.rows(runs.created, module)
    assert [r.baseline_action.value for r in created] == ["created"] * count
    assert [r.outcome.value for r in created] == ["passed"] * count
    assert runs.created.outcome.ret == 0, runs.created.outcome.stdout.str()
    baselines, outputs = files_of(created, runs.created, runs.root)
    assert len(baselines) == len(outputs) == count
    assert all(p.is_file() for p in baselines | outputs)
    assert len(list((runs.root / "baselines" / PIN / module).rglob("*.png"))) == count
    assert len(list((runs.root / "baselines").rglob("*.png"))) == runs.count  # no scenario's case wrote elsewhere
    again = runs.rows(runs.again, module)
    assert [r.outcome.value for r in again] == ["passed"] * count
    assert runs.again.outcome.ret == 0, runs.again.outcome.stdout.str()
    updated = runs.rows(runs.updated, module)
    assert [r.outcome.value for r in updated] == ["passed"] * count
    assert not {r.baseline_action.value for r in updated} & {"created", "refreshed", "rewritten"}
    assert runs.after == runs.before


@pytest.mark.parametrize("name", list(CLEAN_ALIKE))
def test_parametrize_values_that_clean_alike_keep_their_own_baselines(paths_runs, name) -> None:
    assert_each_case_keeps_its_files(paths_runs, module_of("param", name), len(CLEAN_ALIKE[name]))


@pytest.mark.parametrize("name", list(SWEEP_ALIKE))
def test_sweep_values_that_clean_alike_keep_their_own_baselines(paths_runs, name) -> None:
    assert_each_case_keeps_its_files(paths_runs, module_of("sweep", name), len(SWEEP_ALIKE[name]))


@pytest.mark.parametrize("name", list(LONG_IDS))
def test_a_long_id_runs_like_a_short_one_and_keeps_the_runs_record(paths_runs, name) -> None:
    module = module_of("long", name)
    for run, update, outcome in ((paths_runs.created, "missing", "missing-baseline"), (paths_runs.again, None, "passed")):
        text = run.outcome.stdout.str() + "\n" + run.outcome.stderr.str()
        assert run.outcome.ret == 0, text
        assert "File name too long" not in text and "INTERNALERROR" not in text
        results = paths_runs.rows(run, module)
        assert [r.nodeid.split("::")[1].split("[")[0] for r in results] == ["test_long", "test_short_a", "test_short_b"]
        assert [r.outcome.value for r in results] == [outcome] * 3 if update is None else True
        assert f"diffbench: {paths_runs.count} cases:" in text  # this module's 3 among them
        assert run.folder.summary.is_file() and run.folder.report.is_file()
        long_case = case_path(results[0].nodeid)
        assert max(len(part.encode()) for part in long_case.split("/")) <= MAX_SEGMENT
        assert run.folder.image(long_case).is_file()
    assert not [line for line in text.splitlines() if line.startswith("WARNING")]


def test_a_long_test_function_name_is_capped_too(paths_runs) -> None:
    run = paths_runs.created
    assert run.outcome.ret == 0, run.outcome.stdout.str()
    results = paths_runs.rows(run, module_of("name", "long"))
    assert [r.nodeid.split("::")[1].split("[")[0] for r in results] == [LONG_NAME, "test_short"]
    assert [r.baseline_action.value for r in results] == ["created", "created"]
    assert all(len(p.name) <= MAX_SEGMENT + len(".json") for p in (paths_runs.root / "baselines").rglob("*"))


def forged(original: str) -> str:
    """A clean id spelled like the path of ``original``'s cleaned form."""
    return f"{original.rstrip('.')}-{hashlib.sha256(original.encode()).hexdigest()[:8]}"


#: Sources whose two cases would share files: (source, the earlier case, the later one, whether the
#: two differ in letter case only).
SHARING = {
    "id-spelled-like-a-hashed-one": (parametrized(["x.", forged("x.")], sweep=False), "test_prompt[x.]",
                                     f"test_prompt[{forged('x.')}]", False),
    "case-only-parameter": (parametrized(["Red", "red"], sweep=False), "test_prompt[Red]", "test_prompt[red]", True),
    "case-only-function-name": ("@diffbench.sweep(seeds=0, steps=2)\ndef test_Shape(diffbench):\n    diffbench.generate('a')\n\n\n"
                                "@diffbench.sweep(seeds=0, steps=2)\ndef test_shape(diffbench):\n    diffbench.generate('a')\n",
                                "test_Shape[", "test_shape[", True),
}


@pytest.fixture(scope="module")
def sharing_runs(shared_project) -> tuple[Path, pytest.RunResult, pytest.RunResult]:
    """(the project, a ``--diffbench`` run, a plain run) of one project holding each :data:`SHARING`
    source in its own module beside a plain test, made once for the module: each module's error
    is its own line, so one run serves every test."""
    with shared_project() as project:
        for name, (source, *_) in SHARING.items():
            project.write_tests("import pytest\n\n" + source + "\n\ndef test_plain():\n    pass\n", module=module_of("sharing", name))
        return project.path, project.run_plain("--diffbench", "--diffbench-lpips=off"), project.run_plain()


@pytest.mark.parametrize("name", list(SHARING))
def test_cases_that_would_share_files_are_a_collection_error_naming_both(sharing_runs, name) -> None:
    _, earlier, later, letter_case = SHARING[name]
    root, outcome, plain = sharing_runs
    module = module_of("sharing", name)
    text = outcome.stdout.str() + "\n" + outcome.stderr.str()
    assert outcome.ret == pytest.ExitCode.INTERRUPTED, text
    # one collection error, this module's
    assert [line.split(" - ")[0].split("::")[0] for line in outcome.stdout.lines if line.startswith(f"ERROR {module}.py")] == [
        f"ERROR {module}.py"], text
    (line,) = [line for line in text.splitlines() if "diffbench would store this case's baseline" in line and f"{module}.py::" in line]
    assert f"{module}.py::{earlier}" in line and f"{module}.py::{later}" in line
    assert ("letter case aside" in line) == letter_case
    assert "another id" in line
    assert not (root / "baselines").exists()
    # without --diffbench nothing is written, so nothing is refused
    assert plain.ret == 0


@pytest.mark.parametrize("name", list(MISREAD))
def test_names_a_shell_or_windows_misreads_are_never_file_names(paths_runs, name) -> None:
    module = module_of("misread", name)
    assert_each_case_keeps_its_files(paths_runs, module, len(MISREAD[name]))
    names = [path.name for path in (paths_runs.root / "baselines" / PIN / module / "test_prompt").iterdir()]
    assert names and not [name for name in names if name.startswith("-") or
                          name.split(".")[0].upper() in {"NUL", "CON", "AUX", "COM1"}]
