"""MetricRegistry.register: the names a metric may take, a metric registered again (a conftest.py
imported twice), ``registered()`` restoring what was there, and the lock a pytest run holds."""

from __future__ import annotations

import dataclasses
import importlib.util
from functools import partial

import pytest

import pytest_diffbench.judge.metrics.psnr as psnr_module
from pytest_diffbench.judge.metrics import (
    REGISTRY,
    Direction,
    LateRegistration,
    Metric,
    MetricRegistrationError,
    MetricRegistry,
)
from pytest_diffbench.judge.metrics.psnr import PSNR
from pytest_diffbench.judge.metrics.ssim import SSIM

#: A test metric: PSNR's declaration under another name (a frozen dataclass, so ``replace`` varies it).
MeanDiff = partial(dataclasses.replace, PSNR(), name="meandiff", label="M")


def imported_again() -> Metric:
    """:data:`MeanDiff` made from a second import of its module: another class of the same
    qualified name, as a conftest.py imported twice (``diffbench accept``, pytester) defines."""
    spec = importlib.util.spec_from_file_location(psnr_module.__name__, psnr_module.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    metric: Metric = dataclasses.replace(module.PSNR(), name="meandiff", label="M")
    return metric


@pytest.fixture
def registry() -> MetricRegistry:
    return MetricRegistry((SSIM(),))


@pytest.mark.parametrize(("name", "direction", "says"), [
    ("steps", Direction.LOWER_IS_BETTER, "its value column 'steps' is a results.csv column"),
    ("outcome", Direction.LOWER_IS_BETTER, "its value column 'outcome' is a results.csv column"),
    ("vram_mb", Direction.LOWER_IS_BETTER, "its tolerance column 'max_vram_mb' is a results.csv column"),
    ("seconds_per_image", Direction.HIGHER_IS_BETTER, "its value column 'seconds_per_image' is a results.csv column"),
    ("time_check", Direction.HIGHER_IS_BETTER, "its value column 'time_check' is a results.csv column"),
    ("cases", Direction.LOWER_IS_BETTER, "its ini key 'diffbench_max_cases' is an ini key"),
])
def test_a_name_that_would_take_a_built_in_column_or_ini_key_is_refused(registry, name, direction, says) -> None:
    with pytest.raises(MetricRegistrationError) as refused:
        registry.register(MeanDiff(name=name, direction=direction))
    message = str(refused.value)
    assert says in message and "give the metric another name" in message and "\n" not in message
    assert registry.get(name) is None


@pytest.mark.parametrize("name", ["Mean", "mean-diff", "1st", "", "mean diff", "ssim.v2", "\u00e9cart"])
def test_a_name_that_is_not_a_column_name_is_refused(registry, name) -> None:
    with pytest.raises(MetricRegistrationError, match="lowercase letters, digits and underscores, starting with a letter"):
        registry.register(MeanDiff(name=name))
    assert [metric.name for metric in registry] == ["ssim"]


def test_a_name_taken_by_another_metric_s_columns_is_refused_naming_both(registry) -> None:
    with pytest.raises(MetricRegistrationError) as refused:
        registry.register(MeanDiff(name="ssim_status"))  # SSIM's status column
    assert "'ssim_status' is taken by metric 'ssim' (pytest_diffbench.judge.metrics.ssim.SSIM)" in str(refused.value)
    with pytest.raises(MetricRegistrationError, match=r"its value column 'min_ssim' is taken by metric 'ssim'"):
        registry.register(MeanDiff(name="min_ssim"))  # SSIM's tolerance column


def test_the_same_metric_registered_again_changes_nothing(registry) -> None:
    registry.register(MeanDiff())
    registry.register(MeanDiff())
    again = imported_again()
    assert type(again) is not PSNR and again != MeanDiff()
    registry.register(again)
    assert [metric.name for metric in registry] == ["ssim", "meandiff"]
    assert registry.get("meandiff") is again  # the newest import's code scores
    registry.register(next(iter(registry)))  # a built-in instance again: no error
    assert len(registry) == 2


def test_another_metric_under_a_taken_name_is_refused_naming_both(registry) -> None:
    registry.register(MeanDiff())
    for other in (MeanDiff(default_tolerance=5.0), dataclasses.replace(SSIM(), name="meandiff")):
        with pytest.raises(MetricRegistrationError) as refused:
            registry.register(other)
        message = str(refused.value)
        assert message.count("'meandiff' (pytest_diffbench.judge.metrics.") == 2 and type(other).__qualname__ in message
    assert registry.get("meandiff") == MeanDiff()


def test_registered_restores_what_the_registry_held(registry) -> None:
    with registry.registered(MeanDiff()) as metric:
        assert registry.get("meandiff") is metric
    assert registry.get("meandiff") is None
    first = MeanDiff()
    registry.register(first)
    with registry.registered(imported_again()) as second:  # the same metric again, another instance
        assert registry.get("meandiff") is second
    assert registry.get("meandiff") is first
    assert [metric.name for metric in registry] == ["ssim", "meandiff"]
    with pytest.raises(MetricRegistrationError):
        with registry.registered(MeanDiff(label="other")):
            pass
    assert registry.get("meandiff") is first


def test_a_locked_registry_refuses_new_metrics_until_every_lock_is_undone(registry) -> None:
    registry.register(MeanDiff())
    outer, inner = registry.lock("the outer run"), registry.lock("the inner run")
    with pytest.raises(LateRegistration) as refused:
        registry.register(MeanDiff(name="late"))
    message = str(refused.value)
    assert "'late'" in message and "the outer run" in message and "the rootdir's conftest.py or in a plugin" in message
    registry.register(MeanDiff())  # registered already: allowed
    registry.unlock(inner)
    registry.unlock(inner)  # again: nothing
    with pytest.raises(LateRegistration):
        registry.register(MeanDiff(name="late"))
    registry.unlock(outer)
    registry.register(MeanDiff(name="late"))
    assert registry.get("late") == MeanDiff(name="late")


def test_the_global_registry_knows_the_built_in_names() -> None:
    """results.csv's columns and the plugin's ini keys are reserved by the modules that own them."""
    import pytest_diffbench.judge.result  # noqa: F401
    import pytest_diffbench.plugin.options  # noqa: F401

    with pytest.raises(MetricRegistrationError, match="results.csv column"):
        REGISTRY.register(MeanDiff(name="config_hash"))
    with pytest.raises(MetricRegistrationError, match="ini key"):
        REGISTRY.register(MeanDiff(name="cases", direction=Direction.LOWER_IS_BETTER))
    assert REGISTRY.get("config_hash") is None and REGISTRY.get("cases") is None
