"""run.generation.record_nonfinite: the numpy warning that NaN pixels raise in diffusers'
numpy_to_pil is recorded (it becomes Measurement.warnings and an invalid output); other warnings
pass through as they came."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

# pytest_diffbench.run.generation imports torch: the tests import it, so collecting this module does not.


def numpy_to_pil_cast(values: list[float]) -> np.ndarray:
    """What diffusers' VaeImageProcessor.numpy_to_pil does to the decoded floats."""
    return (np.array(values, dtype=np.float32) * 255).round().astype("uint8")


@pytest.mark.parametrize("values", [[np.nan, 0.5], [np.inf], [-np.inf, np.nan]], ids=["nan", "inf", "-inf-and-nan"])
def test_a_nonfinite_cast_is_recorded_once(values):
    from pytest_diffbench.run.generation import record_nonfinite

    with record_nonfinite() as found:
        numpy_to_pil_cast(values)
        numpy_to_pil_cast(values)
    assert found == ["numpy: invalid value encountered in cast"]


def test_finite_values_record_nothing():
    from pytest_diffbench.run.generation import record_nonfinite

    with record_nonfinite() as found:
        numpy_to_pil_cast([0.0, 0.5, 1.0])
    assert found == []


def test_other_warnings_are_passed_on():
    from pytest_diffbench.run.generation import record_nonfinite

    with pytest.warns(DeprecationWarning, match="old argument"):
        with record_nonfinite() as found:
            warnings.warn("old argument", DeprecationWarning)
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        with record_nonfinite() as found:
            np.array([1.0]) / np.array([0.0])
    assert found == []


def test_the_cast_is_recorded_even_where_runtime_warnings_are_errors():
    from pytest_diffbench.run.generation import record_nonfinite

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with record_nonfinite() as found:
            numpy_to_pil_cast([np.nan])
    assert found == ["numpy: invalid value encountered in cast"]
