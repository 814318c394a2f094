"""describe_pipeline caches each pipeline's weight digests (issue 13, item 1): unchanged weights are
not hashed again, and every way of changing them, in place behind the version counter too, gives
the description an uncached walk gives; the LoRA state that lives outside tensors (set_adapters
weights, disable_lora, fuse flags) is read on every call."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace
from typing import Any, Callable

import pytest

from pytest_diffbench.run.protocol import PipelineDescription

Uncached = Callable[[Any], PipelineDescription]

# torch and pytest_diffbench.run.fingerprint (which imports it) are imported by the tests and
# fixtures that use them, so collecting this module does not import torch.


@pytest.fixture(scope="module", autouse=True)
def _needs_torch() -> None:
    """Every test here describes a real pipeline: skipped where torch is not installed."""
    pytest.importorskip("torch")


def to_float64(pipe: Any) -> Any:
    """The edit that casts every weight to float64."""
    import torch

    return pipe.to(torch.float64)


@pytest.fixture(scope="module")
def uncached() -> Uncached:
    """describe_pipeline with the digests made from scratch (the walk every call made before the cache),
    with the module's own model_fingerprint, taken before ``recomputations`` counts its calls."""
    from pytest_diffbench.run.fingerprint import describe_pipeline, lora_adapters, model_fingerprint

    def uncached(pipe: Any) -> PipelineDescription:
        return replace(describe_pipeline(pipe), model_fingerprint=model_fingerprint(pipe), adapters=lora_adapters(pipe))

    return uncached


@pytest.fixture
def recomputations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The pipelines whose full fingerprint describe_pipeline computed, one entry per computation."""
    from pytest_diffbench.run import fingerprint
    from pytest_diffbench.run.fingerprint import model_fingerprint

    seen: list[Any] = []

    def counted(pipe: Any) -> str:
        seen.append(pipe)
        return model_fingerprint(pipe)

    monkeypatch.setattr(fingerprint, "model_fingerprint", counted)
    return seen


@pytest.fixture
def sd(builders: Any) -> Any:
    return builders.build_sd()


def sampled_position(tensor: Any) -> int:
    """The last flat position the fingerprint samples (every tensor's last element is sampled)."""
    return int(tensor.numel()) - 1


def test_unchanged_weights_are_hashed_once(sd: Any, recomputations: list[Any]) -> None:
    from pytest_diffbench.run.fingerprint import describe_pipeline

    first = describe_pipeline(sd)
    assert [describe_pipeline(sd) for _ in range(3)] == [first] * 3
    assert len(recomputations) == 1


def test_a_cached_description_equals_an_uncached_one(sd: Any, uncached: Uncached, recomputations: list[Any]) -> None:
    from pytest_diffbench.run.fingerprint import describe_pipeline

    describe_pipeline(sd)
    cached = describe_pipeline(sd)
    assert len(recomputations) == 1
    assert cached == uncached(sd)


def test_an_in_place_data_edit_of_one_sampled_weight_is_seen(sd: Any, uncached: Uncached) -> None:
    from pytest_diffbench.run.fingerprint import describe_pipeline

    before = describe_pipeline(sd)
    weight = sd.unet.conv_in.weight
    version = weight._version
    weight.data.view(-1)[sampled_position(weight)] += 1.0  # .data has its own version counter
    assert weight._version == version  # the key alone cannot see this edit
    after = describe_pipeline(sd)
    assert after.model_fingerprint != before.model_fingerprint
    assert after == uncached(sd)


@pytest.mark.parametrize("edit", [
    pytest.param(lambda pipe: pipe.vae.decoder.conv_out.bias.add_(0.5), id="in-place"),
    pytest.param(lambda pipe: setattr(pipe.unet.conv_in.weight, "data", pipe.unet.conv_in.weight.data * 2), id="data"),
    pytest.param(to_float64, id="dtype"),
    pytest.param(lambda pipe: pipe.text_encoder.get_input_embeddings().weight.zero_(), id="zeroed"),
])
def test_every_way_of_changing_weights_gives_the_uncached_description(
        sd: Any, uncached: Uncached, edit: Callable[[Any], Any], recomputations: list[Any]) -> None:
    import torch

    from pytest_diffbench.run.fingerprint import describe_pipeline

    before = describe_pipeline(sd)
    with torch.no_grad():
        edit(sd)
    after = describe_pipeline(sd)
    assert after.model_fingerprint != before.model_fingerprint
    assert after == uncached(sd)
    assert len(recomputations) == 2


def test_a_replaced_component_with_the_same_weights_keeps_the_fingerprint(sd: Any, builders: Any) -> None:
    import torch

    from pytest_diffbench.run.fingerprint import describe_pipeline

    before = describe_pipeline(sd)
    sd.unet = builders.sd_unet()  # the same seeded weights, new tensors
    assert describe_pipeline(sd) == before
    with torch.no_grad():
        sd.unet.conv_out.bias.mul_(3.0)
    assert describe_pipeline(sd).model_fingerprint != before.model_fingerprint


def test_the_cache_keeps_no_pipeline_alive(builders: Any) -> None:
    from pytest_diffbench.run import fingerprint
    from pytest_diffbench.run.fingerprint import describe_pipeline

    pipe = builders.build_sd()
    describe_pipeline(pipe)
    assert pipe in fingerprint._WEIGHTS_CACHE
    alive = weakref.ref(pipe)
    del pipe
    gc.collect()  # may also collect other tests' pipelines: only this one's fate is asserted
    assert alive() is None


@pytest.mark.model
def test_lora_loading_fusing_weights_and_disabling_each_change_the_description(
        sd: Any, uncached: Uncached, builders: Any, recomputations: list[Any]) -> None:
    from pytest_diffbench.run.fingerprint import describe_pipeline

    seen = [describe_pipeline(sd)]

    def changed(step: Callable[[], Any]) -> PipelineDescription:
        step()
        description = describe_pipeline(sd)
        assert description != seen[-1]
        assert description == uncached(sd)
        seen.append(description)
        return description

    loaded = changed(lambda: builders.build_lora(sd, "tiny"))
    assert loaded.loras == ("tiny",) and loaded.adapters["tiny"]["weights"] == {"unet": 1.0}
    weighted = changed(lambda: sd.set_adapters(["tiny"], adapter_weights=[0.5]))
    assert weighted.adapters["tiny"]["weights"] == {"unet": 0.5}
    assert weighted.model_fingerprint == loaded.model_fingerprint  # no tensor changed: a cache hit
    disabled = changed(sd.disable_lora)
    assert disabled.adapters["tiny"]["enabled"] is False
    enabled = changed(sd.enable_lora)
    assert enabled == weighted
    fused = changed(sd.fuse_lora)
    assert fused.adapters["tiny"]["fused"] is True
    assert fused.model_fingerprint != weighted.model_fingerprint  # the base weights changed in place
    unfused = changed(sd.unfuse_lora)
    assert unfused.adapters["tiny"]["fused"] is False
    # load, fuse and unfuse change tensors; the weights and the enabled flag only the layers' state
    assert len(recomputations) == 4


def test_weights_without_a_data_pointer_are_hashed_on_every_call(
        sd: Any, uncached: Uncached, recomputations: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapper tensor subclass (quantized weights) may have no data pointer: no cache, same description."""
    from pytest_diffbench.run import fingerprint
    from pytest_diffbench.run.fingerprint import describe_pipeline

    expected = uncached(sd)
    recomputations.clear()

    def no_pointer(pipe: Any) -> Any:
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")

    monkeypatch.setattr(fingerprint, "_weights_key", no_pointer)
    assert [describe_pipeline(sd) for _ in range(2)] == [expected] * 2
    assert len(recomputations) == 2


def test_the_device_follows_the_weights(sd: Any, uncached: Uncached, recomputations: list[Any]) -> None:
    from pytest_diffbench.run.fingerprint import describe_pipeline

    assert describe_pipeline(sd).device == "cpu"
    sd.to("meta")
    moved = describe_pipeline(sd)
    assert moved.device == "meta" and moved == uncached(sd)


@pytest.mark.parametrize("offloaded", [True, False], ids=["group-offloaded", "plain"])
def test_only_a_group_offloaded_pipeline_reads_its_device_on_every_call(
        sd: Any, offloaded: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group offloading keeps the onload device in a hook, which no tensor shows: never cached. Without
    it the device is a tensor's, which the key holds: read once (diffusers' property walks every module)."""
    import torch
    from diffusers import DiffusionPipeline

    from pytest_diffbench.run.fingerprint import describe_pipeline

    if offloaded:
        sd.unet.enable_group_offload(onload_device=torch.device("cpu"), offload_type="leaf_level")
    assert describe_pipeline(sd).device == "cpu"
    monkeypatch.setattr(DiffusionPipeline, "device", property(lambda pipe: torch.device("meta")))
    assert describe_pipeline(sd).device == ("meta" if offloaded else "cpu")
