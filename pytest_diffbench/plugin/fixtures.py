"""The fixtures: ``diffbench`` (one case), ``diffbench_pipeline`` and ``diffbench_device``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_diffbench.plugin.keys import CASE_KEY, SESSION_KEY
from pytest_diffbench.spec.sweep import Case

if TYPE_CHECKING:
    import torch

    from pytest_diffbench.run.case import DiffbenchCase
    from pytest_diffbench.spec.presets import Preset


@pytest.fixture
def _diffbench_case() -> Case:
    """The case of a test without a sweep; a sweep parametrizes this fixture away."""
    return Case()


@pytest.fixture(scope="session")
def diffbench_device(pytestconfig: pytest.Config) -> "torch.device":
    """The device of the diffbench_pipeline fixture (``--diffbench-device``, ``auto`` picks CUDA when present)."""
    from pytest_diffbench.run.pipelines import resolve_device

    # read_settings has checked the value: resolve_device cannot refuse it.
    return resolve_device(pytestconfig.stash[SESSION_KEY].settings.device)


@pytest.fixture(scope="session")
def diffbench_pipeline(pytestconfig: pytest.Config, request: pytest.FixtureRequest, diffbench_device: "torch.device") -> Any:
    """The pipeline under test: ``--diffbench-model`` (the shipped diffbench-tiny by default).

    Override it in conftest.py with your own (session scope) for full control of loading; a
    :class:`pytest_diffbench.testing.FakePipeline` tests a setup without torch or diffusers, and
    ``diffbench.two_stage(base, refiner, handoff=0.8)`` runs a base then its refiner for each case.
    A local folder that is not a diffusers pipeline was refused before any case ran
    (``read_settings``). When loading fails here (a hub id that cannot be fetched, a broken
    folder), the case errors with one line naming ``diffbench_model`` (no traceback) and the run
    stops after it: pytest keeps a session fixture's error, so every further case would repeat it.
    The case of a preset that names a model gets that model instead (see :func:`diffbench`).
    """
    settings = pytestconfig.stash[SESSION_KEY].settings
    try:
        return _plugin_pipeline(pytestconfig, diffbench_device, PipelineParts(settings.model, settings.model_folder))
    except ValueError as exc:
        problem = f"diffbench_model: {exc}"
    # Outside the except clause, so that pytest shows no chained exception.
    request.session.shouldstop = "diffbench: the model of diffbench_model could not be loaded; no further case ran"
    pytest.fail(problem, pytrace=False)


@dataclass(frozen=True)
class PipelineParts:
    """What the plugin loads for a pipeline: the model (its recorded name and local folder, None
    for a built-in model or a hub id), a VAE (a folder or hub id, "" for the model's own) and
    LoRA files (in order)."""

    model: str
    folder: Path | None = None
    vae: str = ""
    loras: tuple[str, ...] = ()


#: The pipelines the plugin loaded in this session, by their parts: ``--diffbench-model``'s and each preset's.
_LOADED = pytest.StashKey[dict[PipelineParts, Any]]()


def _plugin_pipeline(config: pytest.Config, device: "torch.device", parts: PipelineParts) -> Any:
    """The pipeline of ``parts``, loaded once per session on ``device`` in the session's dtype.
    Raises ValueError (one line) when the model, the VAE or a LoRA cannot be loaded."""
    loaded = config.stash.setdefault(_LOADED, {})
    if parts not in loaded:
        from pytest_diffbench.run.pipelines import default_dtype, load_pipeline, parse_dtype

        settings = config.stash[SESSION_KEY].settings
        # read_settings has checked the dtype name against DTYPE_NAMES: parse_dtype cannot refuse it.
        dtype = default_dtype(device) if settings.dtype == "auto" else parse_dtype(settings.dtype)
        pipe = load_pipeline(parts.model, device=device, dtype=dtype, folder=parts.folder)
        if parts.vae or parts.loras:
            _load_parts(pipe, parts, config.rootpath, device, dtype)
        loaded[parts] = pipe
    return loaded[parts]


def _load_parts(pipe: Any, parts: PipelineParts, root: Path, device: "torch.device", dtype: "torch.dtype") -> None:
    """Put ``parts``' VAE (``AutoencoderKL.from_pretrained``, a folder relative to ``root`` or a hub
    id; recorded under the name the preset gives) and LoRA files (``load_lora_weights``, one adapter
    per file, named by its stem; needs peft) into ``pipe``. Raises ValueError (one line naming the
    preset field) when one cannot be loaded."""
    from diffusers import AutoencoderKL

    where = (root / parts.vae) if parts.vae and (root / parts.vae).exists() else None
    try:
        if parts.vae:
            vae = AutoencoderKL.from_pretrained(str(where or parts.vae), torch_dtype=dtype).to(device)
            vae.register_to_config(_name_or_path=parts.vae)  # the config records the preset's name, not this machine's path
            pipe.vae = vae
    except Exception as exc:  # whatever a broken folder or an unreachable hub raises: one line
        raise ValueError(f"vae = {parts.vae!r} cannot be loaded with AutoencoderKL.from_pretrained "
                         f"({type(exc).__name__}: {_first_line(exc)}); name a diffusers VAE folder or hub id") from None
    for lora in parts.loras:
        try:
            pipe.load_lora_weights(str(root / lora), adapter_name=Path(lora).stem)
        except Exception as exc:  # a missing file, another architecture, no peft: one line
            raise ValueError(f"loras: {lora!r} cannot be loaded with load_lora_weights ({type(exc).__name__}: "
                             f"{_first_line(exc)}); name a LoRA file of this model, relative to the rootdir "
                             "(LoRAs need peft)") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _preset_pipeline(request: pytest.FixtureRequest, preset: "Preset", pipeline: Any) -> Any:
    """The pipeline of a case whose preset names a model, VAE or LoRAs: in place of the plugin's
    own pipeline, the preset's (loaded once per session); a ``diffbench_pipeline`` fixture of the
    user's is kept when it runs the preset's model, and the case fails in one line when it runs
    another model or the preset names a VAE or LoRAs (the plugin loads those into its own
    pipelines only)."""
    from pytest_diffbench.plugin.options import resolve_model

    config = request.config
    if any(pipeline is ours for ours in config.stash.get(_LOADED, {}).values()):
        settings = config.stash[SESSION_KEY].settings
        try:
            model, folder = (resolve_model(preset.text("model"), config.rootpath, Path.cwd()) if preset.text("model")
                             else (settings.model, settings.model_folder))
            device = request.getfixturevalue("diffbench_device")  # imports torch: only for the plugin's own pipelines
            return _plugin_pipeline(config, device, PipelineParts(model, folder, preset.text("vae"), preset.loras))
        except ValueError as exc:
            pytest.fail(f"preset {preset.name!r} ({preset.source}): {exc}", pytrace=False)
    given = [name for name in ("vae", "loras") if preset.values.get(name)]
    if given:
        pytest.fail(f"preset {preset.name!r} ({preset.source}) sets {' and '.join(given)}, which diffbench loads into its "
                    "own pipeline (--diffbench-model) only, and your diffbench_pipeline fixture gives its own; load them "
                    f"in the fixture and leave {' and '.join(given)} out of the preset", pytrace=False)
    model = _described_model(pipeline)
    if preset.text("model") and model != preset.text("model"):
        pytest.fail(f"preset {preset.name!r} ({preset.source}) runs model {preset.text('model')!r}, but your "
                    f"diffbench_pipeline fixture gives {model!r}; make the fixture load the preset's model, or "
                    "leave model out of the preset", pytrace=False)
    return pipeline


def _described_model(pipeline: Any) -> str:
    """The model name the config would record for ``pipeline`` (its base stage's for two stages)."""
    from pytest_diffbench.run.protocol import DiffbenchPipeline
    from pytest_diffbench.run.stages import TwoStage

    base = pipeline.base if isinstance(pipeline, TwoStage) else pipeline
    if isinstance(base, DiffbenchPipeline):
        return base.diffbench_describe().model
    from pytest_diffbench.run.fingerprint import describe_pipeline

    return describe_pipeline(base).model


@pytest.fixture
def diffbench(request: pytest.FixtureRequest, _diffbench_case: Case, diffbench_pipeline: Any) -> "DiffbenchCase":
    """One case of the sweep: ``generate(prompt, negative_prompt=None, **pipeline_kwargs)``.

    Fails the case (one line) when ``diffbench_pipeline`` gave something that is not a pipeline
    (for ``diffbench.two_stage``: a stage that is not a diffusers pipeline, a handoff not between 0 and 1).
    A case whose preset names a model, VAE or LoRAs runs the preset's pipeline (see :func:`_preset_pipeline`).
    """
    from pytest_diffbench.run.protocol import pipeline_problem
    from pytest_diffbench.run.stages import TwoStage, two_stage_problem

    preset = _diffbench_case.preset
    if preset is not None and any(preset.values.get(name) for name in ("model", "vae", "loras")):
        diffbench_pipeline = _preset_pipeline(request, preset, diffbench_pipeline)

    if isinstance(diffbench_pipeline, TwoStage):
        problem = two_stage_problem(diffbench_pipeline, pipeline_problem)
    else:
        problem = pipeline_problem(diffbench_pipeline)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    dcase = request.config.stash[SESSION_KEY].start_case(request.node, _diffbench_case, diffbench_pipeline)
    request.node.stash[CASE_KEY] = dcase
    return dcase
