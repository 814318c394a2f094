"""``diffbench replay`` of what a frozen config alone cannot rebuild, and of bundles and runs that
give nothing to compare: one line each, with the exit status the command documents (FakePipeline
runs, in this process; a real model's replay is tests/e2e/test_replay.py, the refusals of
configs tests/unit/run/test_replay.py)."""

from __future__ import annotations

import pytest
from forked_pytest import MODEL, run_python  # tests/suite_plugin: a child forked from a warm server

from pytest_diffbench.cli.main import main
from pytest_diffbench.testing import run_diffbench, use_fake_pipeline

TESTS = """
import pytest_diffbench as diffbench


@diffbench.sweep(seeds=[0, 1], steps=2)
def test_case(diffbench):
    diffbench.generate("a red cube")
"""

def replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(["replay", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def made(pytester: pytest.Pytester) -> pytest.Pytester:
    use_fake_pipeline(pytester)
    pytester.makepyfile(test_gen=TESTS)
    return pytester


@pytest.mark.subprocess
@pytest.mark.model  # the child imports diffusers (seconds to tens of seconds on a busy CPU)
def test_a_run_of_a_pipeline_of_the_test_s_own_is_not_replayed_case_by_case(made) -> None:
    run_diffbench(made, "--diffbench-bundle-images=all", update="all").outcome.assert_outcomes(passed=2)
    # In a child: the replay imports diffusers, which must not be imported inside pytester's in-process runs.
    done = run_python(["-P", "-m", "pytest_diffbench.cli.main", "replay", "latest"], cwd=made.path, preload=MODEL,
                      timeout=300)
    assert (done.returncode, done.stderr) == (3, "")
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"not replayed      test_gen.py::test_case[{case}]: its pipeline FakePipeline is not a diffusers "
                         "pipeline class (a pipeline that runs itself, such as FakePipeline, is the test's own)"
                         for case in ("seed0-euler-2steps-cfg7.5", "seed1-euler-2steps-cfg7.5")]
    assert lines[2] == "replayed 2 cases of latest: 2 not replayed"


def test_a_bundle_of_passing_cases_without_their_images_and_a_selection_of_nothing_are_one_line(made, capsys) -> None:
    run = run_diffbench(made, update="all")  # bundle images: the failures, and none failed
    run.outcome.assert_outcomes(passed=2)
    bundle = str(run.folder.bundle)
    status, out, err = replay(capsys, bundle)
    assert (status, out) == (2, "")
    assert err.startswith(f"diffbench: {bundle} holds no output image to compare with") and err.count("\n") == 1
    run_diffbench(made, "--diffbench-bundle-images=all")
    status, out, err = replay(capsys, "latest", "-k", "seed7")
    assert (status, out) == (2, "")
    assert err.startswith("diffbench: no case of latest matches -k seed7 (its 2 cases: test_gen.py::test_case[seed0")


def test_a_file_that_is_no_bundle_is_one_line(made, capsys) -> None:
    fake = made.path / "diffbench-x.zip"
    fake.write_bytes(b"not a zip")
    status, out, err = replay(capsys, str(fake))
    assert (status, out) == (2, "")
    assert err.startswith(f"diffbench: cannot read the bundle {fake}: ") and err.count("\n") == 1


@pytest.mark.parametrize("device, shown", [
    ("bogus", "diffbench: --device bogus: valid devices are auto, cpu, cuda, cuda:N and mps"),
    ("cuda:99", "diffbench: --device cuda:99: this machine has no such device (torch sees "),
])
def test_a_device_this_machine_cannot_use_is_one_usage_error_before_any_case(tmp_path, monkeypatch, capsys, device,
                                                                             shown) -> None:
    monkeypatch.chdir(tmp_path)  # not under pytester, whose sys.modules snapshot would drop the torch this imports
    status, out, err = replay(capsys, "latest", "--device", device)  # no run yet: the option is checked first
    assert (status, out) == (2, "")
    assert err.startswith(shown) and err.count("\n") == 1 and "the case ran on" not in err
