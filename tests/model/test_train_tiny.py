"""Smoke tests of the diffbench-tiny training script (training/train_tiny.py): a few steps only."""

import json
import os
from types import ModuleType

import numpy as np
import pytest
from forked_pytest import MODEL, run_python  # tests/suite_plugin: forked from a warm server
from safetensors import safe_open

pytestmark = pytest.mark.model

TINY = ["--vae-steps", "2", "--unet-steps", "2", "--batch-size", "2", "--vae-batch-size", "2",
        "--warmup", "1", "--log-every", "1", "--heldout-batches", "1",
        "--vae-channels", "16", "32", "--unet-channels", "16", "32", "--text-width", "32"]


# torch (the suite's `torch` fixture, tests/conftest.py) and training.train_tiny (which imports it)
# are imported by fixtures, when a test of this module runs: collecting it (also for
# `-m "not model"`, which deselects it) imports neither.


@pytest.fixture(scope="module")
def train_tiny() -> ModuleType:
    """training.train_tiny, the training script's functions."""
    from training import train_tiny  # the checkout is on sys.path (conftest.py)

    return train_tiny


@pytest.fixture
def one_thread(torch):
    """Train as the script does (one thread), and leave the session's thread count as it was."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, repo_root, checkout_pythonpath):
    """The training script run in a child process with the smallest settings."""
    out = tmp_path_factory.mktemp("tiny") / "model"
    env = {**os.environ, "PYTHONPATH": checkout_pythonpath}
    proc = run_python(["-m", "training.train_tiny", "--out", str(out), *TINY], cwd=repo_root, env=env, preload=MODEL, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


@pytest.mark.subprocess
def test_script_writes_a_diffusers_folder(trained):
    out, stdout = trained
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (out / name).is_dir(), name
        assert index[name][0] is not None
    weights = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.safetensors"))
    assert weights == ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                       "vae/diffusion_pytorch_model.safetensors"]
    assert not list(out.rglob("*.bin"))
    with safe_open(out / "text_encoder" / "model.safetensors", "pt") as weights:
        assert all(key.startswith("text_model.") for key in weights.keys())  # what transformers 4 reads
    scheduler = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "EulerDiscreteScheduler"
    # Kept for samplers swapped in with from_config: DDIM must not clip unit-variance latents.
    assert scheduler["clip_sample"] is False and scheduler["set_alpha_to_one"] is False
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) <= 20 * 1024 * 1024
    log = json.loads((out / "training_log.json").read_text())
    assert log["vae"]["steps"] == 2 and log["unet"]["steps"] == 2
    assert [point["step"] for point in log["unet"]["curve"]] == [1, 2]
    assert "[unet] step 2/2 loss" in stdout and "elapsed" in stdout


@pytest.mark.subprocess
def test_folder_loads_and_generates_a_64px_image(torch, train_tiny, trained, one_thread):
    from diffusers import StableDiffusionPipeline

    out, _ = trained
    pipe = StableDiffusionPipeline.from_pretrained(out, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.tokenizer.model_max_length == train_tiny.MAX_TOKENS
    assert pipe.vae.config.scaling_factor != 0.18215  # set from the latents, not the SD default
    image = pipe("a red circle on a blue background", num_inference_steps=2, height=64, width=64,
                 generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    assert image.shape == (64, 64, 3)
    assert np.isfinite(image).all()


def _small(train_tiny, **overrides):
    values = dict(seed=3, vae_steps=2, unet_steps=2, batch_size=2, vae_batch_size=2, warmup=1,
                  log_every=1, heldout_batches=1, vae_channels=(16, 32), unet_channels=(16, 32), text_width=32)
    return train_tiny.Config(**{**values, **overrides})


def _state(*modules):
    return [t.clone() for m in modules for t in m.state_dict().values()]


def test_training_is_deterministic_for_a_seed(torch, train_tiny, one_thread, capsys):
    far = float("inf")
    runs = []
    for seed in (3, 3, 4):
        cfg = _small(train_tiny, seed=seed)
        vae, vae_log = train_tiny.train_vae(cfg, far, 0.0)
        unet, text_encoder, _, _ = train_tiny.train_unet(cfg, vae, far, 0.0)
        runs.append((_state(vae, unet, text_encoder), vae_log["scaling_factor"]))
    (first, scale1), (second, scale2), (third, _) = runs
    assert scale1 == scale2
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, b) for a, b in zip(first, third))


def test_tokenizer_reads_every_caption_word_as_one_token(train_tiny, tmp_path):
    from training.shapes import caption_for
    from training.tokenizer import WORDS, write_tokenizer

    tokenizer = write_tokenizer(tmp_path, train_tiny.MAX_TOKENS)
    caption = caption_for("triangle", "yellow", ("blue", "white"))
    assert tokenizer.tokenize(caption) == [word + "</w>" for word in caption.split()]
    assert {"circle", "square", "triangle", "red", "background"} <= set(WORDS)
    # Words it was not built for still tokenize, byte by byte, so any prompt is valid input.
    assert tokenizer.tokenize("astronaut") == [*"astronau", "t</w>"]
    ids = tokenizer(caption).input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert len(set(tokenizer.get_vocab().values())) == len(tokenizer)


def test_tokenizer_files_are_deterministic(train_tiny, tmp_path):
    from training.tokenizer import write_tokenizer

    for folder in ("first", "second"):
        write_tokenizer(tmp_path / folder, train_tiny.MAX_TOKENS)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


def test_learn_merges_builds_each_word_from_its_most_frequent_pairs():
    from training.tokenizer import learn_merges

    merges = learn_merges(["blue", "black"])
    assert merges[0] == ("b", "l")  # the only pair the two words share
    assert merges == learn_merges(["black", "blue"])
    built = {a + b for a, b in merges}
    assert {"blue</w>", "black</w>"} <= built


@pytest.mark.subprocess
def test_trained_text_encoder_matches_its_tokenizer(trained):
    from transformers import CLIPTextConfig, CLIPTokenizer

    out, _ = trained
    tokenizer = CLIPTokenizer.from_pretrained(out / "tokenizer")
    config = CLIPTextConfig.from_pretrained(out / "text_encoder")
    assert config.vocab_size == len(tokenizer)
    assert (config.bos_token_id, config.eos_token_id) == (tokenizer.bos_token_id, tokenizer.eos_token_id)
