"""Evaluate a trained ``diffbench-tiny`` folder against the quality bars of issue 3.

Usage (from the repository root)::

    python -m training.evaluate /tmp/diffbench-tiny [--json report.json] [--grid grid.png] [--card]

Three measurements, all at 64x64 on the CPU:

1. **Prompt adherence.** :data:`PROMPTS` (every colour x shape of the training data, each on
   a fixed background of another colour, 18 prompts) x ``--seeds`` seeds (default 8), 20
   Euler steps, guidance ``--guidance`` (default 7.5, the plugin's default cfg). Each image
   is classified with :func:`training.classify.classify`; the colour match rate and shape
   match rate are the fractions of images whose classified colour / shape equal the
   prompt's. Images are generated one prompt at a time, all seeds in one batch (one CPU
   ``torch.Generator`` per image, seeded with the seed number).
2. **Speed.** Seconds per image for one image at 20 Euler steps with guidance (batch of
   one, after a warm-up call), the median of ``--timing-runs`` runs.
3. **Convergence.** For Euler, DPM++ 2M and DDIM (built with
   :func:`pytest_diffbench.spec.samplers.build_scheduler`): the mean SSIM
   (:func:`pytest_diffbench.judge.metrics.ssim.ssim`) of the 4-, 10- and 20-step images against the
   same sampler's 50-step image, over the first ``--ssim-prompts`` prompts x
   ``--ssim-seeds`` seeds. The issue asks for it to rise from 4 to 10 to 20 steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make `training` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.classify import classify  # noqa: E402
from training.shapes import COLOUR_NAMES, SHAPES, caption_for, dataset  # noqa: E402

CARD_TEMPLATE = Path(__file__).with_name("model_card.md")

#: Classifier-free guidance of every measurement (the plugin's default cfg).
GUIDANCE = 7.5
SSIM_SAMPLERS = ("Euler", "DPM++ 2M", "DDIM")
SSIM_STEPS = (4, 10, 20)
REFERENCE_STEPS = 50
SIZE = 64


def _prompt_set() -> list[tuple[str, str, str]]:
    """(colour, shape, caption): every colour x shape, background = a colour 2 palette places on."""
    prompts = []
    for i, colour in enumerate(COLOUR_NAMES):
        for j, shape in enumerate(SHAPES):
            background = COLOUR_NAMES[(i + 2 + j) % len(COLOUR_NAMES)]
            if background == colour:  # cannot happen with 6 colours and 3 shapes; kept as a guard
                background = COLOUR_NAMES[(i + 1) % len(COLOUR_NAMES)]
            prompts.append((colour, shape, caption_for(shape, colour, (background,))))
    return prompts


PROMPTS: tuple[tuple[str, str, str], ...] = tuple(_prompt_set())


def load(folder: Path, threads: int = 1):
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(threads)
    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompt: str, seeds: list[int], steps: int, guidance: float) -> np.ndarray:
    """Images (N, 64, 64, 3) uint8 for ``prompt``, one CPU generator per seed."""
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    out = pipe([prompt] * len(seeds), num_inference_steps=steps, guidance_scale=guidance,
               generator=generators, height=SIZE, width=SIZE, output_type="np")
    return np.clip(np.round(out.images * 255.0), 0, 255).astype(np.uint8)


def prompt_adherence(pipe, seeds: int, guidance: float) -> tuple[dict, list[np.ndarray]]:
    from pytest_diffbench.spec.samplers import build_scheduler

    pipe.scheduler = build_scheduler(pipe.scheduler.config, "Euler")
    rows, grids = [], []
    for colour, shape, prompt in PROMPTS:
        images = generate(pipe, prompt, list(range(seeds)), 20, guidance)
        grids.append(images)
        for seed, image in enumerate(images):
            result = classify(image)
            rows.append({"prompt": prompt, "seed": seed, "colour": result.colour, "shape": result.shape,
                         "colour_ok": result.colour == colour, "shape_ok": result.shape == shape})
    summary = {
        "images": len(rows),
        "colour_match": float(np.mean([r["colour_ok"] for r in rows])),
        "shape_match": float(np.mean([r["shape_ok"] for r in rows])),
        "both_match": float(np.mean([r["colour_ok"] and r["shape_ok"] for r in rows])),
        "per_prompt": {
            prompt: {
                "colour_match": float(np.mean([r["colour_ok"] for r in rows if r["prompt"] == prompt])),
                "shape_match": float(np.mean([r["shape_ok"] for r in rows if r["prompt"] == prompt])),
            }
            for _, _, prompt in PROMPTS
        },
    }
    return summary, grids


def seconds_per_image(pipe, guidance: float, runs: int) -> float:
    from pytest_diffbench.spec.samplers import build_scheduler

    pipe.scheduler = build_scheduler(pipe.scheduler.config, "Euler")
    prompt = PROMPTS[0][2]
    generate(pipe, prompt, [0], 20, guidance)  # warm-up
    times = []
    for run in range(runs):
        start = time.perf_counter()
        generate(pipe, prompt, [run], 20, guidance)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ssim_table(pipe, n_prompts: int, n_seeds: int, guidance: float) -> dict[str, dict[int, float]]:
    from pytest_diffbench.judge.metrics.ssim import ssim
    from pytest_diffbench.spec.samplers import build_scheduler

    base_config = dict(pipe.scheduler.config)
    table: dict[str, dict[int, float]] = {}
    for sampler in SSIM_SAMPLERS:
        pipe.scheduler = build_scheduler(base_config, sampler)
        scores: dict[int, list[float]] = {steps: [] for steps in SSIM_STEPS}
        for _, _, prompt in PROMPTS[:n_prompts]:
            seeds = list(range(n_seeds))
            reference = generate(pipe, prompt, seeds, REFERENCE_STEPS, guidance)
            for steps in SSIM_STEPS:
                images = generate(pipe, prompt, seeds, steps, guidance)
                scores[steps] += [ssim(ref, img) for ref, img in zip(reference, images)]
        table[sampler] = {steps: float(np.mean(values)) for steps, values in scores.items()}
    pipe.scheduler = build_scheduler(base_config, "Euler")
    return table


def save_grid(grids: list[np.ndarray], path: Path, seeds: int = 3, scale: int = 2) -> None:
    """A PNG of the adherence images: one row per colour, its shapes side by side, ``seeds`` each.

    ``grids`` is :func:`prompt_adherence`'s second value (one array of seeds per prompt, in
    :data:`PROMPTS` order: colour by colour, shapes in :data:`SHAPES` order). Upscaled
    ``scale`` times (nearest neighbour); the PNG bytes depend only on the pixels.
    """
    from PIL import Image

    from pytest_diffbench.store.files import encode_png

    rows = []
    for first in range(0, len(grids), len(SHAPES)):
        tiles = [image for images in grids[first:first + len(SHAPES)] for image in images[:seeds]]
        rows.append(np.concatenate(tiles, axis=1))
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)
    path.write_bytes(encode_png(grid))


def classifier_accuracy(n: int = 300, seed: int = 12345) -> float:
    """Fraction of ``n`` synthetic training images whose colour and shape the check gets right."""
    hits = 0
    for image, _, labels in dataset(n, seed):
        result = classify(image)
        hits += result.colour == labels.colour and result.shape == labels.shape
    return hits / n


def write_card(folder: Path, report: dict) -> Path:
    """Fill ``training/model_card.md`` with ``report`` and ``training_log.json``; write ``folder/README.md``."""
    log = json.loads((folder / "training_log.json").read_text(encoding="utf-8"))
    # The command as it would be run to remake this folder (the log has the one that was run).
    command = log["command"].split()
    command[command.index("--out") + 1] = folder.as_posix()
    table = report["ssim_vs_50_steps"]
    rows = ["| sampler | " + " | ".join(f"{steps} steps" for steps in SSIM_STEPS) + " |",
            "|---|" + "---|" * len(SSIM_STEPS)]
    rows += [f"| {sampler} | " + " | ".join(f"{table[sampler][steps]:.3f}" for steps in SSIM_STEPS) + " |"
             for sampler in SSIM_SAMPLERS]
    adherence = report["adherence"]
    card = CARD_TEMPLATE.read_text(encoding="utf-8").format(
        vae_params=f"{log['parameters']['vae'] / 1e6:.2f} M",
        unet_params=f"{log['parameters']['unet'] / 1e6:.2f} M",
        text_params=f"{log['parameters']['text_encoder'] / 1e6:.2f} M",
        unet_channels="/".join(str(c) for c in log["config"]["unet_channels"]),
        size_mb=f"{log['size_bytes'] / 1e6:.1f}",
        command=" ".join(command),
        minutes=f"{log['elapsed_s'] / 60:.0f}",
        vae_steps=log["vae"]["steps"],
        unet_steps=log["unet"]["steps"],
        classifier_rate=f"{report['classifier_accuracy']:.1%}",
        colour_match=f"{adherence['colour_match']:.1%}",
        shape_match=f"{adherence['shape_match']:.1%}",
        both_match=f"{adherence['both_match']:.1%}",
        ssim_table="\n".join(rows),
        seconds_per_image=f"{report['seconds_per_image']:.2f}",
    )
    path = folder / "README.md"
    path.write_text(card, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder written by training/train_tiny.py")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--guidance", type=float, default=GUIDANCE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timing-runs", type=int, default=5)
    parser.add_argument("--ssim-prompts", type=int, default=6)
    parser.add_argument("--ssim-seeds", type=int, default=2)
    parser.add_argument("--skip-ssim", action="store_true")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--grid", type=Path, help="save a PNG of the adherence images here (see save_grid)")
    parser.add_argument("--card", action="store_true",
                        help="write the model card (FOLDER/README.md) from training/model_card.md and these figures")
    args = parser.parse_args(argv)

    pipe = load(args.folder, args.threads)
    start = time.monotonic()
    adherence, grids = prompt_adherence(pipe, args.seeds, args.guidance)
    print(f"prompt adherence ({adherence['images']} images, 20 Euler steps, cfg {args.guidance}): "
          f"colour {adherence['colour_match']:.1%}, shape {adherence['shape_match']:.1%}, "
          f"both {adherence['both_match']:.1%}  [{time.monotonic() - start:.0f}s]", flush=True)
    for prompt, rates in adherence["per_prompt"].items():
        print(f"  {prompt:<42} colour {rates['colour_match']:.0%}  shape {rates['shape_match']:.0%}")
    if args.grid:
        save_grid(grids, args.grid)
        print(f"grid: {args.grid} (rows: {', '.join(COLOUR_NAMES)}; columns: {', '.join(SHAPES)}, "
              f"seeds 0-2 of each)")

    spi = seconds_per_image(pipe, args.guidance, args.timing_runs)
    print(f"seconds per image (64x64, 20 Euler steps, cfg {args.guidance}, batch 1, "
          f"{torch.get_num_threads()} thread(s)): {spi:.3f}", flush=True)

    report = {"folder": str(args.folder), "guidance": args.guidance, "adherence": adherence,
              "seconds_per_image": spi, "threads": torch.get_num_threads()}
    if not args.skip_ssim:
        table = ssim_table(pipe, args.ssim_prompts, args.ssim_seeds, args.guidance)
        report["ssim_vs_50_steps"] = table
        print(f"mean SSIM vs the {REFERENCE_STEPS}-step image "
              f"({args.ssim_prompts} prompts x {args.ssim_seeds} seeds):")
        print(f"  {'sampler':<10}" + "".join(f"{steps:>8} st" for steps in SSIM_STEPS) + "   rising")
        for sampler, row in table.items():
            values = [row[steps] for steps in SSIM_STEPS]
            rising = all(a < b for a, b in zip(values, values[1:]))
            print(f"  {sampler:<10}" + "".join(f"{v:>11.4f}" for v in values) + f"   {'yes' if rising else 'NO'}")
    report["classifier_accuracy"] = classifier_accuracy()
    print(f"the check itself, on 300 synthetic training images: {report['classifier_accuracy']:.1%} right")
    if args.card:
        if args.skip_ssim:
            parser.error("--card needs the SSIM table: drop --skip-ssim")
        print(f"model card: {write_card(args.folder, report)}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
