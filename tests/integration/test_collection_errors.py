"""What pytest says about diffbench tests before any case runs: the cases a sweep expands to, and
invalid sweeps, markers and settings as collection or usage errors naming what is wrong."""

from __future__ import annotations

import itertools

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


@pytest.mark.parametrize("source, fragments", list(BAD_SWEEPS.values()), ids=list(BAD_SWEEPS))
def test_invalid_sweep_is_a_collection_error_naming_the_field(project, source: str, fragments: list[str]) -> None:
    project.write_ini(max_cases=3)
    project.write_tests(project.test("test_bad", sweep=source), "def test_other():\n    pass\n")
    result = project.run_plain()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    text = project.text(result)
    assert "test_gen.py::test_bad: invalid diffbench sweep: " in text
    for fragment in fragments:
        assert fragment in text, fragment


BAD_DECORATIONS = {
    "sweep-without-fixture": ("@diffbench.sweep(seeds=[0])\ndef test_bad():\n    pass\n",
                              ["test_gen.py::test_bad: @diffbench.sweep needs the test to take the 'diffbench' fixture"]),
    "tolerance-name": ("@diffbench.tolerance(min_ssm=0.5)\ndef test_bad(diffbench):\n    pass\n",
                       ["@diffbench.tolerance: unknown tolerance 'min_ssm'; valid names are min_ssim, min_psnr, max_lpips"]),
    "tolerance-value": ("@diffbench.tolerance(min_ssim=2)\ndef test_bad(diffbench):\n    pass\n",
                        ["@diffbench.tolerance: tolerance min_ssim=2 is not valid; it must be a number from -1 to 1"]),
    "tolerance-twice": ('@diffbench.tolerance(min_ssim=0.5)\n@diffbench.sweep(seeds=0, tolerance={"min_ssim": 0.6})\n'
                        "def test_bad(diffbench):\n    pass\n",
                        ["tolerance min_ssim is set both in sweep(tolerance=...) and @diffbench.tolerance; set it once"]),
}


@pytest.mark.parametrize("source, fragments", list(BAD_DECORATIONS.values()), ids=list(BAD_DECORATIONS))
def test_invalid_marker_is_a_collection_error(project, source: str, fragments: list[str]) -> None:
    project.write_tests(source)
    result = project.run_plain()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    text = project.text(result)
    for fragment in fragments:
        assert fragment in text, fragment


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
