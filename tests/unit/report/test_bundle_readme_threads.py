"""The bundle's README says environment.json records the thread policy, which seconds per image
on a CPU depend on."""

from __future__ import annotations

import zipfile

from pytest_diffbench.report.bundle import write_bundle

from .test_bundle import folder, results  # noqa: F401  (the run folder and results of the bundle tests)


def test_the_readme_says_environment_json_records_the_thread_policy(folder, results) -> None:
    with zipfile.ZipFile(write_bundle(folder, results, "failures")) as archive:
        readme = archive.read("README.md").decode()
    (line,) = [line for line in readme.splitlines() if line.startswith("- `environment.json`")]
    assert "`threads`" in line and "threads torch's CPU pool got per pytest process" in line
