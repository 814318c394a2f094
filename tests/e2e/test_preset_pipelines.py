"""A preset's model, VAE and LoRAs as the plugin's own pipeline loads them (issue 12, item 3): the
cases of a preset run its model instead of --diffbench-model's, with its VAE and LoRA put in, and
record them in their config; a LoRA that cannot load fails its cases in one line."""

from __future__ import annotations

import textwrap

import pytest
import torch  # imported before any in-process run (a run's sys.modules snapshot must not drop it)

from pytest_diffbench.run.pipelines import load_tiny_pipeline


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
def test_a_preset_vae_and_lora_go_into_the_builtin_pipeline(project, builders) -> None:
    pipe = load_tiny_pipeline()
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
