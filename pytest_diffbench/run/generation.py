"""One image per call: sampler swap, seeded CPU generator, warm-up, timing and peak VRAM.

Timing wraps only the pipeline call, synchronised on CUDA so queued kernels are counted.
The first time a pipeline meets a resolution it runs one short warm-up generation first
(kernel selection, allocator growth, lazy initialisation), which is recorded separately and
never counted as the case's seconds per image.

NaN or inf in the decoded image (a float16 VAE overflow) reaches us as black pixels: diffusers'
``numpy_to_pil`` casts them to uint8 and numpy warns "invalid value encountered in cast". The
timed call records those warnings (:func:`record_nonfinite`) into ``Measurement.warnings``, and
the judge refuses the output; every other warning is passed on unchanged.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
import warnings
from typing import Any, Iterator, Mapping

import torch
from PIL import Image

from pytest_diffbench.run.fingerprint import describe_pipeline
from pytest_diffbench.run.protocol import PipelineDescription
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.samplers import build_scheduler

WARMUP_STEPS = 2


class ImageGenerator:
    """Generates the images of a session and remembers what it warmed up.

    Schedulers are always built from the pipeline's scheduler config as first seen, so one
    case's sampler never leaks into the next case's.
    """

    def __init__(self) -> None:
        self._original_scheduler_configs: dict[int, Any] = {}
        self._warmed: set[tuple[int, int | None, int | None]] = set()
        self._pipelines: list[Any] = []  # keeps ids above from being reused

    def scheduler_config(self, pipe: Any) -> Any:
        key = id(pipe)
        if key not in self._original_scheduler_configs:  # the diffbench fixture checked it has a scheduler
            self._original_scheduler_configs[key] = pipe.scheduler.config
            self._pipelines.append(pipe)
        return self._original_scheduler_configs[key]

    def describe(self, pipe: Any) -> PipelineDescription:
        """The pipeline's fields of the frozen config (see run.fingerprint)."""
        return describe_pipeline(pipe)

    def call_keywords(self, pipe: Any) -> frozenset[str] | None:
        """The keywords the pipeline's ``__call__`` names. A keyword it would only swallow through
        ``**kwargs`` changes nothing, so it must not change a config either. A ``__call__`` that
        names none (a wrapper's ``*args, **kwargs``) passes them on: the nearest one up the class
        hierarchy that names some is read. None (any keyword) when no class names any."""
        for cls in type(pipe).__mro__:
            call = cls.__dict__.get("__call__")
            if call is None:
                continue
            parameters = list(inspect.signature(call).parameters.values())[1:]  # without self
            named = frozenset(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
            if named:
                return named
        return None

    def size_multiple(self, pipe: Any) -> int:
        """What width and height must be multiples of: 8 (the check of diffusers' Stable Diffusion
        pipelines), and the pipeline's ``vae_scale_factor`` when that is coarser. Pipelines with a
        coarser rule of their own (Flux: 16) still refuse or resize; the size check after the call
        reports a resize."""
        factor = getattr(pipe, "vae_scale_factor", None)
        return math.lcm(8, factor) if isinstance(factor, int) and factor > 0 else 8

    def generate(self, pipe: Any, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> tuple[Image.Image, Measurement]:
        """Swap the sampler, warm up if needed, and time one image of ``seed``."""
        with _quiet_scheduler_warnings():
            pipe.scheduler = build_scheduler(self.scheduler_config(pipe), sampler)
        device = torch.device(getattr(pipe, "device", "cpu"))
        warm_key = (id(pipe), call_kwargs.get("width"), call_kwargs.get("height"))
        warmup_seconds = None
        if warm_key not in self._warmed:
            warm_kwargs = {**call_kwargs, "num_inference_steps": min(WARMUP_STEPS, call_kwargs["num_inference_steps"])}
            warmup_seconds, _ = self._timed_call(pipe, device, warm_kwargs, seed)
            self._warmed.add(warm_key)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with record_nonfinite() as nonfinite:
            seconds, output = self._timed_call(pipe, device, call_kwargs, seed)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        image = _first_image(output)
        return image, Measurement(seconds_per_image=seconds, peak_vram_mb=peak, warmup_seconds=warmup_seconds,
                                  warnings=tuple(nonfinite))

    @staticmethod
    def _timed_call(pipe: Any, device: torch.device, call_kwargs: Mapping[str, Any], seed: int) -> tuple[float, Any]:
        # One CPU generator per image: the same starting noise on any device (diffusers' advice).
        generator = torch.Generator("cpu").manual_seed(seed)
        _synchronize(device)
        start = time.perf_counter()
        with _quiet_scheduler_warnings():
            output = pipe(**call_kwargs, generator=generator)
        _synchronize(device)
        return time.perf_counter() - start, output


@contextlib.contextmanager
def _quiet_scheduler_warnings() -> Iterator[None]:
    """diffusers' schedulers hand torch tensors to np.array(); numpy 2 warns about it on every call."""
    with warnings.catch_warnings():
        for message in (".*__array__ implementation doesn't accept a copy keyword", ".*__array_wrap__ must accept context"):
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        yield


#: numpy's RuntimeWarning when NaN or inf are cast to integers (diffusers' numpy_to_pil making uint8 pixels).
_NONFINITE = "invalid value encountered in cast"


@contextlib.contextmanager
def record_nonfinite() -> Iterator[list[str]]:
    """Collect the messages of numpy's non-finite-value RuntimeWarnings raised inside the block
    (as ``numpy: <message>``, the form ``Measurement.warnings`` takes);
    every other warning is re-issued as it came."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        yield found
    for item in caught:
        text = str(item.message)
        if issubclass(item.category, RuntimeWarning) and _NONFINITE in text:
            if f"numpy: {text}" not in found:
                found.append(f"numpy: {text}")
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno, source=item.source)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _first_image(output: Any) -> Image.Image:
    images = getattr(output, "images", None)
    if images is None and isinstance(output, (tuple, list)):
        images = output[0]
    if not images or not isinstance(images[0], Image.Image):
        raise TypeError(
            "the pipeline call did not return PIL images (expected output.images[0] to be a PIL.Image); "
            "diffbench calls it with output_type='pil'"
        )
    if len(images) != 1:
        raise ValueError(f"the pipeline returned {len(images)} images; diffbench compares one image per case")
    return images[0]
