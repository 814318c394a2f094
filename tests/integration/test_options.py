"""Settings and tolerances: pytest_diffbench.plugin.options (ini keys, command-line flags, read through
a real pytest config) and pytest_diffbench.judge.tolerances (parsing, ranges, precedence)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_diffbench.judge.tolerances import Tolerances, check_tolerance, tolerance_names
from pytest_diffbench.plugin.options import (
    PIN_FIELDS,
    Settings,
    _choice,
    _positive_int,
    check_pin_template,
    options,
    read_settings,
)
from pytest_diffbench.plugin.session import DiffbenchSession
from pytest_diffbench.spec.sweep import SweepError, sweep, tolerance

# -- tolerances ------------------------------------------------------------------------------


def test_tolerance_defaults():
    assert Tolerances().as_dict() == {
        "min_ssim": 0.95, "min_psnr": 25.0, "max_lpips": 0.05,
        "max_seconds": None, "max_vram_mb": None, "time_regression": None,
    }
    assert tolerance_names() == ("min_ssim", "min_psnr", "max_lpips", "max_seconds", "max_vram_mb", "time_regression")


def test_merged_applies_overrides_and_keeps_the_rest():
    merged = Tolerances().merged({"min_ssim": 0.9, "max_seconds": 2}, source="test")
    assert merged["min_ssim"] == 0.9 and merged["max_seconds"] == 2.0
    assert merged["min_psnr"] == Tolerances()["min_psnr"] and merged["max_lpips"] == Tolerances()["max_lpips"]
    assert Tolerances()["min_ssim"] == 0.95  # the original is untouched


def test_later_merge_wins():
    ini = Tolerances().merged({"min_ssim": "0.9", "min_psnr": "30"}, source="ini", text=True)
    test = ini.merged({"min_ssim": 0.8}, source="test")
    assert (test["min_ssim"], test["min_psnr"], test["max_lpips"]) == (0.8, 30.0, 0.05)


@pytest.mark.parametrize("off", [None, "off", "OFF", " none ", "None", ""], ids=repr)
def test_none_and_off_words_switch_a_check_off(off):
    assert check_tolerance("min_ssim", off, source="s") is None
    assert Tolerances().merged({"max_lpips": off}, source="s")["max_lpips"] is None


def test_strings_are_parsed():
    assert check_tolerance("min_ssim", " 0.97 ", source="ini", text=True) == 0.97
    assert check_tolerance("max_vram_mb", "4096", source="ini", text=True) == 4096.0
    assert check_tolerance("max_seconds", "1e3", source="ini", text=True) == 1000.0


@pytest.mark.parametrize("name, value", [
    ("time_regression", math.inf), ("max_vram_mb", math.inf), ("max_seconds", "inf"), ("min_psnr", "inf"),
    ("max_lpips", float("inf")), ("min_psnr", "nan"), ("max_seconds", "-inf"),
], ids=repr)
def test_non_finite_tolerances_are_refused(name, value):
    with pytest.raises(ValueError) as excinfo:
        check_tolerance(name, value, source="ini", text=True)
    message = str(excinfo.value)
    assert f"tolerance {name}={value!r} is not valid" in message and "(finite)" in message and "None/off" in message


@pytest.mark.parametrize("name", ["max_lpip", "ssim", "MIN_SSIM"])
def test_unknown_tolerance_lists_valid_names(name):
    with pytest.raises(ValueError) as excinfo:
        check_tolerance(name, 0.5, source="@diffbench.tolerance")
    message = str(excinfo.value)
    assert message.startswith("@diffbench.tolerance:")
    assert repr(name) in message
    for valid in tolerance_names():
        assert valid in message
    with pytest.raises(ValueError, match=name):
        Tolerances().merged({name: 0.5}, source="x")


@pytest.mark.parametrize("name, value", [
    ("min_ssim", 2), ("min_ssim", -1.5), ("max_lpips", -1), ("max_seconds", 0), ("max_seconds", -3),
    ("max_vram_mb", 0), ("min_psnr", -1), ("time_regression", -0.1), ("min_ssim", "abc"),
    ("max_lpips", "abc"), ("min_ssim", True), ("max_seconds", False), ("min_psnr", math.nan),
    ("max_seconds", [1]),
], ids=repr)
def test_out_of_range_and_wrong_types_are_rejected(name, value):
    with pytest.raises(ValueError) as excinfo:
        check_tolerance(name, value, source="sweep(tolerance=...)")
    message = str(excinfo.value)
    assert message.startswith("sweep(tolerance=...):")
    assert f"{name}={value!r}" in message
    assert "must be" in message and "None/off" in message


@pytest.mark.parametrize("name, value", [
    ("min_ssim", 1), ("min_ssim", -1), ("min_psnr", 0), ("max_lpips", 0), ("max_seconds", 0.001),
    ("max_vram_mb", 1), ("time_regression", 0),
])
def test_range_edges_are_accepted(name, value):
    assert check_tolerance(name, value, source="s") == float(value)


class _Node:
    def __init__(self, *decorators):
        self._marks = {}
        for decorator in decorators:
            self._marks.setdefault(decorator.mark.name, decorator.mark)

    def get_closest_marker(self, name):
        return self._marks.get(name)


def _session(tolerances: Tolerances) -> DiffbenchSession:
    settings = Settings(enabled=False, update=None, strict_env=False, baseline_dir=Path("b"), pin="{device}",
                        output_dir=Path("o"), lpips="auto", model="diffbench-tiny", device="auto", dtype="auto", workflow_version="1",
                        max_cases=512, bundle_images="failures", tolerances=tolerances)
    return DiffbenchSession(SimpleNamespace(), settings)


def test_precedence_marker_over_sweep_over_ini_over_defaults():
    ini = Tolerances().merged({"min_ssim": 0.9, "min_psnr": 30, "max_lpips": 0.1}, source="ini", text=True)
    session = _session(ini)
    node = _Node(sweep(tolerance={"min_psnr": 20, "max_seconds": 5}), tolerance(max_lpips=None, time_regression=0.2))
    applied = session.tolerances_for(node)
    assert applied.as_dict() == {
        "min_ssim": 0.9,          # ini
        "min_psnr": 20.0,         # sweep(tolerance=...) over ini
        "max_lpips": None,        # @diffbench.tolerance switches it off
        "max_seconds": 5.0,       # sweep
        "max_vram_mb": None,      # default
        "time_regression": 0.2,   # marker
    }
    assert session.tolerances_for(_Node()) == ini


def test_tolerance_set_twice_is_an_error():
    node = _Node(sweep(tolerance={"min_ssim": 0.9}), tolerance(min_ssim=0.8))
    with pytest.raises(SweepError, match="min_ssim.*set both"):
        _session(Tolerances()).tolerances_for(node)


def test_invalid_test_tolerance_is_a_sweep_error_naming_its_source():
    with pytest.raises(SweepError, match=r"@diffbench.tolerance: tolerance max_seconds=0 "):
        _session(Tolerances()).tolerances_for(_Node(tolerance(max_seconds=0)))
    with pytest.raises(SweepError, match=r"sweep\(tolerance=...\): unknown tolerance 'ssim'"):
        _session(Tolerances()).tolerances_for(_Node(sweep(tolerance={"ssim": 0.9})))


# -- parsing helpers -------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["{device}-{dtype}", "{device_name}", "{torch}_{diffusers}-{platform}", "fixed"])
def test_valid_pin_templates(template):
    assert check_pin_template(template) == template


def test_every_pin_field_is_usable():
    template = "-".join("{" + name + "}" for name in PIN_FIELDS)
    assert check_pin_template(template) == template


@pytest.mark.parametrize("template", ["{device}-{gpu}", "{0}", "{}", "{device", "{device.x}", "{device!z}"])
def test_invalid_pin_templates_list_valid_fields(template):
    with pytest.raises(ValueError) as excinfo:
        check_pin_template(template)
    message = str(excinfo.value)
    for name in PIN_FIELDS:
        assert "{" + name + "}" in message


def test_invalid_pin_template_names_the_unknown_field():
    with pytest.raises(ValueError, match="'gpu'"):
        check_pin_template("{device}-{gpu}")


@pytest.mark.parametrize("text, number", [("512", 512), (" 8 ", 8), (3, 3)])
def test_positive_int_accepts(text, number):
    assert _positive_int(text) == number


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "abc", ""])
def test_positive_int_rejects(text):
    with pytest.raises(ValueError, match="positive integer"):
        _positive_int(text)


def test_choice():
    parse = _choice(("auto", "required", "off"))
    assert parse(" Required ") == "required"
    with pytest.raises(ValueError, match="valid values are auto, required, off"):
        parse("sometimes")


def test_every_option_has_a_way_in():
    for option in options():
        assert option.flag or option.ini, option.dest
    inis = [option.ini for option in options() if option.ini]
    assert len(inis) == len(set(inis))
    assert {f"diffbench_{name}" for name in tolerance_names()} <= set(inis)


# -- read_settings through a real pytest config ----------------------------------------------


def test_read_settings_defaults(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\n")
    settings = read_settings(pytester.parseconfig())
    root = pytester.path
    assert settings == Settings(
        enabled=False, update=None, strict_env=False, baseline_dir=root / "baselines", pin="{device}-{dtype}",
        output_dir=root / ".diffbench", lpips="auto", model="diffbench-tiny", device="auto", dtype="auto", workflow_version="1",
        max_cases=512, bundle_images="failures", tolerances=Tolerances(),
    )


def test_read_settings_from_ini(pytester: pytest.Pytester):
    pytester.makeini("""
        [pytest]
        diffbench_strict_env = true
        diffbench_baseline_dir = refs/images
        diffbench_pin = {device_name}-{torch}
        diffbench_output_dir = out
        diffbench_lpips = OFF
        diffbench_model = models/my-sd
        diffbench_device = cpu
        diffbench_dtype = float32
        diffbench_workflow_version = 3
        diffbench_max_cases = 16
        diffbench_min_ssim = 0.9
        diffbench_max_lpips = off
        diffbench_max_seconds = 12.5
        diffbench_time_regression = 0.15
    """)
    settings = read_settings(pytester.parseconfig())
    root = pytester.path
    assert settings.strict_env is True
    assert settings.baseline_dir == root / "refs" / "images"
    assert settings.pin == "{device_name}-{torch}"
    assert settings.output_dir == root / "out"
    assert settings.lpips == "off"
    assert settings.model == "models/my-sd"
    assert (settings.device, settings.dtype, settings.workflow_version, settings.max_cases) == ("cpu", "float32", "3", 16)
    assert settings.tolerances == Tolerances().merged(
        {"min_ssim": 0.9, "max_lpips": None, "max_seconds": 12.5, "time_regression": 0.15}, source="expected")


def test_command_line_over_ini(pytester: pytest.Pytester):
    pytester.makeini("""
        [pytest]
        diffbench_baseline_dir = from_ini
        diffbench_lpips = off
        diffbench_output_dir = ini_out
    """)
    config = pytester.parseconfig("--diffbench", "--diffbench-update", "--diffbench-strict-env",
                                  "--diffbench-baseline-dir=from_cli", "--diffbench-lpips=required",
                                  "--diffbench-device=cpu", "--diffbench-dtype=float16",
                                  "--diffbench-model=diffbench-tiny-random")
    settings = read_settings(config)
    assert settings.enabled is True
    assert settings.update == "all"
    assert settings.strict_env is True
    assert settings.baseline_dir == pytester.path / "from_cli"
    assert settings.lpips == "required"
    assert settings.output_dir == pytester.path / "ini_out"
    assert (settings.device, settings.dtype) == ("cpu", "float16")
    assert settings.model == "diffbench-tiny-random"


def test_update_missing(pytester: pytest.Pytester):
    assert read_settings(pytester.parseconfig("--diffbench-update=missing")).update == "missing"


def test_bad_update_mode_is_a_usage_error(pytester: pytest.Pytester):
    result = pytester.runpytest("--diffbench-update=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--diffbench-update got 'sometimes'; valid values are all, missing*"])


@pytest.mark.parametrize("line, fragment", [
    ("diffbench_pin = {device}-{gpu}", "diffbench_pin = '{device}-{gpu}' is not valid"),
    ("diffbench_pin = {device.name}", "diffbench_pin = '{device.name}' is not valid"),
    ("diffbench_lpips = sometimes", "diffbench_lpips = 'sometimes' is not valid: valid values are auto, required, off"),
    ("diffbench_max_cases = 0", "diffbench_max_cases = '0' is not valid: it must be a positive integer"),
    ("diffbench_model =", "diffbench_model = '' is not valid: it is empty; name a built-in model (diffbench-tiny,"),
    ("diffbench_output_dir =", "diffbench_output_dir = '' is not valid: it is empty; name a folder, relative to the rootdir"),
    ("diffbench_baseline_dir =", "diffbench_baseline_dir = '' is not valid: it is empty; name a folder, relative to the rootdir"),
    ("diffbench_workflow_version =", "diffbench_workflow_version = '' is not valid: it is empty; give the version of your workflow"),
    ("diffbench_max_cases = many", "diffbench_max_cases = 'many' is not valid"),
    ("diffbench_min_ssim = 2", "ini diffbench_min_ssim: tolerance min_ssim='2' is not valid"),
    ("diffbench_max_seconds = abc", "ini diffbench_max_seconds: tolerance max_seconds='abc' is not valid"),
])
def test_bad_ini_values_are_usage_errors_naming_the_option(pytester: pytest.Pytester, line, fragment):
    pytester.makeini(f"[pytest]\n{line}\n")
    config = pytester.parseconfig()
    with pytest.raises(pytest.UsageError) as excinfo:
        read_settings(config)
    message = str(excinfo.value)
    assert message.startswith("diffbench: ")
    assert fragment in message


def test_bad_ini_value_stops_a_pytest_run(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\ndiffbench_max_cases = 0\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*diffbench_max_cases = '0' is not valid*"])


@pytest.mark.parametrize("content, said", [(None, "there is no such file"), ("[presets.a\nversion = 1\n", "it cannot be read as TOML"),
                                           (b"\xff\xfe\x00", "it cannot be read as TOML"), ("folder", "it is a folder")])
def test_a_presets_file_that_cannot_be_read_is_a_usage_error_with_diffbench_only(pytester: pytest.Pytester, content, said):
    pytester.makeini("[pytest]\ndiffbench_presets_file = presets.toml\n")
    path = pytester.path / "presets.toml"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    assert read_settings(pytester.parseconfig()).presets_file == path  # without --diffbench: not read
    with pytest.raises(pytest.UsageError, match=f"diffbench_presets_file = 'presets.toml' is not valid: {said}.*"
                                                 r"name a TOML file of \[presets.NAME\] tables"):
        read_settings(pytester.parseconfig("--diffbench"))


def test_a_readable_presets_file_is_taken_whatever_its_presets(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\ndiffbench_presets_file = presets.toml\n")
    (pytester.path / "presets.toml").write_text('[presets.bad]\nsteps = "many"\n', encoding="utf-8")
    # a preset is checked when a sweep names it, so one bad preset fails only the tests that use it
    assert read_settings(pytester.parseconfig("--diffbench")).presets_file == pytester.path / "presets.toml"


@pytest.mark.parametrize("value", ["1", "0", "-2", "x", "2.5"])
def test_calibrate_takes_an_integer_of_at_least_two(pytester: pytest.Pytester, value):
    pytester.makeini("[pytest]\n")
    with pytest.raises(pytest.UsageError, match=rf"^diffbench: --diffbench-calibrate = '{value}' is not valid: give how "
                                                 "many times each case runs, an integer of at least 2$"):
        read_settings(pytester.parseconfig(f"--diffbench-calibrate={value}"))


def test_calibrate_and_resume_imply_diffbench(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\n")
    settings = read_settings(pytester.parseconfig("--diffbench-calibrate=3"))
    assert (settings.enabled, settings.calibrate) == (True, 3)
    settings = read_settings(pytester.parseconfig("--diffbench-resume"))
    assert (settings.enabled, settings.resume) == (True, "latest")
