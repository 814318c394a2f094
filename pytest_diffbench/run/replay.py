"""Regenerate a case from its frozen config alone (``diffbench replay``).

A frozen config names everything that decides the pixels: the model (built-in, a local
diffusers folder recorded relative to the rootdir, or a hub id) and its weight fingerprint, the
pipeline class (``workflow``), dtype, device, seed, sampler, steps, cfg, size, prompts, every
pipeline keyword (input images by the digest of their pixels, files in the run's ``inputs/``) and
the determinism switch. :class:`Replayer` loads the model it names, turns the pipeline into the
recorded class when the test built another one from it (``from_pipe``: img2img, inpaint),
and makes the image through the plugin's own :class:`~pytest_diffbench.run.generation.ImageGenerator`
(sampler swap, CPU generator seeded with the case's seed, warm-up).

What a config cannot rebuild on its own is refused, one line per case saying why
(:class:`ReplayRefused`, :func:`replay_problem`): a two-stage refiner, LoRA adapters,
ControlNets, IP-Adapter inputs, array or tensor inputs (recorded by a summary, not their values),
a pipeline that runs itself (a test double such as FakePipeline) or one that is no diffusers
pipeline class. What differs between the loaded pipeline and the config (the weight
fingerprint, the VAE, the pipeline's flags, the scheduler the sampler builds, dtype, device)
is not refused: it is reported with the image (:attr:`Regenerated.notes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pytest_diffbench.spec.config import APPROX_KEY, IMAGE_RECORD_KEYS, short_repr

if TYPE_CHECKING:
    from PIL import Image

    from pytest_diffbench.run.generation import ImageGenerator

#: Config keywords that need an IP-Adapter loaded into the pipeline (a config does not say which).
IP_ADAPTER_KEYWORDS = ("ip_adapter_image", "ip_adapter_image_embeds")
#: The description fields compared between the loaded pipeline and the config, in this order.
DESCRIBED_FIELDS = ("model_fingerprint", "vae", "workflow", "pipeline_config", "dtype", "device")


class ReplayRefused(ValueError):
    """A case its config alone cannot rebuild; the message (one line) says why."""


@dataclass(frozen=True)
class Regenerated:
    """A replayed case's image, and how the pipeline that made it differs from the config
    (``notes``: one line each, empty when it matches)."""

    image: "Image.Image"
    notes: tuple[str, ...] = ()


def replay_problem(config: Mapping[str, Any]) -> str | None:
    """Why ``config`` (a frozen config's dict) cannot be rebuilt from itself alone; None when it can."""
    workflow = str(config.get("workflow") or "")
    if config.get("refiner"):
        return "a two-stage case (diffbench.two_stage): its refiner and handoff are built by the test's fixture"
    if config.get("loras") or config.get("adapters"):
        return "LoRA adapters are loaded by the test's fixture (the config records their digests, not their files)"
    if config.get("controlnets"):
        return "ControlNets are loaded by the test's fixture (the config names them, it does not load them)"
    kwargs = config.get("pipeline_kwargs")
    kwargs = kwargs if isinstance(kwargs, Mapping) else {}
    adapter_inputs = [name for name in IP_ADAPTER_KEYWORDS if kwargs.get(name) is not None]
    if adapter_inputs:
        return f"{', '.join(adapter_inputs)} needs an IP-Adapter loaded by the test's fixture"
    arrays = [name for name in sorted(kwargs) if _holds_data_record(kwargs[name])]
    if arrays:
        return (f"the array or tensor input {', '.join(arrays)} is recorded by a summary of its values, not the values "
                "themselves")
    if not _is_diffusers_pipeline_class(workflow):
        return (f"its pipeline {workflow or '(none recorded)'} is not a diffusers pipeline class (a pipeline that runs "
                "itself, such as FakePipeline, is the test's own)")
    return None


def _holds_data_record(value: Any) -> bool:
    """Whether ``value`` (config JSON) holds an array/tensor record (:mod:`pytest_diffbench.run.inputs`)."""
    if isinstance(value, Mapping):
        return "array" in value or APPROX_KEY in value or any(_holds_data_record(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_data_record(item) for item in value)
    return False


def _is_diffusers_pipeline_class(name: str) -> bool:
    """Whether ``name`` names a pipeline class diffusers exports (imports diffusers)."""
    if not name.isidentifier():
        return False
    import diffusers

    cls = getattr(diffusers, name, None)
    return isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)


class Replayer:
    """Regenerates cases from their configs, loading each (model, class, device, dtype) once.

    ``inputs`` gives the image file of an input image's record by its ``name`` (the bundle's or
    run's ``inputs/<name>``; raises KeyError when it has none). ``model_root`` is where a local
    model folder recorded relative to the rootdir is looked for. ``device`` (``cpu``, ``cuda``, ...)
    replaces the recorded device when given. ``deterministic``: turn on
    :func:`~pytest_diffbench.run.determinism.enable_determinism` before any pipeline is built (a
    bundle made with ``--diffbench-deterministic``).
    """

    def __init__(self, inputs: Callable[[str], bytes], *, model_root: Path, device: str | None = None,
                 deterministic: bool = False) -> None:
        from pytest_diffbench.run.generation import ImageGenerator

        if deterministic:
            from pytest_diffbench.run.determinism import enable_determinism

            enable_determinism()
        self._inputs = inputs
        self._model_root = Path(model_root)
        self._device = device
        self._generator: ImageGenerator = ImageGenerator()
        #: Each loaded pipeline, or the one-line reason it could not be loaded, by (model, workflow, device,
        #: dtype, VAE).
        self._pipelines: dict[tuple[str, str, str, str, str], Any] = {}

    def regenerate(self, config: Mapping[str, Any]) -> Regenerated:
        """The case's image, made again from ``config`` alone. Raises :class:`ReplayRefused` (one
        line) when the config cannot be rebuilt (:func:`replay_problem`), its model cannot be
        loaded (the reason, once per model, repeated for its every case), its device is not here,
        an input image is missing from the bundle or does not hold the recorded pixels, or the
        pipeline's call refuses the recorded keywords."""
        from pytest_diffbench.run.protocol import PipelineCallError
        from pytest_diffbench.run.stages import StageError

        problem = replay_problem(config)
        if problem:
            raise ReplayRefused(problem)
        pipe = self._pipeline(config)
        kwargs = self._call_kwargs(config, pipe)
        seed, sampler = int(config["seed"]), str(config["sampler"])
        notes = self._differences(config, pipe, sampler, seed)
        try:
            image, _ = self._generator.generate(pipe, sampler, seed, kwargs)
        except (PipelineCallError, StageError, ValueError, TypeError) as exc:
            raise ReplayRefused(f"the pipeline refused the recorded call: {' '.join(str(exc).split())}") from None
        return Regenerated(image=image, notes=notes)

    # -- the pipeline -----------------------------------------------------------------------

    def _pipeline(self, config: Mapping[str, Any]) -> Any:
        from pytest_diffbench.run.pipelines import parse_dtype, resolve_device

        model, workflow = str(config.get("model") or ""), str(config["workflow"])
        device_name = self._device or str(config.get("device") or "cpu")
        dtype_name = str(config.get("dtype") or "float32")
        vae = str(config.get("vae") or "")
        key = (model, workflow, device_name, dtype_name, vae)
        if key not in self._pipelines:
            try:
                device = resolve_device(device_name)
                dtype = parse_dtype(dtype_name)
                self._pipelines[key] = self._with_vae(self._load(model, workflow, device, dtype), vae, device, dtype)
            except ValueError as exc:  # one line each: the loader's, the device's, the dtype's
                self._pipelines[key] = ReplayRefused(" ".join(str(exc).split()))
        loaded = self._pipelines[key]
        if isinstance(loaded, ReplayRefused):
            raise loaded
        return loaded

    def _load(self, model: str, workflow: str, device: Any, dtype: Any) -> Any:
        """``model`` on ``device`` in ``dtype``, as the recorded pipeline class ``workflow``.
        Raises ValueError (one line) when it cannot be loaded or turned into that class."""
        import diffusers
        import torch

        from pytest_diffbench.run.pipelines import load_pipeline

        from pytest_diffbench.spec.targets import check_available

        mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
        try:
            check_available(str(device), cuda_count=torch.cuda.device_count(), mps=mps)
        except ValueError as exc:  # where it was asked to replay, and where the case ran
            asked = (f"--device {self._device} asks for {device}" if self._device
                     else f"the case ran on {device} and is replayed there")
            raise ValueError(f"{asked}, but {exc}; replay it with --device cpu (its images may then differ "
                             "within tolerance)") from None
        folder = self._model_root / model
        pipe = load_pipeline(model, device=device, dtype=dtype, folder=folder if folder.is_dir() else None)
        if type(pipe).__name__ != workflow:
            try:
                pipe = getattr(diffusers, workflow).from_pipe(pipe)
            except Exception as exc:  # diffusers' own refusal, whatever it raises: one line
                raise ValueError(f"{model!r} loads as {type(pipe).__name__}, and diffusers cannot make the recorded "
                                 f"{workflow} from it ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
            pipe.set_progress_bar_config(disable=True)
        return pipe

    def _with_vae(self, pipe: Any, vae: str, device: Any, dtype: Any) -> Any:
        """``pipe`` with the recorded VAE ``vae`` (a folder under the model root, or a hub id) when it is
        not the one the model brings (a preset's, or a fixture's own VAE). Raises ValueError (one line)
        when it cannot be loaded."""
        if not vae or self._generator.describe(pipe).vae == vae:
            return pipe
        from diffusers import AutoencoderKL

        folder = self._model_root / vae
        try:
            model = AutoencoderKL.from_pretrained(str(folder if folder.is_dir() else vae), torch_dtype=dtype).to(device)
        except Exception as exc:  # whatever a missing folder or an unreachable hub raises: one line
            raise ValueError(f"the recorded VAE {vae!r} cannot be loaded with AutoencoderKL.from_pretrained "
                             f"({type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]})") from None
        model.register_to_config(_name_or_path=vae)
        pipe.vae = model
        return pipe

    def _differences(self, config: Mapping[str, Any], pipe: Any, sampler: str, seed: int) -> tuple[str, ...]:
        """One line for each field of the loaded pipeline's description, and for the scheduler the
        sampler builds, that differs from the config's."""
        description = vars(self._generator.describe(pipe))
        now = {name: description.get(name) for name in DESCRIBED_FIELDS}
        try:
            now["scheduler"] = dict(self._generator.scheduler_record(pipe, sampler, seed))
        except ValueError as exc:  # a sampler this diffusers cannot run: the call refuses it below
            now["scheduler"] = f"refused: {exc}"
        notes = []
        for name, value in now.items():
            recorded = config.get(name, {} if name in ("pipeline_config", "scheduler") else "")
            if _json(value) != _json(recorded):
                label = "model fingerprint" if name == "model_fingerprint" else name
                notes.append(f"{label} differs: the config has {short_repr(_json(recorded))}, the loaded pipeline "
                             f"{short_repr(_json(value))}")
        return tuple(notes)

    # -- the call ---------------------------------------------------------------------------

    def _call_kwargs(self, config: Mapping[str, Any], pipe: Any) -> dict[str, Any]:
        """The keywords of the recorded call: the prompts, steps, cfg and size (each where the
        pipeline's call takes it, as the case passed them), every recorded pipeline keyword with
        its input images read back, and PIL output."""
        accepted = self._generator.call_keywords(pipe)
        core = {"prompt": config.get("prompt", ""), "negative_prompt": config.get("negative_prompt"),
                "num_inference_steps": int(config["steps"]), "guidance_scale": float(config["cfg"]),
                "width": config.get("width"), "height": config.get("height")}
        kwargs = {name: value for name, value in core.items()
                  if value is not None and (accepted is None or name in accepted)}
        recorded = config.get("pipeline_kwargs")
        for name, value in (recorded.items() if isinstance(recorded, Mapping) else ()):
            kwargs[name] = self._with_images(name, value)
        kwargs["output_type"] = "pil"
        return kwargs

    def _with_images(self, where: str, value: Any) -> Any:
        """``value`` (config JSON) with each input image's record replaced by its image, read from
        the inputs and checked against the record's pixel digest."""
        if isinstance(value, Mapping) and set(value) == IMAGE_RECORD_KEYS:
            return self._image(where, value)
        if isinstance(value, Mapping):
            return {key: self._with_images(f"{where}.{key}", item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._with_images(f"{where}[{i}]", item) for i, item in enumerate(value)]
        return value

    def _image(self, where: str, record: Mapping[str, Any]) -> "Image.Image":
        import hashlib
        import io

        from PIL import Image, UnidentifiedImageError

        name = str(record["name"])
        try:
            data = self._inputs(name)
        except KeyError:
            raise ReplayRefused(f"its input image {where} (inputs/{name}) is not in the bundle") from None
        try:
            with Image.open(io.BytesIO(data)) as opened:
                image = opened.convert(str(record["mode"]))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ReplayRefused(f"its input image {where} (inputs/{name}) cannot be read: {exc}") from None
        digest = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode("ascii"))
        digest.update(image.tobytes())
        if digest.hexdigest() != record["sha256"]:
            raise ReplayRefused(f"its input image {where} (inputs/{name}) does not hold the pixels its config records")
        return image


def _json(value: Any) -> Any:
    from pytest_diffbench.spec.config import normalise

    return normalise(value)
