"""Shared helpers for the end-to-end tests: write diffbench test files, run pytest on them in a
subprocess, read what the run left behind (results.csv, baselines, the run folder)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import textwrap
from pathlib import Path
from typing import Any, Iterable

import pytest

PIN = "cpu-float32"
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Columns that legitimately differ between two runs of the same cases.
VOLATILE_COLUMNS = frozenset({
    "run_id", "timestamp", "seconds_per_image", "warmup_seconds", "baseline_seconds_per_image",
    "slowdown", "worker", "workers", "output_path",
})


def diffbench_test(name: str = "test_case", sweep: str = "seeds=0, steps=2", body: str = 'diffbench.generate("a red cube")',
                   decorators: Iterable[str] = ()) -> str:
    """Source of one diffbench test function (no imports)."""
    lines = [*decorators, f"@diffbench.sweep({sweep})", f"def {name}(diffbench):"]
    lines += ["    " + line for line in textwrap.dedent(body).strip().splitlines()]
    return "\n".join(lines) + "\n"


def write_tests(pytester: pytest.Pytester, *tests: str, module: str = "test_gen") -> Path:
    """A test module made of ``tests`` (sources from :func:`diffbench_test` or plain code)."""
    source = "import pytest_diffbench as diffbench\n\n\n" + "\n\n".join(tests)
    return pytester.makepyfile(**{module: source})


def write_ini(pytester: pytest.Pytester, **keys: Any) -> None:
    """A pytest.ini with ``diffbench_<key> = value`` for each keyword (replaces any earlier one)."""
    lines = ["[pytest]"] + [f"diffbench_{key} = {value}" for key, value in keys.items()]
    pytester.makeini("\n".join(lines) + "\n")


def run(pytester: pytest.Pytester, *args: str, lpips: str | None = "off") -> pytest.RunResult:
    """``pytest --diffbench`` in a fresh process (torch state and module caches stay out of ours)."""
    extra = [f"--diffbench-lpips={lpips}"] if lpips else []
    return pytester.runpytest_subprocess("--diffbench", *extra, "-p", "no:cacheprovider", "-rA", *args)


def run_plain(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest without ``--diffbench``, in a fresh process."""
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args)


def output_dir(pytester: pytest.Pytester) -> Path:
    return pytester.path / ".diffbench"


def latest_run_dir(pytester: pytest.Pytester) -> Path:
    run_id = (output_dir(pytester) / "latest").read_text(encoding="utf-8").strip()
    return output_dir(pytester) / "runs" / run_id


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def latest_rows(pytester: pytest.Pytester) -> list[dict[str, str]]:
    """results.csv of the latest run, one dict per case (values as the CSV text)."""
    return read_rows(latest_run_dir(pytester) / "results.csv")


def rows_by_case(pytester: pytest.Pytester) -> dict[str, dict[str, str]]:
    """Latest rows keyed by ``<test function>[<case id>]`` (the node id without the file)."""
    return {row["nodeid"].split("::", 1)[1]: row for row in latest_rows(pytester)}


def baseline_pair(pytester: pytest.Pytester, module: str, test: str, case_id: str, pin: str = PIN) -> tuple[Path, Path]:
    """(PNG, JSON sidecar) paths of one case's baseline."""
    base = pytester.path / "baselines" / pin / module / test / case_id
    return base.with_name(case_id + ".png"), base.with_name(case_id + ".json")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def edit_sidecar(path: Path, **sections: dict[str, Any]) -> None:
    """Update sections of a baseline sidecar (``environment={...}``, ``measurement={...}``)."""
    data = read_json(path)
    for section, values in sections.items():
        data[section].update(values)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def stable_columns(row: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in row.items() if key not in VOLATILE_COLUMNS}


def checkout_pythonpath() -> str:
    """PYTHONPATH for a child Python: this checkout first, then whatever the run already has."""
    return os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
