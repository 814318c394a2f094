"""``pytest --help`` and ``pytest --version`` work whatever the diffbench settings say: help is where
a user looks up the valid values. Every run refuses a bad value, in one line naming it."""

from __future__ import annotations

import pytest

#: Settings each not valid in its own way: a choice, a flag (ini bool), a tolerance, an integer,
#: a pin template, and a device this machine does not have (checked against it only for a run).
BAD = dict(
    choice=("diffbench_lpips = maybe", "diffbench_lpips = 'maybe' is not valid: valid values are auto, required, off"),
    ini_bool=("diffbench_strict_env = maybe", "diffbench_strict_env is not valid"),
    tolerance=("diffbench_min_ssim = high", "tolerance min_ssim='high' is not valid"),
    integer=("diffbench_max_cases = 0", "diffbench_max_cases = '0' is not valid: it must be a positive integer"),
    pin=("diffbench_pin = {nope}", "diffbench_pin = '{nope}' is not valid"),
)


@pytest.fixture
def bad_settings(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose ini file holds every setting of :data:`BAD`."""
    pytester.makeini("[pytest]\n" + "\n".join(line for line, _ in BAD.values()) + "\n")
    pytester.makepyfile("def test_x(): pass\n")
    return pytester


def test_help_shows_and_names_each_bad_value(bad_settings: pytest.Pytester) -> None:
    result = bad_settings.runpytest_inprocess("--help", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    text = result.stdout.str()
    assert "diffbench_lpips (string):" in text and "--diffbench-lpips" in text  # the help, with its valid values
    warnings = [line for line in text.splitlines() if "PytestConfigWarning: diffbench:" in line]
    for _, says in BAD.values():
        assert sum(says in line for line in warnings) == 1, (says, warnings)
    assert all(line.endswith("(its default applies to this help)") for line in warnings)


def test_help_with_diffbench_flags_neither_checks_them_nor_the_machine(bad_settings: pytest.Pytester) -> None:
    """``--diffbench --help`` with a device this machine lacks and a bad flag value: help still shows."""
    bad_settings.makeini("[pytest]\ndiffbench_device = cuda:7\n")
    result = bad_settings.runpytest_inprocess("--diffbench", "--diffbench-calibrate=1", "--help", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    text = result.stdout.str()
    assert "--diffbench-calibrate=N" in text and "cuda:7" not in text
    assert "--diffbench-calibrate = '1' is not valid" in text


@pytest.mark.parametrize("folders", ["diffbench_baseline_dir = .", "diffbench_output_dir = baselines/runs",
                                     "diffbench_baseline_dir = same\ndiffbench_output_dir = same"],
                         ids=["baselines-at-rootdir", "output-in-baselines", "one-folder"])
def test_help_shows_when_the_folders_clash(pytester: pytest.Pytester, folders: str) -> None:
    """Folders that no run accepts (each refused in one line by a run): help shows, with a warning."""
    pytester.makeini(f"[pytest]\n{folders}\n")
    result = pytester.runpytest_inprocess("--help", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    text = result.stdout.str()
    assert "diffbench_output_dir (string):" in text
    warnings = [line for line in text.splitlines() if "PytestConfigWarning: diffbench:" in line]
    assert warnings and all(line.endswith("(its default applies to this help)") for line in warnings)
    assert pytester.runpytest_inprocess("--diffbench", "-p", "no:cacheprovider").ret == pytest.ExitCode.USAGE_ERROR


def test_version_shows(bad_settings: pytest.Pytester) -> None:
    result = bad_settings.runpytest_inprocess("--version", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    assert result.stdout.str().startswith("pytest ") or result.stderr.str().startswith("pytest ")


@pytest.mark.parametrize("name", list(BAD))
@pytest.mark.parametrize("diffbench", [[], ["--diffbench"]], ids=["plain", "diffbench"])
def test_a_run_refuses_a_bad_value_in_one_line(pytester: pytest.Pytester, name: str, diffbench: list[str]) -> None:
    line, says = BAD[name]
    pytester.makeini(f"[pytest]\n{line}\n")
    pytester.makepyfile("def test_x(): pass\n")
    result = pytester.runpytest_inprocess(*diffbench, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (error,) = [text for text in result.stderr.str().splitlines() if text.strip()]
    assert error.startswith("ERROR: diffbench: ") and says in error


def test_help_gives_each_tolerance_key_its_unit(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    text = " ".join(pytester.runpytest_inprocess("--help", "-p", "no:cacheprovider").stdout.str().split())
    for key, says in (("diffbench_min_psnr", "PSNR >= the tolerance: a number of dB >= 0, or 'off'"),
                      ("diffbench_max_vram_mb", "peak VRAM in MiB (CUDA only): a number of MiB > 0, or 'off'"),
                      ("diffbench_max_seconds", "seconds per image: a number of seconds > 0, or 'off'"),
                      ("diffbench_min_ssim", "SSIM >= the tolerance: a number from -1 to 1, or 'off'")):
        assert f"{key} (string): default tolerance {key.removeprefix('diffbench_')}: " in text
        assert says in text.split(f"{key} (string):")[1].split(" diffbench_")[0], key
