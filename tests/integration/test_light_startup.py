"""Start-up stays light (issue 13, item 8): a pytest run with --diffbench off, and ``diffbench list``
and ``diffbench show`` on a finished run, import none of the heavy libraries. Each is checked in a
fresh interpreter (this test process has them all loaded), which prints what ``sys.modules`` holds
when it ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_diffbench.testing import use_fake_pipeline

#: What a pytest run without --diffbench must not import (seconds of start-up each).
HEAVY = ("torch", "diffusers", "transformers", "skimage", "pandas", "matplotlib", "torchmetrics", "lpips")
#: What the run-reading commands must not import: the model stack and the metrics stack.
MODEL_AND_METRICS = ("torch", "skimage")


def heavy_modules_after(code: str, folder: Path, names: tuple[str, ...]) -> list[str]:
    """The top-level modules of ``names`` that a fresh interpreter holds after running ``code`` in
    ``folder`` (``code`` may not print; its exit status is not checked, its failure is)."""
    report = f"\nimport sys, json\nprint(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code + report], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.subprocess
def test_a_pytest_run_with_diffbench_off_imports_no_heavy_library(project) -> None:
    use_fake_pipeline(project.pytester)
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    project.pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    code = ("import contextlib, io, pytest\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    status = pytest.main(['-q', '-p', 'no:cacheprovider', 'test_plain.py', 'test_gen.py'])\n"
            "assert status == 0, status")
    assert heavy_modules_after(code, project.path, HEAVY) == []


@pytest.mark.subprocess
def test_reading_runs_imports_neither_torch_nor_scikit_image(project) -> None:
    use_fake_pipeline(project.pytester)
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    project.run(update="all").outcome.assert_outcomes(passed=2)
    code = ("import contextlib, io\n"
            "from pytest_diffbench.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as shown:\n"
            "    statuses = [main(command) for command in (['list'], ['show'], ['show', 'latest'])]\n"
            "assert statuses == [0, 0, 0] and 'passed' in shown.getvalue(), (statuses, shown.getvalue())")
    assert heavy_modules_after(code, project.path, MODEL_AND_METRICS) == []
