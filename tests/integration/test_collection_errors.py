"""What pytest says about diffbench tests before any case runs: the cases a sweep expands to, and
invalid sweeps, markers and settings as collection or usage errors naming what is wrong."""

from __future__ import annotations

import itertools
import re
from typing import Any, Callable, Iterable

import pytest


def test_collect_only_lists_cases_in_product_order(project) -> None:
    project.write_tests(project.test(
        "test_x", sweep='seeds=[1, 0], samplers=["Euler a", "DPM++ 2M Karras"], steps=[20, 4], cfg=[5.5, 7], width=[96, 64]'))
    expected = [
        f"test_gen.py::test_x[seed{seed}-{sampler}-{steps}steps-cfg{cfg}-width{width}]"
        for seed, sampler, steps, cfg, width in itertools.product([1, 0], ["euler_a", "dpmpp_2m_karras"], [20, 4], ["5.5", "7"], [96, 64])
    ]
    for _ in range(2):
        result = project.run_plain("--collect-only", "-q")
        assert result.ret == 0
        assert [line for line in result.stdout.lines if line.startswith("test_gen.py::")] == expected


BAD_SWEEPS = {
    "unknown-sampler": ('samplers=["Eulr"]', ["sweep axis 'samplers': unknown sampler 'Eulr'", "Known samplers: Euler, Euler a, Heun"]),
    "steps-zero": ("steps=0", ["sweep axis 'steps': 0 is not valid; steps must be a positive integer"]),
    "steps-string": ('steps="20"', ["sweep axis 'steps': '20' is not valid; steps must be a positive integer"]),
    "steps-float": ("steps=2.5", ["sweep axis 'steps': 2.5 is not valid; steps must be a positive integer"]),
    "cfg-negative": ("cfg=-1", ["sweep axis 'cfg': -1 is not valid; cfg (guidance scale) must be a finite number >= 0"]),
    "seed-string": ('seeds="a"', ["sweep axis 'seeds': 'a' is not a valid seed; seeds are integers from 0 to 2**63 - 1"]),
    "seed-negative": ("seeds=-1", ["sweep axis 'seeds': -1 is not a valid seed"]),
    "seed-bool": ("seeds=True", ["sweep axis 'seeds': True is not a valid seed"]),
    "empty-axis": ("seeds=[]", ["sweep axis 'seeds' is empty; give at least one value"]),
    "duplicate": ('samplers=["DDIM", "DDIM"]', ["sweep axis 'samplers' lists 'DDIM' twice; each value may appear once"]),
    "reserved-seed": ("seed=[1, 2]", ["sweep axis 'seed' is reserved; use seeds instead"]),
    "reserved-steps": ("num_inference_steps=4", ["sweep axis 'num_inference_steps' is reserved; use steps instead"]),
    "width-zero": ("width=[64, 0]", ["sweep axis 'width': 0 is not valid; width must be a positive integer"]),
    "unserialisable": ("strength=[object()]", ["sweep axis 'strength'", "cannot go into a frozen config"]),
    "sweep-tolerance": ('tolerance={"max_seconds": 0}', ["tolerance max_seconds=0 is not valid; it must be a number of seconds > 0"]),
    "over-cap": ("seeds=[0, 1], steps=[1, 2]", ["sweep has 4 cases, more than the cap of 3", "diffbench_max_cases"]),
    # Issue 9, item 7: any iterable, the bad value named; finite numbers; one clear line for wrong types.
    "generator-seed": ("seeds=(s for s in [0, -1])", ["sweep axis 'seeds': -1 is not a valid seed"]),
    "numpy-steps": ('steps=__import__("numpy").array([4, 0])', ["sweep axis 'steps': 0 is not valid"]),
    "unsortable-set": ('mode={1, "a"}', ["sweep axis 'mode' is a set of values that cannot be sorted"]),
    "nan-axis": ('eta=[0.0, float("nan")]', ["sweep axis 'eta': nan is not a finite number"]),
    "inf-in-dict": ('cross_attention_kwargs={"scale": float("inf")}', ["sweep axis 'cross_attention_kwargs'.scale: inf is not a finite number"]),
    "tolerance-string": ('tolerance="min_ssim"', ["sweep(tolerance=...) got str 'min_ssim'; give a mapping of tolerance names"]),
    "tolerance-inf": ('tolerance={"time_regression": float("inf")}', ["tolerance time_regression=inf is not valid"]),
    "sampler-alias": ('samplers=["Euler", "EulerDiscreteScheduler"]', ["lists 'Euler' and 'EulerDiscreteScheduler', which are one scheduler"]),
    "near-duplicate": ("cfg=[7.5, 7.5000000000001]", ["sweep axis 'cfg' lists 7.5 and 7.5000000000001, which are one value in a config"]),
    "reserved-output-type": ('output_type="np"', ["sweep axis 'output_type' is reserved"]),
}


def module_of(kind: str, name: str) -> str:
    """The test module that holds the invalid ``kind`` of :func:`collected`'s run named ``name``."""
    return f"test_{kind}_{name.replace('-', '_')}"


def collection_error(text: str, module: str) -> str:
    """The text pytest shows under ``ERROR collecting <module>.py`` (up to the next section's rule);
    an AssertionError if there is no such section, or more than one."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.fullmatch(rf"_+ ERROR collecting {re.escape(module)}\.py _+", line)]
    assert len(starts) == 1, (module, text)
    end = next((i for i in range(starts[0] + 1, len(lines)) if re.match(r"^(_{3,}|={3,}) ", lines[i])), len(lines))
    return "\n".join(lines[starts[0] + 1:end])


def summary_lines(result: pytest.RunResult, module: str) -> list[str]:
    """The short test summary's ERROR lines of ``module``, without their message."""
    return [line.split(" - ")[0] for line in result.stdout.lines if line.startswith(f"ERROR {module}.py")]


def collect_each(shared_project, kind: str, tests: Callable[[Any, str], tuple[str, ...]], names: Iterable[str],
                 **ini: object) -> pytest.RunResult:
    """One collection of a module per name, made of ``tests(project, name)``: each module's error
    is its own section of the run's text, so one run serves a test per module."""
    with shared_project() as project:
        if ini:
            project.write_ini(**ini)
        for name in names:
            project.write_tests(*tests(project, name), module=module_of(kind, name))
        return project.run_plain()


@pytest.fixture(scope="module")
def swept(shared_project) -> pytest.RunResult:
    """Every invalid sweep of :data:`BAD_SWEEPS`, each in its own module beside a valid test,
    collected once for the module (instead of a run per invalid sweep)."""
    return collect_each(shared_project, "sweep",
                        lambda project, name: (project.test("test_bad", sweep=BAD_SWEEPS[name][0]), "def test_other():\n    pass\n"),
                        BAD_SWEEPS, max_cases=3)


@pytest.mark.parametrize("name", list(BAD_SWEEPS))
def test_invalid_sweep_is_a_collection_error_naming_the_field(swept, name: str) -> None:
    """Each module with an invalid sweep is one collection error (the run is interrupted), whose
    text names the test, the axis and what is wrong with it."""
    source, fragments = BAD_SWEEPS[name]
    result, module = swept, module_of("sweep", name)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str() + "\n" + result.stderr.str()
    assert summary_lines(result, module) == [f"ERROR {module}.py::test_bad"], text  # one error, this module's
    error = collection_error(text, module)
    assert f"{module}.py::test_bad: invalid diffbench sweep: " in error
    for fragment in fragments:
        assert fragment in error, (source, fragment)


BAD_DECORATIONS = {
    "sweep-without-fixture": ("@diffbench.sweep(seeds=[0])\ndef test_bad():\n    pass\n",
                              ["{module}.py::test_bad: @diffbench.sweep needs the test to take the 'diffbench' fixture"]),
    "tolerance-name": ("@diffbench.tolerance(min_ssm=0.5)\ndef test_bad(diffbench):\n    pass\n",
                       ["@diffbench.tolerance: unknown tolerance 'min_ssm'; valid names are min_ssim, min_psnr, max_lpips"]),
    "tolerance-value": ("@diffbench.tolerance(min_ssim=2)\ndef test_bad(diffbench):\n    pass\n",
                        ["@diffbench.tolerance: tolerance min_ssim=2 is not valid; it must be a number from -1 to 1"]),
    "tolerance-twice": ('@diffbench.tolerance(min_ssim=0.5)\n@diffbench.sweep(seeds=0, tolerance={"min_ssim": 0.6})\n'
                        "def test_bad(diffbench):\n    pass\n",
                        ["tolerance min_ssim is set both in sweep(tolerance=...) and @diffbench.tolerance; set it once"]),
}


@pytest.fixture(scope="module")
def marked(shared_project) -> pytest.RunResult:
    """Every invalid marker of :data:`BAD_DECORATIONS`, each in its own module, collected once."""
    return collect_each(shared_project, "marker", lambda project, name: (BAD_DECORATIONS[name][0],), BAD_DECORATIONS)


@pytest.mark.parametrize("name", list(BAD_DECORATIONS))
def test_invalid_marker_is_a_collection_error(marked, name: str) -> None:
    source, fragments = BAD_DECORATIONS[name]
    result, module = marked, module_of("marker", name)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str() + "\n" + result.stderr.str()
    assert summary_lines(result, module) == [f"ERROR {module}.py::test_bad"], text
    error = collection_error(text, module)
    for fragment in fragments:
        assert fragment.format(module=module) in error, (source, fragment)


BAD_SETTINGS = {
    "lpips": ({"lpips": "maybe"}, (), "diffbench_lpips = 'maybe' is not valid: valid values are auto, required, off"),
    "pin": ({"pin": "{nope}"}, (), "diffbench_pin = '{nope}' is not valid: unknown or malformed field 'nope'; valid fields are {device}"),
    "min-ssim": ({"min_ssim": "abc"}, (), "ini diffbench_min_ssim: tolerance min_ssim='abc' is not valid; it must be a number from -1 to 1"),
    "max-cases": ({"max_cases": "0"}, (), "diffbench_max_cases = '0' is not valid: it must be a positive integer"),
    "update-flag": ({}, ("--diffbench-update=bogus",), "--diffbench-update got 'bogus'; valid values are all, missing"),
    "device": ({"device": "tpu"}, (), "diffbench_device = 'tpu' is not valid: valid devices are auto, cpu, cuda, cuda:N and mps"),
    "device-flag": ({}, ("--diffbench-device=cuda:x",), "diffbench_device = 'cuda:x' is not valid"),
    "dtype": ({"dtype": "float8"}, (), "diffbench_dtype = 'float8' is not valid: valid values are auto, float32, fp32"),
    # Issue 9, item 6: pin templates are {field} parts and the characters A-Z a-z 0-9 . _ - only.
    "pin-attribute": ({"pin": "{device.__class__}"}, (), "diffbench_pin = '{device.__class__}' is not valid: unknown or malformed field 'device.__class__'"),
    "pin-format-spec": ({"pin": "{device:>10}"}, (), "diffbench_pin = '{device:>10}' is not valid: unknown or malformed field 'device:>10'"),
    "pin-conversion": ({"pin": "{device!r}"}, (), "diffbench_pin = '{device!r}' is not valid: unknown or malformed field 'device!r'"),
    "pin-empty": ({"pin": ""}, (), "diffbench_pin = '' is not valid: it is empty; valid fields are {device}"),
    "pin-slash": ({"pin": "{device}/{dtype}"}, (), "diffbench_pin = '{device}/{dtype}' is not valid: character '/' is not allowed"),
    "pin-brace": ({"pin": "{device"}, (), "diffbench_pin = '{device' is not valid: unclosed field '{device'"),
    "tolerance-inf": ({"max_vram_mb": "inf"}, (), "ini diffbench_max_vram_mb: tolerance max_vram_mb='inf' is not valid"),
}


@pytest.mark.parametrize("ini, args, fragment", list(BAD_SETTINGS.values()), ids=list(BAD_SETTINGS))
def test_invalid_setting_is_a_usage_error_naming_the_key(project, ini: dict[str, str], args: tuple[str, ...], fragment: str) -> None:
    project.write_ini(**ini)
    project.write_tests(project.test())
    result = project.run_plain(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fragment in project.text(result)
