"""The thread policy as a run records it: environment.json's ``threads`` (the single process's
decision, or the controller's for its xdist workers), a user's OMP_NUM_THREADS winning, and one
terminal note when the load average was above the cores. The machine's cores and load are
pinned here; torch's threads inside real pipelines: tests/e2e/test_threads_builtin.py."""

from __future__ import annotations

import pytest

from pytest_diffbench.run import threads as threads_module


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """Pins the cores and load average this process reads: ``machine(cores, load)``; no thread variable."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)

    def pin(cores: int, load: float | None) -> None:
        monkeypatch.setattr(threads_module, "available_cores", lambda: cores)
        monkeypatch.setattr(threads_module, "load_average", lambda: load)
    return pin


NOTE = "note: the CPU was busy (load average 3.5 on 2 cores); torch ran 1 thread per pytest process"


def test_a_busy_cpu_gets_fewer_threads_and_one_note(project, machine) -> None:
    machine(2, 3.5)
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=2)
    assert project.read_json(run.folder.environment)["threads"] == {
        "threads": 1, "cores": 2, "workers": 1, "load": 3.5, "source": "load"}
    assert project.text(run.outcome).count(NOTE) == 1


def test_an_idle_cpu_gives_every_core_and_no_note(project, machine) -> None:
    machine(8, 0.2)
    project.write_tests(project.test())
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    assert project.read_json(run.folder.environment)["threads"] == {
        "threads": 8, "cores": 8, "workers": 1, "load": 0.2, "source": "cores"}
    assert "note: the CPU was busy" not in project.text(run.outcome)


def test_the_controller_records_each_xdist_workers_share(project, machine) -> None:
    machine(8, 2.0)  # the controller (this process) reads these; its workers decide for themselves
    project.write_tests(project.test(sweep="seeds=[0, 1], steps=2"))
    run = project.run("-n", "2", update="all")
    run.outcome.assert_outcomes(passed=2)
    assert project.read_json(run.folder.environment)["threads"] == {
        "threads": 3, "cores": 8, "workers": 2, "load": 2.0, "source": "load"}


def test_omp_num_threads_set_by_the_user_wins(project, machine, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(2, 3.5)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    project.write_tests(project.test())
    run = project.run(update="all")
    run.outcome.assert_outcomes(passed=1)
    assert project.read_json(run.folder.environment)["threads"] == {
        "threads": 2, "cores": 2, "workers": 1, "load": 3.5, "source": "OMP_NUM_THREADS"}
    # The note still says the CPU was busy, with the threads the user chose.
    assert "note: the CPU was busy (load average 3.5 on 2 cores); torch ran 2 threads" in project.text(run.outcome)
