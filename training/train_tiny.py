"""Train ``diffbench-tiny``: a small Stable Diffusion (latent diffusion) model of coloured shapes.

Usage (from the repository root)::

    python -m training.train_tiny --out pytest_diffbench/assets/diffbench-tiny

The defaults are the settings of the shipped model (its ``training_log.json`` has the exact
command that made it).

Threads: one intra-op thread by default. On a 2-core machine that other work shares,
two OpenMP threads wait on each other at every op (a UNet forward went from 30 ms to
2 s when another process kept both cores busy), and the thread count also changes the
order of floating-point reductions, so it is part of the reproducibility contract.

Two phases, both on data drawn on the fly from :func:`training.shapes.batch` (batch ``k``
of phase ``p`` comes from the generator seeded with ``(seed, p, k)``, so no data set is
stored and every run sees the same stream):

1. **Autoencoder.** An ``AutoencoderKL`` (64x64x3 <-> 16x16x4 with the default three
   blocks) trained with L1 + MSE reconstruction and a small KL term, then frozen. Its
   ``scaling_factor`` is set to 1 / std of the latents of a few held-out batches, as
   Stable Diffusion does, so that scaled latents have unit variance.
2. **Denoiser.** A ``UNet2DConditionModel`` and a small ``CLIPTextModel`` (with the
   word-level tokenizer of :mod:`training.tokenizer`), trained jointly with
   the standard epsilon-prediction DDPM loss on Stable Diffusion's scaled-linear
   1000-step schedule, min-SNR loss weighting (``--snr-gamma``), classifier-free
   guidance dropout (``--uncond-prob`` of captions replaced by ""), and an exponential
   moving average of the UNet and text-encoder weights (the EMA weights are saved).

The result is a diffusers folder (``model_index.json``, ``unet/``, ``vae/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/``; safetensors) that
``StableDiffusionPipeline.from_pretrained(out)`` loads, plus ``training_log.json`` with
the configuration and the loss curve.

Determinism: every component is initialised after ``torch.manual_seed(seed + i)``, noise
and timesteps come from a seeded CPU ``torch.Generator``, data from seeded numpy
generators, ``torch.use_deterministic_algorithms(True)`` is on and the intra-op thread
count is fixed (``--threads``, default 1). The same seed, step counts, thread count and
torch version give byte-identical weights. ``--minutes`` is a safety cap only: if it
stops a phase early the result depends on the machine's speed, and a warning says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a script: make `training` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.shapes import IMAGE_SIZE, batch as shapes_batch  # noqa: E402
from training.tokenizer import write_tokenizer  # noqa: E402

MAX_TOKENS = 24  # the longest caption is 9 words + <|startoftext|> + <|endoftext|>

SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    # Stable Diffusion's own settings for samplers swapped in with from_config (the keys are
    # kept in the saved config even though Euler ignores them). DDIM's default
    # clip_sample=True clips the predicted x0 to [-1, 1], which wrecks latents of unit
    # variance (SSIM against its 50-step image was 0.25/0.49/0.56 at 4/10/20 steps).
    "clip_sample": False,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
}


@dataclass
class Config:
    seed: int = 0
    vae_steps: int = 800
    unet_steps: int = 3400
    batch_size: int = 32
    vae_batch_size: int = 16
    minutes: float = 58.0
    threads: int = 1
    vae_lr: float = 1e-3
    unet_lr: float = 1e-3
    warmup: int = 200
    kl_weight: float = 1e-5
    vae_init_logvar: float = -8.0
    snr_gamma: float = 5.0
    uncond_prob: float = 0.1
    ema_decay: float = 0.995
    dtype: str = "fp32"
    vae_channels: tuple[int, ...] = (16, 32, 64)
    latent_channels: int = 4
    # GroupNorm with one channel per group is instance norm: it erases the flat colours this
    # data is made of. Keep several channels per group.
    vae_norm_groups: int = 1
    unet_channels: tuple[int, ...] = (48, 96)
    unet_attention_heads: int = 4
    unet_norm_groups: int = 8
    text_width: int = 64
    text_layers: int = 2
    log_every: int = 50
    heldout_batches: int = 4  # batches of 32 for the scaling factor and the held-out MSE


# --------------------------------------------------------------------------- models


def build_vae(cfg: Config):
    from diffusers import AutoencoderKL

    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.vae_channels),
        layers_per_block=1,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.vae_norm_groups,
        sample_size=IMAGE_SIZE,
        mid_block_add_attention=False,
    )


def build_unet(cfg: Config):
    from diffusers import UNet2DConditionModel

    n = len(cfg.unet_channels)
    latent_side = IMAGE_SIZE // 2 ** (len(cfg.vae_channels) - 1)
    return UNet2DConditionModel(
        sample_size=latent_side,
        in_channels=cfg.latent_channels,
        out_channels=cfg.latent_channels,
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        block_out_channels=tuple(cfg.unet_channels),
        layers_per_block=1,
        cross_attention_dim=cfg.text_width,
        attention_head_dim=cfg.unet_attention_heads,
        norm_num_groups=cfg.unet_norm_groups,
    )


def build_text_encoder(cfg: Config, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.text_width,
        intermediate_size=cfg.text_width * 2,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        projection_dim=cfg.text_width,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))


def build_tokenizer(folder: Path):
    """The word-level tokenizer (:mod:`training.tokenizer`), written to and read from ``folder``."""
    return write_tokenizer(folder, MAX_TOKENS)


# --------------------------------------------------------------------------- helpers


class Ema:
    """Exponential moving average of parameters, with the usual warm-up (1 + n) / (10 + n)."""

    def __init__(self, modules: list[torch.nn.Module], decay: float) -> None:
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - decay)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for p, s in zip(self.params, self.shadow):
            p.copy_(s)


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% of ``base`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Progress:
    def __init__(self, name: str, total: int, every: int, start: float) -> None:
        self.name, self.total, self.every, self.start = name, total, every, start
        self.window: list[float] = []
        self.curve: list[dict[str, float]] = []
        self.steps = 0  # steps done

    def add(self, step: int, loss: float) -> None:
        self.steps = step + 1
        self.window.append(loss)
        if (step + 1) % self.every == 0 or step + 1 == self.total:
            mean = float(np.mean(self.window))
            elapsed = time.monotonic() - self.start
            self.curve.append({"step": step + 1, "loss": mean, "elapsed_s": round(elapsed, 1)})
            print(f"[{self.name}] step {step + 1}/{self.total} loss {mean:.5f} elapsed {elapsed:7.1f}s",
                  flush=True)
            self.window = []


def scheduled_steps(name: str, optimizer: torch.optim.Optimizer, total: int, base_lr: float, warmup: int,
                    deadline: float) -> Iterator[int]:
    """Step numbers 0 .. total - 1, each with its learning rate (:func:`lr_at`) set on ``optimizer``.

    Stops early, with a warning, once ``deadline`` (``time.monotonic()``) has passed.
    """
    for step in range(total):
        if time.monotonic() > deadline:
            print(f"WARNING: time budget reached after {step} {name} steps: the result is not deterministic",
                  flush=True)
            return
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total, base_lr, warmup)
        yield step


def optimise(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], loss: torch.Tensor) -> None:
    """One optimiser step on ``loss``, with gradients clipped to norm 1."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()


def set_determinism(cfg: Config) -> None:
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)


# --------------------------------------------------------------------------- phases


def train_vae(cfg: Config, deadline: float, start: float):
    torch.manual_seed(cfg.seed)
    vae = build_vae(cfg)
    # Start with a nearly deterministic posterior (std ~ 0.02): with the default log-variance
    # of 0 the decoder sees latents drowned in unit noise and learns nothing for hundreds of
    # steps, since the tiny KL weight barely pushes the variance down.
    with torch.no_grad():
        vae.quant_conv.bias[cfg.latent_channels:] = cfg.vae_init_logvar
    vae.train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + 1)
    progress = Progress("vae", cfg.vae_steps, cfg.log_every, start)
    for step in scheduled_steps("VAE", optimizer, cfg.vae_steps, cfg.vae_lr, cfg.warmup, deadline):
        images = torch.from_numpy(shapes_batch(cfg.vae_batch_size, cfg.seed, 1_000_000 + step)[0])
        posterior = vae.encode(images).latent_dist
        latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(latents).sample
        kl = posterior.kl().mean() / latents[0].numel()
        loss = F.l1_loss(recon, images) + F.mse_loss(recon, images) + cfg.kl_weight * kl
        optimise(optimizer, list(vae.parameters()), loss)
        progress.add(step, loss.item())
    vae.eval().requires_grad_(False)

    # Scaling factor: 1 / std of latent means on held-out batches (index space 3_000_000+).
    with torch.no_grad():
        held_out = torch.cat([
            torch.from_numpy(shapes_batch(32, cfg.seed, 3_000_000 + i)[0]) for i in range(cfg.heldout_batches)
        ])
        latents = vae.encode(held_out).latent_dist.mean
        recon = vae.decode(latents).sample
        recon_mse = float(F.mse_loss(recon, held_out))
        scaling = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scaling)
    print(f"[vae] held-out recon MSE {recon_mse:.5f}, latent std {1 / scaling:.4f} -> scaling_factor "
          f"{scaling:.4f}", flush=True)
    return vae, {"steps": progress.steps, "curve": progress.curve, "heldout_mse": recon_mse,
                 "scaling_factor": scaling}


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=MAX_TOKENS, truncation=True,
                     return_tensors="pt").input_ids


def train_unet(cfg: Config, vae, deadline: float, start: float):
    from diffusers import DDPMScheduler

    with tempfile.TemporaryDirectory() as folder:
        tokenizer = build_tokenizer(Path(folder))
    torch.manual_seed(cfg.seed + 1)
    unet = build_unet(cfg)
    torch.manual_seed(cfg.seed + 2)
    text_encoder = build_text_encoder(cfg, tokenizer)
    unet.train()
    text_encoder.train()
    params = [*unet.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=0.01)
    ema = Ema([unet, text_encoder], cfg.ema_decay)
    noise_scheduler = DDPMScheduler.from_config(SCHEDULER_CONFIG)
    alphas_cumprod = noise_scheduler.alphas_cumprod
    snr_all = alphas_cumprod / (1 - alphas_cumprod)
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + 2)
    data_rng = np.random.default_rng([cfg.seed, 2])
    scaling = vae.config.scaling_factor
    progress = Progress("unet", cfg.unet_steps, cfg.log_every, start)
    for step in scheduled_steps("UNet", optimizer, cfg.unet_steps, cfg.unet_lr, cfg.warmup, deadline):
        images, captions, _ = shapes_batch(cfg.batch_size, cfg.seed, 2_000_000 + step)
        drop = data_rng.random(len(captions)) < cfg.uncond_prob
        captions = ["" if d else c for c, d in zip(captions, drop)]
        with torch.no_grad():
            posterior = vae.encode(torch.from_numpy(images)).latent_dist
            latents = (posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator))
            latents = latents * scaling
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(latents),),
                                  generator=generator)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        hidden = text_encoder(tokenize(tokenizer, captions))[0]
        pred = unet(noisy, timesteps, encoder_hidden_states=hidden).sample
        per_sample = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        if cfg.snr_gamma > 0:  # min-SNR-gamma weighting for epsilon prediction
            snr = snr_all[timesteps]
            per_sample = per_sample * torch.clamp(snr, max=cfg.snr_gamma) / snr
        loss = per_sample.mean()
        optimise(optimizer, params, loss)
        ema.update()
        progress.add(step, loss.item())
    ema.copy_to_model()
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)
    return unet, text_encoder, tokenizer, {"steps": progress.steps, "curve": progress.curve}


# --------------------------------------------------------------------------- saving


def save_pipeline(out: Path, vae, unet, text_encoder, tokenizer, dtype: torch.dtype) -> int:
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=EulerDiscreteScheduler.from_config(SCHEDULER_CONFIG),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    if dtype != torch.float32:
        for module in (vae, unet, text_encoder):
            torch.nn.Module.to(module, dtype)
    if out.exists():
        shutil.rmtree(out)
    pipe.save_pretrained(out, safe_serialization=True)
    # transformers 5 saves only tokenizer.json; 4.x's CLIPTokenizer needs vocab.json + merges.txt.
    write_tokenizer(out / "tokenizer", MAX_TOKENS)
    store_text_encoder_for_both_transformers(out / "text_encoder" / "model.safetensors")
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def store_text_encoder_for_both_transformers(path: Path) -> None:
    """Rewrite the text encoder's weights in the layout transformers 4 and 5 both read.

    transformers 5 saves ``CLIPTextModel`` as ``encoder.layers...``; transformers 4 looks for
    ``text_model.encoder.layers...`` and, not finding them, starts from random weights with
    only a warning. transformers 5 reads the prefixed layout as well.
    """
    from safetensors.torch import load_file, save_file

    state = load_file(path)
    save_file({key if key.startswith("text_model.") else f"text_model.{key}": value for key, value in state.items()},
              path, metadata={"format": "pt"})


def parse_args(argv: list[str] | None = None) -> tuple[Path, Config]:
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced if it exists)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--vae-steps", type=int, default=defaults.vae_steps)
    parser.add_argument("--unet-steps", type=int, default=defaults.unet_steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="UNet batch size")
    parser.add_argument("--vae-batch-size", type=int, default=defaults.vae_batch_size)
    parser.add_argument("--minutes", type=float, default=defaults.minutes,
                        help="wall-clock cap for both phases (the VAE may use at most 30%% of it)")
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help="torch intra-op threads; part of what makes a run reproducible")
    parser.add_argument("--vae-lr", type=float, default=defaults.vae_lr)
    parser.add_argument("--unet-lr", type=float, default=defaults.unet_lr)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--kl-weight", type=float, default=defaults.kl_weight)
    parser.add_argument("--vae-init-logvar", type=float, default=defaults.vae_init_logvar)
    parser.add_argument("--snr-gamma", type=float, default=defaults.snr_gamma, help="0 disables min-SNR")
    parser.add_argument("--uncond-prob", type=float, default=defaults.uncond_prob)
    parser.add_argument("--ema-decay", type=float, default=defaults.ema_decay)
    parser.add_argument("--dtype", choices=("fp32", "fp16"), default=defaults.dtype,
                        help="dtype of the saved weights")
    parser.add_argument("--vae-channels", type=int, nargs="+", default=list(defaults.vae_channels))
    parser.add_argument("--latent-channels", type=int, default=defaults.latent_channels)
    parser.add_argument("--vae-norm-groups", type=int, default=defaults.vae_norm_groups)
    parser.add_argument("--unet-channels", type=int, nargs="+", default=list(defaults.unet_channels))
    parser.add_argument("--unet-attention-heads", type=int, default=defaults.unet_attention_heads)
    parser.add_argument("--unet-norm-groups", type=int, default=defaults.unet_norm_groups)
    parser.add_argument("--text-width", type=int, default=defaults.text_width)
    parser.add_argument("--text-layers", type=int, default=defaults.text_layers)
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--heldout-batches", type=int, default=defaults.heldout_batches)
    args = parser.parse_args(argv)
    values = {k: v for k, v in vars(args).items() if k != "out"}
    for key in ("vae_channels", "unet_channels"):
        values[key] = tuple(values[key])
    return args.out, Config(**values)


def main(argv: list[str] | None = None) -> int:
    out, cfg = parse_args(argv)
    set_determinism(cfg)
    start = time.monotonic()
    deadline = start + cfg.minutes * 60
    print(f"config: {json.dumps(asdict(cfg))}", flush=True)
    vae, vae_log = train_vae(cfg, start + 0.3 * cfg.minutes * 60, start)
    unet, text_encoder, tokenizer, unet_log = train_unet(cfg, vae, deadline, start)
    dtype = torch.float16 if cfg.dtype == "fp16" else torch.float32
    size = save_pipeline(out, vae, unet, text_encoder, tokenizer, dtype)
    elapsed = time.monotonic() - start
    params = {name: sum(p.numel() for p in m.parameters())
              for name, m in (("vae", vae), ("unet", unet), ("text_encoder", text_encoder))}
    log = {
        "config": asdict(cfg), "command": " ".join(["python -m training.train_tiny", *sys.argv[1:]]),
        "torch": torch.__version__, "elapsed_s": round(elapsed, 1), "size_bytes": size,
        "parameters": params, "vae": vae_log, "unet": unet_log,
    }
    (out / "training_log.json").write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    print(f"saved {out} ({size / 1e6:.2f} MB, parameters {params}) in {elapsed:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
