"""run.inputs.prepare_inputs: images, arrays and tensors given to generate() are converted to what
the pipeline expects (one PIL image per picture, whatever its form) and recorded as small
digests; float data is recorded by value within a tolerance; bad inputs are one line naming the
keyword."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.run.inputs import InputError, prepare_inputs
from pytest_diffbench.spec.config import APPROX_KEY, canonical_json, config_hash, diff_configs

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)  # 24 wide, 16 high
FLOATS = PIXELS.astype(np.float32) / 255
MASK = np.zeros((16, 24), dtype=np.uint8)
MASK[4:12, 6:18] = 255
LATENTS = RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)


def pixels_digest(mode: str, image: Image.Image) -> str:
    return hashlib.sha256(f"{mode} {image.width}x{image.height}\n".encode("ascii") + image.tobytes()).hexdigest()


# -- one picture in every form ---------------------------------------------------------------------


def tensor_of(array: np.ndarray) -> Any:
    """``torch.from_numpy(array)``; torch is imported by the tests that make tensors, not at collection."""
    import torch

    return torch.from_numpy(array)


FORMS = {
    "pil": lambda: Image.fromarray(PIXELS),
    "uint8": lambda: PIXELS,
    "float32": lambda: FLOATS,
    "float64": lambda: FLOATS.astype(np.float64),
    "torch-chw": lambda: tensor_of(FLOATS).permute(2, 0, 1),
    "torch-uint8": lambda: tensor_of(PIXELS).permute(2, 0, 1),
    "rgba-pil": lambda: Image.fromarray(np.dstack([PIXELS, np.full((16, 24), 7, np.uint8)]), "RGBA"),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_of_one_picture_reaches_the_pipeline_as_one_rgb_image_with_one_record(form):
    prepared = prepare_inputs({"image": FORMS[form](), "strength": 0.6})
    image = prepared.call_kwargs["image"]
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    assert np.array_equal(np.asarray(image), PIXELS)  # uint8 rescaled correctly, floats read as round(x * 255)
    record = prepared.records["image"]
    assert record == {"sha256": pixels_digest("RGB", image), "size": [24, 16], "mode": "RGB",
                      "name": pixels_digest("RGB", image)[:16] + ".png"}
    assert prepared.call_kwargs["strength"] == 0.6 and "strength" not in prepared.records
    assert list(prepared.images) == [record["name"]]
    assert len(canonical_json({"image": record})) < 200  # a digest, not the pixels


def test_a_png_file_and_an_array_of_its_pixels_record_alike(tmp_path):
    Image.fromarray(PIXELS).save(tmp_path / "input.png")
    with Image.open(tmp_path / "input.png") as from_file:
        from_png = prepare_inputs({"image": from_file}).records
    assert from_png == prepare_inputs({"image": PIXELS}).records


def test_a_mask_becomes_grey_whatever_its_form():
    forms = [Image.fromarray(MASK), MASK, MASK.astype(np.float32) / 255, MASK > 0, MASK[:, :, None],
             Image.fromarray(np.dstack([MASK] * 3))]
    records = []
    for value in forms:
        prepared = prepare_inputs({"mask_image": value})
        assert prepared.call_kwargs["mask_image"].mode == "L"
        assert np.array_equal(np.asarray(prepared.call_kwargs["mask_image"]), MASK)
        records.append(prepared.records["mask_image"])
    assert all(record == records[0] for record in records) and records[0]["mode"] == "L"


def test_a_grey_image_gets_three_channels_for_the_pipeline():
    prepared = prepare_inputs({"control_image": MASK})
    assert prepared.call_kwargs["control_image"].mode == "RGB"
    assert np.array_equal(np.asarray(prepared.call_kwargs["control_image"]), np.dstack([MASK] * 3))


def test_lists_and_batches_become_lists_of_images_saved_once_per_digest():
    other = 255 - PIXELS
    prepared = prepare_inputs({"ip_adapter_image": [Image.fromarray(PIXELS), other, FLOATS],
                               "image": np.stack([PIXELS, other]), "control_image": (PIXELS,)})
    listed = prepared.call_kwargs["ip_adapter_image"]
    assert isinstance(listed, list) and [np.array_equal(np.asarray(i), p) for i, p in
                                         zip(listed, [PIXELS, other, PIXELS])] == [True, True, True]
    assert isinstance(prepared.call_kwargs["control_image"], tuple)
    batch = prepared.call_kwargs["image"]
    assert isinstance(batch, list) and len(batch) == 2
    names = [record["name"] for record in prepared.records["ip_adapter_image"]]
    assert names[0] == names[2] != names[1]
    assert [r["name"] for r in prepared.records["image"]] == names[:2]
    assert sorted(prepared.images) == sorted(set(names))  # two pictures, two files


def test_values_that_are_no_image_or_array_pass_through_without_a_record():
    kwargs = {"strength": 0.3, "prompt_2": "x", "cross_attention_kwargs": {"scale": 0.5}, "names": ["a", None]}
    prepared = prepare_inputs(kwargs)
    assert prepared.call_kwargs == kwargs and prepared.records == {} and prepared.images == {}


# -- refusals: one line naming the keyword ---------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"image": FLOATS * 2 - 1}, "generate(image=...): a float image must hold values in [0, 1], this one spans -1 to 1"),
    ({"mask_image": MASK.astype(np.float32)}, "generate(mask_image=...): a float image must hold values in [0, 1], "
                                              "this one spans 0 to 255"),
    ({"image": np.where(MASK > 0, np.nan, 0.5)}, "generate(image=...): the image holds NaN or inf"),
    ({"control_image": MASK.astype(np.int32)}, "generate(control_image=...): an image of dtype int32 cannot be read"),
    ({"image": np.zeros((2, 3, 5, 7), np.uint8)}, "generate(image=...): a uint8 array of shape 2x3x5x7 is not an image"),
    ({"ip_adapter_image": [PIXELS, FLOATS + 0.5]}, "generate(ip_adapter_image[1]=...): a float image must hold values"),
    ({"latents": np.array([0.0, np.inf])}, "generate(latents=...): the array holds NaN or inf"),
    ({"latents": np.array(["a", "b"])}, "generate(latents=...): a array of dtype <U1 cannot be recorded"),
])
def test_an_input_that_cannot_be_read_is_one_line_naming_the_keyword(kwargs, expected):
    with pytest.raises(InputError) as caught:
        prepare_inputs(kwargs)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message and len(message) < 300


def test_round_off_just_outside_0_1_is_clipped_not_refused():
    prepared = prepare_inputs({"image": np.clip(FLOATS, 0, 1) * (1 + 1e-7)})
    assert np.array_equal(np.asarray(prepared.call_kwargs["image"]), PIXELS)


# -- data: latents and other tensors that are not pictures -----------------------------------------


def test_latents_go_to_the_pipeline_unchanged_and_are_recorded_as_a_small_summary():
    import torch

    tensor = torch.from_numpy(LATENTS)
    prepared = prepare_inputs({"latents": tensor, "image": tensor, "prompt_embeds": torch.zeros(1, 77, 32)})
    assert prepared.call_kwargs["latents"] is tensor and prepared.call_kwargs["image"] is tensor  # 4 channels: latents
    record = prepared.records["latents"]
    assert {key: record[key] for key in ("array", "shape", "dtype")} == {"array": "torch", "shape": [1, 4, 8, 8],
                                                                         "dtype": "float32"}
    assert set(record[APPROX_KEY]) == {"mean", "rms", "sketch", "rtol"} and record[APPROX_KEY]["rtol"] == 1e-3
    assert prepared.records["image"] == record and prepared.images == {}
    assert len(canonical_json(prepared.records)) < 1500


@pytest.mark.parametrize("dtype_name", ["float32", "float16", "bfloat16"])  # named: torch is imported in the test, not at collection
def test_a_latents_tensor_records_its_own_dtype(dtype_name):
    import torch

    dtype = getattr(torch, dtype_name)
    record = prepare_inputs({"latents": torch.from_numpy(LATENTS).to(dtype)}).records["latents"]
    assert record["dtype"] == str(dtype).removeprefix("torch.") == dtype_name


def perturbed(relative: float) -> np.ndarray:
    noise = np.random.default_rng(1).standard_normal(LATENTS.shape)
    return (LATENTS * (1 + relative * noise)).astype(np.float32)


@pytest.mark.parametrize("make", [lambda r: perturbed(r), lambda r: LATENTS * np.float32(1 + r)], ids=["noise", "scale"])
def test_latents_are_compared_by_value_within_a_tolerance_never_by_their_last_bits(make):
    base = prepare_inputs({"latents": LATENTS}).records
    close = prepare_inputs({"latents": make(1e-6)}).records
    far = prepare_inputs({"latents": make(1e-2)}).records
    assert config_hash(close) == config_hash(base) == config_hash(far)  # the summary is not hashed
    assert diff_configs(base, close) == []
    assert [path for path, _, _ in diff_configs(base, far)] == [f"latents.{APPROX_KEY}"]


def test_a_changed_shape_or_dtype_of_latents_changes_the_hash():
    base = config_hash(prepare_inputs({"latents": LATENTS}).records)
    assert config_hash(prepare_inputs({"latents": LATENTS.reshape(1, 4, 4, 16)}).records) != base
    assert config_hash(prepare_inputs({"latents": LATENTS.astype(np.float64)}).records) != base


def test_the_sketch_signs_are_a_fixed_pattern():
    """Golden guard of the sketch's sign pattern (an integer hash, not a random generator whose
    stream numpy may change between versions): baselines keep their summaries on every machine."""
    summary = prepare_inputs({"latents": np.arange(8, dtype=np.float64)}).records["latents"][APPROX_KEY]
    assert summary["mean"] == 3.5 and summary["rms"] == pytest.approx(math.sqrt(17.5))
    signed_sums = [round(value * math.sqrt(8)) for value in summary["sketch"]]  # sum(i * s_k(i)) over i = 0..7
    assert signed_sums == [12, 0, 10, -4, 12, -12, 8, 2, 14, -8, -2, -14, 10, 0, 10, -6]


def test_integer_data_is_recorded_exactly():
    base = prepare_inputs({"timesteps": np.array([999, 500, 1])}).records["timesteps"]
    assert base["dtype"] == "int64" and len(base["sha256"]) == 64 and APPROX_KEY not in base
    assert prepare_inputs({"timesteps": np.array([999, 500, 2])}).records["timesteps"]["sha256"] != base["sha256"]


# -- inputs nested in mappings and lists -----------------------------------------------------------


def test_arrays_nested_in_a_mapping_are_recorded_and_the_rest_of_it_kept():
    import torch

    embeds = torch.from_numpy(LATENTS).reshape(1, 256)
    kwargs = {"added_cond_kwargs": {"image_embeds": embeds, "text_ids": [1, 2]},
              "ip_adapter_image": [[PIXELS, None]], "cross_attention_kwargs": {"scale": 0.5}}
    prepared = prepare_inputs(kwargs)
    assert prepared.call_kwargs["added_cond_kwargs"]["image_embeds"] is embeds
    assert prepared.call_kwargs["added_cond_kwargs"]["text_ids"] == [1, 2]
    record = prepared.records["added_cond_kwargs"]
    assert record["image_embeds"]["shape"] == [1, 256] and record["text_ids"] == [1, 2]
    nested = prepared.call_kwargs["ip_adapter_image"][0]
    assert isinstance(nested[0], Image.Image) and nested[1] is None
    assert prepared.records["ip_adapter_image"][0][1] is None
    assert "cross_attention_kwargs" not in prepared.records  # holds no array: passed through as it was
    assert len(canonical_json(prepared.records)) < 1500


def test_a_bad_nested_input_is_named_by_its_path():
    import torch

    with pytest.raises(InputError, match=r"^generate\(added_cond_kwargs.image_embeds=\.\.\.\): the tensor holds NaN"):
        prepare_inputs({"added_cond_kwargs": {"image_embeds": torch.tensor([float("nan")])}})
