"""The thread policy of torch's CPU pool: the cores' share per pytest process, fewer when the
load average shows other work, at least one, and a thread variable set by the user wins."""

from __future__ import annotations

import pytest

from pytest_diffbench.run import threads as threads_module
from pytest_diffbench.run.threads import ThreadPolicy, decide_threads, machine_threads, planned_workers


@pytest.mark.parametrize(("cores", "workers", "load", "expected", "source"), [
    (8, 1, 0.0, 8, "cores"),       # an idle machine: every core
    (8, 2, 0.0, 4, "cores"),       # two xdist workers: half each
    (8, 3, None, 2, "cores"),      # no load average (Windows): the share, rounded down
    (2, 4, 0.0, 1, "cores"),       # more workers than cores: still one thread each
    (8, 1, 2.4, 6, "load"),        # two cores busy with other work
    (8, 2, 2.6, 2, "load"),        # three busy: (8 - 3) // 2
    (2, 1, 0.7, 1, "load"),        # rounded: 0.7 of a core counts busy
    (2, 1, 0.4, 2, "cores"),       # ... 0.4 does not
    (2, 1, 7.8, 1, "load"),        # a load far above the cores: one thread, never zero
    (2, 2, 2.0, 1, "cores"),       # one each is the share already
    (0, 0, -1.0, 1, "cores"),      # nonsense counts and load read as the least
])
def test_the_cores_share_less_the_busy_cores(cores, workers, load, expected, source) -> None:
    policy = decide_threads(cores=cores, workers=workers, load=load, environ={})
    assert (policy.threads, policy.source) == (expected, source)
    assert (policy.cores, policy.workers) == (max(1, cores), max(1, workers))


@pytest.mark.parametrize(("environ", "expected"), [
    ({"OMP_NUM_THREADS": "3"}, (3, "OMP_NUM_THREADS")),
    ({"MKL_NUM_THREADS": "5"}, (5, "MKL_NUM_THREADS")),
    ({"OMP_NUM_THREADS": " 6 ", "MKL_NUM_THREADS": "5"}, (6, "OMP_NUM_THREADS")),
    ({"OMP_NUM_THREADS": "0"}, (2, "load")),      # not a thread count torch takes: the policy decides
    ({"OMP_NUM_THREADS": "four"}, (2, "load")),
    ({"OMP_NUM_THREADS": ""}, (2, "load")),
])
def test_a_thread_variable_set_by_the_user_wins(environ, expected) -> None:
    policy = decide_threads(cores=4, workers=1, load=2.0, environ=environ)
    assert (policy.threads, policy.source) == expected


def test_a_note_only_when_the_load_is_above_the_cores() -> None:
    busy = decide_threads(cores=2, workers=1, load=3.46, environ={})
    assert busy.note() == ("note: the CPU was busy (load average 3.5 on 2 cores); torch ran 1 thread per pytest "
                           "process and seconds per image are slower than on an idle machine")
    assert decide_threads(cores=2, workers=1, load=2.0, environ={}).note() is None
    assert decide_threads(cores=2, workers=1, load=None, environ={}).note() is None
    assert decide_threads(cores=1, workers=1, load=5.0, environ={"OMP_NUM_THREADS": "4"}).note() == (
        "note: the CPU was busy (load average 5.0 on 1 core); torch ran 4 threads per pytest process and seconds "
        "per image are slower than on an idle machine")


def test_the_record_is_plain_json_values() -> None:
    assert ThreadPolicy(2, 4, 2, 1.23456, "cores").as_dict() == {
        "threads": 2, "cores": 4, "workers": 2, "load": 1.23, "source": "cores"}
    assert ThreadPolicy(2, 4, 2, None, "cores").as_dict()["load"] is None


def test_this_machine_is_read_for_the_cores_and_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_module.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(threads_module.os, "getloadavg", lambda: (1.2, 9.0, 9.0), raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert machine_threads(1) == ThreadPolicy(2, 3, 1, 1.2, "load")
    monkeypatch.delattr(threads_module.os, "sched_getaffinity", raising=False)  # macOS, Windows
    monkeypatch.delattr(threads_module.os, "getloadavg", raising=False)        # Windows
    monkeypatch.setattr(threads_module.os, "cpu_count", lambda: 6)
    assert machine_threads(2) == ThreadPolicy(3, 6, 2, None, "cores")


@pytest.mark.parametrize(("numprocesses", "maxprocesses", "dist", "expected"), [
    (None, None, "no", 1),     # xdist installed, no -n
    (None, None, None, 1),     # -p no:xdist: the options do not exist
    (0, None, "no", 1),        # -n 0
    (4, None, "load", 4),      # -n 4 (and -n auto, resolved by xdist to a number)
    (4, 2, "load", 2),         # --maxprocesses caps it
    (3, None, "no", 1),        # --dist no
])
def test_the_controller_plans_for_xdist_workers(numprocesses, maxprocesses, dist, expected) -> None:
    assert planned_workers(numprocesses, maxprocesses, dist) == expected


@pytest.mark.parametrize(("cores", "machine_cores", "load", "expected", "share"), [
    (1, 2, 1.2, 1, 0.6),     # taskset -c 0 on 2 cores, one other process busy: the process's core counts half
    (2, 8, 1.6, 2, 0.4),     # 2 of 8 cores, 1.6 busy on the machine: 0.4 of ours, none busy
    (4, 8, 2.0, 3, 1.0),     # 4 of 8 cores, 2 busy on the machine: one of ours
    (4, 8, 0.9, 4, 0.45),    # ... 0.9 on the machine is 0.45 on ours: none
    (4, 2, 2.0, 2, 2.0),     # a machine count below the cores (nonsense) reads as the cores
    (4, None, 2.0, 2, 2.0),  # unknown machine cores: the cores
])
def test_a_process_limited_to_some_cores_counts_its_share_of_the_load(cores, machine_cores, load, expected, share):
    policy = decide_threads(cores=cores, workers=1, load=load, environ={}, machine_cores=machine_cores)
    assert policy.threads == expected
    assert policy.load == pytest.approx(share)
    assert policy.as_dict()["load"] == round(share, 2)


def test_the_note_compares_the_process_share_of_the_load_with_its_cores() -> None:
    # taskset -c 0 on a 2-core machine, both cores nearly busy: ours is not over-full.
    assert decide_threads(cores=1, workers=1, load=1.9, environ={}, machine_cores=2).note() is None
    busy = decide_threads(cores=1, workers=1, load=4.2, environ={}, machine_cores=2)
    assert busy.note() == (
        "note: the CPU was busy (load average 4.2 on the machine's 2 cores, 2.1 on the 1 core this process may "
        "use); torch ran 1 thread per pytest process and seconds per image are slower than on an idle machine")


def test_half_a_busy_core_costs_a_thread_on_purpose() -> None:
    """Rounded half up (see the module docstring: one thread is faster on the small model, and two
    runs started together must not both take every core)."""
    assert decide_threads(cores=2, workers=1, load=0.5, environ={}).threads == 1
    assert decide_threads(cores=2, workers=1, load=0.49, environ={}).threads == 2


def test_this_machine_is_read_for_the_cores_it_has(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_module.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(threads_module.os, "getloadavg", lambda: (2.1, 9.0, 9.0), raising=False)
    monkeypatch.setattr(threads_module.os, "cpu_count", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    policy = machine_threads(1)
    assert (policy.threads, policy.cores, policy.machine_cores, policy.load) == (1, 1, 2, pytest.approx(1.05))
    assert "load average 2.1 on the machine's 2 cores, 1.1 on the 1 core" in (policy.note() or "")
