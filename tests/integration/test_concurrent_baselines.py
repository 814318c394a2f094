"""Two ``pytest --diffbench --diffbench-update`` runs writing the same baselines at the same time.

Each child pytest draws its own picture (FakePipeline drifts 0.3 and 0.6, same configs) for the
same cases, whose committed baselines (drift 0.9) both refresh. Whatever the interleaving:
every pair on disk reads whole (0 mixed pairs, no temporary file left), and no run claims a write
that was lost: each pair a run says it wrote (``refreshed``) is either the baseline now or the
pair the other run replaced knowingly (kept, byte for byte, in the other run's
replaced-baselines/); a run that found the pair changed under it claims nothing and says so.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from forked_pytest import start_pytest  # tests/suite_plugin: each child forked from a warm server of its own

from pytest_diffbench.spec.outcomes import BaselineAction
from pytest_diffbench.store.baselines import BaselineStore
from pytest_diffbench.store.files import TMP_SUFFIX
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder, read_latest
from pytest_diffbench.store.results import read_results
from pytest_diffbench.testing import FAKE_PIPELINE_ENV

pytestmark = pytest.mark.subprocess

RUNS = {"a": 0.3, "b": 0.6}
#: Both children wait for each other after collection, so they go through the cases side by side.
BARRIER = """

def pytest_collection_finish(session):
    import os, pathlib, time

    folder = pathlib.Path(os.environ["DIFFBENCH_TEST_BARRIER"])
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
"""


def test_two_runs_updating_the_same_baselines_leave_whole_pairs_and_lose_no_claimed_write(project) -> None:
    project.write_tests(project.test(sweep="seeds=list(range(30)), steps=[2, 3]"))
    project.fake(drift=0.9)
    project.run(update="all").outcome.assert_outcomes(passed=60)
    committed = project.snapshot(project.baselines)
    with open(project.path / "conftest.py", "a", encoding="utf-8") as conftest:
        conftest.write(BARRIER)
    barrier = project.path / "barrier"
    barrier.mkdir()

    children = {}
    for name, drift in RUNS.items():
        env = {**os.environ, FAKE_PIPELINE_ENV: json.dumps({"drift": drift}), "OMP_NUM_THREADS": "1",
               "DIFFBENCH_TEST_BARRIER": str(barrier)}
        args = ["-p", "no:cacheprovider", "--diffbench", "--diffbench-update=all", "--diffbench-lpips=off",
                f"--diffbench-output-dir=out-{name}", "-q"]
        children[name] = start_pytest(args, cwd=project.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    outputs = {name: child.communicate(timeout=600)[0] for name, child in children.items()}
    for name, output in outputs.items():
        assert "Traceback" not in output and "INTERNALERROR" not in output, output

    folders = {}
    for name in RUNS:
        run_id = read_latest(project.path / f"out-{name}")
        assert run_id is not None, outputs[name]
        folders[name] = RunFolder.of(project.path / f"out-{name}", run_id)
    rows = {name: {row.nodeid: row for row in read_results(folder.results)} for name, folder in folders.items()}
    assert len(rows["a"]) == len(rows["b"]) == 60

    conflicts = 0
    for nodeid, row_a in rows["a"].items():
        case = case_path(nodeid)
        pin = row_a.pin
        assert BaselineStore(project.baselines, pin).load(case) is not None  # a whole pair: BaselineError otherwise
        png, sidecar = BaselineStore(project.baselines, pin).paths(case)
        on_disk = (png.read_bytes(), sidecar.read_bytes())
        claims = {name: rows[name][nodeid] for name in RUNS if rows[name][nodeid].baseline_action is BaselineAction.REFRESHED}
        assert claims, f"{nodeid}: neither run refreshed it"
        for name in RUNS:
            row = rows[name][nodeid]
            if name not in claims:  # the pair changed under it: it says so and claims nothing
                assert row.baseline_action is BaselineAction.NONE
                assert "was changed by another run after this run read it" in row.message, row.message
                conflicts += 1
        written = {name: folders[name].image(case).read_bytes() for name in claims}
        kept = {name: (folders[name].replaced(case).read_bytes(), folders[name].replaced(case, ".json").read_bytes())
                for name in claims}
        if len(claims) == 1:
            (name,) = claims
            assert on_disk[0] == written[name]
            assert kept[name] == (committed[_rel(png, project)], committed[_rel(sidecar, project)])
        else:  # both wrote: the second replaced the first's pair knowingly and kept it
            second = next(name for name in claims if kept[name][0] != committed[_rel(png, project)])
            first = next(name for name in claims if name != second)
            assert on_disk[0] == written[second]
            assert kept[second][0] == written[first]
            assert kept[first] == (committed[_rel(png, project)], committed[_rel(sidecar, project)])
    leftovers = [path for path in project.baselines.rglob("*") if path.name.endswith(TMP_SUFFIX)]
    assert leftovers == []
    print(f"{conflicts} of 60 cases met the other run's write")


def _rel(path, project) -> str:
    return path.relative_to(project.baselines).as_posix()
