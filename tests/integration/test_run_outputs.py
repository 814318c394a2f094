"""What a ``pytest --diffbench`` run leaves besides baselines: the run folder (environment.json,
summary.md, the bundle, plot.png), $GITHUB_STEP_SUMMARY, JUnit properties; when it leaves no run
(``--collect-only``, ``-k`` selecting nothing) and what a plain ``pytest`` does with diffbench tests.
"""

from __future__ import annotations

import re
import zipfile

import pytest

from pytest_diffbench.report.bundle import build_bundle
from pytest_diffbench.spec.outcomes import BaselineAction


@pytest.mark.real_plot  # the whole run folder as a user gets it
def test_run_folder_has_environment_summary_and_junit_properties(project, monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = project.path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    run = project.run("--junitxml=junit.xml", update="missing")
    run.outcome.assert_outcomes(passed=2)
    folder = run.folder

    environment = project.read_json(folder.environment)
    assert "--diffbench-update=missing" in environment["command"]
    assert [device["device_name"] for device in environment["devices"]] == [run.results[0].machine.device_name]
    assert environment["versions"]["pytest-diffbench"]

    summary = folder.summary.read_text()
    assert f"## diffbench run `{folder.run_id}`" in summary and "**2** passed" in summary
    assert summary.count("| test_case[seed") == 2
    assert step_summary.read_text() == "earlier step\n" + summary

    junit = (project.path / "junit.xml").read_text()
    assert junit.count('name="diffbench_outcome" value="passed"') == 2
    assert 'name="diffbench_ssim" value="1.0"' in junit
    text = project.text(run.outcome)
    assert "diffbench: 2 cases: 2 passed" in text and f"summary: {folder.summary}" in text

    bundle = folder.bundle
    assert f"bundle:  {bundle}" in text and f"Bundle: `{bundle.name}`" in summary
    assert bundle.read_bytes() == build_bundle(folder, run.results, "failures")  # rebuilt: the same bytes
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert {"summary.md", "environment.json", "results.csv", "plot.png", "report.html"} <= set(names)
    assert any(name.startswith("grids/sheets/") for name in names)
    assert folder.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [name for name in names if name.startswith("images/")]  # every case passed


def test_failed_case_text_and_junit_give_each_number_against_its_tolerance(project) -> None:
    """A quality failure says which number broke which tolerance, in pytest's text and in JUnit."""
    project.write_tests(project.test(sweep="seeds=0, steps=2", decorators=["@diffbench.tolerance(min_psnr=30, max_seconds=5)"]))
    project.run(update="all").outcome.assert_outcomes(passed=1)
    project.fake(drift=0.5)
    run = project.run("--junitxml=junit.xml")
    run.outcome.assert_outcomes(failed=1)
    (row,) = run.results
    text = project.text(run.outcome)
    ssim, psnr = row.scores["ssim"], row.scores["psnr"]
    assert ssim < 0.95 and psnr < 30
    assert f"diffbench failed-quality: {row.nodeid}" in text
    # Each number as results.csv holds it, its tolerance, and the verdict of that check.
    assert re.search(rf"ssim\s+{ssim:.4f}\s+>= 0\.95\s+FAIL", text), text
    assert re.search(rf"psnr\s+{psnr:.2f} dB\s+>= 30 dB\s+FAIL", text), text
    assert re.search(r"lpips\s+-\s+<= 0\.05\s+off$", text, flags=re.MULTILINE), text  # diffbench_lpips = off
    assert re.search(r"seconds/image\s+0\.01 s\s+<= 5 s\s+ok", text), text
    assert "ssim" in row.message and "psnr" in row.message
    junit = (project.path / "junit.xml").read_text()
    assert 'name="diffbench_outcome" value="failed-quality"' in junit
    assert f'name="diffbench_ssim" value="{ssim}"' in junit
    # The bundle keeps the failing case's output image (the default bundle_images = failures).
    with zipfile.ZipFile(run.folder.bundle) as archive:
        assert [name for name in archive.namelist() if name.startswith("images/")]


def test_update_implies_diffbench_and_collect_only_leaves_no_run(project) -> None:
    project.write_tests(project.test())
    project.run_plain("--diffbench", "--collect-only", "-q").assert_outcomes()
    assert not (project.output_dir / "latest").exists()
    assert project.runs() == []

    outcome = project.run_plain("--diffbench-update", "--diffbench-lpips=off")
    outcome.assert_outcomes(passed=1)
    run_id = project.latest()
    assert [path.name for path in project.runs()] == [run_id]
    from pytest_diffbench.store.results import read_results

    (row,) = read_results(project.output_dir / "runs" / run_id / "results.csv")
    assert row.baseline_action is BaselineAction.CREATED


def test_k_selecting_nothing_removes_its_run_folder_and_keeps_latest(project) -> None:
    project.write_tests(project.test())
    first = project.run(update="all")
    first.outcome.assert_outcomes(passed=1)
    run_id = project.latest()

    nothing = project.run("-k", "no_such_test")
    assert nothing.outcome.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert project.latest() == run_id
    assert [path.name for path in project.runs()] == [run_id]


def test_without_flag_tests_skip_and_nothing_heavy_is_imported(project) -> None:
    """In a child process (this one has imported numpy, pandas and more already); the project's
    conftest imports pytest_diffbench.testing for its FakePipeline, which must stay light too."""
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    project.pytester.makepyfile(test_zz_imports='''
        import sys

        def test_heavy_modules_not_imported():
            loaded = [name for name in ("torch", "diffusers", "transformers", "lpips", "pandas", "numpy") if name in sys.modules]
            assert loaded == []
    ''')
    result = project.run_plain("-rA", subprocess=True, fresh=True)
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED [[]2[]] test_gen.py:*: diffbench tests run only with --diffbench"])
    assert not project.output_dir.exists()
    assert not project.baselines.exists()
