"""One refusal names every problem of its kind, not only the first: every bad axis of a sweep,
every unknown or reserved generate() keyword (issue 10, item 6)."""

from __future__ import annotations

import pytest

from pytest_diffbench.spec.sweep import SweepError, expand_sweep, sweep
from .test_case_checks import StubRunner, refusal


def test_every_bad_axis_of_one_sweep_is_named():
    with pytest.raises(SweepError) as excinfo:
        expand_sweep(sweep(seeds=-1, steps=0, samplers=["Eulr"], cfg=-2, eta=[float("nan")]).mark.kwargs, max_cases=99)
    message = str(excinfo.value)
    for fragment in ("sweep axis 'seeds': -1 is not a valid seed", "sweep axis 'steps': 0 is not valid",
                     "unknown sampler 'Eulr'", "sweep axis 'cfg': -2 is not valid", "sweep axis 'eta': nan"):
        assert fragment in message, fragment
    assert "\n" not in message


def test_a_bad_tolerance_and_a_bad_axis_are_both_named():
    with pytest.raises(SweepError) as excinfo:
        expand_sweep(sweep(steps=0, workflow_version="").mark.kwargs, max_cases=99)
    assert "sweep(workflow_version='')" in str(excinfo.value) and "sweep axis 'steps'" in str(excinfo.value)


def test_every_keyword_the_call_does_not_name_is_refused_in_one_line():
    message = refusal(StubRunner(), {"strenght": 0.5}, guidance_rescle=0.7, callback_steps=1)
    assert ("sweep axis 'strenght', generate() keyword 'guidance_rescle', generate() keyword 'callback_steps' "
            "are not keywords of StubPipeline.__call__, so they would change nothing") in message


def test_every_reserved_keyword_is_refused_in_one_line():
    message = refusal(StubRunner(), {}, seed=1, guidance_scale=2.0)
    assert "generate() got seed, which diffbench sets for each case; use seeds instead" in message
    assert "generate() got guidance_scale, which diffbench sets for each case; use cfg instead" in message
