"""Testing diffbench setups without torch or diffusers.

:class:`FakePipeline` follows :class:`~pytest_diffbench.run.protocol.DiffbenchPipeline`: it draws a
deterministic picture from the prompt, seed, sampler, steps and guidance scale with numpy and
Pillow alone, in milliseconds, and reports a fixed measurement. Return it from a
``diffbench_pipeline`` fixture to test a conftest, a CI setup or a plugin hook; the baseline
lifecycle, results and reports behave as with a real pipeline::

    # conftest.py
    import pytest
    from pytest_diffbench.testing import FakePipeline

    @pytest.fixture(scope="session")
    def diffbench_pipeline():
        return FakePipeline()

:func:`use_fake_pipeline` writes such a conftest.py into a ``pytester`` project, its
FakePipeline's keywords read from :data:`FAKE_PIPELINE_ENV`; :class:`DiffbenchRun` and
:func:`run_diffbench` run ``pytest --diffbench`` in-process through pytest's ``pytester`` and read
back what the run left (results, run folder, baselines)::

    def test_new_weights_make_the_baseline_stale(pytester, monkeypatch):
        use_fake_pipeline(pytester)
        pytester.makepyfile(test_gen=TESTS)
        run_diffbench(pytester, update="all")
        monkeypatch.setenv(FAKE_PIPELINE_ENV, json.dumps({"weights": "fake-weights-2"}))
        assert run_diffbench(pytester).results[0].outcome is Outcome.STALE_BASELINE
"""

from __future__ import annotations

import hashlib
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from pytest_diffbench.run.protocol import PipelineDescription
from pytest_diffbench.spec.measurement import Measurement

if TYPE_CHECKING:
    import pytest
    from PIL import Image

    from pytest_diffbench.judge.result import CaseResult
    from pytest_diffbench.store.run_folder import RunFolder

__all__ = ["FakePipeline", "DiffbenchRun", "run_diffbench", "run_in_process", "FAKE_PIPELINE_ENV", "FAKE_PIPELINE_CONFTEST",
           "use_fake_pipeline"]


def _unit(*parts: object) -> float:
    """A number in [0, 1) from ``parts``, the same in every process (SHA-256, not hash())."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


#: The keywords of ``StableDiffusionPipeline.__call__`` (diffusers 0.42), which FakePipeline stands in for.
SD_CALL_KEYWORDS = frozenset({
    "prompt", "height", "width", "num_inference_steps", "timesteps", "sigmas", "guidance_scale",
    "negative_prompt", "num_images_per_prompt", "eta", "generator", "latents", "prompt_embeds",
    "negative_prompt_embeds", "ip_adapter_image", "ip_adapter_image_embeds", "output_type", "return_dict",
    "cross_attention_kwargs", "guidance_rescale", "clip_skip", "callback_on_step_end",
    "callback_on_step_end_tensor_inputs",
})


@dataclass
class FakePipeline:
    """A deterministic stand-in for a diffusers text-to-image pipeline.

    The picture: a background whose colour follows the prompt, and a disc whose place follows the
    seed and whose colour follows the negative prompt; the sampler tints it, guidance scale sets
    the contrast, and noise that fades with the number of steps is laid over it, so changing any
    of them changes SSIM against a baseline the way it would on a real model.

    It batches seeds (``--diffbench-batch``, :meth:`diffbench_generate_batch`): a batched call draws
    each seed's picture exactly as an unbatched call would (a real pipeline's batched images differ
    from its single ones in their last bits: within 1/255 for the built-in model), and reports
    ``batch_seconds`` (default: ``seconds_per_image`` per image) as the call's seconds.

    Its sizes are multiples of 8, so diffbench's checks of sweeps and ``generate()`` keywords
    apply to it as to a real pipeline.

    It takes the keywords of Stable Diffusion's call (:data:`SD_CALL_KEYWORDS`) plus
    ``extra_keywords`` less ``missing_keywords`` (e.g. ``("negative_prompt",)`` to stand in for LCM).

    ``weights`` names the model's weights: it goes into the model fingerprint, so changing it makes
    baselines stale. ``pipeline_config`` (the pipeline's own flags), ``adapters`` (LoRA adapters by
    name, as :func:`pytest_diffbench.run.fingerprint.lora_adapters` records them; the active ones
    are its LoRAs) and ``scheduler`` (the scheduler record of every case) go into the config as a
    diffusers pipeline's would, so changing one makes baselines stale too. ``drift`` (0 to 1) blends a stripe pattern into every image *without* changing
    the config: a quality regression. ``seconds_per_image`` and ``peak_vram_mb`` are the
    measurement every call reports (MiB; None as on the CPU). ``calls`` counts pipeline calls (a
    batched call once), ``batch_calls`` the batched ones.
    """

    #: Width and height are multiples of 8, as Stable Diffusion's VAE requires.
    diffbench_size_multiple: ClassVar[int] = 8

    weights: str = "fake-weights-1"
    drift: float = 0.0
    seconds_per_image: float = 0.01
    peak_vram_mb: float | None = None
    width: int = 64
    height: int = 64
    device: str = "cpu"
    extra_keywords: tuple[str, ...] = ()
    missing_keywords: tuple[str, ...] = ()
    pipeline_config: dict[str, Any] = field(default_factory=dict)
    adapters: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)
    batch_seconds: float | None = None
    calls: int = field(default=0, compare=False)
    batch_calls: int = field(default=0, compare=False)

    @property
    def diffbench_call_keywords(self) -> frozenset[str]:
        """The keywords this stand-in takes: :data:`SD_CALL_KEYWORDS` and ``extra_keywords`` (a custom
        pipeline's own), without ``missing_keywords``. diffbench refuses an extra axis or
        ``generate()`` keyword outside them, as it would for a real pipeline whose ``__call__`` does
        not name it."""
        return (SD_CALL_KEYWORDS | frozenset(self.extra_keywords)) - frozenset(self.missing_keywords)

    def diffbench_describe(self) -> PipelineDescription:
        fingerprint = hashlib.sha256(f"FakePipeline|{self.weights}".encode("utf-8")).hexdigest()
        loras = tuple(sorted(name for name, record in self.adapters.items() if record.get("active", True)))
        return PipelineDescription(model="diffbench/fake", model_fingerprint=fingerprint, vae="", loras=loras,
                                   controlnets=(), workflow="FakePipeline", dtype="float32",
                                   device=self.device.split(":")[0], pipeline_config=dict(self.pipeline_config),
                                   adapters={name: dict(record) for name, record in self.adapters.items()})

    def diffbench_scheduler_record(self, sampler: str, seed: int) -> dict[str, Any]:
        """The config's scheduler record of every case: ``scheduler`` as given (``{}``: none)."""
        return dict(self.scheduler)

    def diffbench_generate(self, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> "tuple[Image.Image, Measurement]":
        """The picture for these settings (see the class docstring) and the fixed measurement."""
        self.calls += 1
        image = self.draw(sampler, seed, call_kwargs)
        return image, Measurement(self.seconds_per_image, self.peak_vram_mb, None)

    def diffbench_generate_batch(self, sampler: str, seeds: list[int],
                                 call_kwargs: Mapping[str, Any]) -> "tuple[list[Image.Image], Measurement]":
        """One picture per seed, each the one :meth:`diffbench_generate` draws for it, and the call's
        measurement: ``batch_seconds`` (default ``seconds_per_image`` times the number of seeds) for
        the whole call, which diffbench divides by the number of seeds."""
        self.calls += 1
        self.batch_calls += 1
        seconds = self.batch_seconds if self.batch_seconds is not None else self.seconds_per_image * len(seeds)
        return [self.draw(sampler, seed, call_kwargs) for seed in seeds], Measurement(seconds, self.peak_vram_mb, None)

    def draw(self, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> "Image.Image":
        import numpy as np
        from PIL import Image

        width = int(call_kwargs.get("width") or self.width)
        height = int(call_kwargs.get("height") or self.height)
        prompt, negative = str(call_kwargs.get("prompt", "")), str(call_kwargs.get("negative_prompt") or "")
        steps = int(call_kwargs.get("num_inference_steps", 20))
        guidance = float(call_kwargs.get("guidance_scale", 7.5))
        extra = sorted((k, _stable_repr(v)) for k, v in call_kwargs.items()
                       if k not in ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "output_type",
                                    "width", "height"))
        background = np.array([_unit(prompt, c) for c in "rgb"]) * 255
        disc = np.array([_unit(negative, prompt, c, extra) for c in "rgb"]) * 255
        tint = np.array([_unit(sampler, c) for c in "rgb"]) * 80 - 40
        ys, xs = np.mgrid[0:height, 0:width]
        cx, cy = _unit(seed, "x") * width, _unit(seed, "y") * height
        radius = min(width, height) * (0.2 + 0.2 * _unit(seed, "r"))
        inside = ((xs - cx) ** 2 + (ys - cy) ** 2) <= radius**2
        picture = np.where(inside[..., None], disc + tint, background)
        contrast = 0.5 + 0.5 * math.tanh(guidance / 7.5)
        picture = 127.5 + (picture - 127.5) * contrast
        rng = np.random.default_rng([int(_unit(seed, sampler, prompt) * 2**32), steps])
        picture = picture + rng.normal(0.0, 60.0 / math.sqrt(max(steps, 1)), picture.shape)
        if self.drift:
            stripes = ((xs // 4) % 2 * 255)[..., None]
            picture = (1 - self.drift) * picture + self.drift * stripes
        return Image.fromarray(np.clip(np.rint(picture), 0, 255).astype(np.uint8), "RGB")


def _stable_repr(value: Any) -> str:
    """``repr(value)``, but a PIL image by its mode, size and pixels (its repr holds its address,
    which differs in every process), also inside lists and tuples."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return hashlib.sha256(value.mode.encode() + str(value.size).encode() + value.tobytes()).hexdigest()
    if isinstance(value, (list, tuple)):
        return repr([_stable_repr(item) for item in value])
    return repr(value)


@dataclass
class DiffbenchRun:
    """What one ``pytest --diffbench`` run left behind.

    ``run_id`` is the run ``latest`` named right after the run (see :meth:`after`), so reading a
    run's results after later runs still gives its own.
    """

    outcome: "pytest.RunResult"
    root: Path
    output_dir: Path
    run_id: str | None = None

    @classmethod
    def after(cls, outcome: "pytest.RunResult", root: Path, output_dir: Path) -> "DiffbenchRun":
        """The run that just ended in ``root``, whose run folders go to ``output_dir`` (``run_id``
        None when ``latest`` names no run: none was written, or it could not be marked)."""
        from pytest_diffbench.store.run_folder import LatestError, read_latest

        try:
            return cls(outcome, root, output_dir, read_latest(output_dir))
        except LatestError:
            return cls(outcome, root, output_dir, None)

    @property
    def folder(self) -> "RunFolder":
        """The run's folder. Raises FileNotFoundError when no run had written one."""
        from pytest_diffbench.store.run_folder import RunFolder

        if self.run_id is None:
            raise FileNotFoundError(f"no run folder: {self.output_dir}/latest did not exist after the run")
        return RunFolder.of(self.output_dir, self.run_id)

    @property
    def results(self) -> "list[CaseResult]":
        """The rows of the run's results.csv, as results, sorted by node id."""
        from pytest_diffbench.store.results import read_results

        return read_results(self.folder.results)

    def result(self, text: str) -> "CaseResult":
        """The one result whose node id contains ``text``. Raises LookupError otherwise."""
        found = [r for r in self.results if text in r.nodeid]
        if len(found) != 1:
            raise LookupError(f"{len(found)} results match {text!r}: {[r.nodeid for r in self.results]}")
        return found[0]


#: Environment variable the conftest of :func:`use_fake_pipeline` reads its FakePipeline's keywords
#: from: a JSON object of :class:`FakePipeline`'s keywords (``weights``, ``drift``,
#: ``seconds_per_image``, ``peak_vram_mb``, ``width``, ``height``, ``extra_keywords``,
#: ``missing_keywords``, ``pipeline_config``, ``adapters``, ``scheduler``, ``batch_seconds``), e.g.
#: ``{"weights": "fake-weights-2"}`` (baselines become stale) or ``{"drift": 0.5}`` (quality fails).
#: Unset or empty: ``FakePipeline()``. Set it with ``monkeypatch.setenv`` between runs; the
#: fixture is session-scoped, so it is read once per run.
FAKE_PIPELINE_ENV = "DIFFBENCH_FAKE_PIPELINE"

#: Source of a conftest.py whose session-scoped ``diffbench_pipeline`` fixture returns a
#: :class:`FakePipeline` with the keywords in :data:`FAKE_PIPELINE_ENV`.
FAKE_PIPELINE_CONFTEST = '''\
import json
import os

import pytest

from pytest_diffbench.testing import FAKE_PIPELINE_ENV, FakePipeline


@pytest.fixture(scope="session")
def diffbench_pipeline():
    """A FakePipeline with the keywords in $DIFFBENCH_FAKE_PIPELINE (JSON: weights, drift, ...)."""
    return FakePipeline(**json.loads(os.environ.get(FAKE_PIPELINE_ENV) or "{}"))
'''


def use_fake_pipeline(pytester: "pytest.Pytester", extra: str = "") -> Path:
    """Make ``pytester``'s project use a FakePipeline: write its conftest.py and return the path.

    The conftest is :data:`FAKE_PIPELINE_CONFTEST` followed by ``extra`` (more conftest source,
    e.g. hook implementations; dedented). It replaces any conftest.py the project had. The
    pipeline's keywords come from :data:`FAKE_PIPELINE_ENV` (a JSON object) when a run starts::

        use_fake_pipeline(pytester, extra='''
            def pytest_diffbench_machine_info(config, machine_info):
                machine_info["cluster_node"] = "node-7"
        ''')
        monkeypatch.setenv(FAKE_PIPELINE_ENV, json.dumps({"drift": 0.5}))
        run = run_diffbench(pytester)
    """
    source = FAKE_PIPELINE_CONFTEST
    if extra.strip():
        source += "\n\n" + textwrap.dedent(extra).strip("\n") + "\n"
    return Path(pytester.makeconftest(source))


class _RunFolders:
    """A plugin of one in-process run that notes where the run keeps its run folders: its rootdir
    and its ``diffbench_output_dir`` (the flag over the ini key of whichever ini file pytest read:
    pytest.ini, pyproject.toml, tox.ini, setup.cfg), as the diffbench plugin reads them."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.output_dir: Path | None = None

    def pytest_configure(self, config: "pytest.Config") -> None:
        self.root = config.rootpath
        try:
            folder = config.getoption("diffbench_output_dir") or config.getini("diffbench_output_dir")
        except ValueError:  # the diffbench plugin is not loaded (-p no:diffbench): no run folder
            return
        self.output_dir = config.rootpath / str(folder).strip()


def run_in_process(pytester: "pytest.Pytester", *args: str) -> DiffbenchRun:
    """``pytest ARGS`` in this process on ``pytester``'s folder, and what it left in the run folder
    it used: its rootdir's ``diffbench_output_dir`` (ini key or flag; ``.diffbench`` when the run
    did not get as far as reading it)."""
    where = _RunFolders()
    outcome = pytester.runpytest_inprocess(*args, plugins=[where])
    root = where.root or pytester.path
    return DiffbenchRun.after(outcome, root, where.output_dir or root / ".diffbench")


def run_diffbench(pytester: "pytest.Pytester", *args: str, update: str | None = None, lpips: str = "off") -> DiffbenchRun:
    """``pytest --diffbench [--diffbench-update=UPDATE] ARGS`` in this process, on ``pytester``'s folder
    (see :func:`run_in_process`: its results are read from the run folder the run used).

    LPIPS is off unless ``lpips`` says otherwise (its weights are rarely present in tests).
    """
    flags = ["--diffbench", f"--diffbench-lpips={lpips}", "-p", "no:cacheprovider"]
    if update is not None:
        flags.append(f"--diffbench-update={update}")
    return run_in_process(pytester, *flags, *args)
