"""``--diffbench-model`` naming a local folder: refused in one line before any case runs when it is
not a diffusers folder, recorded as one name whatever its spelling, and a model that fails to
load later is one error line, once (issue 10, item 5 and "errors are one line")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_diffbench.plugin.options import resolve_model


def _diffusers_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(("spelling", "reason"), [
    ("./models/nope", "there is no such folder under the rootdir or the current directory"),
    ("models/nope", "there is no such folder"),            # no ./ but models/ exists: a path, not a hub id
    ("../elsewhere/nope", "there is no such folder"),
    ("{root}/models/nope", "there is no such folder;"),      # absolute
    ("./weights.safetensors", "it is a file, not a folder"),
    ("./models/tiny/unet", "the folder has no model_index.json, so it is not a diffusers pipeline"),
    ("~/nope", "there is no such folder;"),
])
def test_a_local_path_that_is_not_a_diffusers_folder_is_one_usage_line_before_any_case(
        project, monkeypatch: pytest.MonkeyPatch, spelling: str, reason: str) -> None:
    monkeypatch.setenv("HOME", str(project.path / "home"))
    _diffusers_folder(project.path / "models" / "tiny")
    (project.path / "models" / "tiny" / "unet").mkdir()
    (project.path / "weights.safetensors").write_bytes(b"\0")
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    model = spelling.format(root=project.path)
    outcome = project.run_plain("--diffbench", f"--diffbench-model={model}")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    (error,) = [line for line in outcome.stderr.lines if line.strip()]
    assert error.startswith(f"ERROR: diffbench: diffbench_model = {model!r} is not valid: {reason}")
    assert error.endswith("; name a diffusers folder (one with model_index.json), a hub id or a built-in model "
                          "diffbench-tiny, diffbench-tiny-random")
    assert "Traceback" not in project.text(outcome) and not project.output_dir.exists()


@pytest.mark.parametrize("model", ["some-org/some-model", "diffbench/diffbench-tiny", "diffbench-tiny-random"])
def test_hub_ids_and_builtins_are_not_checked_as_paths(project, model: str) -> None:
    (project.path / "diffbench").mkdir()  # a folder named like the built-ins' prefix does not make them paths
    project.write_tests(project.test())
    project.run(f"--diffbench-model={model}", update="all").outcome.assert_outcomes(passed=1)


def test_without_diffbench_the_model_is_not_checked(project) -> None:
    project.write_tests("def test_plain():\n    pass\n")
    project.run_plain("--diffbench-model=./models/nope").assert_outcomes(passed=1)


def test_every_spelling_of_a_folder_inside_the_rootdir_records_one_name(tmp_path: Path) -> None:
    root = tmp_path / "project"
    folder = _diffusers_folder(root / "models" / "tiny")
    sub = root / "sub"
    sub.mkdir()
    for spelling, cwd in [("./models/tiny", root), ("models/tiny/", root), ("models/tiny", root),
                          (str(folder), root), (f"{root}/models/../models/tiny/", sub), ("../models/tiny", sub)]:
        assert resolve_model(spelling, root, cwd) == ("models/tiny", folder), spelling


def test_a_folder_outside_the_rootdir_is_recorded_as_written_normalised(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    folder = _diffusers_folder(tmp_path / "shared" / "sd")
    assert resolve_model("../shared/./sd/", root, root) == ("../shared/sd", folder)
    assert resolve_model(f"{folder}/", root, root) == (folder.as_posix(), folder)
    assert resolve_model("org/model", root, root) == ("org/model", None)  # a hub id, as written


@pytest.fixture
def real_pipelines() -> Any:
    """pytest_diffbench.run.pipelines, to build a model folder; runs of a real pipeline go to a child process
    (loading one in-process after pytester dropped the modules of an earlier run can crash the interpreter)."""
    from pytest_diffbench.run import pipelines

    return pipelines


@pytest.mark.subprocess
@pytest.mark.model
def test_three_spellings_of_one_folder_give_one_config_hash(project, real_pipelines) -> None:
    real_pipelines.build_random_pipeline().save_pretrained(project.path / "models" / "tiny")
    project.use_builtin_pipeline()
    project.write_tests(project.test())
    recorded = set()
    for spelling in ("./models/tiny", "models/tiny/", str(project.path / "models" / "tiny")):
        run = project.run(f"--diffbench-model={spelling}", update="all", subprocess=True)
        run.outcome.assert_outcomes(passed=1)
        (row,) = run.results
        recorded.add((row.setting("model"), row.config_hash))
    assert len(recorded) == 1 and next(iter(recorded))[0] == "models/tiny"


@pytest.mark.subprocess
@pytest.mark.model
def test_a_model_that_fails_to_load_is_one_error_line_and_the_run_stops(project) -> None:
    broken = _diffusers_folder(project.path / "models" / "broken")  # model_index.json, but no components
    (broken / "model_index.json").write_text("{not json", encoding="utf-8")
    project.use_builtin_pipeline()
    project.write_tests(project.test(sweep="seeds=[0, 1, 2], steps=2"))
    run = project.run("--diffbench-model=models/broken", subprocess=True)
    run.outcome.assert_outcomes(errors=1)
    text = project.text(run.outcome)
    assert text.count("diffbench_model: cannot load 'models/broken' with DiffusionPipeline.from_pretrained (") == 1
    assert "def diffbench_pipeline" not in text and "Traceback" not in text and "another exception" not in text
    assert "the model of diffbench_model could not be loaded; no further case ran" in text
