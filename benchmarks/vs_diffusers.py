"""What ``pytest --diffbench`` costs per case against the bare diffusers loop it wraps.

For each configuration, in one process, on one pipeline object:

* bare: ``pipe(PROMPT, negative_prompt=..., num_inference_steps=S, guidance_scale=5.5,
  generator=torch.Generator("cpu").manual_seed(seed))`` for each case's seed, timed per call
  (CUDA synchronised before and after);
* plugin: ``pytest --diffbench`` (in-process ``pytest.main``) over a sweep of the same seeds,
  sampler, steps and CFG, the pipeline handed over by a session ``diffbench_pipeline`` fixture;
  each case's setup + call + teardown seconds as pytest reports them. A first run writes the
  baselines (not timed); the timed runs compare with them (SSIM, PSNR; LPIPS per ``--lpips``).

The two alternate in rounds (bare first in even rounds, plugin first in odd ones), so a machine
that gets busier or quieter moves both. Each session's first case (seed 0: the plugin's warm-up)
and the bare loop's warm-up call are left out. Per case, the median over rounds; the figures are
medians over the cases: the plugin case and the bare call in ms, the overhead in ms and the ratio
plugin/bare (the median of the per-case ratios). Then the breakdown: the plugin's own per-case
steps timed alone on the same pipeline and images (median of 20 calls each): the fingerprint
(``describe_pipeline``, cached, and uncached for reference), the PNG encode, the metrics
(``score_images`` with the run's LPIPS mode) and the writes (the PNG and a config-sized JSON,
each with ``atomic_write_bytes``). Last, the batch ratio: the plugin's seconds per image with
``--diffbench-batch=B`` over the unbatched plugin's, on the same B + N seeds (the first B left
out), and the bare loop's batched per-image time over its single-call one for reference, in the
same number of rounds.

Configurations (``--configs``, comma-separated):

* ``cpu-tiny``: the shipped diffbench-tiny model on the CPU, 64x64, float32;
* ``sd15``: an SD1.5-size pipeline (UNet 860M parameters, VAE, CLIP ViT-L text encoder) with
  seeded random weights built from configs, 512x512, float16, on CUDA;
* ``sdxl``: an SDXL-size pipeline (UNet 2.57B, VAE, CLIP ViT-L + bigG), 1024x1024, float16, on CUDA;
* ``sd15-toy``, ``sdxl-toy``: the same builds with toy widths, 64x64, float32, on the CPU (they
  check the real-size builds' wiring without a GPU; their figures mean little).

The default is ``cpu-tiny``, plus ``sd15,sdxl`` when CUDA is there. Steps default to 20 for the
CPU configurations and 30 for the CUDA ones. torch's CPU threads are ``--threads`` (default:
``OMP_NUM_THREADS``, else 1), exported as ``OMP_NUM_THREADS`` so the plugin keeps them.

Every figure is wall time by default; ``--clock cpu`` reads this process's CPU time instead (all
its threads, the plugin's background writes included), which other work on a shared CPU disturbs
far less (CPU configurations only).

The last line reads ``ratio: <median plugin/bare>`` for the first configuration, for scripts.

Usage: OMP_NUM_THREADS=1 python benchmarks/vs_diffusers.py [--configs cpu-tiny,sd15,sdxl] [--cases 8]
       [--steps N] [--rounds 3] [--batch 4] [--lpips off] [--threads N] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

PROMPT = "a red circle on a blue background"
NEGATIVE = "blurry"
CFG = 5.5
SAMPLER = "Euler"
#: The module the generated conftest reads the pipeline from (set by :func:`plugin_sessions`).
HANDOFF = "_diffbench_vs_diffusers"
#: Numbers each project's test module: pytest refuses a second module of one name in one process.
PROJECTS = itertools.count()
CONFTEST = f'''
import sys

import pytest


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return sys.modules["{HANDOFF}"].pipeline
'''


@dataclass(frozen=True)
class Config:
    """One configuration: how to build its pipeline and on what device."""

    name: str
    device: str
    build: Callable[[], Any]
    describe: str
    default_steps: int


@dataclass
class Figures:
    """What one configuration measured (seconds)."""

    bare: dict[int, list[float]] = field(default_factory=dict)
    plugin: dict[int, list[float]] = field(default_factory=dict)
    sessions: list[float] = field(default_factory=list)
    breakdown: dict[str, float] = field(default_factory=dict)
    batch: dict[str, float] = field(default_factory=dict)


#: The clock every figure is read from (``--clock``): wall seconds, or this process's CPU seconds
#: (all its threads: the plugin's background writes count), which other work on a shared CPU
#: disturbs far less. CUDA time is wall time only.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


class Durations:
    """Each test's seconds (setup, call, teardown and their reports), by seed, on :data:`clock`."""

    def __init__(self) -> None:
        self.seconds: dict[int, float] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Any:
        start = clock()
        yield
        seed = int(item.nodeid.split("[seed")[1].split("-")[0].rstrip("]"))
        self.seconds[seed] = clock() - start


# --- the pipelines -------------------------------------------------------------------------------

def tokenizer() -> Any:
    from transformers import CLIPTokenizer

    from pytest_diffbench.run.pipelines import RANDOM_SD_DIR

    return CLIPTokenizer.from_pretrained(RANDOM_SD_DIR / "tokenizer", model_max_length=77, local_files_only=True)


def euler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                                  timestep_spacing="leading")


def clip_config(toy: bool, big: bool = False) -> Any:
    """CLIP ViT-L/14's text tower (``big``: OpenCLIP bigG's), or a toy one of the same shape."""
    from transformers import CLIPTextConfig

    if toy:
        return CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                              projection_dim=32, vocab_size=49408, max_position_embeddings=77)
    if big:
        return CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
                              projection_dim=1280, vocab_size=49408, max_position_embeddings=77, hidden_act="gelu")
    return CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                          projection_dim=768, vocab_size=49408, max_position_embeddings=77, hidden_act="quick_gelu")


def vae(toy: bool, scaling_factor: float) -> Any:
    from diffusers import AutoencoderKL

    widths = (32, 32, 32, 32) if toy else (128, 256, 512, 512)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=widths,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1 if toy else 2, sample_size=64 if toy else 512,
                         scaling_factor=scaling_factor)  # force_upcast: decoded in float32, as diffusers does


def built(device: str, dtype: torch.dtype, models: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``models()`` with their weights made on ``device`` in ``dtype`` (a real-size SDXL's 2.6B
    parameters take minutes to initialise on a CPU, a second on a GPU; ``meta`` makes none), seeded.
    Only the models: a scheduler made under the default dtype float16 would hold its sigmas in it."""
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return models()
    finally:
        torch.set_default_dtype(previous)


def named(pipe: Any, name: str) -> Any:
    pipe.register_to_config(_name_or_path=name)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_sd15(device: str, dtype: torch.dtype, toy: bool) -> Any:
    """SD1.5's architecture (UNet 860M parameters at full size) with random weights, 512x512 by
    default (64x64 when ``toy``)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    def models() -> dict[str, Any]:
        unet = UNet2DConditionModel(
            sample_size=8 if toy else 64, in_channels=4, out_channels=4, layers_per_block=1 if toy else 2,
            block_out_channels=(32, 64, 64, 64) if toy else (320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=32 if toy else 768, attention_head_dim=8)
        return {"unet": unet, "vae": vae(toy, 0.18215), "text_encoder": CLIPTextModel(clip_config(toy))}

    pipe = StableDiffusionPipeline(**built(device, dtype, models), tokenizer=tokenizer(), scheduler=euler(),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return named(pipe, "random/sd15-size" + ("-toy" if toy else ""))


def build_sdxl(device: str, dtype: torch.dtype, toy: bool) -> Any:
    """SDXL's architecture (UNet 2.57B parameters at full size; VAE; CLIP ViT-L and bigG) with random
    weights, 1024x1024 by default (64x64 when ``toy``)."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    def models() -> dict[str, Any]:
        small, big = clip_config(toy), clip_config(toy, big=True)
        time_embed = 8 if toy else 256
        unet = UNet2DConditionModel(
            sample_size=8 if toy else 128, in_channels=4, out_channels=4, layers_per_block=1 if toy else 2,
            block_out_channels=(32, 64, 64) if toy else (320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 1, 1) if toy else (1, 2, 10),
            attention_head_dim=(2, 4, 4) if toy else (5, 10, 20),
            cross_attention_dim=small.hidden_size + big.hidden_size, use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=time_embed,
            projection_class_embeddings_input_dim=6 * time_embed + big.projection_dim)
        return {"unet": unet, "vae": vae(toy, 0.13025), "text_encoder": CLIPTextModel(small),
                "text_encoder_2": CLIPTextModelWithProjection(big)}

    pipe = StableDiffusionXLPipeline(**built(device, dtype, models), tokenizer=tokenizer(), tokenizer_2=tokenizer(),
                                     scheduler=euler())
    return named(pipe, "random/sdxl-size" + ("-toy" if toy else ""))


def configs() -> dict[str, Config]:
    from pytest_diffbench.run.pipelines import load_pipeline

    return {
        "cpu-tiny": Config("cpu-tiny", "cpu", lambda: load_pipeline("diffbench-tiny"), "diffbench-tiny, 64x64, float32", 20),
        "sd15": Config("sd15", "cuda", lambda: build_sd15("cuda", torch.float16, toy=False),
                       "SD1.5-size random weights, 512x512, float16", 30),
        "sdxl": Config("sdxl", "cuda", lambda: build_sdxl("cuda", torch.float16, toy=False),
                       "SDXL-size random weights, 1024x1024, float16", 30),
        "sd15-toy": Config("sd15-toy", "cpu", lambda: build_sd15("cpu", torch.float32, toy=True),
                           "SD1.5 build at toy widths, 64x64, float32", 20),
        "sdxl-toy": Config("sdxl-toy", "cpu", lambda: build_sdxl("cpu", torch.float32, toy=True),
                           "SDXL build at toy widths, 64x64, float32", 20),
    }


# --- the two loops -------------------------------------------------------------------------------

def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bare_call(pipe: Any, device: str, seeds: list[int], steps: int) -> Any:
    """One pipeline call over ``seeds`` (a batch when more than one), one CPU generator each."""
    many = len(seeds) > 1
    return pipe([PROMPT] * len(seeds) if many else PROMPT, negative_prompt=[NEGATIVE] * len(seeds) if many else NEGATIVE,
                num_inference_steps=steps, guidance_scale=CFG,
                generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds] if many
                else torch.Generator("cpu").manual_seed(seeds[0]))


def timed(device: str, call: Callable[[], Any]) -> tuple[float, Any]:
    synchronize(device)
    start = clock()
    result = call()
    synchronize(device)
    return clock() - start, result


def bare_loop(pipe: Any, device: str, seeds: list[int], steps: int, batch: int = 1) -> dict[int, float]:
    """Seconds per image of each seed, calls of ``batch`` seeds (after one untimed warm-up call)."""
    bare_call(pipe, device, seeds[:batch], steps=2)
    out: dict[int, float] = {}
    for start in range(0, len(seeds), batch):
        chunk = seeds[start:start + batch]
        seconds, _ = timed(device, lambda: bare_call(pipe, device, chunk, steps))
        out.update({seed: seconds / len(chunk) for seed in chunk})
    return out


class PluginProject:
    """A temporary pytest project whose one test sweeps ``seeds``, run in this process."""

    def __init__(self, root: Path, pipe: Any, device: str, seeds: list[int], steps: int, lpips: str) -> None:
        self.root = root
        sys.modules[HANDOFF] = types.ModuleType(HANDOFF)
        sys.modules[HANDOFF].pipeline = pipe  # type: ignore[attr-defined]
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "conftest.py").write_text(CONFTEST)
        (root / f"test_bench_{next(PROJECTS)}.py").write_text(textwrap.dedent(f"""
            import pytest_diffbench as diffbench

            @diffbench.sweep(seeds={seeds!r}, samplers={SAMPLER!r}, steps={steps}, cfg={CFG})
            def test_bench(diffbench):
                diffbench.generate({PROMPT!r}, negative_prompt={NEGATIVE!r})
        """))
        self.args = [str(root), "-q", "-p", "no:cacheprovider", "--rootdir", str(root), "--diffbench",
                     f"--diffbench-device={device}", f"--diffbench-lpips={lpips}",
                     f"--diffbench-output-dir={root / 'out'}"]

    def run(self, batch: int, update: bool = False) -> tuple[dict[int, float], float]:
        """Each case's seconds by seed, and the session's wall seconds. Exits when pytest could not run
        the cases (exit status 2 or more); failed cases (a random-weight float16 network can make
        non-finite images) are noted on stderr and still timed."""
        durations = Durations()
        args = [*self.args, f"--diffbench-baseline-dir={self.root / f'baselines-{batch}'}", f"--diffbench-batch={batch}"]
        output = io.StringIO()
        start = clock()
        with contextlib.redirect_stdout(output):
            code = pytest.main([*args, "--diffbench-update"] if update else args, plugins=[durations])
        wall = clock() - start
        if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            sys.exit(f"{output.getvalue()}\npytest --diffbench exited with {code} (batch {batch}, update {update})")
        if code == pytest.ExitCode.TESTS_FAILED:
            summary = (output.getvalue().strip().splitlines() or [""])[-1]
            print(f"note: some cases failed (batch {batch}, update {update}), still timed: {summary}", file=sys.stderr)
        return durations.seconds, wall


# --- the breakdown ---------------------------------------------------------------------------------

def median_ms(call: Callable[[], Any], repeats: int = 20) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def breakdown(pipe: Any, device: str, steps: int, lpips: str, folder: Path) -> dict[str, float]:
    """The plugin's own per-case steps, timed alone on this pipeline and two of its images (ms)."""
    from pytest_diffbench.judge.metrics import score_images
    from pytest_diffbench.run.fingerprint import describe_pipeline, model_fingerprint
    from pytest_diffbench.store.files import atomic_write_bytes, encode_png

    output = bare_call(pipe, device, [1], steps).images[0]
    baseline = bare_call(pipe, device, [2], steps).images[0]
    png = encode_png(output)
    config = json.dumps({"prompt": PROMPT, "fingerprint": "0" * 64, "padding": "x" * 2000}).encode()

    def write_both() -> None:
        atomic_write_bytes(folder / "out.png", png)
        atomic_write_bytes(folder / "config.json", config)

    return {
        "fingerprint (cached)": median_ms(lambda: describe_pipeline(pipe)),
        "fingerprint (uncached)": median_ms(lambda: model_fingerprint(pipe), repeats=5),
        "encode PNG": median_ms(lambda: encode_png(output)),
        "metrics": median_ms(lambda: score_images(output, baseline, prompt=PROMPT, device=str(pipe.device),
                                                  modes={"lpips": lpips})),
        "writes (PNG + config)": median_ms(write_both),
    }


# --- one configuration -------------------------------------------------------------------------------

def measure(config: Config, cases: int, steps: int, rounds: int, batch: int, lpips: str, threads: int) -> Figures:
    figures = Figures()
    pipe = config.build()
    seeds = list(range(cases + 1))  # seed 0: each session's first case (warm-up), left out
    with tempfile.TemporaryDirectory(prefix="vs-diffusers-") as tmp:
        root = Path(tmp)
        project = PluginProject(root, pipe, config.device, seeds, steps, lpips)
        project.run(batch=1, update=True)
        torch.set_num_threads(threads)
        for round_ in range(rounds):
            order = ["bare", "plugin"] if round_ % 2 == 0 else ["plugin", "bare"]
            for side in order:
                if side == "bare":
                    for seed, seconds in bare_loop(pipe, config.device, seeds[1:], steps).items():
                        figures.bare.setdefault(seed, []).append(seconds)
                else:
                    durations, wall = project.run(batch=1)
                    torch.set_num_threads(threads)
                    for seed in seeds[1:]:
                        figures.plugin.setdefault(seed, []).append(durations[seed])
                    figures.sessions.append(wall - sum(durations.values()))
        figures.breakdown = breakdown(pipe, config.device, steps, lpips, root)
        if batch > 1:
            figures.batch = batch_ratio(pipe, config, root / "batch", cases, steps, rounds, batch, lpips, threads)
    del sys.modules[HANDOFF]
    return figures


def batch_ratio(pipe: Any, config: Config, root: Path, cases: int, steps: int, rounds: int, batch: int, lpips: str,
                threads: int) -> dict[str, float]:
    """Per-image seconds of the plugin with ``--diffbench-batch=batch`` and without, and of the bare
    loop batched and not, on seeds ``0 .. batch + cases`` (the first ``batch`` left out), medians
    over ``rounds`` rounds (batched first in odd ones)."""
    root.mkdir()
    seeds = list(range(batch + -(-cases // batch) * batch))
    project = PluginProject(root, pipe, config.device, seeds, steps, lpips)
    sums: dict[str, list[float]] = {"plugin 1": [], f"plugin {batch}": [], "bare 1": [], f"bare {batch}": []}
    for size in (1, batch):
        project.run(batch=size, update=True)
    for round_ in range(rounds):
        for size in ((1, batch) if round_ % 2 == 0 else (batch, 1)):
            durations, _ = project.run(batch=size)
            torch.set_num_threads(threads)
            sums[f"plugin {size}"].append(sum(durations[seed] for seed in seeds[batch:]) / len(seeds[batch:]))
            per_image = bare_loop(pipe, config.device, seeds, steps, batch=size)
            sums[f"bare {size}"].append(sum(per_image[seed] for seed in seeds[batch:]) / len(seeds[batch:]))
    return {key: statistics.median(values) for key, values in sums.items()}


def report(config: Config, figures: Figures, steps: int, cases: int, rounds: int, batch: int,
           lpips: str) -> tuple[float, float]:
    """Print one configuration's figures; return its median ratio plugin/bare and median overhead (ms)."""
    per_case = sorted(figures.bare)
    bare = {seed: statistics.median(figures.bare[seed]) for seed in per_case}
    plugin = {seed: statistics.median(figures.plugin[seed]) for seed in per_case}
    ratios = [plugin[seed] / bare[seed] for seed in per_case]
    overheads = [(plugin[seed] - bare[seed]) * 1000 for seed in per_case]
    device = torch.cuda.get_device_name() if config.device == "cuda" else f"cpu, {torch.get_num_threads()} torch threads"
    ratio = statistics.median(ratios)
    print(f"== {config.name}: {config.describe}, {steps} steps, cfg {CFG}, {SAMPLER}, {cases} cases x {rounds} rounds, "
          f"lpips {lpips}, on {device}, {'wall' if clock is time.perf_counter else 'CPU'} clock")
    print(f"  bare diffusers call   median {statistics.median(bare.values()) * 1000:9.1f} ms")
    print(f"  plugin case           median {statistics.median(plugin.values()) * 1000:9.1f} ms")
    print(f"  overhead per case     median {statistics.median(overheads):+9.1f} ms  (cases: {min(overheads):+.1f} .. "
          f"{max(overheads):+.1f})")
    print(f"  ratio plugin/bare     median {ratio:9.3f}    (cases: {min(ratios):.3f} .. {max(ratios):.3f})")
    print(f"  session start + end (outside the cases) median {statistics.median(figures.sessions) * 1000:.0f} ms")
    print("  breakdown, each step alone on this pipeline and its images (median ms): " + ", ".join(
        f"{name} {ms:.2f}" for name, ms in figures.breakdown.items()))
    if figures.batch:
        plugin_ratio = figures.batch[f"plugin {batch}"] / figures.batch["plugin 1"]
        bare_ratio = figures.batch[f"bare {batch}"] / figures.batch["bare 1"]
        print(f"  batch of {batch}: plugin {figures.batch[f'plugin {batch}'] * 1000:.1f} ms/image against "
              f"{figures.batch['plugin 1'] * 1000:.1f} unbatched: ratio {plugin_ratio:.3f} (bare loop: {bare_ratio:.3f})")
    return ratio, statistics.median(overheads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=None, help="comma-separated: cpu-tiny, sd15, sdxl, sd15-toy, sdxl-toy")
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="default: 20 on the CPU configurations, 30 on CUDA")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4, help="the batch ratio's batch size (1: skip it)")
    parser.add_argument("--lpips", default="off", choices=["auto", "required", "off"])
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS),
                        help="wall seconds (default), or this process's CPU seconds for a shared CPU (CPU configurations only)")
    args = parser.parse_args()
    known = configs()
    names = args.configs.split(",") if args.configs else ["cpu-tiny", *(["sd15", "sdxl"] if torch.cuda.is_available() else [])]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"--configs: unknown {', '.join(unknown)}; valid: {', '.join(known)}")
    if any(known[name].device == "cuda" for name in names) and not torch.cuda.is_available():
        parser.error("--configs: sd15 and sdxl need CUDA, which torch does not see here (sd15-toy and sdxl-toy run on the CPU)")
    if args.clock == "cpu" and any(known[name].device == "cuda" for name in names):
        parser.error("--clock cpu: CUDA configurations are timed on the wall clock (the GPU's time is no CPU time)")
    global clock
    clock = CLOCKS[args.clock]
    if args.cases < 1 or args.rounds < 1 or args.batch < 1 or args.threads < 1:
        parser.error("--cases, --rounds, --batch and --threads must be at least 1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the plugin keeps a thread count the user set
    torch.set_num_threads(args.threads)
    ratios: list[tuple[float, float]] = []
    rows: list[tuple[str, Figures]] = []
    for name in names:
        config = known[name]
        steps = args.steps or config.default_steps
        figures = measure(config, args.cases, steps, args.rounds, args.batch, args.lpips, args.threads)
        ratios.append(report(config, figures, steps, args.cases, args.rounds, args.batch, args.lpips))
        rows.append((name, figures))
        if config.device == "cuda":
            torch.cuda.empty_cache()
    print("\n| config | bare ms | plugin ms | overhead ms | plugin/bare | batch ratio |")
    print("|---|---|---|---|---|---|")
    for (name, figures), (ratio, overhead) in zip(rows, ratios):
        bare = statistics.median(statistics.median(v) for v in figures.bare.values()) * 1000
        plugin = statistics.median(statistics.median(v) for v in figures.plugin.values()) * 1000
        batch = (f"{figures.batch[f'plugin {args.batch}'] / figures.batch['plugin 1']:.3f}" if figures.batch else "-")
        print(f"| {name} | {bare:.1f} | {plugin:.1f} | {overhead:+.1f} | {ratio:.3f} | {batch} |")
    print(f"ratio: {ratios[0][0]:.3f}")


if __name__ == "__main__":
    main()
