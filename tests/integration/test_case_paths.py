"""Case paths through pytest (issue 9): ids that clean alike keep their own baselines and images,
long ids run like short ones and never cost the run its results, and two cases that would share
files are a collection error naming both."""

from __future__ import annotations

import hashlib
import json

import pytest

from pytest_diffbench.store.paths import MAX_SEGMENT, case_path
from pytest_diffbench.testing import FAKE_PIPELINE_ENV

ISSUE_PROMPTS = ["a red circle, on a blue background", "a red circle on a blue background"]


def parametrized(values: list[str], sweep: bool = True) -> str:
    """A diffbench test parametrized over ``values``, each of them its prompt; with ``sweep``, a
    one-case sweep too (else its ids are the values alone)."""
    return (f"@pytest.mark.parametrize('prompt', {values!r})\n" + ("@diffbench.sweep(seeds=0, steps=2)\n" if sweep else "")
            + "def test_prompt(diffbench, prompt):\n    diffbench.generate(prompt)\n")


def files_of(run, project) -> tuple[set, set]:
    """(baseline PNGs, output images) the run's cases name."""
    baselines = {project.path / r.baseline_path for r in run.results}
    outputs = {run.folder.image(case_path(r.nodeid)) for r in run.results}
    return baselines, outputs


def assert_each_case_keeps_its_files(project, count: int) -> None:
    created = project.run(update="missing")
    assert created.outcome.ret == 0, project.text(created.outcome)
    assert [r.baseline_action.value for r in created.results] == ["created"] * count
    baselines, outputs = files_of(created, project)
    assert len(baselines) == len(outputs) == count
    assert all(p.is_file() for p in baselines | outputs)
    assert len(list(project.baselines.rglob("*.png"))) == count
    again = project.run()  # before the fix, one of each pair was stale here, and flipped on every update
    assert again.outcome.ret == 0, project.text(again.outcome)
    assert [r.outcome.value for r in again.results] == ["passed"] * count
    before = project.snapshot(project.baselines)
    updated = project.run(update="all")  # nothing to refresh: no case overwrites another's baseline
    assert [r.outcome.value for r in updated.results] == ["passed"] * count
    assert not {r.baseline_action.value for r in updated.results} & {"created", "refreshed", "rewritten"}
    assert project.snapshot(project.baselines) == before


@pytest.mark.parametrize("values", [
    pytest.param(ISSUE_PROMPTS, id="issue-comma"),
    pytest.param(["a/b", "a_b", "a b"], id="separators"),
    pytest.param(["red.", "red", "red_"], id="trailing-dot-and-underscore"),
    pytest.param(["caf\u00e9", "caf\\xe9"], id="non-ascii-and-its-escape"),
])
def test_parametrize_values_that_clean_alike_keep_their_own_baselines(project, values) -> None:
    project.write_tests("import pytest\n\n" + parametrized(values))
    assert_each_case_keeps_its_files(project, len(values))


@pytest.mark.parametrize("values", [
    pytest.param(["x", "x."], id="issue-x-and-x."),
    pytest.param(["v1.", "v1..", "v1"], id="several-trailing-dots"),
    pytest.param(["0.5", "0.5."], id="number-like"),
])
def test_sweep_values_that_clean_alike_keep_their_own_baselines(project, values) -> None:
    project.monkeypatch.setenv(FAKE_PIPELINE_ENV, json.dumps({"extra_keywords": ["style"]}))
    project.write_tests(project.test("test_style", sweep=f"seeds=0, steps=2, style={values!r}"))
    assert_each_case_keeps_its_files(project, len(values))


LONG_IDS = {
    "issue-242": "p" * 242,
    "issue-300": "q" * 300,
    "utf8-255-bytes": "\u00e9" * 127 + "e",
    "three-byte-utf8": "\u2615" * 85,
}


@pytest.mark.parametrize("long_id", list(LONG_IDS.values()), ids=list(LONG_IDS))
def test_a_long_id_runs_like_a_short_one_and_keeps_the_runs_record(project, long_id) -> None:
    project.write_tests(
        "import pytest\n\n"
        f"@pytest.mark.parametrize('prompt', [pytest.param('a long one', id={long_id!r})])\n"
        "@diffbench.sweep(seeds=0, steps=2)\n"
        "def test_long(diffbench, prompt):\n    diffbench.generate(prompt)\n",
        project.test("test_short_a"), project.test("test_short_b"))
    for update, outcome in (("missing", "missing-baseline"), (None, "passed")):
        run = project.run(update=update)
        text = project.text(run.outcome)
        assert run.outcome.ret == 0, text
        assert "File name too long" not in text and "INTERNALERROR" not in text
        results = run.results
        assert [r.nodeid.split("::")[1].split("[")[0] for r in results] == ["test_long", "test_short_a", "test_short_b"]
        assert [r.outcome.value for r in results] == [outcome] * 3 if update is None else True
        assert "diffbench: 3 cases:" in text
        assert run.folder.summary.is_file() and run.folder.report.is_file()
        long_case = case_path(results[0].nodeid)
        assert max(len(part.encode()) for part in long_case.split("/")) <= MAX_SEGMENT
        assert run.folder.image(long_case).is_file()
    assert not [line for line in text.splitlines() if line.startswith("WARNING")]


def test_a_long_test_function_name_is_capped_too(project) -> None:
    name = "test_" + "f" * 250
    project.write_tests(project.test(name), project.test("test_short"))
    run = project.run(update="missing")
    assert run.outcome.ret == 0, project.text(run.outcome)
    assert [r.baseline_action.value for r in run.results] == ["created", "created"]
    assert all(len(p.name) <= MAX_SEGMENT + len(".json") for p in project.baselines.rglob("*"))


def forged(original: str) -> str:
    """A clean id spelled like the path of ``original``'s cleaned form."""
    return f"{original.rstrip('.')}-{hashlib.sha256(original.encode()).hexdigest()[:8]}"


@pytest.mark.parametrize("source, earlier, later, letter_case", [
    pytest.param(parametrized(["x.", forged("x.")], sweep=False), "test_prompt[x.]", f"test_prompt[{forged('x.')}]", False,
                 id="id-spelled-like-a-hashed-one"),
    pytest.param(parametrized(["Red", "red"], sweep=False), "test_prompt[Red]", "test_prompt[red]", True, id="case-only-parameter"),
    pytest.param("@diffbench.sweep(seeds=0, steps=2)\ndef test_Shape(diffbench):\n    diffbench.generate('a')\n\n\n"
                 "@diffbench.sweep(seeds=0, steps=2)\ndef test_shape(diffbench):\n    diffbench.generate('a')\n",
                 "test_Shape[", "test_shape[", True, id="case-only-function-name"),
])
def test_cases_that_would_share_files_are_a_collection_error_naming_both(project, source, earlier, later, letter_case) -> None:
    project.write_tests("import pytest\n\n" + source + "\n\ndef test_plain():\n    pass\n")
    outcome = project.run_plain("--diffbench", "--diffbench-lpips=off")
    text = project.text(outcome)
    assert outcome.ret == pytest.ExitCode.INTERRUPTED, text
    outcome.assert_outcomes(errors=1)
    line = next(line for line in text.splitlines() if "diffbench would store this case's baseline" in line)
    assert f"test_gen.py::{earlier}" in line and f"test_gen.py::{later}" in line
    assert ("letter case aside" in line) == letter_case
    assert "another id" in line
    assert not project.baselines.exists()
    # without --diffbench nothing is written, so nothing is refused
    assert project.run_plain().ret == 0


@pytest.mark.parametrize("values", [
    pytest.param(["-rf", "rf"], id="leading-dash"),
    pytest.param(["nul", "CON", "aux.txt", "com1"], id="windows-device-names"),
])
def test_names_a_shell_or_windows_misreads_are_never_file_names(project, values) -> None:
    project.write_tests("import pytest\n\n" + parametrized(values, sweep=False))
    assert_each_case_keeps_its_files(project, len(values))
    names = [path.name for path in (project.baselines / project.PIN / "test_gen" / "test_prompt").iterdir()]
    assert names and not [name for name in names if name.startswith("-") or
                          name.split(".")[0].upper() in {"NUL", "CON", "AUX", "COM1"}]
