"""Presets (issue 12, item 3) at the spec level: read from pyproject.toml or a presets file, checked
field by field, pinned by a lock whose bytes are canonical, and merged under a sweep's own axes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_diffbench.spec.presets import LOCK_NAME, PresetError, PresetSource, read_lock
from pytest_diffbench.spec.sweep import SweepError, expand_sweep, sweep

PORTRAIT = """
[tool.diffbench.presets.portrait]
version = "1"
samplers = ["Euler", "DDIM"]
steps = 3
cfg = 5.5
size = [64, 48]
negative_prompt = "blurry"
workflow = "w7"
pipeline_kwargs = { guidance_rescale = 0.5 }
"""


def write(root: Path, text: str, name: str = "pyproject.toml") -> None:
    (root / name).write_text(textwrap.dedent(text), encoding="utf-8")


def locked(root: Path, text: str = PORTRAIT) -> PresetSource:
    """A source of ``text``'s presets with every preset recorded in the lock."""
    write(root, text)
    recorder = PresetSource(None, root, record=True)
    for name in recorder.presets():
        recorder.get(name)
    return PresetSource(None, root)


def test_a_preset_sets_the_sweep_and_the_sweep_overrides_it(tmp_path: Path) -> None:
    source = locked(tmp_path)
    cases = expand_sweep(sweep(preset="portrait", steps=[2, 4], lora_free=1).kwargs, max_cases=100, presets=source)
    assert [(c.sampler, c.steps, c.cfg) for c in cases] == [("Euler", 2, 5.5), ("Euler", 4, 5.5), ("DDIM", 2, 5.5),
                                                              ("DDIM", 4, 5.5)]
    assert dict(cases[0].extra) == {"width": 64, "height": 48, "guidance_rescale": 0.5, "lora_free": 1}
    assert cases[0].preset is not None and cases[0].preset.label == "portrait@1"
    assert cases[0].workflow_version == "w7"
    overridden = expand_sweep(sweep(preset="portrait", width=32, guidance_rescale=0.0, workflow_version="9").kwargs,
                              max_cases=100, presets=source)
    assert dict(overridden[0].extra) == {"width": 32, "height": 48, "guidance_rescale": 0.0}
    assert overridden[0].workflow_version == ""  # the sweep's own version wins (the session's)


def test_a_presets_file_holds_presets_tables(tmp_path: Path) -> None:
    write(tmp_path, '[presets.fast]\nversion = 2\nsteps = 1\n', name="presets.toml")
    source = PresetSource(tmp_path / "presets.toml", tmp_path, record=True)
    (case,) = expand_sweep(sweep(preset="fast").kwargs, max_cases=10, presets=source)
    assert (case.steps, case.preset and case.preset.version) == (1, "2")
    assert (tmp_path / LOCK_NAME).is_file()


@pytest.mark.parametrize(("table", "shown"), [
    ('version = "1"\nstepz = 3', "preset 'p' (pyproject.toml): 'stepz' is not a preset field; valid fields are version"),
    ("steps = 3", "preset 'p' (pyproject.toml): version = None is not valid; every preset needs a version"),
    ('version = ""', "version = '' is not valid"),
    ('version = "1"\nmodel = 3', "preset 'p' (pyproject.toml): model = 3 is not valid; give a model name"),
    ('version = "1"\nloras = [1]', "loras = [1] is not valid; give a LoRA file or a list of them"),
    ('version = "1"\nsampler = "Euler"\nsamplers = ["DDIM"]', "set sampler or samplers, not both"),
    ('version = "1"\nsize = [1, 2, 3]', "size = [1, 2, 3] is not valid; give [width, height]"),
    ('version = "1"\npipeline_kwargs = 3', "pipeline_kwargs = 3 is not valid; give a table"),
    ('version = "1"\ncfg = nan', "is not a finite number"),
])
def test_a_bad_preset_is_one_line_naming_preset_and_field(tmp_path: Path, table: str, shown: str) -> None:
    write(tmp_path, "[tool.diffbench.presets.p]\n" + table + "\n")
    with pytest.raises(PresetError) as raised:
        PresetSource(None, tmp_path).get("p")
    assert shown in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(("table", "shown"), [
    ('steps = 0', "preset 'p' (pyproject.toml): sweep axis 'steps': 0 is not valid"),
    ('samplers = ["Eulr"]', "preset 'p' (pyproject.toml): sweep axis 'samplers'"),
    ('pipeline_kwargs = { num_inference_steps = 3 }', "sweep axis 'num_inference_steps' is reserved"),
])
def test_a_preset_value_the_sweep_refuses_names_the_preset(tmp_path: Path, table: str, shown: str) -> None:
    write(tmp_path, '[tool.diffbench.presets.p]\nversion = "1"\n' + table + "\n")
    source = PresetSource(None, tmp_path, record=True)
    with pytest.raises(SweepError, match="preset 'p'") as raised:
        expand_sweep(sweep(preset="p").kwargs, max_cases=10, presets=source)
    assert shown in str(raised.value)


def test_an_unknown_preset_names_the_presets_there_are(tmp_path: Path) -> None:
    source = locked(tmp_path)
    with pytest.raises(SweepError, match=r"unknown preset 'portrat'; the presets of pyproject.toml are: portrait$"):
        expand_sweep(sweep(preset="portrat").kwargs, max_cases=10, presets=source)
    with pytest.raises(PresetError, match=r"none \(add \[tool.diffbench.presets.x\] to pyproject.toml\)"):
        PresetSource(None, tmp_path / "nothing-here").get("x")


def test_a_never_locked_preset_is_refused_until_recorded(tmp_path: Path) -> None:
    write(tmp_path, PORTRAIT)
    with pytest.raises(PresetError, match="preset 'portrait' .* version '1' was never locked; record it with diffbench "
                                          "presets lock, or run pytest --diffbench --diffbench-update"):
        PresetSource(None, tmp_path).get("portrait")
    assert not (tmp_path / LOCK_NAME).exists()
    PresetSource(None, tmp_path, record=True).get("portrait")
    assert PresetSource(None, tmp_path).get("portrait").version == "1"


def test_an_edit_without_a_bump_names_the_changed_fields_and_a_bump_plus_lock_passes(tmp_path: Path) -> None:
    locked(tmp_path)
    write(tmp_path, PORTRAIT.replace("steps = 3", "steps = 4").replace("guidance_rescale = 0.5", "guidance_rescale = 0.7"))
    for record in (False, True):  # --diffbench-update records bumps, never an edit without one
        with pytest.raises(PresetError) as raised:
            PresetSource(None, tmp_path, record=record).get("portrait")
        message = str(raised.value)
        assert "preset 'portrait' (pyproject.toml) changed without a version bump: " in message
        assert "pipeline_kwargs.guidance_rescale: 0.5 -> 0.7; steps: 3 -> 4" in message
    bumped = PORTRAIT.replace('version = "1"', 'version = "2"').replace("steps = 3", "steps = 4")
    write(tmp_path, bumped)
    with pytest.raises(PresetError, match="is version '2', but diffbench-presets.lock has version '1'"):
        PresetSource(None, tmp_path).get("portrait")
    PresetSource(None, tmp_path, record=True).get("portrait")
    assert PresetSource(None, tmp_path).get("portrait").values["steps"] == 4
    assert read_lock(tmp_path / LOCK_NAME)["portrait"]["version"] == "2"


def test_the_lock_bytes_do_not_depend_on_the_order_of_the_toml(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    locked(one, '[tool.diffbench.presets.a]\nversion = "1"\nsteps = 2\ncfg = 3\n[tool.diffbench.presets.b]\nversion = "1"\n')
    locked(two, '[tool.diffbench.presets.b]\nversion = "1"\n[tool.diffbench.presets.a]\ncfg = 3.0\nsteps = 2\nversion = "1"\n')
    data = (one / LOCK_NAME).read_bytes()
    assert data == (two / LOCK_NAME).read_bytes()
    assert data.endswith(b"}\n") and json.loads(data)["format"] == 1


def test_a_broken_lock_or_presets_file_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, "[tool.diffbench.presets.p\n")
    with pytest.raises(PresetError, match="cannot read the presets of .*pyproject.toml: "):
        PresetSource(None, tmp_path).get("p")
    locked(tmp_path)
    (tmp_path / LOCK_NAME).write_text("{}", encoding="utf-8")
    with pytest.raises(PresetError, match="is not a diffbench presets lock of format 1; remove it"):
        PresetSource(None, tmp_path).get("portrait")
    with pytest.raises(PresetError, match="diffbench_presets_file = .* does not exist"):
        PresetSource(tmp_path / "missing.toml", tmp_path).get("p")


@pytest.mark.parametrize(("before", "after"), [
    ("steps = 3", "steps = [3]"),
    ('samplers = ["Euler", "DDIM"]', 'samplers = ["Euler", "DDIM"]\nloras = ["a.safetensors"]'),
    ("size = [64, 48]", "width = [64]\nheight = 48"),
    ("guidance_rescale = 0.5", "guidance_rescale = [0.5]"),
])
def test_an_edit_that_changes_no_case_needs_no_version_bump(tmp_path: Path, before: str, after: str) -> None:
    base = PORTRAIT.replace('samplers = ["Euler", "DDIM"]', 'samplers = ["Euler", "DDIM"]\nloras = "a.safetensors"') \
        if "loras" in after else PORTRAIT
    locked(tmp_path, base)
    lock = (tmp_path / LOCK_NAME).read_bytes()
    write(tmp_path, base.replace(before.replace('\nloras = ["a.safetensors"]', ""), after) if "loras" not in after
          else base.replace('loras = "a.safetensors"', 'loras = ["a.safetensors"]'))
    assert PresetSource(None, tmp_path).get("portrait").version == "1"  # no "changed without a version bump"
    PresetSource(None, tmp_path, record=True).get("portrait")
    assert (tmp_path / LOCK_NAME).read_bytes() == lock


def test_a_lock_written_with_a_one_element_axis_stays_valid(tmp_path: Path) -> None:
    locked(tmp_path)
    data = json.loads((tmp_path / LOCK_NAME).read_text())
    data["presets" if "presets" in data else next(k for k in data if k != "format")]["portrait"]["values"]["steps"] = [3]
    data_hashless = json.dumps(data)
    (tmp_path / LOCK_NAME).write_text(data_hashless.replace('"hash": "', '"hash": "0'))
    assert PresetSource(None, tmp_path).get("portrait").values["steps"] == 3
