"""``diffbench replay`` on real bundles: the examples' bundle (``--diffbench-bundle-images=all``)
replays byte-identical from the bundle alone; an edited image is ``within tolerance`` or
``different``; ``-k`` picks cases; a corrupt bundle, one without images and a model that cannot
be loaded are one line each. An img2img case replays from the input image the bundle carries."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Callable

import pytest
from forked_pytest import MODEL, run_python  # tests/suite_plugin: a child forked from a warm server
from PIL import Image

from pytest_diffbench.spec.config import config_hash
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import RunFolder, read_latest

pytestmark = [pytest.mark.subprocess, pytest.mark.model]

RED = "examples/test_shapes.py::test_red_circle[seed0-euler_a-20steps-cfg5.5]"
SIZES = "examples/test_shapes.py::test_sizes[seed0-ddim-10steps-cfg7.5-width96-height64]"


def replay(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``diffbench replay ARGS`` in a child (``-P``: the package as installed, not from ``cwd``),
    forked from a server that has imported torch and diffusers (tests/suite_plugin/forked_pytest.py)."""
    return run_python(["-P", "-m", "pytest_diffbench.cli.main", "replay", *args], cwd=cwd, preload=MODEL, timeout=600)


def edited(bundle: Path, to: Path, edit: Callable[[dict[str, bytes]], None]) -> Path:
    """A copy of ``bundle`` at ``to`` whose entries ``edit`` changed, with its manifest made to
    match them (an edit, not a corruption)."""
    with zipfile.ZipFile(bundle) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    edit(entries)
    manifest = json.loads(entries["manifest.json"])
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(entries.items())
                         if name != "manifest.json"}
    entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(to, "w") as archive:
        for name, data in sorted(entries.items()):
            archive.writestr(name, data)
    return to


def repainted(png: bytes, box: tuple[int, int, int, int], shift: int) -> bytes:
    """``png`` with the pixels in ``box`` shifted by ``shift`` levels (clipped)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    region = image.crop(box).point(lambda level: max(0, min(255, level + shift)))
    image.paste(region, box[:2])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_entry(nodeid: str) -> str:
    return f"images/{case_path(nodeid)}.png"


def test_the_examples_bundle_replays_identically_and_edits_are_found(repo_root: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    output_dir = tmp_path / "runs"
    made = run_python(["-P", "-m", "pytest", "--diffbench", "examples/", "-p", "no:cacheprovider", "-q",
                       f"--diffbench-output-dir={output_dir}", "--diffbench-lpips=off", "--diffbench-bundle-images=all"],
                      cwd=repo_root, preload=MODEL, timeout=600)
    run_id = read_latest(output_dir)
    assert run_id is not None, made.stdout[-4000:] + made.stderr[-4000:]
    # The images match the committed baselines; only the speed gate may fail (on a busy CPU).
    outcomes = {result.outcome for result in read_results(RunFolder.of(output_dir, run_id).results)}
    assert outcomes <= {Outcome.PASSED, Outcome.FAILED_SPEED}, made.stdout[-4000:]
    bundle = RunFolder.of(output_dir, run_id).bundle
    with zipfile.ZipFile(bundle) as archive:
        cases = sorted(name for name in archive.namelist() if name.startswith("images/"))
        readme = archive.read("README.md").decode()
    assert f"diffbench replay diffbench-{run_id}.zip" in readme

    # From the bundle alone (another folder, no test file): every case byte-identical.
    done = replay(tmp_path, str(bundle))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(cases) + 1 > 1
    assert all(line.startswith("identical ") for line in lines[:-1]), done.stdout
    assert lines[-1] == f"replayed {len(cases)} cases of {bundle}: {len(cases)} identical"

    # One level more in a corner: within the case's tolerances. Half the image brighter: different.
    # -k picks the cases (case-insensitive, repeated: either).
    def edit(entries: dict[str, bytes]) -> None:
        entries[image_entry(RED)] = repainted(entries[image_entry(RED)], (0, 0, 2, 2), 1)
        entries[image_entry(SIZES)] = repainted(entries[image_entry(SIZES)], (0, 0, 48, 64), 120)

    changed = edited(bundle, tmp_path / "edited.zip", edit)
    done = replay(tmp_path, str(changed), "-k", "RED_CIRCLE[seed0-euler_a-20", "-k", "ddim-10steps-cfg7.5-width96")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"within tolerance  {RED}: ") and lines[1].startswith(f"different         {SIZES}: ")
    assert re.search(r"ssim [0-9.]+ >= 0\.95", lines[0]) and re.search(r"ssim 0\.[0-9]+ < 0\.98", lines[1])
    assert lines[2].endswith(": 1 within tolerance, 1 different")

    # A model that cannot be loaded: one line for its case, exit status 3 (nothing differed).
    def other_model(entries: dict[str, bytes]) -> None:
        name = f"configs/{case_path(RED)}.json"
        sidecar = json.loads(entries[name])
        sidecar["config"]["model"] = "nobody/no-such-model"
        sidecar["config_hash"] = config_hash(sidecar["config"])
        entries[name] = json.dumps(sidecar).encode()

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = replay(tmp_path, str(edited(bundle, tmp_path / "model.zip", other_model)), "-k", RED)
    assert done.returncode == 3, done.stdout + done.stderr
    first, last = done.stdout.splitlines()
    assert first.startswith(f"not replayed      {RED}: cannot load 'nobody/no-such-model'")
    assert last.endswith(": 1 not replayed") and "Traceback" not in done.stderr

    # A corrupt bundle and one without images: one line each on stderr, exit status 2.
    corrupt = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(corrupt, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, data[:-1] + b"x" if name == image_entry(RED) else data)
    done = replay(tmp_path, str(corrupt))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"diffbench: {corrupt} is corrupt: {image_entry(RED)} does not match its manifest.json; " \
                          "replay an intact copy of the bundle\n"
    bare = edited(bundle, tmp_path / "bare.zip",
                  lambda entries: [entries.pop(name) for name in list(entries) if name.startswith("images/")])
    done = replay(tmp_path, str(bare))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"diffbench: {bare} holds no output image to compare with")


IMG2IMG_CONFTEST = '''
import pytest
from diffusers import StableDiffusionImg2ImgPipeline

from pytest_diffbench.run.pipelines import load_pipeline


@pytest.fixture(scope="session")
def diffbench_pipeline():
    pipe = StableDiffusionImg2ImgPipeline.from_pipe(load_pipeline("diffbench-tiny"))
    pipe.set_progress_bar_config(disable=True)
    return pipe
'''

IMG2IMG_TEST = '''
import numpy as np
from PIL import Image

import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=4)
def test_img2img(diffbench):
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[16:48, 16:48] = (220, 30, 30)
    diffbench.generate("a red square on a black background", image=Image.fromarray(pixels), strength=0.75)
'''


def test_an_img2img_case_replays_from_the_input_image_in_the_bundle(project) -> None:
    project.pytester.makeconftest(IMG2IMG_CONFTEST)
    project.pytester.makepyfile(test_gen=IMG2IMG_TEST)
    run = project.run("--diffbench-bundle-images=all", update="all", subprocess=True)
    run.outcome.assert_outcomes(passed=2)
    with zipfile.ZipFile(run.folder.bundle) as archive:
        inputs = [name for name in archive.namelist() if name.startswith("inputs/")]
    assert len(inputs) == 1  # one picture, two cases
    done = replay(project.path, str(run.folder.bundle))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[:-1]] == ["identical", "identical"]

    # A config whose weight fingerprint is not the loaded model's: replayed, and the note says so.
    nodeid = run.results[0].nodeid

    def other_weights(entries: dict[str, bytes]) -> None:
        name = f"configs/{case_path(nodeid)}.json"
        sidecar = json.loads(entries[name])
        sidecar["config"]["model_fingerprint"] = "0" * 64
        sidecar["config_hash"] = config_hash(sidecar["config"])
        entries[name] = json.dumps(sidecar).encode()

    done = replay(project.path, str(edited(run.folder.bundle, project.path / "weights.zip", other_weights)), "-k", nodeid)
    assert done.returncode == 0, done.stdout + done.stderr
    verdict, note, _ = done.stdout.splitlines()
    assert verdict == f"identical         {nodeid}"
    assert note.startswith("                    note: model fingerprint differs: the config has '0000")
