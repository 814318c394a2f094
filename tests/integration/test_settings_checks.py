"""Settings checked against the machine at configure time (issue 9, item 6): the device must be
one torch sees here, the baseline folder must be a folder (writable with --diffbench-update), and
diffbench_pipeline must give a pipeline. Each is one line naming the key and what is valid."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

from pytest_diffbench.plugin.options import read_settings


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, torch: ModuleType):
    """Set what torch sees: ``machine(cuda=N, mps=bool)``."""
    def set_machine(cuda: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return set_machine


@pytest.mark.parametrize("device, cuda, mps, fragment", [
    ("cuda", 0, False, "diffbench_device = 'cuda' is not valid: this machine has no such device (torch sees 0 CUDA "
                       "device(s), no MPS); available here: auto, cpu"),
    ("cuda:99", 2, False, "diffbench_device = 'cuda:99' is not valid: this machine has no such device (torch sees 2 CUDA "
                          "device(s), no MPS); available here: auto, cpu, cuda, cuda:0, cuda:1"),
    ("cuda:1", 1, True, "available here: auto, cpu, cuda, cuda:0, mps"),
    ("mps", 1, False, "diffbench_device = 'mps' is not valid: this machine has no such device"),
])
def test_a_device_this_machine_lacks_is_one_usage_error(project, machine, device, cuda, mps, fragment) -> None:
    machine(cuda=cuda, mps=mps)
    project.write_tests(project.test())
    run = project.run(f"--diffbench-device={device}")
    assert run.outcome.ret == pytest.ExitCode.USAGE_ERROR
    text = project.text(run.outcome)
    assert fragment in text
    assert "Traceback" not in text and "torch/" not in text
    assert not project.output_dir.exists()


@pytest.mark.parametrize("device, cuda, mps", [("cuda", 1, False), ("cuda:1", 2, False), ("mps", 0, True), ("cpu", 0, False)])
def test_a_device_this_machine_has_is_accepted(pytester: pytest.Pytester, machine, device, cuda, mps) -> None:
    machine(cuda=cuda, mps=mps)
    pytester.makeini(f"[pytest]\ndiffbench_device = {device}\n")
    assert read_settings(pytester.parseconfig("--diffbench")).device == device


def test_without_diffbench_the_device_is_not_looked_up_and_torch_not_imported(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndiffbench_device = cuda:99\n")
    pytester.makeconftest("import sys\n\ndef pytest_sessionfinish():\n    print('TORCH LOADED', 'torch' in sys.modules)\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*TORCH LOADED False*"])


# -- the baseline folder -----------------------------------------------------------------------


@pytest.mark.parametrize("flag, make_file, fragment", [
    ((), "baselines", "diffbench_baseline_dir = 'baselines' is not valid: it is a file, not a folder; name a folder"),
    (("--diffbench-baseline-dir=refs/images",), "refs", "diffbench_baseline_dir = 'refs/images' is not valid: refs, on its "
                                                        "path, is a file, not a folder"),
    (("--diffbench-update",), "baselines", "diffbench_baseline_dir = 'baselines' is not valid: it is a file"),
], ids=["file", "file-on-its-path", "file-with-update"])
def test_a_baseline_dir_that_is_a_file_is_one_usage_error(project, flag, make_file, fragment) -> None:
    (project.path / make_file).write_text("not a folder\n", encoding="utf-8")
    project.write_tests(project.test())
    run = project.run(*flag)
    assert run.outcome.ret == pytest.ExitCode.USAGE_ERROR
    text = project.text(run.outcome)
    assert fragment in text and "INTERNALERROR" not in text and "Traceback" not in text
    assert (project.path / make_file).read_text(encoding="utf-8") == "not a folder\n"


def test_without_diffbench_a_baseline_file_is_no_concern(project) -> None:
    project.baselines.write_text("a file of another tool\n", encoding="utf-8")
    project.write_tests(project.test(), "def test_other():\n    pass\n")
    result = project.run_plain()
    assert result.ret == 0
    result.assert_outcomes(passed=1, skipped=1)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` unwritable, also for root (the immutable attribute), or the test is skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no folder is read-only here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_baseline_dir_is_a_usage_error_with_update_only(project) -> None:
    project.write_tests(project.test())
    project.run(update="all").outcome.assert_outcomes(passed=1)
    before = project.snapshot(project.baselines)
    with read_only(project.baselines):
        run = project.run(update="all")
        assert run.outcome.ret == pytest.ExitCode.USAGE_ERROR
        text = project.text(run.outcome)
        assert ("diffbench_baseline_dir = 'baselines' is not valid: it is not writable, and --diffbench-update writes "
                "baselines there") in text
        assert "INTERNALERROR" not in text
        project.run().outcome.assert_outcomes(passed=1)  # reading needs no write access
    assert project.snapshot(project.baselines) == before


# -- the pipeline fixture ----------------------------------------------------------------------


@pytest.mark.parametrize("returned, shown, missing", [
    ('"runwayml/stable-diffusion-v1-5"', "str 'runwayml/stable-diffusion-v1-5'", "__call__, scheduler, components, device, dtype"),
    ("None", "NoneType None", "__call__, scheduler, components, device, dtype"),
    ("object()", "object <object object at", "__call__, scheduler, components, device, dtype"),
    ("type('Pipe', (), {'__call__': lambda self, **kw: None, 'scheduler': None})()", "Pipe",
     "scheduler, components, device, dtype"),
], ids=["str", "None", "object", "no-scheduler"])
def test_a_pipeline_fixture_giving_no_pipeline_is_one_line(project, returned, shown, missing) -> None:
    project.pytester.makeconftest(
        f"import pytest\n\n\n@pytest.fixture(scope='session')\ndef diffbench_pipeline():\n    return {returned}\n")
    project.write_tests(project.test())
    run = project.run()
    run.outcome.assert_outcomes(errors=1)
    text = project.text(run.outcome)
    assert f"diffbench_pipeline returned {shown}" in text
    assert f"which is not a pipeline (it has no {missing}); return a diffusers pipeline" in text
    assert "describe_pipeline" not in text and "AttributeError" not in text and "Traceback" not in text
