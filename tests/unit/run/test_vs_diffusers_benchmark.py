"""benchmarks/vs_diffusers.py (issue 13, item 5): its real-size CUDA architectures are SD1.5's and
SDXL's (checked on the meta device: no weights made), the same builds at toy widths run on the CPU
through both loops, and its last line is ``ratio: <median plugin/bare>`` for scripts."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from forked_pytest import MODEL, run_python  # tests/suite_plugin: forked from a warm server

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "vs_diffusers.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vs_diffusers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def parameters(pipe: object) -> dict[str, int]:
    import torch

    return {name: sum(p.numel() for p in module.parameters())
            for name, module in pipe.components.items() if isinstance(module, torch.nn.Module)}  # type: ignore[attr-defined]


@pytest.mark.model
def test_the_cuda_configurations_are_sd15_and_sdxl_size(bench: ModuleType) -> None:
    import torch

    sd15 = bench.build_sd15("meta", torch.float16, toy=False)
    sdxl = bench.build_sdxl("meta", torch.float16, toy=False)
    # The released models' parameter counts (runwayml SD1.5, stabilityai SDXL base 1.0).
    assert parameters(sd15) == {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}
    assert parameters(sdxl) == {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480,
                                "text_encoder_2": 694_659_840}
    assert (sd15.unet.config.sample_size * sd15.vae_scale_factor, sdxl.unet.config.sample_size * sdxl.vae_scale_factor) == (512, 1024)
    assert sd15.scheduler.sigmas.dtype == sdxl.scheduler.sigmas.dtype == torch.float32  # not the models' float16


@pytest.mark.model
def test_the_sdxl_build_at_toy_widths_draws_on_the_cpu(bench: ModuleType) -> None:
    import torch

    pipe = bench.build_sdxl("cpu", torch.float32, toy=True)
    (image,) = bench.bare_call(pipe, "cpu", [0], steps=1).images
    assert image.size == (64, 64)


@pytest.mark.model
@pytest.mark.subprocess
def test_a_toy_run_prints_the_table_and_ends_with_the_ratio(tmp_path: Path) -> None:
    proc = run_python([str(SCRIPT), "--configs", "sd15-toy", "--cases", "1", "--steps", "1", "--rounds", "1", "--batch", "2",
                       "--threads", "1"], cwd=tmp_path, preload=MODEL, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ") and "-toy" in line}
    assert sorted(rows) == ["sd15-toy"]
    first_ratio = rows["sd15-toy"].split("|")[5].strip()
    assert re.fullmatch(r"ratio: \d+\.\d{3}", lines[-1]) and lines[-1] == f"ratio: {first_ratio}"
    assert "batch of 2: plugin" in proc.stdout


@pytest.mark.model  # the script imports torch and diffusers first: seconds
@pytest.mark.subprocess
def test_an_unknown_configuration_is_refused_in_one_line() -> None:
    proc = run_python([str(SCRIPT), "--configs", "cpu-tiny,sd14"], preload=MODEL, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "--configs: unknown sd14; valid: cpu-tiny, sd15, sdxl, sd15-toy, sdxl-toy")
