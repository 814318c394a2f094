"""Seed batching at run time (issue 13, item 4): a chunk's first case makes every seed's image in
one call, the others take theirs from a bounded cache (dropped once taken), each case keeps its
own seed, image, config (``batch``) and per-image seconds; a case whose keywords differ runs the
chunk again; where batching cannot apply the case runs alone as batch 1 and a warning says why;
ImageGenerator batches with one CPU generator per image and warms up at the batch's shape."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from PIL import Image

from pytest_diffbench.run.batching import BatchCache, BatchUnsupported
from pytest_diffbench.run.case import DiffbenchCase, SelfRunner
from pytest_diffbench.spec.batches import Chunk
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.sweep import Case
from pytest_diffbench.testing import FakePipeline


def case_of(pipe: Any, seed: int, chunk: Chunk | None) -> DiffbenchCase:
    return DiffbenchCase(nodeid=f"t.py::test_a[seed{seed}-euler-2steps-cfg7.5]", case=Case(seed=seed, steps=2),
                         pipeline=pipe, runner=SelfRunner(), workflow_version="1", batch=chunk)


def test_a_chunk_runs_once_and_each_case_gets_its_own_image_config_and_seconds() -> None:
    pipe = FakePipeline(batch_seconds=0.9, peak_vram_mb=512.0)
    chunk = Chunk("t.py::test_a[seed*-euler-2steps-cfg7.5]", 0, (5, 2, 8))
    cases = [case_of(pipe, seed, chunk) for seed in (2, 8, 5)]  # any order: the first to run makes the chunk
    for case in cases:
        case.generate("a red cube")
    assert (pipe.calls, pipe.batch_calls) == (1, 1)
    alone = FakePipeline()
    for case in cases:
        twin = case_of(alone, case.seed, None)
        twin.generate("a red cube")
        assert case.image.tobytes() == twin.image.tobytes()  # FakePipeline's batched images equal its single ones
        assert case.config.seed == case.seed and case.config.batch == 3
        assert case.config.to_dict() == {**twin.config.to_dict(), "batch": 3}
        assert case.measurement.seconds_per_image == pytest.approx(0.3)  # the call's seconds / its size
        assert case.measurement.peak_vram_mb == 512.0  # the call's
    assert len({case.config.hash for case in cases}) == 3


def test_a_case_whose_keywords_differ_from_the_batchs_runs_the_chunk_again() -> None:
    pipe = FakePipeline()
    chunk = Chunk("g", 0, (0, 1))
    first, second = case_of(pipe, 0, chunk), case_of(pipe, 1, chunk)
    first.generate("a red cube")
    second.generate("a blue cube")
    assert pipe.batch_calls == 2
    twin = case_of(FakePipeline(), 1, None)
    twin.generate("a blue cube")
    assert second.image.tobytes() == twin.image.tobytes()


class Unbatchable(FakePipeline):
    """A pipeline that runs itself and makes one image per call."""

    diffbench_generate_batch = None  # type: ignore[assignment]


def test_a_pipeline_without_batch_support_runs_each_case_alone_as_batch_one_and_says_so() -> None:
    pipe = Unbatchable()
    chunk = Chunk("g", 0, (0, 1))
    with pytest.warns(pytest.PytestWarning, match=r"--diffbench-batch does not apply to these cases \(Unbatchable has "
                      r"no diffbench_generate_batch\); they ran one at a time, recorded as batch 1"):
        case = case_of(pipe, 0, chunk)
        case.generate("a red cube")
    assert case.config.batch == 1 and "batch" not in case.config.to_dict() and pipe.calls == 1


def test_a_batched_call_that_returns_too_few_images_fails_the_case_in_one_line() -> None:
    class Short(FakePipeline):
        def diffbench_generate_batch(self, sampler, seeds, call_kwargs):  # type: ignore[no-untyped-def]
            images, measurement = super().diffbench_generate_batch(sampler, seeds, call_kwargs)
            return images[:1], measurement

    with pytest.raises(pytest.fail.Exception, match="returned 1 images for 2 seeds; return one image per seed"):
        case_of(Short(), 0, Chunk("g", 0, (0, 1))).generate("a red cube")


def image() -> Image.Image:
    return Image.new("RGB", (8, 8))


def test_the_cache_drops_an_image_once_taken_keeps_few_calls_and_forgets_a_chunk_that_is_gone() -> None:
    cache = BatchCache(max_calls=2)
    measurement = Measurement(0.1, None, None)
    chunks = [Chunk("g", index, (0, 1, 2)) for index in range(3)]
    cache.put(chunks[0], "k", {1: (image(), measurement), 2: (image(), measurement)})
    assert cache.take(chunks[0], "other keywords", 1) is None
    assert cache.take(chunks[0], "k", 1) is not None and cache.take(chunks[0], "k", 1) is None and len(cache) == 1
    cache.put(chunks[1], "k", {1: (image(), measurement)})
    cache.put(chunks[2], "k", {1: (image(), measurement)})  # three calls: the oldest goes
    assert cache.take(chunks[0], "k", 2) is None and len(cache) == 2
    del chunks[1]
    gc.collect()
    assert len(cache) == 1


# -- ImageGenerator: diffusers-style calls -------------------------------------------------------------


class NoisePipeline:
    """A diffusers-like pipeline: each image's grey level is the first number its generator draws."""

    device = "cpu"

    def __init__(self) -> None:
        from diffusers import EulerDiscreteScheduler

        self.scheduler = EulerDiscreteScheduler()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, prompt: str, num_inference_steps: int = 2, output_type: str = "pil",
                 num_images_per_prompt: int = 1, generator: Any = None, latents: Any = None) -> Any:
        import torch

        generators = generator if isinstance(generator, list) else [generator] * num_images_per_prompt
        assert len(generators) == num_images_per_prompt
        self.calls.append({"steps": num_inference_steps, "count": num_images_per_prompt})
        levels = [int(torch.rand(1, generator=g).item() * 255) for g in generators]
        return type("Output", (), {"images": [Image.new("L", (8, 8), level) for level in levels]})()


def test_image_generator_batches_with_one_generator_per_seed_and_warms_up_at_the_batch_shape() -> None:
    from pytest_diffbench.run.generation import ImageGenerator

    generator, pipe = ImageGenerator(), NoisePipeline()
    call = {"prompt": "a red cube", "num_inference_steps": 4, "output_type": "pil"}
    images, measurement = generator.generate_batch(pipe, "Euler", [3, 1, 4], call)
    singles = [generator.generate(pipe, "Euler", seed, call)[0] for seed in (3, 1, 4)]
    assert [im.tobytes() for im in images] == [im.tobytes() for im in singles]
    assert measurement.warmup_seconds is not None and measurement.seconds_per_image > 0
    assert [c["count"] for c in pipe.calls] == [3, 3, 1, 1, 1, 1]  # batch warm-up + call, single warm-up + 3 calls
    assert pipe.calls[0]["steps"] < 4
    generator.generate_batch(pipe, "Euler", [5, 6, 7], call)
    assert [c["count"] for c in pipe.calls[6:]] == [3]  # this shape is warm


def test_image_generator_refuses_a_batch_where_one_call_cannot_make_the_cases_images() -> None:
    import torch

    from pytest_diffbench.run.generation import ImageGenerator
    from pytest_diffbench.run.stages import TwoStage

    generator, pipe = ImageGenerator(), NoisePipeline()
    call = {"prompt": "a red cube", "num_inference_steps": 4, "output_type": "pil"}
    with pytest.raises(BatchUnsupported, match="generate\\(\\) was given latents"):
        generator.generate_batch(pipe, "Euler", [0, 1], {**call, "latents": torch.zeros(1, 4, 1, 1)})
    assert generator.batch_problem(TwoStage.__new__(TwoStage), "Euler", [0, 1], call) == "a two-stage pipeline"

    class Single:
        device = "cpu"

        def __call__(self, prompt: str, generator: Any = None) -> Any: ...

    assert generator.batch_problem(Single(), "Euler", [0, 1], call) == "Single.__call__ takes no num_images_per_prompt"
    assert generator.batch_problem(pipe, "DPM++ SDE", [0, 1], call) == \
        "sampler 'DPM++ SDE' seeds its own noise from each case's seed"
    assert generator.batch_problem(pipe, "DPM++ 2M", [0, 1], call) == ""
    assert pipe.calls == []
