"""A preset's model, VAE and LoRAs as the plugin's own pipeline loads them (issue 12, item 3): the
cases of a preset run its model instead of --diffbench-model's, with its VAE and LoRA put in, and
record them in their config; a LoRA that cannot load fails its cases in one line."""

from __future__ import annotations

import textwrap
from types import ModuleType

import pytest


@pytest.fixture(scope="module", autouse=True)
def pipelines() -> ModuleType:
    """pytest_diffbench.run.pipelines, with torch and diffusers, imported before any test's
    ``project`` (a module-scoped fixture is set up before it): pytester's sys.modules snapshot would
    drop what a test imports when it ends, and torch cannot be imported twice in one process.
    Imported here, not at the module's top, so collecting the module (also for a ``-m "not model"``
    run, which deselects its tests) imports neither."""
    from pytest_diffbench.run import pipelines

    return pipelines


def write_presets(project, text: str) -> None:
    (project.path / "pyproject.toml").write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.mark.model
@pytest.mark.subprocess
def test_a_preset_model_replaces_the_builtin_pipeline(project) -> None:
    project.use_builtin_pipeline()
    write_presets(project, '[tool.diffbench.presets.random]\nversion = "1"\nmodel = "diffbench-tiny-random"\n'
                           'width = 32\nheight = 32\n')
    project.write_tests(project.test("test_random", sweep='preset="random", steps=2'),
                        project.test("test_default", sweep="steps=2, width=32, height=32"))
    run = project.run("--diffbench-model=diffbench-tiny", update="all", subprocess=True)
    run.outcome.assert_outcomes(passed=2)
    models = {result.test.split("::")[-1]: result.setting("model") for result in run.results}
    assert models == {"test_random": "diffbench/diffbench-tiny-random", "test_default": "diffbench/diffbench-tiny"}


@pytest.mark.model
@pytest.mark.subprocess
def test_a_preset_vae_and_lora_go_into_the_builtin_pipeline(pipelines, project, builders) -> None:
    import torch  # imported with the pipelines

    pipe = pipelines.load_tiny_pipeline()
    with torch.no_grad():  # another VAE than the model's own: its decoder's last bias moved
        pipe.vae.decoder.conv_out.bias.add_(0.25)
    pipe.vae.save_pretrained(project.path / "vae")
    builders.build_lora(pipe, folder=project.path / "style")
    project.use_builtin_pipeline()
    write_presets(project, '[tool.diffbench.presets.styled]\nversion = "1"\nmodel = "diffbench-tiny"\nvae = "vae"\n'
                           'loras = ["style/pytorch_lora_weights.safetensors"]\n'
                           '[tool.diffbench.presets.broken]\nversion = "1"\nloras = ["missing.safetensors"]\n')
    project.write_tests(project.test("test_styled", sweep='preset="styled", steps=2'),
                        project.test("test_plain", sweep="steps=2"),
                        project.test("test_broken", sweep='preset="broken", steps=2'))
    run = project.run("--diffbench-model=diffbench-tiny", update="all", subprocess=True)
    run.outcome.assert_outcomes(passed=2, errors=1)
    configs = {result.test.split("::")[-1]: result.config for result in run.results}
    assert configs["test_styled"]["vae"] == "vae" and configs["test_plain"]["vae"] != "vae"
    assert configs["test_styled"]["loras"] == ["pytorch_lora_weights"] and configs["test_plain"]["loras"] == []
    assert "preset 'broken' (pyproject.toml): loras: 'missing.safetensors' cannot be loaded with load_lora_weights" \
        in project.text(run.outcome)
