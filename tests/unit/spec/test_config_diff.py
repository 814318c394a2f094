"""Stale-baseline differences readable at any size (spec.config.diff_configs, spec.config_diff,
judge.checks.judge_identity): nested fields key by key, long values cut with their digest, a
message capped at a few KB; values compared within a tolerance; optional config fields that
are empty leave the hash as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pytest_diffbench.judge.checks import judge_identity
from pytest_diffbench.run.inputs import prepare_inputs
from pytest_diffbench.spec.config import APPROX_KEY, OPTIONAL_KEYS, FrozenConfig, config_hash, diff_configs
from pytest_diffbench.spec.config_diff import MAX_FIELDS, change_line, change_lines, show_value
from pytest_diffbench.spec.outcomes import Outcome

CONFIG = FrozenConfig(
    model="tiny-sd", model_fingerprint="abc", vae="tiny-vae", loras=(), controlnets=(), prompt="an astronaut",
    negative_prompt=None, seed=0, sampler="Euler", steps=20, cfg=7.5, width=64, height=64,
    workflow="StableDiffusionImg2ImgPipeline", workflow_version="1", dtype="float32", device="cpu",
    pipeline_kwargs={"strength": 0.6},
)
#: Where the whole stale message must stay: "a few KB".
MESSAGE_BOUND = 4096


def stale_text(new: FrozenConfig, old: FrozenConfig = CONFIG) -> str:
    verdict = judge_identity(new.to_dict(), new.hash, old.to_dict(), old.hash, {}, False)
    assert verdict is not None and verdict.outcome is Outcome.STALE_BASELINE
    return "\n".join(verdict.reasons)


def with_kwargs(**kwargs) -> FrozenConfig:
    return dataclasses.replace(CONFIG, pipeline_kwargs=kwargs)


# -- key by key ------------------------------------------------------------------------------------


def test_a_nested_field_is_shown_key_by_key():
    text = stale_text(with_kwargs(strength=0.7))
    assert "  pipeline_kwargs.strength: 0.6 -> 0.7" in text.splitlines()


def test_list_items_holding_mappings_are_compared_item_by_item_and_absent_keys_named():
    old = {"adapters": {"active": [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 0.5}]}}
    new = {"adapters": {"active": [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 0.8}], "fused": True}}
    assert diff_configs(old, new) == [("adapters.active[1].weight", 0.5, 0.8), ("adapters.fused", "<absent>", True)]
    assert change_lines(diff_configs(old, new)) == ["  adapters.active[1].weight: 0.5 -> 0.8",
                                                     "  adapters.fused: <absent> -> True"]


def test_a_changed_input_pixel_names_pipeline_kwargs_image():
    pixels = np.zeros((8, 8, 3), np.uint8)
    old = with_kwargs(strength=0.6, **prepare_inputs({"image": pixels}).records)
    pixels[3, 4, 1] = 1
    new = with_kwargs(strength=0.6, **prepare_inputs({"image": pixels}).records)
    lines = [line.split(":")[0].strip() for line in stale_text(new, old).splitlines()[1:-1]]
    assert lines == ["pipeline_kwargs.image.name", "pipeline_kwargs.image.sha256"]


# -- long values and many fields -------------------------------------------------------------------


def test_a_long_value_is_cut_with_its_length_and_digest():
    prefix = "a" * 5000
    old, new = show_value(prefix + "x"), show_value(prefix + "y")
    assert len(old) < 120 and "(5003 chars, sha256 " in old
    assert old != new  # the digest tells two long values apart where the cut text does not
    assert show_value("short") == "'short'"


def test_an_old_baseline_holding_an_array_as_a_list_gives_a_small_message():
    """The issue's case: a float array copied into the config (107 KB messages, the changed field
    after 53,000 characters). One pixel changed: one short line, named by its index."""
    image = np.random.default_rng(0).random((64, 64, 3)).round(3)
    changed = image.copy()
    changed[40, 2, 1] = 0.5
    text = stale_text(with_kwargs(image=changed.tolist()), with_kwargs(image=image.tolist()))
    assert f"pipeline_kwargs.image[40][2]: {image[40, 2].tolist()!r} -> {changed[40, 2].tolist()!r}" in text
    assert len(text) < 1000


def test_many_differing_fields_are_capped_with_and_n_more():
    old = with_kwargs(**{f"option_{i:03d}": i for i in range(300)})
    new = with_kwargs(**{f"option_{i:03d}": i + 1 for i in range(300)})
    lines = stale_text(new, old).splitlines()
    assert lines[1] == "  pipeline_kwargs.option_000: 0 -> 1"
    assert lines[-2] == f"  ... and {300 - MAX_FIELDS} more fields (in pipeline_kwargs)"
    assert len(lines) == MAX_FIELDS + 3


def test_a_stale_message_stays_a_few_kb_however_large_the_values():
    huge = {f"{'k' * 200}{i}": "v" * 10_000 for i in range(50)}
    text = stale_text(dataclasses.replace(with_kwargs(**{key: value + "!" for key, value in huge.items()}),
                                          prompt="p" * 100_000), with_kwargs(**huge))
    assert len(text.encode("utf-8")) < MESSAGE_BOUND
    assert "more fields (in pipeline_kwargs, prompt)" in text  # every changed field is still named


def test_the_strict_env_listing_is_capped_the_same_way():
    env_diff = {f"package_{i}": ("1.0", "2.0" * 2000) for i in range(100)}
    verdict = judge_identity(CONFIG.to_dict(), CONFIG.hash, CONFIG.to_dict(), CONFIG.hash, env_diff, True)
    assert verdict is not None and verdict.outcome is Outcome.ENV_MISMATCH
    text = "\n".join(verdict.reasons)
    assert len(text) < MESSAGE_BOUND and "... and" in text


def test_a_workflow_version_of_any_size_stays_short():
    verdict = judge_identity(dataclasses.replace(CONFIG, workflow_version="2" * 10_000).to_dict(), "0" * 64,
                             CONFIG.to_dict(), CONFIG.hash, {}, False)
    assert verdict is not None and verdict.outcome is Outcome.VERSION_MISMATCH
    assert len(verdict.reasons[0]) < 400


# -- values compared within a tolerance ------------------------------------------------------------


LATENTS = np.random.default_rng(3).standard_normal((1, 4, 8, 8)).astype(np.float32)


def latents_config(relative: float) -> FrozenConfig:
    noise = np.random.default_rng(4).standard_normal(LATENTS.shape)
    return with_kwargs(latents=prepare_inputs({"latents": LATENTS * (1 + relative * noise)}).records["latents"])


def test_latents_changed_in_their_last_bits_are_not_stale():
    base = latents_config(0.0)
    close = latents_config(1e-6)
    assert close.hash == base.hash
    assert judge_identity(close.to_dict(), close.hash, base.to_dict(), base.hash, {}, False) is None


def test_latents_changed_by_one_percent_are_stale_naming_the_keyword():
    base, far = latents_config(0.0), latents_config(1e-2)
    assert far.hash == base.hash  # same hash: only the values moved
    lines = stale_text(far, base).splitlines()
    assert "values compared within a tolerance differ" in lines[0]
    assert lines[1].startswith("  pipeline_kwargs.latents: values differ by ")
    assert lines[1].endswith("relative (tolerance 0.10%)")


def test_a_malformed_summary_is_stale_and_says_so():
    base = latents_config(0.0)
    record = {**base.pipeline_kwargs["latents"], APPROX_KEY: {"mean": 0.0, "rms": "x", "sketch": []}}
    broken = with_kwargs(latents=record)
    assert change_line(f"pipeline_kwargs.latents.{APPROX_KEY}", broken.pipeline_kwargs["latents"][APPROX_KEY],
                       base.pipeline_kwargs["latents"][APPROX_KEY]) == \
        "pipeline_kwargs.latents: its value summaries cannot be compared"
    assert "cannot be compared" in stale_text(base, broken)


# -- optional config fields ------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIONAL_KEYS)
def test_an_empty_optional_field_leaves_the_hash_unchanged_and_a_filled_one_changes_it(name):
    base = CONFIG.hash
    assert dataclasses.replace(CONFIG, **{name: {}}).hash == base
    assert name not in dataclasses.replace(CONFIG, **{name: {}}).to_dict()
    filled = dataclasses.replace(CONFIG, **{name: {"key": 1}})
    assert filled.hash != base
    assert config_hash(filled.to_dict()) == filled.hash
    lines = stale_text(filled).splitlines()
    assert lines[1] == f"  {name}.key: <absent> -> 1"


# -- other messages built from values --------------------------------------------------------------


def test_a_value_a_config_cannot_hold_is_named_in_one_short_line():
    from pytest_diffbench.spec.config import normalise

    class Big:
        def __repr__(self) -> str:
            return "Big(\n" + "x" * 100_000 + "\n)"

    with pytest.raises(TypeError) as caught:
        normalise({"options": {"thing": Big()}}, where="generate() keyword")
    message = str(caught.value)
    assert message.startswith("generate() keyword.options.thing: Big value Big( xxx")
    assert "\n" not in message and len(message) < 400
