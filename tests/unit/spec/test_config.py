"""Unit tests of pytest_diffbench.spec.config: the frozen config, its canonical JSON and hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
from enum import Enum
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pytest

from pytest_diffbench.spec.config import (
    FrozenConfig,
    canonical_json,
    config_hash,
    diff_configs,
    normalise,
)
from pytest_diffbench.spec.sweep import expand_sweep, sweep

EXPECTED_KEYS = {
    "model", "vae", "loras", "controlnets", "prompt", "negative_prompt", "seed", "sampler", "steps", "cfg",
    "width", "height", "workflow", "workflow_version", "dtype", "device", "model_fingerprint", "pipeline_kwargs",
}

BASE = dict(
    model="tiny-sd", model_fingerprint="abc123", vae="tiny-vae", loras=(), controlnets=(),
    prompt="an astronaut", negative_prompt=None, seed=0, sampler="Euler", steps=20, cfg=7.5,
    width=64, height=64, workflow="StableDiffusionPipeline", workflow_version="1",
    dtype="float32", device="cpu", pipeline_kwargs={},
)


def make(**changes) -> FrozenConfig:
    return FrozenConfig(**{**BASE, **changes})


# -- keys ------------------------------------------------------------------------------------


def test_to_dict_has_every_required_key_even_when_values_are_empty():
    config = make(loras=(), controlnets=(), negative_prompt=None, prompt="", pipeline_kwargs={})
    data = config.to_dict()
    assert set(data) == EXPECTED_KEYS
    assert data["negative_prompt"] is None
    assert data["loras"] == [] and data["controlnets"] == []
    assert data["pipeline_kwargs"] == {}
    assert data["prompt"] == ""
    # and all of them appear in the canonical JSON, too
    assert set(json.loads(config.canonical_json())) == EXPECTED_KEYS


def test_to_dict_turns_tuples_into_lists():
    data = make(loras=("a.safetensors", "b.safetensors")).to_dict()
    assert data["loras"] == ["a.safetensors", "b.safetensors"]


def test_canonical_json_is_sorted_compact_ascii():
    text = make(prompt="café ☕").canonical_json()
    assert text.isascii()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["prompt"] == "café ☕"
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert "\n" not in text and '": ' not in text


# -- hash ------------------------------------------------------------------------------------


def test_hash_is_sha256_of_canonical_json():
    config = make()
    expected = hashlib.sha256(canonical_json(config.to_dict()).encode()).hexdigest()
    assert config.hash == expected
    assert config.hash == config_hash(config.to_dict())
    assert len(config.hash) == 64


def test_short_hash_is_12_hex_chars_and_a_prefix():
    config = make()
    assert len(config.short_hash) == 12
    assert all(c in "0123456789abcdef" for c in config.short_hash)
    assert config.hash.startswith(config.short_hash)


_SUBPROCESS_SCRIPT = """
import json, sys
from pytest_diffbench.spec.config import FrozenConfig
fields = json.loads(sys.argv[1])
fields["loras"] = tuple(fields["loras"])
fields["controlnets"] = tuple(fields["controlnets"])
print(FrozenConfig(**fields).hash)
"""


def test_hash_is_stable_across_processes_and_hash_seeds():
    fields = {**BASE, "loras": ["x.safetensors"], "controlnets": [], "cfg": 0.1 + 0.2,
              "pipeline_kwargs": {"zeta": 1, "alpha": {"b": [1, 2.5], "a": None}, "mid": "é"}}
    in_process = make(loras=("x.safetensors",), cfg=0.1 + 0.2, pipeline_kwargs=fields["pipeline_kwargs"]).hash
    results = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", _SUBPROCESS_SCRIPT, json.dumps(fields)],
                              capture_output=True, text=True, env=env, check=True)
        results.append(done.stdout.strip())
    assert len(set(results)) == 1, results
    assert results[0] == in_process
    expected = hashlib.sha256(canonical_json(make(loras=("x.safetensors",), cfg=0.3,
                                                  pipeline_kwargs=fields["pipeline_kwargs"]).to_dict()).encode()).hexdigest()
    assert in_process == expected


def test_every_field_changes_the_hash():
    base = make()
    changed = dict(
        model="other", model_fingerprint="def456", vae="other-vae", loras=("l",), controlnets=("c",),
        prompt="a horse", negative_prompt="blurry", seed=1, sampler="Euler a", steps=21, cfg=7.0,
        width=96, height=96, workflow="Other", workflow_version="2", dtype="float16", device="cuda",
        pipeline_kwargs={"eta": 0.5},
    )
    assert set(changed) == EXPECTED_KEYS
    hashes = {base.hash}
    for name, value in changed.items():
        other = make(**{name: value})
        assert other.hash != base.hash, name
        assert diff_configs(base.to_dict(), other.to_dict())[0][0].split(".")[0] == name
        hashes.add(other.hash)
    assert len(hashes) == len(changed) + 1


# -- empty values ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", [], {}], ids=["none", "empty-str", "empty-list", "empty-dict"])
def test_empty_values_serialise_and_hash_stably(value):
    data = {"negative_prompt": value}
    assert json.loads(canonical_json(data)) == {"negative_prompt": value}
    assert config_hash(data) == config_hash(json.loads(canonical_json(data)))


def test_empty_values_hash_differently_from_each_other():
    hashes = {repr(v): config_hash({"negative_prompt": v}) for v in (None, "", [], {}, 0, False)}
    assert len(set(hashes.values())) == len(hashes), hashes


def test_none_and_empty_negative_prompt_differ():
    assert make(negative_prompt=None).hash != make(negative_prompt="").hash
    assert diff_configs(make(negative_prompt=None).to_dict(), make(negative_prompt="").to_dict()) == [
        ("negative_prompt", None, "")]


def test_empty_tuple_and_empty_list_hash_alike():
    assert config_hash({"loras": ()}) == config_hash({"loras": []})


# -- float normalisation ---------------------------------------------------------------------


def test_float_rounding_makes_0_1_plus_0_2_equal_0_3():
    assert 0.1 + 0.2 != 0.3
    assert make(cfg=0.1 + 0.2).hash == make(cfg=0.3).hash
    assert config_hash({"x": [0.1 + 0.2]}) == config_hash({"x": [0.3]})
    assert normalise(0.1 + 0.2) == 0.3


def test_rounding_keeps_twelve_significant_digits():
    assert make(cfg=7.5).hash != make(cfg=7.500000001).hash  # 10 significant digits: kept
    assert make(cfg=7.5).hash == make(cfg=7.5 + 1e-14).hash  # below 12 digits: dropped


def test_negative_zero_equals_zero():
    assert make(cfg=-0.0).hash == make(cfg=0.0).hash
    assert canonical_json({"x": -0.0}) == canonical_json({"x": 0.0})
    assert "-" not in canonical_json({"x": -0.0})


def test_cfg_int_and_float_hash_alike():
    assert make(cfg=5).hash == make(cfg=5.0).hash
    assert isinstance(make(cfg=5).cfg, float)


def test_cfg_from_a_sweep_is_a_float_and_hashes_like_the_float():
    (case,) = expand_sweep(sweep(cfg=5).mark.kwargs, max_cases=10)
    assert isinstance(case.cfg, float) and case.cfg == 5.0
    assert make(cfg=case.cfg).hash == make(cfg=5.0).hash
    assert make(cfg=case.cfg).to_dict()["cfg"] == 5.0


def test_int_and_float_differ_in_free_form_values():
    # Outside the typed fields an int stays an int: 5 and 5.0 are written as written.
    assert canonical_json({"x": 5}) == '{"x":5}'
    assert canonical_json({"x": 5.0}) == '{"x":5.0}'


def test_non_finite_floats_become_strings():
    assert normalise(float("nan")) == "nan"
    assert normalise(float("inf")) == "inf"
    assert normalise(float("-inf")) == "-inf"
    text = canonical_json({"a": float("nan"), "b": float("inf")})
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": "nan", "b": "inf"}


# -- key order and types ---------------------------------------------------------------------


def test_pipeline_kwargs_key_order_is_irrelevant():
    a = make(pipeline_kwargs={"eta": 0.5, "guidance_rescale": 0.7, "clip_skip": 2})
    b = make(pipeline_kwargs={"clip_skip": 2, "guidance_rescale": 0.7, "eta": 0.5})
    assert a.hash == b.hash
    nested_a = config_hash({"k": {"x": {"p": 1, "q": 2}, "y": 3}})
    nested_b = config_hash({"k": {"y": 3, "x": {"q": 2, "p": 1}}})
    assert nested_a == nested_b


def test_list_order_matters():
    assert make(loras=("a", "b")).hash != make(loras=("b", "a")).hash


def test_numpy_scalars_and_arrays_are_accepted():
    assert make(seed=np.int64(3), cfg=np.float32(7.5), steps=np.int32(20)).hash == make(seed=3, cfg=7.5, steps=20).hash
    assert normalise(np.float64(0.1) + np.float64(0.2)) == 0.3
    assert normalise(np.bool_(True)) is True
    assert normalise(np.array([1, 2, 3])) == [1, 2, 3]
    assert normalise(np.array([[0.5], [1.5]], dtype=np.float32)) == [[0.5], [1.5]]
    assert config_hash({"k": {"eta": np.float64(0.5)}}) == config_hash({"k": {"eta": 0.5}})
    assert type(normalise(np.int64(7))) is int


def test_paths_enums_and_bools():
    class Mode(Enum):
        FAST = "fast"

    assert normalise(PurePosixPath("a/b.safetensors")) == "a/b.safetensors"
    assert normalise(PureWindowsPath("a\\b.safetensors")) == "a/b.safetensors"
    assert normalise(Path("x") / "y") == "x/y"
    assert normalise(Mode.FAST) == "fast"
    assert normalise(True) is True  # not turned into 1
    assert canonical_json({"b": True}) != canonical_json({"b": 1})


@pytest.mark.parametrize("bad, type_name", [(object(), "object"), ({1, 2}, "set"), (b"x", "bytes")])
def test_unsupported_types_raise_typeerror_naming_the_field(bad, type_name):
    with pytest.raises(TypeError) as excinfo:
        make(pipeline_kwargs={"outer": {"inner": [0, bad]}}).hash
    message = str(excinfo.value)
    assert "config.pipeline_kwargs.outer.inner[1]" in message
    assert type_name in message


def test_unsupported_top_level_field_is_named():
    with pytest.raises(TypeError, match=r"config\.model_fingerprint"):
        make(model_fingerprint=object()).to_dict()


def test_non_string_keys_are_refused():
    with pytest.raises(TypeError, match=r"config\.pipeline_kwargs: keys must be strings"):
        make(pipeline_kwargs={1: "a"}).to_dict()


def test_normalise_uses_the_given_where():
    with pytest.raises(TypeError, match=r"^generate\(\) keyword\.x:"):
        normalise({"x": object()}, where="generate() keyword")


@pytest.mark.parametrize("value, where", [
    (math.nan, "kw"), ({"a": [1.0, math.inf]}, r"kw\.a\[1\]"), ((np.float32("-inf"),), r"kw\[0\]"),
    (np.array([0.5, np.nan]), r"kw\[1\]"),
], ids=["nan", "nested-inf", "numpy-scalar", "numpy-array"])
def test_finite_refuses_nan_and_infinities_naming_the_field(value, where):
    with pytest.raises(ValueError, match=rf"^{where}: -?(nan|inf) is not a finite number"):
        normalise(value, where="kw", finite=True)
    normalise(value, where="kw")  # without finite: stored as the strings "nan"/"inf"


def test_frozen_config_is_immutable():
    config = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 5  # type: ignore[misc]


# -- diff_configs ----------------------------------------------------------------------------


def test_diff_configs_lists_exactly_the_differing_fields_sorted_key_by_key():
    old = make().to_dict()
    new = make(seed=1, sampler="Euler a", pipeline_kwargs={"eta": 0.5}).to_dict()
    assert diff_configs(old, new) == [
        ("pipeline_kwargs.eta", "<absent>", 0.5),
        ("sampler", "Euler", "Euler a"),
        ("seed", 0, 1),
    ]


def test_diff_configs_of_equal_configs_is_empty():
    assert diff_configs(make().to_dict(), make().to_dict()) == []
    # normalised: equal after rounding means no difference
    assert diff_configs(make(cfg=0.3).to_dict(), make(cfg=0.1 + 0.2).to_dict()) == []
    assert diff_configs({"x": (1, 2)}, {"x": [1, 2]}) == []


def test_diff_configs_reports_absent_fields():
    assert diff_configs({"a": 1}, {"a": 1, "b": 2}) == [("b", "<absent>", 2)]
    assert diff_configs({"a": 1, "c": None}, {"a": 1}) == [("c", None, "<absent>")]


# -- golden values: the canonical JSON format and its hash -------------------------------------

#: One fixed config touching every normalisation rule: a non-ASCII prompt, the largest seed, a
#: float sum (0.1 + 0.2), a repeating fraction cut to 12 significant digits, -0.0 and a tiny float.
GOLDEN = FrozenConfig(
    model="diffbench/fake", model_fingerprint="ffffffff", vae="", loras=("style.safetensors",), controlnets=(),
    prompt="caf\u00e9 \u2615", negative_prompt=None, seed=2**63 - 1, sampler="Euler a", steps=20, cfg=0.1 + 0.2,
    width=64, height=48, workflow="FakePipeline", workflow_version="1", dtype="float32", device="cpu",
    pipeline_kwargs={"eta": 1 / 3, "clip_skip": 2, "scale": -0.0, "big": 1e-20},
)
GOLDEN_JSON = (
    '{"cfg":0.3,"controlnets":[],"device":"cpu","dtype":"float32","height":48,"loras":["style.safetensors"],'
    '"model":"diffbench/fake","model_fingerprint":"ffffffff","negative_prompt":null,'
    '"pipeline_kwargs":{"big":1e-20,"clip_skip":2,"eta":0.333333333333,"scale":0.0},'
    '"prompt":"caf\\u00e9 \\u2615","sampler":"Euler a","seed":9223372036854775807,"steps":20,"vae":"",'
    '"width":64,"workflow":"FakePipeline","workflow_version":"1"}'
)
#: Changing this changes the name of every baseline ever written: only with a migration.
GOLDEN_HASH = "cf624b3360e8bcca695390b5ad69c0c4e4eb8f2beb515572b2497e605d6c6aaf"


def test_golden_canonical_json():
    assert GOLDEN.canonical_json() == GOLDEN_JSON


def test_golden_config_hash():
    assert GOLDEN.hash == GOLDEN_HASH
    assert config_hash(json.loads(GOLDEN_JSON)) == GOLDEN_HASH
