"""SSIM against the most-steps image of each case's sweep group (judge.convergence)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pytest_diffbench.judge.convergence import case_group, reference_ssim, with_reference_ssim
from pytest_diffbench.judge.metrics.images import to_rgb_array

#: Fewer steps, blurrier image: a stand-in for a sampler that has not converged.
BLUR = {4: 3.0, 10: 1.0, 20: 0.0}


@pytest.fixture
def sweep(make_result, astronaut_photo):
    """``sweep(seeds, samplers, steps)`` -> (results, pixels): each group is the photo turned by seed
    and sampler, blurred by its step count."""
    photo = astronaut_photo(64)
    pixels: dict[str, np.ndarray] = {}

    def build(seeds=(0,), samplers=("Euler",), steps=(4, 10, 20)):
        results = []
        for seed in seeds:
            for sampler in samplers:
                for count in steps:
                    result = make_result(seed, sampler, count)
                    image = photo.rotate(15 * seed + (5 if sampler == "DDIM" else 0))
                    pixels[result.nodeid] = to_rgb_array(image.filter(ImageFilter.GaussianBlur(BLUR[count])) if BLUR[count] else image)
                    results.append(result)
        return results

    build.pixels = pixels  # type: ignore[attr-defined]
    build.load = lambda result: pixels.get(result.nodeid)  # type: ignore[attr-defined]
    return build


def test_case_group_drops_only_the_named_axes(make_result):
    result = make_result(3, "DDIM", 10)
    assert case_group(result, "steps") == ("tests/test_a.py::test_a", "seed3 · ddim · cfg7.5")
    assert case_group(result, "sampler", "steps") == ("tests/test_a.py::test_a", "seed3 · cfg7.5")


@pytest.mark.parametrize(("param", "group"), [
    ("seed3-ddim-10steps-cfg7.5-a red cube", "seed3 · ddim · cfg7.5 · a red cube"),  # parametrize after the sweep
    ("a red cube-seed3-ddim-10steps-cfg7.5", "a red cube · seed3 · ddim · cfg7.5"),  # a fixture param before it
    ("x-seed3-ddim-10steps-cfg7.5-y", "x · seed3 · ddim · cfg7.5 · y"),  # one on either side
])
def test_case_group_keeps_every_parameter_that_is_not_a_swept_axis(make_result, param, group):
    result = make_result(3, "DDIM", 10)
    result = result.with_changes(nodeid=f"{result.test}[{param}]")
    assert case_group(result, "steps") == ("tests/test_a.py::test_a", group)


def test_cases_of_two_parametrize_values_are_scored_against_their_own_most_steps_image(sweep):
    results = sweep(steps=(4, 20))
    twins = [r.with_changes(nodeid=r.nodeid[:-1] + "-other]") for r in results]
    sweep.pixels.update({t.nodeid: np.ascontiguousarray(np.rot90(sweep.pixels[r.nodeid])) for r, t in zip(results, twins)})
    scores = reference_ssim(results + twins, sweep.load)
    assert [scores[r.nodeid] for r in results + twins if r.setting("steps") == 20] == [1.0, 1.0]
    assert scores[twins[0].nodeid] == pytest.approx(scores[results[0].nodeid], abs=0.05)


def test_a_test_without_a_sweep_groups_by_its_own_parameters(make_result):
    result = make_result(0, "Euler", 20).with_changes(nodeid="tests/test_a.py::test_a[a red cube]")
    assert case_group(result, "sampler", "steps") == ("tests/test_a.py::test_a", "a red cube · seed0 · cfg7.5")


def test_fewer_steps_score_lower_against_the_most_steps_image(sweep, make_result):
    results = sweep(seeds=(0, 1), samplers=("Euler", "DDIM"))
    scores = reference_ssim(results, sweep.load)
    assert len(scores) == len(results) == 12
    for seed in (0, 1):
        for sampler in ("Euler", "DDIM"):
            by_steps = [scores[make_result(seed, sampler, steps).nodeid] for steps in (4, 10, 20)]
            assert by_steps[0] < by_steps[1] < by_steps[2] == 1.0


def test_groups_are_kept_apart_by_seed_and_sampler(sweep):
    # Every group's images are the same photo turned by seed and sampler: were groups mixed,
    # the 20-step images would score below 1.0 against another group's reference.
    results = sweep(seeds=(0, 1), samplers=("Euler", "DDIM"), steps=(10, 20))
    scores = reference_ssim(results, sweep.load)
    assert {scores[r.nodeid] for r in results if r.setting("steps") == 20} == {1.0}


def test_no_score_without_a_second_step_count_an_image_or_a_matching_size(sweep, make_result):
    single = sweep(seeds=(0,), steps=(20,))
    missing = [make_result(1, "Euler", 4), *sweep(seeds=(1,), steps=(20,))]
    resized = make_result(2, "Euler", 4)
    sweep.pixels[resized.nodeid] = to_rgb_array(Image.new("RGB", (32, 32)))
    others = sweep(seeds=(2,), steps=(20,))
    scores = reference_ssim([*single, *missing, resized, *others], sweep.load)
    assert scores == {others[0].nodeid: 1.0}


def test_with_reference_ssim_sets_the_score_where_there_is_one(sweep):
    results = with_reference_ssim([*sweep(seeds=(0,)), *sweep(seeds=(1,), steps=(20,))], sweep.load)
    assert [r.ssim_vs_most_steps is not None for r in results] == [True, True, True, False]
    assert results[2].ssim_vs_most_steps == 1.0
    assert results[3].to_row()["ssim_vs_most_steps"] is None




def test_a_videos_ssim_vs_most_steps_is_its_worst_frame(make_result, astronaut_photo):
    """Four frames; only frame 2 is blurred at fewer steps: the whole strip would hide it."""
    import numpy as np
    from PIL import ImageFilter

    from pytest_diffbench.judge.convergence import reference_ssim
    from pytest_diffbench.judge.metrics.images import split_frames, to_rgb_array
    from pytest_diffbench.judge.metrics.ssim import ssim

    frames = [to_rgb_array(astronaut_photo(64).rotate(20 * i)) for i in range(4)]
    sharp = np.concatenate(frames, axis=1)
    blurred = np.concatenate([to_rgb_array(astronaut_photo(64).rotate(20).filter(ImageFilter.GaussianBlur(2)))
                              if i == 1 else frame for i, frame in enumerate(frames)], axis=1)
    video = {"video": {"frames": 4}, "width": 64}
    few, many = make_result(0, "Euler", 4, config=video), make_result(0, "Euler", 20, config=video)
    pixels = {few.nodeid: blurred, many.nodeid: sharp}
    scores = reference_ssim([few, many], lambda result: pixels[result.nodeid])
    worst = ssim(split_frames(blurred, 4)[1], split_frames(sharp, 4)[1])
    assert scores[few.nodeid] == worst < ssim(blurred, sharp) and scores[many.nodeid] == 1.0
