"""A preset's values are checked when it is read, by the sweep's own checks, every bad field in one
line: so ``diffbench presets lock|list`` refuse a preset every sweep would refuse, and a broken
preset does not hide that another name is unknown."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_diffbench.cli.presets import command_presets
from pytest_diffbench.cli.settings import CommandError
from pytest_diffbench.spec.preset_checks import sweep_problems
from pytest_diffbench.spec.presets import LOCK_NAME, PresetError, PresetSource
from pytest_diffbench.spec.sweep import SweepError, expand_sweep, sweep

BAD = """
[tool.diffbench.presets.bad]
version = "1"
steps = "many"
cfg = -1
samplers = ["Eulr"]
size = [64, 0]
negative_prompt = 3
pipeline_kwargs = { prompt = "x" }

[tool.diffbench.presets.good]
version = "1"
steps = 2
"""
#: What the one line of 'bad' names: each bad field, with what is valid.
BAD_FIELDS = ["negative_prompt = 3 is not valid; give a string", "sweep axis 'samplers': ",
              "sweep axis 'steps': 'many' is not valid; steps must be a positive integer",
              "sweep axis 'cfg': -1.0 is not valid", "sweep axis 'height': 0 is not valid",
              "sweep axis 'prompt' is reserved"]


def write(root: Path, text: str) -> None:
    (root / "pyproject.toml").write_text(textwrap.dedent(text), encoding="utf-8")


def test_every_bad_field_of_a_preset_is_named_in_one_line(tmp_path: Path) -> None:
    write(tmp_path, BAD)
    with pytest.raises(PresetError) as raised:
        PresetSource(None, tmp_path, record=True, check=sweep_problems).get("bad")
    message = str(raised.value)
    assert message.startswith("preset 'bad' (pyproject.toml): ") and "\n" not in message
    assert [field for field in BAD_FIELDS if field not in message] == []
    with pytest.raises(SweepError, match="^preset 'bad' .*'many'.*-1.0"):
        expand_sweep(sweep(preset="bad").kwargs, max_cases=100,
                     presets=PresetSource(None, tmp_path, record=True, check=sweep_problems))
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.parametrize("action", ["lock", "list"])
def test_presets_lock_and_list_refuse_a_preset_every_sweep_refuses(tmp_path: Path, action: str) -> None:
    write(tmp_path, BAD)
    with pytest.raises(CommandError) as raised:
        command_presets(action, None, tmp_path)
    assert "\n" not in str(raised.value) and all(field in str(raised.value) for field in BAD_FIELDS)
    assert not (tmp_path / LOCK_NAME).exists()


def test_two_invalid_presets_are_both_named(tmp_path: Path) -> None:
    write(tmp_path, BAD + '\n[tool.diffbench.presets.worse]\nversion = "1"\ncfg = "high"\n')
    with pytest.raises(CommandError, match=r"^2 presets of pyproject.toml are invalid: preset 'bad' .* \| "
                                           r"preset 'worse' \(pyproject.toml\): sweep axis 'cfg': 'high' is not valid"):
        command_presets("lock", None, tmp_path)


def test_an_unknown_preset_is_unknown_though_another_is_invalid(tmp_path: Path) -> None:
    write(tmp_path, BAD)
    source = PresetSource(None, tmp_path, record=True, check=sweep_problems)
    with pytest.raises(PresetError, match=r"^unknown preset 'nope'; the presets of pyproject.toml are: bad, good "
                                          r"\('bad' is invalid: see diffbench presets list\)$"):
        source.get("nope")
    (case,) = expand_sweep(sweep(preset="good").kwargs, max_cases=10, presets=source)  # a valid one still works
    assert case.steps == 2


def test_bad_field_types_are_one_line_also_without_the_sweep_check(tmp_path: Path) -> None:
    write(tmp_path, '[tool.diffbench.presets.p]\nversion = "1"\nmodel = 3\nloras = [1]\nsize = [1, 2, 3]\ncolour = 1\n')
    with pytest.raises(PresetError) as raised:
        PresetSource(None, tmp_path).get("p")
    assert str(raised.value) == (
        "preset 'p' (pyproject.toml): 'colour' is not a preset field; valid fields are version, model, vae, loras, "
        "sampler, samplers, steps, cfg, width, height, size, negative_prompt, workflow, pipeline_kwargs (pipeline "
        "keywords go in pipeline_kwargs); model = 3 is not valid; give a model name: a built-in model, a diffusers "
        "folder or a hub id; loras = [1] is not valid; give a LoRA file or a list of them; size = [1, 2, 3] is not "
        "valid; give [width, height], e.g. [512, 512]")
