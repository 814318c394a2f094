"""Unit tests of pytest_diffbench.spec.sweep: expansion order, ids and validation messages."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import pytest_diffbench as diffbench
from pytest_diffbench.spec.samplers import known_sampler_names
from pytest_diffbench.spec.sweep import (
    DEFAULT_CFG,
    DEFAULT_SAMPLER,
    DEFAULT_SEED,
    DEFAULT_STEPS,
    SWEEP_MARK,
    TOLERANCE_MARK,
    Case,
    SweepError,
    expand_sweep,
    sweep,
)


def expand(max_cases: int = 512, **kwargs):
    return expand_sweep(sweep(**kwargs).mark.kwargs, max_cases=max_cases)


def expand_error(max_cases: int = 512, **kwargs) -> str:
    with pytest.raises(SweepError) as excinfo:
        expand(max_cases=max_cases, **kwargs)
    return str(excinfo.value)


# -- the marks -------------------------------------------------------------------------------


def test_sweep_mark_carries_the_kwargs():
    decorator = diffbench.sweep(seeds=[0, 1], samplers="Euler a", steps=(10,), cfg=5,
                                tolerance={"min_ssim": 0.9}, workflow_version="2", width=[64, 96], lora_scale=0.5)
    mark = decorator.mark
    assert mark.name == SWEEP_MARK
    assert mark.args == ()
    assert mark.kwargs == {
        "seeds": [0, 1], "samplers": "Euler a", "steps": (10,), "cfg": 5,
        "tolerance": {"min_ssim": 0.9}, "workflow_version": "2",
        "axes": {"width": [64, 96], "lora_scale": 0.5},
    }
    assert list(mark.kwargs["axes"]) == ["width", "lora_scale"]


def test_sweep_mark_defaults():
    kwargs = sweep().mark.kwargs
    # a core axis left out is None in the mark (a preset may set it) and its default once expanded
    assert kwargs == {"seeds": None, "samplers": None, "steps": None, "cfg": None,
                      "tolerance": {}, "workflow_version": None, "axes": {}}
    (case,) = expand_sweep(kwargs, max_cases=1)
    assert (case.seed, case.sampler, case.steps, case.cfg) == (DEFAULT_SEED, DEFAULT_SAMPLER, DEFAULT_STEPS, DEFAULT_CFG)


def test_tolerance_mark_carries_the_kwargs():
    mark = diffbench.tolerance(min_ssim=0.9, max_lpips=None).mark
    assert mark.name == TOLERANCE_MARK
    assert mark.args == ()
    assert mark.kwargs == {"min_ssim": 0.9, "max_lpips": None}


def test_sweep_decorates_a_function():
    @sweep(seeds=[3])
    def test_x(diffbench):
        pass

    (mark,) = test_x.pytestmark
    assert mark.name == SWEEP_MARK and mark.kwargs["seeds"] == [3]


# -- expansion -------------------------------------------------------------------------------


def test_default_sweep_is_one_default_case():
    assert expand() == [Case()]
    assert Case().id == "seed0-euler-20steps-cfg7.5"


def test_cartesian_product_order():
    seeds, samplers, steps, cfgs = [2, 1], ["Euler a", "DDIM"], [20, 10], [7.5, 5.5]
    widths, scales = [96, 64], [0.5, 0.0]
    cases = expand(seeds=seeds, samplers=samplers, steps=steps, cfg=cfgs, width=widths, lora_scale=scales)
    expected = [
        (s, sa, st, c, (("width", w), ("lora_scale", ls)))
        for s, sa, st, c, w, ls in itertools.product(seeds, samplers, steps, cfgs, widths, scales)
    ]
    assert [(c.seed, c.sampler, c.steps, c.cfg, c.extra) for c in cases] == expected
    assert len(cases) == 2 ** 6


def test_extra_axes_follow_the_written_order():
    a = expand(height=[64, 96], width=[32, 48])
    b = expand(width=[32, 48], height=[64, 96])
    assert [c.extra[0][0] for c in a] == ["height"] * 4
    assert [c.extra[0][0] for c in b] == ["width"] * 4
    assert [c.id for c in a][:2] == ["seed0-euler-20steps-cfg7.5-height64-width32", "seed0-euler-20steps-cfg7.5-height64-width48"]


def test_scalars_are_accepted():
    (case,) = expand(seeds=4, samplers="DDIM", steps=12, cfg=3, width=96)
    assert case == Case(seed=4, sampler="DDIM", steps=12, cfg=3.0, extra=(("width", 96),))


def test_ranges_and_tuples_are_accepted():
    cases = expand(seeds=range(3), steps=(10, 20))
    assert [(c.seed, c.steps) for c in cases] == [(0, 10), (0, 20), (1, 10), (1, 20), (2, 10), (2, 20)]


def test_numpy_values_are_accepted_and_converted():
    (case,) = expand(seeds=[np.int64(7)], steps=[np.int32(5)], cfg=[np.float32(6.5)], width=np.int64(64))
    assert type(case.seed) is int and case.seed == 7
    assert type(case.steps) is int and case.steps == 5
    assert type(case.cfg) is float and case.cfg == 6.5
    assert case.extra == (("width", 64),) and type(case.extra[0][1]) is int


def test_cfg_is_stored_as_float():
    cases = expand(cfg=[0, 5, 7.5])
    assert [c.cfg for c in cases] == [0.0, 5.0, 7.5]
    assert all(type(c.cfg) is float for c in cases)


def test_case_axes():
    (case,) = expand(seeds=1, samplers="Euler a", steps=5, cfg=2, width=64, eta=0.5)
    assert case.axes == {"seed": 1, "sampler": "Euler a", "steps": 5, "cfg": 2.0, "width": 64, "eta": 0.5}
    assert list(case.axes) == ["seed", "sampler", "steps", "cfg", "width", "eta"]


# -- ids -------------------------------------------------------------------------------------


def test_case_id_format():
    (case,) = expand(seeds=0, samplers="Euler a", steps=20, cfg=5.5)
    assert case.id == "seed0-euler_a-20steps-cfg5.5"


def test_integral_cfg_has_no_decimal_point():
    assert expand(cfg=7.0)[0].id.endswith("-cfg7")
    assert expand(cfg=7)[0].id.endswith("-cfg7")
    assert expand(cfg=0)[0].id.endswith("-cfg0")
    assert expand(cfg=1234567)[0].id.endswith("-cfg1234567")


def test_extra_axes_in_ids():
    cases = expand(width=[96], lora_scale=[0.5, 1.0], eta=[-1, 2])
    assert [c.id for c in cases] == [
        "seed0-euler-20steps-cfg7.5-width96-lora_scale0.5-eta-1",
        "seed0-euler-20steps-cfg7.5-width96-lora_scale0.5-eta2",
        "seed0-euler-20steps-cfg7.5-width96-lora_scale1-eta-1",
        "seed0-euler-20steps-cfg7.5-width96-lora_scale1-eta2",
    ]


def test_string_and_other_values_in_ids_are_slugged():
    cases = expand(mode=["fast path", "a/b", True, None])
    assert [c.id.rsplit("-", 1)[1] for c in cases] == ["modefast_path", "modea_b", "modeTrue", "modeNone"]


def test_sampler_slugs_in_ids():
    cases = expand(samplers=["DPM++ 2M Karras", "EulerDiscreteScheduler"])
    assert [c.id for c in cases] == ["seed0-dpmpp_2m_karras-20steps-cfg7.5", "seed0-eulerdiscretescheduler-20steps-cfg7.5"]


def test_ids_are_unique_over_a_big_sweep():
    cases = expand(seeds=range(3), samplers=["Euler", "Euler a", "DDIM"], steps=[1, 10], cfg=[0, 0.5, 5], width=[64, 96])
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids) == 3 * 3 * 2 * 3 * 2


# -- samplers --------------------------------------------------------------------------------


@pytest.mark.parametrize("written, canonical", [
    ("euler A", "Euler a"), ("EULER A", "Euler a"), ("  dpm++ 2m karras ", "DPM++ 2M Karras"),
    ("eulerdiscretescheduler", "EulerDiscreteScheduler"),
])
def test_sampler_names_are_canonicalised(written, canonical):
    (case,) = expand(samplers=written)
    assert case.sampler == canonical


def test_unknown_sampler_lists_the_known_names():
    message = expand_error(samplers=["Euler", "Eulr"])
    assert "samplers" in message and "'Eulr'" in message
    for name in known_sampler_names():
        assert name in message


def test_sampler_must_be_a_string():
    message = expand_error(samplers=[3])
    assert "samplers" in message and "3" in message and "string" in message


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 2.5, "20", True], ids=repr)
def test_invalid_steps(value):
    message = expand_error(steps=[value])
    assert "'steps'" in message
    assert repr(value) in message
    assert "positive integer" in message


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, "x", True], ids=repr)
def test_invalid_cfg(value):
    message = expand_error(cfg=[value])
    assert "'cfg'" in message
    assert repr(value) in message
    assert "finite number >= 0" in message


@pytest.mark.parametrize("value", [-1, 2**63, "a", True, 1.5], ids=repr)
def test_invalid_seed(value):
    message = expand_error(seeds=[value])
    assert "'seeds'" in message
    assert repr(value) in message
    assert "0 to 2**63 - 1" in message


def test_seed_bounds_are_inclusive():
    assert [c.seed for c in expand(seeds=[0, 2**63 - 1])] == [0, 2**63 - 1]


@pytest.mark.parametrize("name", ["width", "height"])
@pytest.mark.parametrize("value", [0, -64, 64.0, "64"], ids=repr)
def test_invalid_sizes(name, value):
    message = expand_error(**{name: [64, value]})
    assert repr(name) in message and repr(value) in message
    assert "positive integer" in message


@pytest.mark.parametrize("axis", ["seeds", "samplers", "steps", "cfg", "width", "eta"])
@pytest.mark.parametrize("empty", [[], (), range(0)], ids=["list", "tuple", "range"])
def test_empty_axis(axis, empty):
    message = expand_error(**{axis: empty})
    assert repr(axis) in message and "empty" in message and "at least one value" in message


@pytest.mark.parametrize("axis, values, shown", [
    ("seeds", [1, 2, 1], "1"),
    ("samplers", ["Euler a", "euler A"], "'Euler a'"),
    ("steps", [10, 10], "10"),
    ("cfg", [5, 5.0], "5.0"),
    ("width", [64, 96, 64], "64"),
    ("mode", ["x", "x"], "'x'"),
])
def test_duplicates(axis, values, shown):
    message = expand_error(**{axis: values})
    assert repr(axis) in message and shown in message and "twice" in message


def test_product_over_max_cases_names_the_ini_option():
    assert len(expand(max_cases=8, seeds=range(2), steps=[1, 2], cfg=[1, 2])) == 8
    message = expand_error(max_cases=7, seeds=range(2), steps=[1, 2], cfg=[1, 2])
    assert "8 cases" in message and "7" in message and "diffbench_max_cases" in message


@pytest.mark.parametrize("name, replacement", [
    ("seed", "seeds"),
    ("sampler", "samplers"),
    ("scheduler", "samplers"),
    ("num_inference_steps", "steps"),
    ("guidance_scale", "cfg"),
    ("generator", "seeds"),
    ("prompt", "diffbench.generate(prompt)"),
    ("negative_prompt", "diffbench.generate(negative_prompt=...)"),
])
def test_reserved_axis_names_point_at_the_replacement(name, replacement):
    message = expand_error(**{name: [1]})
    assert f"{name!r} is reserved" in message
    assert f"use {replacement} instead" in message


def test_underscore_axis_names_are_refused():
    assert "_private" in expand_error(_private=[1])


@pytest.mark.parametrize("bad, type_name", [(object(), "object"), ({1, 2}, "set"), ([1, object()], "object")])
def test_unserialisable_extra_values_are_refused(bad, type_name):
    message = expand_error(extra=[1, bad] if not isinstance(bad, list) else [bad])
    assert "sweep axis 'extra'" in message and type_name in message


def test_id_clash_of_distinct_values_is_detected():
    message = expand_error(mode=["a b", "a_b"])
    assert "same id" in message
    assert "seed0-euler-20steps-cfg7.5-modea_b" in message


def test_distinct_values_with_distinct_ids_are_fine():
    assert [c.id.rsplit("-", 1)[1] for c in expand(mode=["a b", "ab"])] == ["modea_b", "modeab"]


def test_sweep_errors_can_be_caught_as_value_errors():
    with pytest.raises(ValueError, match="'steps'"):
        expand(steps=[0])


# -- any iterable, values named (issue 9, item 7) --------------------------------------------


def test_generators_numpy_arrays_and_tuples_are_axes():
    cases = expand(seeds=(s for s in [3, 1]), steps=np.array([4, 8]), cfg=map(float, ["5", "6.5"]), width=(64,))
    assert [(c.seed, c.steps, c.cfg) for c in cases] == [
        (3, 4, 5.0), (3, 4, 6.5), (3, 8, 5.0), (3, 8, 6.5), (1, 4, 5.0), (1, 4, 6.5), (1, 8, 5.0), (1, 8, 6.5)]
    assert all(type(c.steps) is int for c in cases)


def test_a_generator_is_read_once_so_every_test_of_a_class_gets_its_values():
    mark = sweep(seeds=(s for s in [0, 1]), eta=(e for e in [0.0, 0.5])).mark
    first = expand_sweep(mark.kwargs, max_cases=512)
    assert expand_sweep(mark.kwargs, max_cases=512) == first and len(first) == 4


@pytest.mark.parametrize("values, expected", [({2, 0, 1}, [0, 1, 2]), (frozenset({"b", "a"}), ["a", "b"])], ids=["set", "frozenset"])
def test_a_set_is_taken_in_sorted_order(values, expected):
    axis = "seeds" if isinstance(next(iter(values)), int) else "mode"
    cases = expand(**{axis: values})
    assert [c.seed if axis == "seeds" else c.extra[0][1] for c in cases] == expected


def test_a_set_that_cannot_be_sorted_is_refused():
    message = expand_error(mode={1, "a"})
    assert "sweep axis 'mode' is a set" in message and "give a list" in message


def test_a_mapping_and_a_zero_d_array_are_one_value():
    (case,) = expand(cross_attention_kwargs={"scale": 0.5}, eta=np.array(0.25))
    assert case.extra == (("cross_attention_kwargs", {"scale": 0.5}), ("eta", 0.25))
    assert type(case.extra[1][1]) is float


@pytest.mark.parametrize("axis, values, bad", [
    ("seeds", np.array([0, -1]), "-1"),
    ("seeds", (s for s in [1, "a"]), "'a'"),
    ("steps", {4, 0}, "0"),
    ("samplers", ("Euler", 3), "3"),
    ("cfg", np.array([1.0, -2.0]), "-2.0"),
], ids=["numpy-seed", "generator-seed", "set-steps", "tuple-sampler", "numpy-cfg"])
def test_an_invalid_value_is_named_not_its_container(axis, values, bad):
    message = expand_error(**{axis: values})
    assert f"sweep axis {axis!r}: {bad}" in message
    assert "array(" not in message and "generator" not in message and "{" not in message


# -- finite numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize("axis, value, shown", [
    ("eta", math.nan, "nan"), ("strength", math.inf, "inf"), ("guidance_rescale", -math.inf, "-inf"),
    ("eta", np.float32("nan"), "nan"), ("cross_attention_kwargs", {"scale": math.inf}, ".scale: inf"),
    ("sigmas", [[1.0, math.nan]], "[1]: nan"),
], ids=["nan", "inf", "-inf", "numpy-nan", "nested-dict", "nested-list"])
def test_non_finite_numbers_in_extra_axes_are_refused(axis, value, shown):
    message = expand_error(**{axis: [0.5, value] if not isinstance(value, (dict, list)) else value})
    assert f"sweep axis {axis!r}" in message and shown in message and "not a finite number" in message


# -- wrong types of the sweep's own keywords --------------------------------------------------


@pytest.mark.parametrize("bad", ["min_ssim", 0.9, ["min_ssim"]], ids=repr)
def test_a_tolerance_that_is_not_a_mapping_is_one_line(bad):
    decorator = sweep(tolerance=bad)  # decorating never raises: the error is the collection's
    message = expand_error(tolerance=bad)
    assert decorator.mark.kwargs["tolerance"] == {}
    assert f"sweep(tolerance=...) got {type(bad).__name__} {bad!r}; give a mapping" in message


def test_a_bare_sweep_mark_gets_the_defaults_of_omitted_keywords():
    mark = pytest.mark.diffbench_sweep(seeds=[1, 2]).mark
    assert [c.id for c in expand_sweep(mark.kwargs, max_cases=512)] == ["seed1-euler-20steps-cfg7.5", "seed2-euler-20steps-cfg7.5"]


@pytest.mark.parametrize("name, replacement", [("output_type", "always asks for PIL images (output_type='pil')"),
                                               ("num_images_per_prompt", "one image per case; use seeds")])
def test_keywords_diffbench_sets_are_reserved_axes(name, replacement):
    message = expand_error(**{name: [1]})
    assert f"{name!r} is reserved" in message and replacement in message


# -- values that make one case ----------------------------------------------------------------


@pytest.mark.parametrize("axis, values, first, second", [
    ("cfg", [7.5, 7.5000000000001], "7.5", "7.5000000000001"),
    ("eta", [0.1 + 0.2, 0.3], "0.30000000000000004", "0.3"),
    ("lora_scale", [1, 1.0], "1", "1.0"),
    ("eta", [0.0, -0.0], "0.0", "-0.0"),
    ("sigmas", [[1, 2.0], [1.0, 2]], "[1, 2.0]", "[1.0, 2]"),
])
def test_numerically_equal_values_are_refused(axis, values, first, second):
    message = expand_error(**{axis: values})
    assert f"sweep axis {axis!r} lists {first} and {second}, which are one value in a config" in message


def test_equal_seeds_of_other_types_are_one_seed():
    assert "lists 3 twice" in expand_error(seeds=[np.int64(3), 3])


@pytest.mark.parametrize("first, second, scheduler", [
    ("Euler", "EulerDiscreteScheduler", "EulerDiscreteScheduler"),
    ("DPM++ 2M", "DPMSolverMultistepScheduler", "DPMSolverMultistepScheduler"),
    ("lmsdiscretescheduler", "LMS", "LMSDiscreteScheduler"),
    ("DDIM", "DDIMScheduler", "DDIMScheduler"),
])
def test_two_names_of_one_scheduler_are_refused(first, second, scheduler):
    message = expand_error(samplers=[first, second])
    assert "sweep axis 'samplers' lists" in message and "which are one scheduler" in message and scheduler in message


def test_names_of_one_class_with_other_settings_are_distinct_samplers():
    cases = expand(samplers=["PNDM", "PNDMScheduler", "DPM++ 2M", "DPM++ 2M Karras"])
    assert [c.sampler for c in cases] == ["PNDM", "PNDMScheduler", "DPM++ 2M", "DPM++ 2M Karras"]


@pytest.mark.parametrize("endless", [lambda: itertools.count(), lambda: range(10**12)], ids=["count", "huge-range"])
def test_an_endless_or_huge_axis_is_refused_without_reading_it_all(endless):
    message = expand_error(seeds=endless())
    assert "sweep axis 'seeds' has more than 100000 values" in message
