"""--diffbench-calibrate=N measures each case's noise floor into noise-floor.json, and
``diffbench_tolerance_from = noise-floor`` gates with it (issue 12, item 6)."""

from __future__ import annotations

import json

import pytest

from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.testing import use_fake_pipeline

#: A FakePipeline whose every call lays a new draw of faint noise over its picture and reports a
#: slightly different time, as repeats on a real device do (the plain FakePipeline repeats exactly).
NOISY_PIPELINE = '''
import numpy as np
from PIL import Image

from pytest_diffbench.spec.measurement import Measurement


class NoisyPipeline(FakePipeline):
    def diffbench_generate(self, sampler, seed, call_kwargs):
        image, _ = super().diffbench_generate(sampler, seed, call_kwargs)
        noise = np.random.default_rng(self.calls).normal(0.0, 1.0, (image.height, image.width, 3))
        pixels = np.clip(np.rint(np.asarray(image, dtype=float) + noise), 0, 255).astype(np.uint8)
        return Image.fromarray(pixels, "RGB"), Measurement(0.01 * (1 + 0.1 * (self.calls % 3)), None, None)


@pytest.fixture(scope="session")
def diffbench_pipeline():
    return NoisyPipeline(**json.loads(os.environ.get(FAKE_PIPELINE_ENV) or "{}"))
'''
TEST = "test_gen.py::test_case"
FLOOR_SOURCE = "noise floor of the case in baselines/noise-floor.json (pin cpu-float32)"


@pytest.fixture(scope="module")
def noisy_run(shared_project):
    """The noisy pipeline, two cases, and the run that made their baselines, made once for the module."""
    with shared_project() as project:
        use_fake_pipeline(project.pytester, extra=NOISY_PIPELINE)
        project.write_tests(project.test("test_case", sweep="seeds=[0, 1], steps=2"))
        run = project.run(update="all")
        run.outcome.assert_outcomes(passed=2)
        return run


@pytest.fixture
def noisy(project, noisy_run, copy_run):
    """The project with the noisy pipeline, two cases, and their baselines (a copy of :func:`noisy_run`)."""
    copy_run(noisy_run, project.path)
    return project


def floors(project) -> dict:
    return project.read_json(project.baselines / "noise-floor.json")


def test_calibrate_writes_each_case_and_test_floor_and_suggests_tolerances(noisy) -> None:
    run = noisy.run("--diffbench-calibrate=3")
    run.outcome.assert_outcomes(passed=2)  # the last repeat is judged as usual
    entry = floors(noisy)["pins"]["cpu-float32"][TEST]
    assert set(entry["cases"]) == {"seed0-euler-2steps-cfg7.5", "seed1-euler-2steps-cfg7.5"}
    for case in entry["cases"].values():
        assert case["repeats"] == 3  # a pipeline that runs itself has no cold or threads repeat
        assert 0.99 < case["min_ssim"] < 1 and 30 < case["min_psnr"] < 60 and case["max_lpips"] is None
        assert 0 < case["seconds_cv"] < 0.2
        assert case["perturbations"]["batch"].startswith("not applicable")
        assert case["perturbations"]["cold"].startswith("not applicable")
    assert entry["test"]["min_ssim"] == min(case["min_ssim"] for case in entry["cases"].values())
    assert entry["test"]["cases"] == 2
    text = noisy.text(run.outcome)
    assert "diffbench noise floor" in text and "suggested: min_psnr = " in text and "time_regression = " in text
    assert "3 * sqrt(2) * cv" in text  # the stated margin


def test_calibrating_one_case_keeps_the_other_cases_and_pins(noisy) -> None:
    noisy.run("--diffbench-calibrate=2")
    path = noisy.baselines / "noise-floor.json"
    data = json.loads(path.read_text())
    data["pins"]["cuda-float16"] = data["pins"]["cpu-float32"]  # another machine's floor
    path.write_text(json.dumps(data))
    before = floors(noisy)["pins"]["cpu-float32"][TEST]["cases"]["seed1-euler-2steps-cfg7.5"]
    noisy.run("--diffbench-calibrate=3", "-k", "seed0").outcome.assert_outcomes(passed=1)
    after = floors(noisy)["pins"]
    assert after["cpu-float32"][TEST]["cases"]["seed1-euler-2steps-cfg7.5"] == before
    assert after["cpu-float32"][TEST]["cases"]["seed0-euler-2steps-cfg7.5"]["repeats"] == 3
    assert after["cuda-float16"] == data["pins"]["cuda-float16"]


def test_gates_from_the_noise_floor_fail_a_case_below_it_and_name_the_source(noisy) -> None:
    noisy.run("--diffbench-calibrate=3")
    noisy.fake(drift=0.05)  # a regression far below the floor, within the ini's defaults
    passed = noisy.run()
    passed.outcome.assert_outcomes(passed=2)
    assert {r.tolerance_source for r in passed.results} == {"ini"}

    noisy.write_ini(tolerance_from="noise-floor")
    run = noisy.run()
    run.outcome.assert_outcomes(failed=2)
    assert {r.outcome for r in run.results} == {Outcome.FAILED_QUALITY}
    assert {r.tolerance_source for r in run.results} == {FLOOR_SOURCE}
    assert noisy.text(run.outcome).count(f"tolerances from: {FLOOR_SOURCE}") == 2
    entry = floors(noisy)["pins"]["cpu-float32"][TEST]["cases"]["seed0-euler-2steps-cfg7.5"]
    result = next(r for r in run.results if r.case_id == "seed0-euler-2steps-cfg7.5")
    assert result.tolerances["min_psnr"] == pytest.approx(entry["min_psnr"] - 3.0103, abs=1e-3)
    rows = (run.output_dir / "runs" / run.run_id / "results.csv").read_text()
    assert FLOOR_SOURCE in rows


def test_the_tests_own_tolerances_win_and_a_case_without_a_floor_says_what_applied(noisy) -> None:
    noisy.run("--diffbench-calibrate=2")
    noisy.write_ini(tolerance_from="noise-floor")
    noisy.write_tests(noisy.test("test_case", sweep="seeds=[0, 1], steps=2",
                                 decorators=["@diffbench.tolerance(min_ssim=0.5, min_psnr=10)"]),
                      noisy.test("test_other", sweep="seeds=[0], steps=2"))
    noisy.fake(drift=0.05)
    run = noisy.run("--diffbench-update=missing")
    run.outcome.assert_outcomes(passed=3)
    sources = {r.test.split("::")[1]: r.tolerance_source for r in run.results}
    assert sources["test_case"] == f"{FLOOR_SOURCE}; the test's own: min_psnr, min_ssim"
    assert sources["test_other"] == ("ini: no noise floor of this case or its test in baselines/noise-floor.json "
                                     "(pin cpu-float32); measure it with --diffbench-calibrate=N")


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "pins": {"cpu-float32": []}}'])
def test_a_corrupt_noise_floor_is_one_line_naming_the_file(noisy, content) -> None:
    """A gating run refuses it (a calibration keeps it aside: tests/integration/test_noise_floor_gaps.py)."""
    path = noisy.baselines / "noise-floor.json"
    path.write_text(content)
    noisy.write_ini(tolerance_from="noise-floor")
    run = noisy.run()
    assert run.outcome.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in run.outcome.errlines if line.strip()]
    assert len(errors) == 1 and str(path) in errors[0] and "not a valid noise floor" in errors[0]
    assert "Traceback" not in noisy.text(run.outcome)
    assert path.read_text() == content  # never overwritten


def test_under_xdist_the_workers_floors_reach_the_controller(noisy) -> None:
    """Each worker measures its cases; the floors ride on the test reports to the controller,
    which writes noise-floor.json once."""
    run = noisy.run("--diffbench-calibrate=2", "-n", "2")
    run.outcome.assert_outcomes(passed=2)
    cases = floors(noisy)["pins"]["cpu-float32"][TEST]["cases"]
    assert set(cases) == {"seed0-euler-2steps-cfg7.5", "seed1-euler-2steps-cfg7.5"}
    assert {case["repeats"] for case in cases.values()} == {2}


def test_a_noise_floor_broken_during_the_run_fails_the_case_in_one_line(noisy) -> None:
    noisy.run("--diffbench-calibrate=2")
    noisy.write_ini(tolerance_from="noise-floor")
    noisy.write_tests(noisy.test("test_case", sweep="seeds=[0, 1], steps=2", body='''
        import pathlib
        pathlib.Path("baselines/noise-floor.json").write_text("[]")
        diffbench.generate("a red cube")
    '''))
    run = noisy.run()
    run.outcome.assert_outcomes(failed=2)
    assert {r.outcome for r in run.results} == {Outcome.ERROR}
    message = run.results[0].message
    assert "baselines/noise-floor.json is not a valid noise floor" in message and "\n" not in message
    assert "Traceback" not in noisy.text(run.outcome)


def test_each_case_s_floor_is_journaled_as_it_finishes_and_a_resume_after_a_kill_merges_it(noisy) -> None:
    # A test after the sweep's cases copies the journal of floors as it is then, before the run's end
    # (where a kill -9 would stop the run); the end merges it into noise-floor.json and removes it.
    pending = noisy.baselines / "noise-floor.json.pending.jsonl"
    seen = noisy.pytester.path / "seen.jsonl"
    noisy.pytester.makepyfile(test_zz_after=f"""
import shutil

def test_copy():
    shutil.copy({str(pending)!r}, {str(seen)!r})
""")
    noisy.run("--diffbench-calibrate=2").outcome.assert_outcomes(passed=3)
    assert not pending.exists()
    lines = [json.loads(line) for line in seen.read_text().splitlines()]
    assert sorted(line["case"] for line in lines) == ["seed0-euler-2steps-cfg7.5", "seed1-euler-2steps-cfg7.5"]
    # As after a kill -9 once seed0 finished: its floor journaled, noise-floor.json never written.
    (noisy.baselines / "noise-floor.json").unlink()
    pending.write_text(json.dumps(lines[0]) + "\n" + '{"pin": "cut sho', encoding="utf-8")
    run = noisy.run("--diffbench-calibrate=2", "-k", f"not {lines[0]['case'][:5]} and test_case")
    run.outcome.assert_outcomes(passed=1)
    assert sorted(floors(noisy)["pins"]["cpu-float32"][TEST]["cases"]) == sorted(line["case"] for line in lines)
    assert floors(noisy)["pins"]["cpu-float32"][TEST]["test"]["cases"] == 2
    assert "and the floors of 1 case(s) an earlier calibrate run measured before it was killed" in noisy.text(run.outcome)
    assert not pending.exists()
