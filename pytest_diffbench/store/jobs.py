"""The job list of a run (``<run>/jobs.json``): every case it set out to run, in order.

Written when collection ends, before the first case runs, so a run stopped at any moment (Ctrl-C,
``-x``, a kill) knows what it still had to do; ``--diffbench-resume`` runs the jobs without a
journal line (see :mod:`pytest_diffbench.store.journal`).

Each job is a case's node id and its *job hash*: what decides the case that is known at
collection, before any pipeline is built (see :func:`job_hash`): the source of its test function,
its sweep point (seed, sampler, steps, cfg, extra axes), its workflow version and whether it runs
with ``--diffbench-deterministic``. The full config hash needs the model, known only once the case
has generated: a resumed run checks it against the run's finished cases of the same test instead
(:func:`pipeline_fields`).

The file is ASCII JSON, keys sorted, one job per line, written atomically: the same jobs always
give the same bytes::

    {"format": 1, "jobs": [
    {"hash": "<64 hex>", "nodeid": "test_gen.py::test_case[seed0-euler-2steps-cfg7.5]"},
    ...
    ]}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_diffbench.spec.config import canonical_json, normalise
from pytest_diffbench.store.files import atomic_write_text

JOBS_FILE = "jobs.json"
#: The version of the file's format; another one is refused with :class:`JobsError`.
JOBS_FORMAT = 1
#: How many node ids of each kind of change :meth:`JobChanges.describe` names.
NAMED_CHANGES = 5
#: The config fields a pipeline decides, not a case's sweep point: a resumed case whose values differ
#: from the finished cases' of its test ran on another model (see :func:`pipeline_fields`).
PIPELINE_FIELDS = ("model", "model_fingerprint", "vae", "loras", "controlnets", "workflow", "dtype", "device",
                   "pipeline_config", "deterministic")


class JobsError(ValueError):
    """A job list that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Job:
    """One case of a run: its pytest node id and its :func:`job_hash` (64 hex digits)."""

    nodeid: str
    hash: str


def job_hash(test_source: str, point: Mapping[str, Any], workflow_version: str, deterministic: bool) -> str:
    """The SHA-256 (hex) of what decides a case at collection: ``test_source`` (its test function's
    source text), ``point`` (its sweep axes by name), ``workflow_version`` and ``deterministic``.
    Stable across processes and machines (canonical JSON). Raises ValueError for an axis value
    that has no JSON form (see :func:`~pytest_diffbench.spec.config.normalise`)."""
    data = {"test": hashlib.sha256(test_source.encode("utf-8")).hexdigest(), "point": normalise(dict(point)),
            "workflow_version": workflow_version, "deterministic": deterministic}
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def jobs_bytes(jobs: Sequence[Job]) -> str:
    """The text of a job list (see the module docstring): deterministic, ASCII."""
    lines = [json.dumps({"hash": job.hash, "nodeid": job.nodeid}, sort_keys=True, ensure_ascii=True) for job in jobs]
    return f'{{"format": {JOBS_FORMAT}, "jobs": [\n' + ",\n".join(lines) + ("\n" if lines else "") + "]}\n"


def write_jobs(path: Path, jobs: Sequence[Job]) -> None:
    """Write the job list atomically (a reader sees the old list or the new one). Raises OSError."""
    atomic_write_text(path, jobs_bytes(jobs))


def read_jobs(path: Path) -> list[Job]:
    """The jobs of the list at ``path``, in order. Raises FileNotFoundError when there is none,
    :class:`JobsError` naming the file when it is not a job list of this format."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("ascii"))
        if data.get("format") != JOBS_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, this diffbench reads format {JOBS_FORMAT}")
        jobs = [Job(str(job["nodeid"]), str(job["hash"])) for job in data["jobs"]]
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise JobsError(f"{path} is not a diffbench job list ({' '.join(str(exc).split())[:200]})") from None
    return jobs


@dataclass(frozen=True)
class JobChanges:
    """How the jobs collected now differ from a run's job list (node ids, in the order they come)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        """One line: each kind of change with its count and its first :data:`NAMED_CHANGES` node ids."""
        parts = []
        for kind, nodeids in (("added", self.added), ("removed", self.removed), ("changed", self.changed)):
            if nodeids:
                more = len(nodeids) - NAMED_CHANGES
                named = ", ".join(nodeids[:NAMED_CHANGES]) + (f", and {more} more" if more > 0 else "")
                parts.append(f"{len(nodeids)} {kind} ({named})")
        return "; ".join(parts)


def compare_jobs(run: Sequence[Job], now: Sequence[Job]) -> JobChanges:
    """The cases ``now`` has that the run's list ``run`` has not (added), the run's it has not
    (removed), and those in both whose job hash differs (changed). The order of the jobs is not
    compared: pytest-randomly or xdist may order them otherwise."""
    before = {job.nodeid: job.hash for job in run}
    after = {job.nodeid: job.hash for job in now}
    return JobChanges(added=tuple(job.nodeid for job in now if job.nodeid not in before),
                      removed=tuple(job.nodeid for job in run if job.nodeid not in after),
                      changed=tuple(job.nodeid for job in now if job.nodeid in before and before[job.nodeid] != job.hash))


def still_to_run(jobs: Iterable[Job], finished: Iterable[str]) -> list[Job]:
    """The jobs without a finished result (node ids in ``finished``), in order."""
    done = set(finished)
    return [job for job in jobs if job.nodeid not in done]


def pipeline_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`PIPELINE_FIELDS` a case's config sets, normalised: an empty value (``""``,
    None, ``[]``, ``{}``, False) is left out, as a results row or journal line leaves it empty."""
    return {key: normalise(config[key]) for key in PIPELINE_FIELDS if config.get(key) not in (None, "", [], (), {}, False)}
