"""The README's main command: ``pytest --diffbench examples/`` passes against the committed
``baselines/`` (their config hashes are golden: a change to what goes into a frozen config, or
to how it is hashed, makes every committed baseline stale)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from forked_pytest import MODEL, run_python

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome
from pytest_diffbench.store.results import read_results
from pytest_diffbench.store.run_folder import RunFolder, read_latest


@pytest.mark.subprocess
@pytest.mark.model
def test_examples_pass_against_the_committed_baselines(repo_root: Path, tmp_path: Path) -> None:
    output_dir = tmp_path / "runs"
    before = {path: path.read_bytes() for path in sorted((repo_root / "baselines").rglob("*")) if path.is_file()}
    # -P: as the pytest command, without the working directory on sys.path (where a stale
    # *.egg-info of an old install would name another entry point).
    # Forked from a server that has imported torch and diffusers (tests/suite_plugin/forked_pytest.py).
    proc = run_python(["-P", "-m", "pytest", "--diffbench", "examples/", "-p", "no:cacheprovider", "-q",
                       f"--diffbench-output-dir={output_dir}", "--diffbench-lpips=off"], cwd=repo_root, preload=MODEL,
                      timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    run_id = read_latest(output_dir)
    assert run_id is not None
    results = read_results(RunFolder.of(output_dir, run_id).results)
    committed = {path for path in before if path.suffix == ".json"}
    assert len(results) == len(committed) > 0
    for result in results:
        assert (result.outcome, result.baseline_action) == (Outcome.PASSED, BaselineAction.NONE), result.nodeid
        # A relative speed gate (same device only), no absolute budget a slow or busy CPU can miss.
        assert (result.tolerances["max_seconds"], result.tolerances["time_regression"]) == (None, 2.0), result.nodeid
        sidecar = repo_root / result.baseline_path.replace(".png", ".json")
        assert json.loads(sidecar.read_text(encoding="utf-8"))["config_hash"] == result.config_hash, result.nodeid
    # Comparing never writes a baseline.
    assert {path: path.read_bytes() for path in sorted((repo_root / "baselines").rglob("*")) if path.is_file()} == before
