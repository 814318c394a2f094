"""Presets as a user runs them (issue 12, item 3): a sweep takes its defaults from a version-pinned
preset of pyproject.toml (or a presets file), its own axes override them, the preset's name and
version land in every case's config and results.csv, an edit without a version bump is a
collection error naming the fields until the version is bumped and locked, and a preset's model
must be the pipeline's."""

from __future__ import annotations

import json
import textwrap

import pytest

from pytest_diffbench.cli.main import main
from pytest_diffbench.report.grids import grid_labels
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.spec.presets import LOCK_NAME

PRESET = """
[tool.diffbench.presets.portrait]
version = "1"
steps = 2
cfg = 5.5
negative_prompt = "blurry"
workflow = "a"
pipeline_kwargs = { guidance_rescale = 0.5 }
"""


def write_presets(project, text: str = PRESET, name: str = "pyproject.toml") -> None:
    (project.path / name).write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_preset_sets_the_cases_and_its_name_and_version_go_into_config_and_results(project) -> None:
    write_presets(project)
    project.write_tests(project.test("test_portrait", sweep='preset="portrait", seeds=[0, 1], cfg=[3, 5.5]'))
    run = project.run(update="all")  # records the never-locked preset in the lock
    run.outcome.assert_outcomes(passed=4)
    assert (project.path / LOCK_NAME).is_file()
    for result in run.results:
        assert result.setting("preset") == {"name": "portrait", "version": "1"}
        assert result.setting("steps") == 2  # the preset's
        assert result.setting("negative_prompt") == "blurry"
        assert result.setting("pipeline_kwargs") == {"guidance_rescale": 0.5}
    assert sorted(r.setting("cfg") for r in run.results) == [3.0, 3.0, 5.5, 5.5]  # the sweep's, over the preset's 5.5
    assert grid_labels(run.results[0])[1].endswith(" · preset portrait@1")
    rows = run.folder.results.read_text(encoding="utf-8")
    assert '"{""name"":""portrait"",""version"":""1""}"' in rows
    project.run().outcome.assert_outcomes(passed=4)  # the lock holds it: a clean rerun


def test_an_edit_without_a_bump_fails_collection_naming_the_fields_and_passes_after_bump_and_lock(project) -> None:
    write_presets(project)
    project.write_tests(project.test("test_portrait", sweep='preset="portrait", seeds=0'))
    project.run(update="all").outcome.assert_outcomes(passed=1)
    edited = PRESET.replace('workflow = "a"', 'workflow = "b"').replace('"blurry"', '"dark"')
    write_presets(project, edited)
    for update in (None, "all"):  # the update flag records bumps, never an edit without one
        run = project.run(update=update)
        assert run.outcome.ret == pytest.ExitCode.INTERRUPTED
        text = project.text(run.outcome)
        assert ("test_gen.py::test_portrait: invalid diffbench sweep: preset 'portrait' (pyproject.toml) changed "
                "without a version bump: negative_prompt: 'blurry' -> 'dark'; workflow: 'a' -> 'b'") in text
    write_presets(project, edited.replace('version = "1"', 'version = "2"'))
    run = project.run()
    assert run.outcome.ret == pytest.ExitCode.INTERRUPTED
    assert "preset 'portrait' (pyproject.toml) is version '2', but diffbench-presets.lock has version '1'" in project.text(run.outcome)
    project.monkeypatch.chdir(project.path)
    assert main(["presets", "lock"]) == 0  # as a user locks the bump
    run = project.run()  # version 2 is another config (and workflow version): the old baseline is out of date
    run.outcome.assert_outcomes(failed=1)
    assert run.results[0].outcome is Outcome.VERSION_MISMATCH
    assert run.results[0].setting("preset") == {"name": "portrait", "version": "2"}
    assert run.results[0].setting("negative_prompt") == "dark"
    assert run.results[0].setting("workflow_version") == "b"  # the preset's workflow version
    project.run(update="all").outcome.assert_outcomes(passed=1)
    assert json.loads((project.path / LOCK_NAME).read_text())["presets"]["portrait"]["version"] == "2"


@pytest.mark.parametrize(("text", "sweep", "shown"), [
    (PRESET, 'preset="portrat"', "invalid diffbench sweep: unknown preset 'portrat'; the presets of pyproject.toml are: "
                                 "portrait"),
    (PRESET.replace("cfg = 5.5", "cfgs = 5.5"), 'preset="portrait"',
     "invalid diffbench sweep: preset 'portrait' (pyproject.toml): 'cfgs' is not a preset field; valid fields are"),
    (PRESET.replace("steps = 2", "steps = -2"), 'preset="portrait"',
     "invalid diffbench sweep: preset 'portrait' (pyproject.toml): sweep axis 'steps': -2 is not valid"),
])
def test_a_bad_preset_is_a_collection_error_of_one_line(project, text: str, sweep: str, shown: str) -> None:
    write_presets(project, text)
    project.write_tests(project.test("test_portrait", sweep=sweep))
    run = project.run(update="all")
    assert run.outcome.ret == pytest.ExitCode.INTERRUPTED
    lines = [line for line in project.text(run.outcome).splitlines() if shown in line]
    assert lines, project.text(run.outcome)


def test_the_presets_file_of_the_ini_holds_presets_tables(project, capsys: pytest.CaptureFixture[str]) -> None:
    (project.path / "conf").mkdir()
    write_presets(project, '[presets.fast]\nversion = 1\nsteps = 1\n', name="conf/presets.toml")
    project.write_ini(presets_file="conf/presets.toml")
    project.write_tests(project.test("test_fast", sweep='preset="fast"'))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    assert run.results[0].setting("preset") == {"name": "fast", "version": "1"}
    assert (project.path / "conf" / LOCK_NAME).is_file()  # beside the presets
    project.monkeypatch.chdir(project.path)
    capsys.readouterr()
    assert main(["presets", "list"]) == 0
    assert capsys.readouterr().out == "fast  version 1  locked\n"


@pytest.mark.subprocess
def test_a_preset_model_must_be_the_pipeline_of_your_own_fixture(project) -> None:
    write_presets(project, '[tool.diffbench.presets.other]\nversion = "1"\nmodel = "someone/else"\n'
                           '[tool.diffbench.presets.fake]\nversion = "1"\nmodel = "diffbench/fake"\n'
                           '[tool.diffbench.presets.lora]\nversion = "1"\nloras = ["style.safetensors"]\n')
    project.write_tests(project.test("test_other", sweep='preset="other", steps=2'),
                        project.test("test_fake", sweep='preset="fake", steps=2',
                                     body='diffbench.generate("a red cube")\nimport sys\nassert "torch" not in sys.modules'),
                        project.test("test_lora", sweep='preset="lora", steps=2'))
    run = project.run(update="all", subprocess=True)  # a child: torch must stay unimported with your own pipeline
    run.outcome.assert_outcomes(passed=1, errors=2)
    text = project.text(run.outcome)
    assert ("preset 'other' (pyproject.toml) runs model 'someone/else', but your diffbench_pipeline fixture gives "
            "'diffbench/fake'; make the fixture load the preset's model, or leave model out of the preset") in text
    assert "preset 'lora' (pyproject.toml) sets loras, which diffbench loads into its own pipeline" in text


def test_xdist_workers_record_one_lock_and_a_plan_keeps_its_origins(project) -> None:
    """Two workers run the never-locked preset's cases at once and one lock comes out; a rerun under
    xdist (one worker process reads that lock: ``-n 1``) is clean."""
    write_presets(project)
    project.write_tests(project.test("test_portrait", sweep='preset="portrait", seeds=diffbench.seed_plan("p", n=4)'))
    run = project.run("-n", "2", update="all")
    run.outcome.assert_outcomes(passed=4)
    lock = json.loads((project.path / LOCK_NAME).read_text())
    assert list(lock["presets"]) == ["portrait"] and lock["presets"]["portrait"]["version"] == "1"
    assert sorted((r.seed_plan, r.seed_index) for r in run.results) == [("p", i) for i in range(4)]
    project.run("-n", "1").outcome.assert_outcomes(passed=4)
