"""Inputs are data, not config, as a user runs pytest: ``generate(image=<PIL image>, ...)`` is
accepted, recorded as a small digest (small sidecars and results.csv), saved once under the run
folder's ``inputs/`` and drawn in the case's grid; a changed pixel makes the baseline stale naming
``pipeline_kwargs.image``; latents are compared by value within a tolerance; stale messages stay
a few KB."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.spec.outcomes import Outcome

#: A FakePipeline taking img2img's keywords, which draws the same picture for the same input
#: pixels in every process (the stock one keys extra keywords by repr(), an object address for a
#: PIL image) and ignores the values of arrays (the config, not the picture, is under test).
CONFTEST = '''
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.testing import FAKE_PIPELINE_ENV, FakePipeline


def stable(value):
    if isinstance(value, Image.Image):
        return hashlib.sha256(value.mode.encode() + repr(value.size).encode() + value.tobytes()).hexdigest()
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, (list, tuple)):
        return [stable(item) for item in value]
    return value


class InputFakePipeline(FakePipeline):
    def draw(self, sampler, seed, call_kwargs):
        return super().draw(sampler, seed, {key: stable(value) for key, value in call_kwargs.items()})


@pytest.fixture(scope="session")
def diffbench_pipeline():
    keywords = json.loads(os.environ.get(FAKE_PIPELINE_ENV) or "{}")
    return InputFakePipeline(**{"extra_keywords": ("image", "mask_image", "strength", "options"), **keywords})
'''

#: The test module's helpers: a deterministic 64x64 picture and mask.
HELPERS = '''
import numpy as np
from PIL import Image


def picture(changed_pixel=False):
    pixels = np.random.default_rng(11).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    if changed_pixel:
        pixels[5, 7, 0] ^= 1
    return pixels


def mask():
    values = np.zeros((64, 64), dtype=np.uint8)
    values[16:48, 8:40] = 255
    return values
'''

SWEEP = "seeds=[0, 1], steps=2"
#: Sidecars and failure messages must stay this small whatever the inputs (the issue: 351 KB, 107 KB).
SMALL = 4096


def setup(project, body: str, sweep: str = SWEEP) -> None:
    project.pytester.makeconftest(CONFTEST)
    project.write_tests(HELPERS, project.test("test_img2img", sweep=sweep, body=body))


def pixels_sha256(mode: str, array: np.ndarray) -> str:
    image = Image.fromarray(array)
    return hashlib.sha256(f"{mode} {image.width}x{image.height}\n".encode("ascii") + image.tobytes()).hexdigest()


def picture(changed_pixel: bool = False) -> np.ndarray:
    namespace: dict = {}
    exec(HELPERS, namespace)
    return namespace["picture"](changed_pixel)


PIL_BODY = 'diffbench.generate("a red cube", image=Image.fromarray(picture()), mask_image=Image.fromarray(mask()), strength=0.6)'


@pytest.fixture(scope="module")
def pil_created(shared_project):
    """The run that created the baselines of two cases given PIL inputs (:data:`PIL_BODY`), made
    once for the module; the tests that run again take a copy (``copy_run``)."""
    with shared_project() as project:
        setup(project, PIL_BODY)
        return project.run(update="all")


def test_a_pil_input_is_accepted_and_recorded_as_a_small_digest(project, pil_created, copy_run) -> None:
    run = copy_run(pil_created, project.path)
    run.outcome.assert_outcomes(passed=2)
    png, sidecar = project.baseline_pair("test_img2img", "seed0-euler-2steps-cfg7.5")
    assert sidecar.stat().st_size < SMALL, sidecar.read_text()
    recorded = project.read_json(sidecar)["config"]["pipeline_kwargs"]
    sha = pixels_sha256("RGB", picture())
    assert recorded["image"] == {"sha256": sha, "size": [64, 64], "mode": "RGB", "name": f"{sha[:16]}.png"}
    assert recorded["mask_image"]["mode"] == "L" and recorded["strength"] == 0.6
    assert run.folder.results.stat().st_size < 2 * SMALL
    for result in run.results:
        assert result.config["pipeline_kwargs"]["image"] == recorded["image"]
    # A clean rerun passes: the same pixels give the same config and the same picture.
    project.run().outcome.assert_outcomes(passed=2)


def test_a_pil_input_is_saved_once_and_shown_in_the_grid(pil_created) -> None:
    run = pil_created
    run.outcome.assert_outcomes(passed=2)
    saved = sorted(path.name for path in run.folder.inputs.iterdir())
    record = run.results[0].config["pipeline_kwargs"]
    assert saved == sorted([record["image"]["name"], record["mask_image"]["name"]])  # two cases, one file each
    with Image.open(run.folder.input(record["image"]["name"])) as image:
        assert np.array_equal(np.asarray(image), picture())
    grid = np.asarray(Image.open(run.folder.case_grid("test_gen/test_img2img/seed0-euler-2steps-cfg7.5")).convert("RGB"))
    shown = np.kron(picture(), np.ones((4, 4, 1), dtype=np.uint8))  # 64 px shown x4, as the output
    corners = np.argwhere((grid[:-255, :-255] == shown[0, 0]).all(axis=2))
    assert any(np.array_equal(grid[y:y + 256, x:x + 256], shown) for y, x in corners)


def test_a_png_and_arrays_of_the_same_pixels_share_one_baseline(project) -> None:
    Image.fromarray(picture()).save(project.path / "input.png")
    setup(project, 'diffbench.generate("a red cube", image=Image.open("input.png"), strength=0.6)', sweep="seeds=0, steps=2")
    project.run(update="all").outcome.assert_outcomes(passed=1)
    for value in ("picture()", "picture() / 255", "picture().astype(np.float64) / 255"):
        setup(project, f'diffbench.generate("a red cube", image={value}, strength=0.6)', sweep="seeds=0, steps=2")
        run = project.run()
        run.outcome.assert_outcomes(passed=1)
        assert run.results[0].outcome is Outcome.PASSED, value


def test_one_changed_input_pixel_makes_the_baseline_stale_naming_the_keyword(project, pil_created, copy_run) -> None:
    copy_run(pil_created, project.path).outcome.assert_outcomes(passed=2)
    setup(project, PIL_BODY.replace("picture()", "picture(changed_pixel=True)"))
    run = project.run()
    run.outcome.assert_outcomes(failed=2)
    assert {result.outcome for result in run.results} == {Outcome.STALE_BASELINE}
    new = pixels_sha256("RGB", picture(changed_pixel=True))
    text = project.text(run.outcome)
    assert f"pipeline_kwargs.image.sha256: '{pixels_sha256('RGB', picture())}' -> '{new}'" in text
    assert "mask_image" not in text and "strength" not in text  # only what changed
    for result in run.results:
        assert "pipeline_kwargs.image.sha256" in result.message and len(result.message.encode("utf-8")) < SMALL


def test_a_float_input_outside_0_1_is_refused_in_one_line(project) -> None:
    setup(project, 'diffbench.generate("a red cube", image=picture() / 127.5 - 1, strength=0.6)', sweep="seeds=0, steps=2")
    run = project.run(update="all")
    run.outcome.assert_outcomes(failed=1)
    (result,) = run.results
    assert result.outcome is Outcome.ERROR
    assert result.message.endswith("generate(image=...): a float image must hold values in [0, 1], this one spans -1 "
                                   "to 1; divide uint8 pixels by 255 (or map [-1, 1] with x / 2 + 0.5), or give a uint8 "
                                   "array or a PIL image")
    assert "Traceback" not in project.text(run.outcome)


#: Latents from a first stage, given to a refiner as its ``image`` (4 channels: data, not a picture).
LATENTS = 'np.random.default_rng(2).standard_normal((1, 4, 8, 8)).astype(np.float32)'


def test_latents_are_compared_by_value_within_a_tolerance(project) -> None:
    body = 'diffbench.generate("a red cube", image={}, strength=0.3)'
    setup(project, body.format(LATENTS), sweep="seeds=0, steps=2")
    project.run(update="all").outcome.assert_outcomes(passed=1)
    _, sidecar = project.baseline_pair("test_img2img")
    assert sidecar.stat().st_size < SMALL
    # Another thread count changes the last bits: not stale.
    setup(project, body.format(f"{LATENTS} * np.float32(1 + 1e-6)"), sweep="seeds=0, steps=2")
    project.run().outcome.assert_outcomes(passed=1)
    # A real change of 1%: stale, naming the keyword (0.01 / 1.01 of the larger tensor).
    setup(project, body.format(f"{LATENTS} * np.float32(1 + 1e-2)"), sweep="seeds=0, steps=2")
    run = project.run()
    run.outcome.assert_outcomes(failed=1)
    (result,) = run.results
    assert result.outcome is Outcome.STALE_BASELINE
    assert "pipeline_kwargs.image: values differ by 0.99% relative (tolerance 0.10%)" in project.text(run.outcome)


def test_a_stale_message_is_capped_however_many_fields_differ(project) -> None:
    body = 'diffbench.generate("a red cube", options={{f"option_{{i:03d}}": i + {} for i in range(300)}})'
    setup(project, body.format(0), sweep="seeds=0, steps=2")
    project.run(update="all").outcome.assert_outcomes(passed=1)
    setup(project, body.format(1), sweep="seeds=0, steps=2")
    run = project.run()
    run.outcome.assert_outcomes(failed=1)
    (result,) = run.results
    assert result.outcome is Outcome.STALE_BASELINE
    text = project.text(run.outcome)
    assert "  pipeline_kwargs.options.option_000: 0 -> 1" in text
    assert "... and 288 more fields (in pipeline_kwargs)" in text
    assert len(text.encode("utf-8")) < 2 * SMALL  # the whole pytest output, the message a few KB of it
    assert len(result.message.encode("utf-8")) < SMALL
    assert run.folder.results.stat().st_size < 4 * SMALL
