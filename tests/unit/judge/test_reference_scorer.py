"""ssim_vs_most_steps scored while the run goes (judge.convergence.ReferenceScorer): the same scores as
the session end's file-based with_reference_ssim, in any finishing order, without reading the files of
the groups one process ran whole, and with bounded memory."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pytest_diffbench.judge.convergence import ReferenceScorer, with_reference_ssim
from pytest_diffbench.judge.metrics.images import to_rgb_array
from pytest_diffbench.spec.sweep import Case

BLUR = {4: 3.0, 10: 1.0, 20: 0.0}


@pytest.fixture
def sweep(make_result, astronaut_photo):
    """2 seeds x 2 samplers x 3 step counts: (results, images by node id, cases by node id)."""
    photo = astronaut_photo(32)
    results, images, cases = [], {}, {}
    for seed in (0, 1):
        for sampler in ("Euler", "DDIM"):
            for steps in (4, 10, 20):
                result = make_result(seed, sampler, steps)
                image = photo.rotate(15 * seed + (5 if sampler == "DDIM" else 0))
                images[result.nodeid] = to_rgb_array(image.filter(ImageFilter.GaussianBlur(BLUR[steps])))
                cases[result.nodeid] = Case(seed=seed, sampler=sampler, steps=steps, cfg=7.5)
                results.append(result)
    return results, images, cases


class Files:
    """The run folder's images as the session end reads them, counting the reads."""

    def __init__(self, images):
        self.images, self.read = images, []

    def __call__(self, result):
        self.read.append(result.nodeid)
        return self.images.get(result.nodeid)


def scorer_for(results, cases, **kwargs) -> ReferenceScorer:
    scorer = ReferenceScorer(**kwargs)
    for result in results:
        scorer.expect(result.nodeid, cases[result.nodeid])
    return scorer


def expected(results, images):
    return [r.ssim_vs_most_steps for r in with_reference_ssim(results, Files(images))]


@pytest.mark.parametrize("order", ["as collected", "references first", "references last", "shuffled 1", "shuffled 2"])
def test_scores_equal_the_file_based_ones_in_any_finishing_order_and_read_no_file(sweep, order):
    results, images, cases = sweep
    finishing = list(results)
    if order == "references first":
        finishing.sort(key=lambda r: -r.setting("steps"))
    elif order == "references last":
        finishing.sort(key=lambda r: r.setting("steps"))
    elif order.startswith("shuffled"):
        random.Random(int(order[-1])).shuffle(finishing)
    scorer = scorer_for(results, cases)
    for result in finishing:
        scorer.finished(result, images[result.nodeid])
    files = Files(images)
    scored = scorer.with_scores(results, files)
    assert [r.ssim_vs_most_steps for r in scored] == expected(results, images)
    assert sum(score is not None for score in expected(results, images)) == 12
    assert files.read == [] and scorer.held_bytes == 0


def test_a_pil_image_is_scored_as_its_rgb_array(sweep):
    results, images, cases = sweep
    scorer = scorer_for(results, cases)
    for result in results:
        scorer.finished(result, Image.fromarray(images[result.nodeid]).convert("RGBA"))
    assert [r.ssim_vs_most_steps for r in scorer.with_scores(results, Files(images))] == expected(results, images)


def test_only_members_before_their_reference_are_held_and_released_when_the_group_completes(sweep):
    results, images, cases = sweep
    scorer = scorer_for(results, cases)
    one = images[results[0].nodeid].nbytes
    held = []
    for result in sorted(results, key=lambda r: (r.setting("steps") == 20, r.nodeid)):  # every reference last
        scorer.finished(result, images[result.nodeid])
        held.append(scorer.held_bytes)
    assert max(held) == 8 * one  # the 4 open groups' two fewer-steps images, no reference held yet
    assert held[-1] == 0


def test_a_group_over_the_memory_limit_is_scored_from_its_files(sweep):
    results, images, cases = sweep
    one = images[results[0].nodeid].nbytes
    scorer = scorer_for(results, cases, held_mib=(3 * one) / 2**20)
    files = Files(images)
    for result in sorted(results, key=lambda r: r.setting("steps")):
        scorer.finished(result, images[result.nodeid])
        assert scorer.held_bytes <= 3 * one
    assert [r.ssim_vs_most_steps for r in scorer.with_scores(results, files)] == expected(results, images)
    assert files.read  # the groups given up were read back


def test_groups_split_across_xdist_workers_fall_back_to_the_files_and_whole_ones_come_from_the_workers(sweep):
    results, images, cases = sweep
    controller, workers = ReferenceScorer(), [scorer_for(results, cases), scorer_for(results, cases)]
    split = results[0].nodeid  # seed 0, Euler, 4 steps runs on the other worker than its group
    for result in results:
        workers[1 if result.nodeid == split or result.setting("seed") == 1 else 0].finished(result, images[result.nodeid])
    for worker in workers:
        controller.take(worker.handover())
    files = Files(images)
    assert [r.ssim_vs_most_steps for r in controller.with_scores(results, files)] == expected(results, images)
    assert sorted(files.read) == sorted(r.nodeid for r in results[:3])  # only the split group's three images


def test_a_resumed_runs_earlier_case_sends_its_group_to_the_files(sweep):
    results, images, cases = sweep
    earlier, now = results[0], results[1:]
    scorer = scorer_for(now, cases)
    for result in now:
        scorer.finished(result, images[result.nodeid])
    files = Files(images)
    assert [r.ssim_vs_most_steps for r in scorer.with_scores(results, files)] == expected(results, images)
    assert sorted(files.read) == sorted(r.nodeid for r in results[:3])


@pytest.mark.parametrize("missing", [0, 2], ids=["a fewer-steps case", "the reference"])
def test_a_case_without_an_image_scores_as_the_files_say(sweep, missing):
    results, images, cases = sweep
    gone = results[missing].nodeid
    left = {nodeid: image for nodeid, image in images.items() if nodeid != gone}
    scorer = scorer_for(results, cases)
    for result in results:
        scorer.finished(result, left.get(result.nodeid))
    assert [r.ssim_vs_most_steps for r in scorer.with_scores(results, Files(left))] == expected(results, left)


def test_a_group_left_with_one_step_count_has_no_score(make_result, astronaut_photo):
    few, many = make_result(0, "Euler", 4), make_result(0, "Euler", 20)
    cases = {few.nodeid: Case(steps=4), many.nodeid: Case(steps=20)}
    images = {many.nodeid: to_rgb_array(astronaut_photo(32))}
    scorer = scorer_for([few, many], cases)
    scorer.finished(many, images[many.nodeid])
    scorer.finished(few, None)
    files = Files(images)
    assert [r.ssim_vs_most_steps for r in scorer.with_scores([few, many], files)] == [None, None] == expected([few, many], images)
    assert files.read == []


def test_a_case_run_again_sends_its_group_to_the_files(sweep):
    results, images, cases = sweep
    scorer = scorer_for(results, cases)
    for result in results:
        scorer.finished(result, images[result.nodeid])
    changed = dict(images)
    changed[results[0].nodeid] = np.ascontiguousarray(images[results[0].nodeid][::-1])
    scorer.finished(results[0], changed[results[0].nodeid])  # a rerun's image replaces the first
    files = Files(changed)
    assert [r.ssim_vs_most_steps for r in scorer.with_scores(results, files)] == expected(results, changed)
    assert len(files.read) == 3


def test_each_case_is_scored_on_the_device_its_config_names_in_the_run_and_from_the_files(sweep):
    results, images, cases = sweep
    results = [r.with_changes(config={**r.config, "device": "cuda"}) for r in results]
    devices: list[str] = []

    def score(a, b, device):
        devices.append(device)
        return float(np.mean(a == b))

    scorer = scorer_for(results[3:], cases, score=score)  # the first group is left to the files
    for result in results[3:]:
        scorer.finished(result, images[result.nodeid])
    scored = scorer.with_scores(results, Files(images))
    assert set(devices) == {"cuda"} and len(devices) == len(results)
    assert all(r.ssim_vs_most_steps is not None for r in scored)
