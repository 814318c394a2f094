"""plot.png reads right at a glance (issue 10): plain tick labels and a flat axis on near-constant
scores, failing cases marked in the legend, and no two labels overlapping. Checked on the drawn
figure (texts and their boxes after rendering), not on pixels."""

from __future__ import annotations

import itertools

import pytest

from pytest_diffbench.report.plot import FAILED_LABEL, MIN_SPAN, TOLERANCE_LABEL, speed_quality_figure, speed_quality_png, y_limits


@pytest.fixture
def near_one(make_result):
    """A clean run: SSIM within a millionth of 1, as two CPUs of one model give."""
    def build(**changes):
        return [make_result(seed, sampler, steps, seconds=0.05 * steps + 0.01 * seed,
                            scores={"ssim": 1 - (seed + 1) * 1e-7, "psnr": 80.0, "lpips": 1e-7 * steps},
                            ssim_vs_most_steps=1 - 1e-7 * steps, **changes)
                for seed in (0, 1) for sampler in ("Euler", "DPM++ 2M Karras", "DDIM") for steps in (4, 10, 20)]
    return build


def shown_ticks(axis):
    """The tick labels matplotlib draws: those inside the axis' view limits."""
    low, high = sorted(axis.get_view_interval())
    return [label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels()) if low <= loc <= high]


def drawn(results, title="diffbench run 20261128T000000Z-abcdef"):
    figure = speed_quality_figure(results, title)
    figure.canvas.draw()
    return figure


def test_near_constant_scores_get_plain_ticks_and_a_flat_axis(near_one):
    figure = drawn(near_one())
    assert len(figure.axes) == 3  # sweep score, SSIM, LPIPS
    for axes, name in zip(figure.axes, ("ssim_vs_most_steps", "ssim", "lpips")):
        for axis in (axes.xaxis, axes.yaxis):
            assert axis.get_offset_text().get_text() == ""
        labels = [t.get_text() for t in shown_ticks(axes.yaxis)]
        assert labels and not any("e" in text.lower() or "+" in text for text in labels)
        assert len(set(labels)) == len(labels)  # plain decimals that tell the ticks apart
        bottom, top = axes.get_ylim()
        assert top - bottom >= MIN_SPAN[name]
        assert axes.get_xlim()[0] < 0.0 < min(x for c in axes.collections for x, _ in c.get_offsets())
        values = [y for collection in axes.collections for _, y in collection.get_offsets()]
        assert (max(values) - min(values)) / (top - bottom) < 1e-3  # under half a pixel: one flat line


def test_y_limits_keep_a_minimum_span_towards_the_worse_side_and_include_the_gates():
    bottom, top = y_limits("ssim", [0.9999999, 0.9999998])
    assert top - bottom >= 0.01 and bottom < 0.99 < 0.9999999 < top < 1.001
    bottom, top = y_limits("lpips", [1e-6, 2e-6])
    assert bottom < 0 < 2e-6 < 0.01 < top < 0.012
    bottom, top = y_limits("ssim", [0.999], [0.95])
    assert bottom < 0.95 and top > 0.999
    bottom, top = y_limits("ssim", [0.2, 0.9])  # a real spread is left as it is, with a margin
    assert bottom == pytest.approx(0.2 - 0.035) and top == pytest.approx(0.9 + 0.035)
    with pytest.raises(ValueError, match="'ssim' has no value"):
        y_limits("ssim", [])


def test_failing_cases_are_ringed_and_the_legend_says_so(near_one, make_result):
    clean = drawn(near_one())
    legend_texts = [t.get_text() for t in clean.legends[0].get_texts()]
    assert FAILED_LABEL not in legend_texts
    assert {"Euler", "DDIM", "4 steps", "20 steps", TOLERANCE_LABEL} <= set(legend_texts)

    results = near_one()
    results[0] = results[0].with_changes(outcome="failed-speed")
    figure = drawn(results)
    assert FAILED_LABEL in [t.get_text() for t in figure.legends[0].get_texts()]
    for axes in figure.axes:
        rings = [c for c in axes.collections if len(c.get_offsets()) and not c.get_facecolors().any()]
        assert len(rings) == 1 and len(rings[0].get_offsets()) == 1
        assert tuple(rings[0].get_offsets()[0])[0] == pytest.approx(0.2)  # seed 0, 4 steps: 0.05 * 4 s


LONG_NAMES = ("KDPM2AncestralDiscreteScheduler", "DPMSolverSinglestepScheduler", "EulerAncestralDiscreteScheduler",
              "DPM++ 2M SDE Karras", "DPM2 a Karras", "LMS Karras")


@pytest.fixture(params=["three panels", "one panel, long sampler names"])
def crowded(request, near_one, make_result):
    if request.param == "three panels":
        return near_one() + [make_result(0, "DPM++ 2M SDE Karras", 50, seconds=2.5,
                                         scores={"ssim": 0.4, "psnr": 20.0, "lpips": 0.6}, outcome="failed-quality")]
    return [make_result(0, sampler, steps, seconds=0.01 * steps + 0.001 * i, outcome="failed-speed" if i == 0 else "passed",
                        scores={"ssim": 0.99 - 0.001 * i, "psnr": 30.0, "lpips": None})
            for i, sampler in enumerate(LONG_NAMES) for steps in (4, 10, 20, 30, 50)]


def test_no_two_texts_overlap_and_all_lie_inside_the_figure(crowded):
    figure = drawn(crowded, title="diffbench run 20261128T000000Z-abcdef")
    renderer = figure.canvas.get_renderer()
    texts = [figure._suptitle, figure.legends[0].get_title(), *figure.legends[0].get_texts()]
    for axes in figure.axes:
        texts += [axes.title, axes.xaxis.label, axes.yaxis.label, *shown_ticks(axes.xaxis), *shown_ticks(axes.yaxis)]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t is not None and t.get_visible() and t.get_text()]
    assert len(boxes) > 25
    overlapping = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert overlapping == []
    width, height = figure.canvas.get_width_height()
    assert all(0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height for _, box in boxes)


def test_the_png_is_the_drawn_figure_and_stable(near_one):
    png = speed_quality_png(near_one(), "run")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == speed_quality_png(near_one(), "run")


@pytest.mark.parametrize("seconds", [0.0, 0.3])
def test_points_at_the_lowest_time_are_not_cut_by_the_left_axis_edge(make_result, seconds):
    """A case that reports 0 s per image (a fake pipeline) sits a margin right of the axis edge,
    as the slowest sits a margin left of the right edge; no tick reads a negative time."""
    results = [make_result(0, "Euler", steps, seconds=seconds * steps / 4, scores={"ssim": 0.99, "psnr": 40.0, "lpips": None},
                           ssim_vs_most_steps=None) for steps in (4, 8)]
    figure = drawn(results)
    for axes in figure.axes:
        left, right = axes.get_xlim()
        xs = [x for collection in axes.collections for x, _ in collection.get_offsets()]
        span = right - left
        assert left < min(xs) and (min(xs) - left) / span >= 0.04 and (right - max(xs)) / span >= 0.04
        assert not any(t.get_text().startswith(("-", "−")) for t in shown_ticks(axes.xaxis))
