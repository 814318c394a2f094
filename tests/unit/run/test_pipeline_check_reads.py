"""The per-case check that a fixture returned a pipeline (issue 13, item 1: nothing computed twice)
reads no property of a diffusers-like pipeline: diffusers' ``device`` walks every module of the
pipeline, and the check runs for every case."""

from __future__ import annotations

from typing import Any

from pytest_diffbench.run.protocol import pipeline_problem


class CountingPipeline:
    """What diffbench uses of a diffusers pipeline, with ``device`` and ``dtype`` counting their reads."""

    def __init__(self) -> None:
        self.reads = 0
        self.scheduler = object()
        self.components: dict[str, Any] = {}

    @property
    def device(self) -> str:
        self.reads += 1
        return "cpu"

    @property
    def dtype(self) -> str:
        self.reads += 1
        return "float32"

    def __call__(self, prompt: str) -> None:
        return None


def test_checking_a_pipeline_reads_neither_device_nor_dtype() -> None:
    pipe = CountingPipeline()
    assert [pipeline_problem(pipe) for _ in range(3)] == [None] * 3
    assert pipe.reads == 0


def test_a_pipeline_without_a_scheduler_is_still_refused_naming_it() -> None:
    pipe = CountingPipeline()
    pipe.scheduler = None
    problem = pipeline_problem(pipe)
    assert problem is not None and "it has no scheduler" in problem
