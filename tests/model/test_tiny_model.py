"""The shipped diffbench-tiny model: what it is, and the quality bars it must keep (issue 3).

The bars are measured with the same code as ``python -m training.evaluate`` (the figures
in the model card), on the CPU with one thread, so they are the same on every machine
with the same torch build:

* prompt adherence: 18 colour x shape prompts x 8 seeds, 64x64, 20 Euler steps: the
  classified colour matches in at least 90% of images, the shape in at least 75%;
* convergence: for Euler, DPM++ 2M and DDIM the mean SSIM against the 50-step image
  rises from 4 to 10 to 20 steps.
"""

import dataclasses
import json
from types import ModuleType

import pytest
from safetensors import safe_open

pytestmark = pytest.mark.model

MAX_BYTES = 20 * 1024 * 1024


# torch, diffusers and the modules that import them are imported by the fixtures below, when a
# test of this module runs: collecting it (also for `-m "not model"`, which deselects it) imports
# none of them.


@pytest.fixture(scope="module")
def pipelines() -> ModuleType:
    """pytest_diffbench.run.pipelines (the model's folder and id, its loader)."""
    from pytest_diffbench.run import pipelines

    return pipelines


@pytest.fixture(scope="module")
def evaluate() -> ModuleType:
    """training.evaluate, the code of the model card's figures."""
    from training import evaluate  # the checkout is on sys.path (tests/model/conftest.py)

    return evaluate


@pytest.fixture(scope="module")
def pipe(pipelines: ModuleType):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield pipelines.load_tiny_pipeline()
    torch.set_num_threads(before)


def test_folder_is_a_small_safetensors_diffusers_model(pipelines):
    folder = pipelines.TINY_MODEL_DIR
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert {"model_index.json", "README.md", "training_log.json", "scheduler/scheduler_config.json",
            "tokenizer/vocab.json", "tokenizer/merges.txt", "text_encoder/model.safetensors",
            "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"} <= set(files)
    assert not [f for f in files if f.endswith((".bin", ".pt", ".ckpt"))]
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= MAX_BYTES


def test_text_encoder_is_stored_in_the_layout_both_transformers_versions_read(pipelines):
    with safe_open(pipelines.TINY_MODEL_DIR / "text_encoder" / "model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    assert keys and all(key.startswith("text_model.") for key in keys)


def test_model_card_says_how_to_reproduce_it(pipelines):
    card = (pipelines.TINY_MODEL_DIR / "README.md").read_text(encoding="utf-8")
    log = json.loads((pipelines.TINY_MODEL_DIR / "training_log.json").read_text(encoding="utf-8"))
    assert log["command"].startswith("python -m training.train_tiny")
    assert log["command"].split("--out")[0] in card
    for heading in ("## Data", "## Training", "## What it can draw", "## What it cannot draw"):
        assert heading in card


def test_loads_with_diffusers_own_from_pretrained(pipelines):
    from diffusers import StableDiffusionPipeline

    loaded = StableDiffusionPipeline.from_pretrained(pipelines.TINY_MODEL_DIR, local_files_only=True)
    assert loaded.vae.config.sample_size == 64
    assert loaded.tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]


def test_is_named_by_its_model_id_not_its_path(pipelines, pipe):
    from pytest_diffbench.run.fingerprint import describe_pipeline

    description = describe_pipeline(pipe)
    assert description.model == description.vae == pipelines.TINY_MODEL_ID
    assert str(pipelines.TINY_MODEL_DIR) not in json.dumps(dataclasses.asdict(description))


def test_colour_and_shape_follow_the_prompt(evaluate, pipe):
    adherence, _ = evaluate.prompt_adherence(pipe, seeds=8, guidance=evaluate.GUIDANCE)
    assert adherence["images"] == len(evaluate.PROMPTS) * 8 >= 12 * 8
    assert adherence["colour_match"] >= 0.90, adherence["per_prompt"]
    assert adherence["shape_match"] >= 0.75, adherence["per_prompt"]


def test_more_steps_come_closer_to_the_50_step_image(evaluate, pipe):
    table = evaluate.ssim_table(pipe, n_prompts=6, n_seeds=2, guidance=evaluate.GUIDANCE)
    assert set(table) == {"Euler", "DPM++ 2M", "DDIM"}
    for sampler, by_steps in table.items():
        scores = [by_steps[steps] for steps in (4, 10, 20)]
        assert scores == sorted(scores) and len(set(scores)) == 3, (sampler, scores)


@pytest.mark.parametrize("change", [("Euler a", 20), ("Euler", 10)], ids=["sampler-euler-a", "steps-10"])
def test_sampler_and_step_changes_fall_below_the_default_min_ssim(evaluate, pipe, change):
    """A silent sampler or step change is a quality failure at the default tolerance.

    The random-weight pipeline cannot show a step change: its 10-step Euler images score
    SSIM 0.999 against its 20-step ones (0.885 with this model).
    """
    from pytest_diffbench.judge.metrics.ssim import ssim
    from pytest_diffbench.judge.tolerances import Tolerances
    from pytest_diffbench.spec.samplers import build_scheduler

    base_config = dict(pipe.scheduler.config)
    prompts = [prompt for _, _, prompt in evaluate.PROMPTS[::6]]

    def images(sampler, steps):
        pipe.scheduler = build_scheduler(base_config, sampler)
        return [image for prompt in prompts for image in evaluate.generate(pipe, prompt, [0, 1], steps, evaluate.GUIDANCE)]

    try:
        reference, changed = images("Euler", 20), images(*change)
    finally:
        pipe.scheduler = build_scheduler(base_config, "Euler")
    mean = sum(ssim(a, b) for a, b in zip(reference, changed)) / len(reference)
    assert mean < Tolerances()["min_ssim"]
