"""The built-in pipelines, --diffbench-model loading, device and dtype parsing
(pytest_diffbench.run.pipelines) and what describes a pipeline (pytest_diffbench.run.fingerprint),
on real diffusers pipelines in this process."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pytest_diffbench.run.protocol import PipelineDescription
from pytest_diffbench.spec.targets import BUILTIN_MODELS

# torch, diffusers and pytest_diffbench.run.pipelines and .fingerprint (which import them) are
# imported in the tests that use them, so collecting this module does not import them.


@pytest.fixture(scope="module")
def pipe():
    from pytest_diffbench.run.pipelines import build_random_pipeline

    return build_random_pipeline()


def _image(pipe, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return pipe("a red cube", num_inference_steps=2, generator=generator, output_type="np").images[0]


def test_builds_a_random_tiny_sd_pipeline(pipe):
    from diffusers import StableDiffusionPipeline

    from pytest_diffbench.run.pipelines import RANDOM_MODEL_ID

    assert isinstance(pipe, StableDiffusionPipeline)
    assert pipe.name_or_path == RANDOM_MODEL_ID
    assert pipe.config._name_or_path == RANDOM_MODEL_ID
    assert pipe.safety_checker is None
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    assert pipe.tokenizer.model_max_length == 77
    special = pipe.tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    config = pipe.text_encoder.config
    assert special == [config.bos_token_id, config.eos_token_id] == [512, 513]
    assert config.pad_token_id == 513


def test_shipped_configs_are_canonical_json():
    from pytest_diffbench.run.pipelines import RANDOM_SD_DIR

    files = sorted(RANDOM_SD_DIR.rglob("*.json"))
    assert {f.relative_to(RANDOM_SD_DIR).as_posix() for f in files} >= {
        "tokenizer/vocab.json",
        "unet/config.json",
        "vae/config.json",
        "text_encoder/config.json",
        "scheduler/scheduler_config.json",
    }
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n", path
    vocab = json.loads((RANDOM_SD_DIR / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    assert sorted(vocab.values()) == list(range(514))
    assert (RANDOM_SD_DIR / "tokenizer" / "merges.txt").read_text(encoding="utf-8") == "#version: 0.2\n"


def test_generates_a_64x64_image(pipe):
    image = _image(pipe, seed=0)
    assert image.shape == (64, 64, 3)
    assert np.isfinite(image).all()
    assert image.std() > 0


def test_same_seed_same_pixels_other_seed_differs(pipe):
    first = _image(pipe, seed=7)
    assert np.array_equal(first, _image(pipe, seed=7))
    assert not np.array_equal(first, _image(pipe, seed=8))


def test_build_is_deterministic(pipe):
    import torch

    from pytest_diffbench.run.pipelines import build_random_pipeline

    other = build_random_pipeline()
    for name in ("unet", "vae", "text_encoder"):
        ours, theirs = getattr(pipe, name).state_dict(), getattr(other, name).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name


def test_build_with_dtype():
    import torch

    from pytest_diffbench.run.fingerprint import describe_pipeline
    from pytest_diffbench.run.pipelines import build_random_pipeline

    half = build_random_pipeline(dtype=torch.bfloat16)
    assert {half.unet.dtype, half.vae.dtype, half.text_encoder.dtype} == {torch.bfloat16}
    assert describe_pipeline(half).dtype == "bfloat16"


@pytest.mark.subprocess
@pytest.mark.model
def test_fingerprint_is_stable_across_processes(pipe, repo_root, checkout_pythonpath):
    from pytest_diffbench.run.fingerprint import model_fingerprint

    code = (
        "from pytest_diffbench.run.fingerprint import model_fingerprint\n"
        "from pytest_diffbench.run.pipelines import build_random_pipeline\n"
        "print(model_fingerprint(build_random_pipeline()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo_root,
        env={**os.environ, "PYTHONPATH": checkout_pythonpath},
        capture_output=True,
        text=True,
        check=True,
    )
    fingerprint = model_fingerprint(pipe)
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert result.stdout.strip().splitlines()[-1] == fingerprint


def test_fingerprint_changes_when_a_weight_changes():
    import torch

    from pytest_diffbench.run.fingerprint import model_fingerprint
    from pytest_diffbench.run.pipelines import build_random_pipeline

    pipe = build_random_pipeline()
    before = model_fingerprint(pipe)
    with torch.no_grad():
        next(iter(pipe.unet.parameters())).add_(0.01)
    assert model_fingerprint(pipe) != before


def test_fingerprint_depends_on_dtype_not_memory_layout(pipe):
    import torch

    from pytest_diffbench.run.fingerprint import model_fingerprint
    from pytest_diffbench.run.pipelines import build_random_pipeline

    reference = model_fingerprint(pipe)
    assert model_fingerprint(build_random_pipeline(dtype=torch.float16)) != reference
    channels_last = build_random_pipeline()
    channels_last.unet.to(memory_format=torch.channels_last)
    assert model_fingerprint(channels_last) == reference


def test_fingerprint_is_the_same_for_both_layouts_of_a_clip_text_encoder():
    """transformers 4 nests CLIP's text encoder under ``text_model``, transformers 5 does not."""
    from types import SimpleNamespace

    import torch

    from pytest_diffbench.run.fingerprint import model_fingerprint

    torch.manual_seed(0)
    flat = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    nested = torch.nn.Module()
    nested.text_model = flat
    other = torch.nn.Module()
    other.vision_model = flat

    def fingerprint(module):
        return model_fingerprint(SimpleNamespace(components={"text_encoder": module}))

    assert fingerprint(flat) == fingerprint(nested)
    assert fingerprint(other) != fingerprint(flat)


def test_describe_pipeline(pipe):
    from pytest_diffbench.run.fingerprint import describe_pipeline, model_fingerprint
    from pytest_diffbench.run.pipelines import RANDOM_MODEL_ID

    description = describe_pipeline(pipe)
    assert description == PipelineDescription(
        model=RANDOM_MODEL_ID,
        vae=RANDOM_MODEL_ID,
        loras=(),
        controlnets=(),
        workflow="StableDiffusionPipeline",
        dtype="float32",
        device="cpu",
        model_fingerprint=model_fingerprint(pipe),
        pipeline_config={"requires_safety_checker": False},  # its own flag; no LoRA: no adapters
    )
    json.dumps(dataclasses.asdict(description))  # plain values only: they go into the frozen config


def test_describe_pipeline_uses_portable_names():
    from pytest_diffbench.run.fingerprint import describe_pipeline
    from pytest_diffbench.run.pipelines import build_random_pipeline

    pipe = build_random_pipeline()
    pipe.register_to_config(_name_or_path="")
    cache_path = "/home/me/.cache/huggingface/hub/models--madebyollin--sdxl-vae-fp16-fix/snapshots/0123abc"
    pipe.vae.register_to_config(_name_or_path=cache_path)
    description = describe_pipeline(pipe)
    assert description.model == "StableDiffusionPipeline"
    assert description.vae == "madebyollin/sdxl-vae-fp16-fix"


def test_load_pipeline_knows_the_random_builtin(pipe):
    from pytest_diffbench.run.fingerprint import model_fingerprint
    from pytest_diffbench.run.pipelines import RANDOM_MODEL_ID, load_pipeline

    loaded = load_pipeline("diffbench-tiny-random")
    assert loaded.name_or_path == RANDOM_MODEL_ID
    assert model_fingerprint(loaded) == model_fingerprint(pipe)


def test_load_pipeline_from_a_folder_records_the_name_it_is_given(pipe, tmp_path, monkeypatch):
    import torch

    from pytest_diffbench.run.fingerprint import describe_pipeline
    from pytest_diffbench.run.pipelines import load_pipeline

    pipe.save_pretrained(tmp_path / "models" / "my-sd", safe_serialization=True)
    monkeypatch.chdir(tmp_path / "models")  # the folder is loaded from ``folder``, not the working directory
    loaded = load_pipeline("models/my-sd", dtype=torch.bfloat16, folder=tmp_path / "models" / "my-sd")
    description = describe_pipeline(loaded)
    assert description.model == description.vae == "models/my-sd"
    assert description.dtype == "bfloat16"
    assert str(tmp_path) not in json.dumps(dataclasses.asdict(description))
    assert loaded.unet.state_dict().keys() == pipe.unet.state_dict().keys()


def test_load_pipeline_names_the_builtins_when_nothing_loads(tmp_path):
    from pytest_diffbench.run.pipelines import load_pipeline

    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ValueError) as excinfo:
        load_pipeline(missing)
    message = str(excinfo.value)
    assert repr(missing) in message
    assert all(name in message for name in BUILTIN_MODELS)


@pytest.mark.parametrize("index", ["{not json", '{"_class_name": "NoSuchPipeline"}', '{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}'])
def test_load_pipeline_turns_any_loading_error_into_one_line(tmp_path, index):
    from pytest_diffbench.run.pipelines import load_pipeline

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text(index, encoding="utf-8")
    with pytest.raises(ValueError) as excinfo:
        load_pipeline("broken", folder=folder)
    message = str(excinfo.value)
    assert message.startswith("cannot load 'broken' with DiffusionPipeline.from_pretrained (") and "\n" not in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:1", "cuda:1"), ("mps", "mps")],
)
def test_resolve_device(spec, expected):
    import torch

    from pytest_diffbench.run.pipelines import resolve_device

    assert resolve_device(spec) == torch.device(expected)


def test_resolve_device_auto_follows_cuda_availability():
    import torch

    from pytest_diffbench.run.pipelines import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:0:1", ""])
def test_resolve_device_rejects_invalid(spec):
    from pytest_diffbench.run.pipelines import resolve_device

    with pytest.raises(ValueError) as excinfo:
        resolve_device(spec)
    message = str(excinfo.value)
    assert repr(spec) in message
    for form in ("auto", "cpu", "cuda", "cuda:N", "mps"):
        assert form in message


def test_default_dtype():
    import torch

    from pytest_diffbench.run.pipelines import default_dtype

    assert default_dtype("cuda") == torch.float16
    assert default_dtype(torch.device("cuda:1")) == torch.float16
    assert default_dtype("cpu") == torch.float32
    assert default_dtype("mps") == torch.float32


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("float16", "float16"),
        ("fp16", "float16"),
        ("BF16", "bfloat16"),
        ("bfloat16", "bfloat16"),
        ("float32", "float32"),
        ("fp32", "float32"),
    ],
)  # torch's dtypes by name: torch is imported in the test, not at collection
def test_parse_dtype(name, expected):
    import torch

    from pytest_diffbench.run.pipelines import parse_dtype

    assert parse_dtype(name) is getattr(torch, expected)


@pytest.mark.parametrize("name", ["auto", "half", "int8", ""])
def test_parse_dtype_rejects_invalid(name):
    from pytest_diffbench.run.pipelines import parse_dtype

    with pytest.raises(ValueError) as excinfo:
        parse_dtype(name)
    message = str(excinfo.value)
    assert repr(name) in message
    for valid in ("float16", "fp16", "bfloat16", "bf16", "float32", "fp32"):
        assert valid in message


# -- what ImageGenerator checks a case against (issue 9, item 7) ------------------------------


def test_call_keywords_are_the_named_parameters_of_the_call(pipe):
    from pytest_diffbench.run.generation import ImageGenerator

    keywords = ImageGenerator().call_keywords(pipe)
    assert {"prompt", "width", "height", "eta", "cross_attention_kwargs", "guidance_rescale", "latents"} <= keywords
    assert "kwargs" not in keywords and "self" not in keywords  # what **kwargs swallows is not a keyword
    assert "callback_steps" not in keywords


def test_size_multiple_is_8_or_the_coarser_vae_scale_factor(pipe):
    from pytest_diffbench.run.generation import ImageGenerator

    assert pipe.vae_scale_factor < 8 and ImageGenerator().size_multiple(pipe) == 8  # SD checks 8 itself
    for factor, multiple in ((16, 16), (12, 24), (None, 8), ("8", 8)):
        stub = type("Stub", (), {"vae_scale_factor": factor})()
        assert ImageGenerator().size_multiple(stub) == multiple, factor


def test_call_keywords_of_a_wrapping_subclass_are_its_base_class_ones(pipe):
    from pytest_diffbench.run.generation import ImageGenerator

    def __call__(self, *args, **kwargs):
        return type(pipe).__call__(self, *args, **kwargs)

    wrapped = type("Wrapped", (type(pipe),), {"__call__": __call__})
    stub = object.__new__(wrapped)
    assert ImageGenerator().call_keywords(stub) == ImageGenerator().call_keywords(pipe)
    anything = type("Anything", (), {"__call__": lambda self, *args, **kwargs: None})()
    assert ImageGenerator().call_keywords(anything) is None
