"""The diffbench session: what the pytest hooks hand off to.

It owns the settings, the run folder and the results of finished cases, expands sweeps,
assembles each finished case's inputs for :func:`pytest_diffbench.judge.lifecycle.judge` and
judges the case in the foreground, writes what the verdict asks for (the run folder's copy of
the case, the baseline pair), keeps each finished case in the run's journal (the controller does,
under xdist) and, at the end, writes the run's files: the record of truth first, then every
derived artifact on its own. A case's run-folder files, its ``ssim_vs_most_steps`` scoring and
its journal line, in that order, go to a background writer (:mod:`pytest_diffbench.store.writer`)
while the next case generates; it is drained before anything reads the run folder.

When collection ends the run's job list is written (:mod:`pytest_diffbench.store.jobs`). With
``--diffbench-resume`` the session reopens a stopped run instead of claiming a new folder: it runs
only the jobs without a journal line, appends to the same journal, and writes the artifacts over
all the run's cases (the earlier ones read from its journal).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pytest

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.judge.tolerances import Tolerances
from pytest_diffbench.plugin.options import Settings
from pytest_diffbench.plugin.xdist import RUN_DIR_KEY
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.outcomes import Outcome
from pytest_diffbench.spec.preset_checks import sweep_problems
from pytest_diffbench.spec.presets import PresetSource
from pytest_diffbench.spec.batches import BatchPlan
from pytest_diffbench.spec.sweep import SWEEP_MARK, TOLERANCE_MARK, Case, SweepError, expand_sweep
from pytest_diffbench.store.jobs import Job, JobChanges, compare_jobs, job_hash, pipeline_fields, read_jobs, write_jobs
from pytest_diffbench.store.journal import Journal, JournalEntries
from pytest_diffbench.store.run_folder import ResumeError, RunFolder, remove_stale_temp_files, resumable_run
from pytest_diffbench.store.writer import BackgroundWriter, WriteFailure

if TYPE_CHECKING:
    from PIL import Image

    from pytest_diffbench.judge.convergence import ReferenceScorer
    from pytest_diffbench.judge.lifecycle import BaselineState
    from pytest_diffbench.run.case import DiffbenchCase, Runner
    from pytest_diffbench.run.determinism import DeterminismState
    from pytest_diffbench.run.threads import ThreadPolicy
    from pytest_diffbench.store.baselines import BaselineStore

#: xdist workeroutput key: a worker's sweeps (test folder -> case names), see DiffbenchSession.sweeps.
SWEEPS_KEY = "diffbench_sweeps"
#: xdist workeroutput key: a worker's failed background writes (see DiffbenchSession.write_failures).
WRITE_FAILURES_KEY = "diffbench_write_failures"
#: xdist workeroutput key: a worker's warnings (a failing hook, a score left to the end), said by the controller.
WARNINGS_KEY = "diffbench_warnings"
#: xdist workeroutput key: the messages of a worker's unavailable metrics (see judge.metrics.unavailable_messages).
UNAVAILABLE_KEY = "diffbench_unavailable"


class DiffbenchSession:
    """State of one pytest process (controller or xdist worker) for diffbench."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        #: With --diffbench-deterministic: the switch's state in this process, and what it replaced.
        self.determinism: DeterminismState | None = None
        self._before_determinism: DeterminismState | None = None
        #: The result of each case by node id: its last attempt's (see :meth:`add_result`).
        self._results: dict[str, CaseResult] = {}
        #: A resumed run's results from before this session (its journal's), by node id.
        self._earlier: dict[str, CaseResult] = {}
        #: The cases pytest skipped (a skip mark, pytest.skip(), xfail(run=False)), this session's
        #: and a resumed run's earlier ones, by node id: their reasons. Finished without a result.
        self.skipped: dict[str, str] = {}
        #: The run's job list once collection ended (the controller's or single process's).
        self.jobs: list[Job] | None = None
        #: The line that tells how to resume this run, when it ended with jobs left (see :meth:`finish`).
        self.resume_hint: str | None = None
        #: The resume was refused at collection (changed jobs): the run folder is left as it was.
        self._refused = False
        #: A --diffbench-resume-changed resume's job list, still to be written (see :meth:`settle_jobs`).
        self._jobs_to_write = False
        #: A test of this session began: a run stopped before that (collection errors, Ctrl-C while
        #: collecting, a usage error) never started, so it is neither paused nor resumable.
        self.tests_began = False
        #: Node ids of the resumed cases refused for another pipeline (see :meth:`_other_pipeline`):
        #: not finished, so neither kept nor journaled, and the run stays resumable.
        self._other_pipeline_cases: list[str] = []
        self.folder: RunFolder | None = None
        self._journal: Journal | None = None
        #: The journal could not be written any more (a full disk): later lines are not tried.
        self._journal_failed = False
        #: Writes each case's files and journal line while the next case runs (:mod:`pytest_diffbench.store.writer`).
        self.writer = BackgroundWriter()
        #: The background writes that failed (this process's and, on an xdist controller, its
        #: workers'), one per case: each such case's result is an error naming the file.
        self.write_failures: list[WriteFailure] = []
        #: An xdist controller's workers' failed writes, applied at :meth:`finish`.
        self._worker_failures: list[WriteFailure] = []
        #: The seed batches of ``--diffbench-batch`` (see :meth:`plan_batches`); empty: every case alone.
        self.batches = BatchPlan()
        self.warnings: list[str] = []
        self.bundle: Path | None = None
        self._runner: Runner | None = None
        self._machines: dict[str, MachineInfo] = {}
        #: Each diffbench test's folder (:func:`~pytest_diffbench.store.paths.case_folder`) and the
        #: names of all the cases its sweep expands to, whatever ``-k`` or a node id selects
        #: (from collection; an xdist controller gets them from its workers).
        self.sweeps: dict[str, frozenset[str]] = {}
        #: torch's CPU threads per process of this run and why (see :meth:`_share_cpu_between_workers`).
        self.thread_policy: ThreadPolicy | None = None
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        # From xdist's workerinput, not $PYTEST_XDIST_WORKER: a pytest started from inside an
        # xdist worker (pytester, subprocess) inherits that variable without being a worker.
        self.worker: str = str(workerinput.get("workerid", "main")) if workerinput is not None else "main"
        #: pytest processes sharing the machine's devices in this run (xdist's -n, else 1).
        self.workers: int = int(workerinput.get("workercount", 1)) if workerinput is not None else 1
        if workerinput is not None and RUN_DIR_KEY in workerinput:
            self.folder = RunFolder(Path(workerinput[RUN_DIR_KEY]))

    @functools.cached_property
    def reference(self) -> "ReferenceScorer":
        """ssim_vs_most_steps of the groups this process runs whole, scored as their cases finish
        (fed by :attr:`writer`, so the scoring overlaps the next case too); made on first use
        (collection), so pytest without ``--diffbench`` does not import it."""
        from pytest_diffbench.judge.convergence import ReferenceScorer

        return ReferenceScorer()

    @functools.cached_property
    def presets(self) -> PresetSource:
        """The presets sweeps name (read on first use); --diffbench-update records bumped versions in the lock."""
        return PresetSource(self.settings.presets_file, self.config.rootpath, record=self.settings.update is not None,
                            check=sweep_problems)

    def start(self) -> None:
        """At session start the controller (not in a mode that runs no test, see :func:`runs_tests`) removes the temporary files a
        killed run left, claims the run folder (or with ``--diffbench-resume`` reopens the run's,
        reading what finished from its journal) and opens its journal.

        Raises pytest.UsageError (one line) when the run to resume is unknown, still running,
        complete or has no job list, or when the output folder cannot hold run folders.

        With ``--diffbench-deterministic`` every process (controller and xdist workers) first turns
        determinism on, before any ``diffbench_pipeline`` fixture builds a pipeline."""
        if self.settings.enabled and self.settings.deterministic and self.determinism is None:
            from pytest_diffbench.run.determinism import current_determinism, enable_determinism

            self._before_determinism = current_determinism()
            self.determinism = enable_determinism()
        if self.settings.enabled and not self.is_worker and runs_tests(self.config):
            try:
                remove_stale_temp_files(self.settings.output_dir, self.settings.baseline_dir)
            except OSError as exc:  # left-overs only; the run goes on
                self.warnings.append(f"WARNING: diffbench could not remove the temporary files of killed runs: "
                                     f"{type(exc).__name__}: {exc}")
            if self.settings.resume is not None:
                self._reopen(self.settings.resume)
                return self._started()
            try:
                self.folder = RunFolder.create(self.settings.output_dir)
                self._journal = Journal(self.folder.journal)
            except OSError as exc:
                raise pytest.UsageError(f"diffbench: diffbench_output_dir = {self.settings.output_dir} cannot hold "
                                        f"run folders ({type(exc).__name__}: {exc}); name a folder diffbench may create "
                                        "and write, relative to the rootdir") from None
            self._started()

    def _started(self) -> None:
        if self.config.pluginmanager.hasplugin("xdist"):
            self.config.pluginmanager.register(_SweepsFromWorkers(self), "diffbench-sweeps")
        self._share_cpu_between_workers()  # decided before this run loads the CPU

    def _reopen(self, run: str) -> None:
        """Reopen the run ``run`` names (see :func:`~pytest_diffbench.store.run_folder.resumable_run`)
        and take its journal's lock; its finished cases become :attr:`_earlier`."""
        try:
            folder = resumable_run(self.settings.output_dir, run)
            earlier = folder.finished_entries() if folder.journal.is_file() else JournalEntries()
            journal = Journal(folder.journal)
        except ResumeError as exc:
            raise pytest.UsageError(f"diffbench: cannot resume: {exc}") from None
        except BlockingIOError:  # another process took the run between the check and now
            raise pytest.UsageError(f"diffbench: cannot resume: run {folder.run_id} is still running: another pytest "
                                    f"process holds {folder.journal}") from None
        except (OSError, ValueError) as exc:  # JournalError names the file and line
            raise pytest.UsageError(f"diffbench: cannot resume run {folder.run_id}: {exc}") from None
        self.folder, self._journal = folder, journal
        self._earlier = {result.nodeid: result for result in earlier.results}
        self.skipped = dict(earlier.skipped)

    @property
    def results(self) -> list[CaseResult]:
        """The finished cases' results, one per node id: a resumed run's earlier ones first, then
        this session's in the order they first finished (a case run again now replaces its earlier one)."""
        return [r for nodeid, r in self._earlier.items() if nodeid not in self._results] + list(self._results.values())

    # -- the job list -----------------------------------------------------------------------

    def job(self, item: pytest.Item, case: Case) -> Job:
        """The job of a diffbench case (see :func:`~pytest_diffbench.store.jobs.job_hash`): its
        test function's source (its node id when the source cannot be read), its sweep point,
        workflow version and the determinism switch. An axis value without a JSON form (an
        object) counts by its case id."""
        function = getattr(item, "function", None)
        source = (_source_of(function) if function is not None else None) or item.nodeid
        version = self.workflow_version_for(item)
        try:
            digest = job_hash(source, case.axes, version, self.settings.deterministic)
        except ValueError:
            digest = job_hash(source, {"case": case.id}, version, self.settings.deterministic)
        return Job(item.nodeid, digest)

    def collected(self, jobs: list[Job]) -> set[str]:
        """Collection ended (single process or xdist worker) with these diffbench ``jobs``, in
        order: the node ids this session deselects (with ``--diffbench-resume``: the jobs that
        finished before and did not change). The controller settles the job list
        (:meth:`settle_jobs`); a worker leaves its jobs in the run folder for its controller."""
        if self.folder is None or not self.settings.enabled or not runs_tests(self.config):
            return set()
        finished: set[str] = set()
        if self.settings.resume is not None:
            if self.is_worker and self.folder.journal.is_file():  # the controller read the journal at its start
                entries = self.folder.finished_entries()
                self._earlier, self.skipped = {r.nodeid: r for r in entries.results}, dict(entries.skipped)
            earlier = {*self._earlier, *self.skipped}
            changed = set(compare_jobs(read_jobs(self.folder.jobs), jobs).changed)
            finished = {job.nodeid for job in jobs if job.nodeid in earlier and job.nodeid not in changed}
        if self.is_worker:
            write_jobs(self.folder.worker_jobs(self.worker), jobs)
        else:
            self.settle_jobs(jobs)
        return finished

    def jobs_of_worker(self, worker: str) -> None:
        """On an xdist controller: a worker ended its collection; the first one's jobs settle the
        job list (every worker collects the same). Raises pytest.UsageError as :meth:`settle_jobs`."""
        if self.folder is None:
            return
        path = self.folder.worker_jobs(worker)
        if not path.is_file():  # the worker did not get to the end of its collection
            return
        jobs = read_jobs(path)
        path.unlink()
        if self.jobs is None:
            self.settle_jobs(jobs)

    def settle_jobs(self, jobs: list[Job]) -> None:
        """Write the run's job list (none without jobs); with ``--diffbench-resume``, compare it with the run's first.

        A resume whose jobs differ (added, removed or changed cases) raises pytest.UsageError
        naming them, unless ``--diffbench-resume-changed``: then the run's job list becomes
        ``jobs`` once the first case of this session finishes (xdist workers still collecting
        compare with the run's list as it was), and its changed cases run again."""
        assert self.folder is not None
        if self.settings.resume is not None:
            changes = compare_jobs(read_jobs(self.folder.jobs), jobs)
            if changes and not self.settings.resume_changed:
                self._refused = True
                raise pytest.UsageError(
                    f"diffbench: cannot resume run {self.folder.run_id}: the cases collected now differ from its job "
                    f"list: {changes.describe()}; run the same tests with the same arguments, or pass "
                    "--diffbench-resume-changed to go on with the cases collected now (changed ones run again)")
            self.jobs = jobs
            if changes:
                self.warnings.append(_changes_note(self.folder.run_id, changes))
                self._jobs_to_write = True
            return
        if jobs:  # a session without diffbench cases (-k selecting none) leaves no run folder
            write_jobs(self.folder.jobs, jobs)
        self.jobs = jobs

    def _write_changed_jobs(self) -> None:
        """Write the job list a ``--diffbench-resume-changed`` resume settled on (see :meth:`settle_jobs`)."""
        if self._jobs_to_write and self.folder is not None and self.jobs is not None:
            self._jobs_to_write = False
            try:
                write_jobs(self.folder.jobs, self.jobs)
            except OSError as exc:  # the old list stays: the next resume names the changes again
                self.warnings.append(f"WARNING: diffbench could not write the job list {self.folder.jobs}: "
                                     f"{type(exc).__name__}: {exc}")

    # -- collection -------------------------------------------------------------------------

    def expand(self, definition: pytest.Function) -> list[Case]:
        """The cases of a test; a test without a sweep has one default case."""
        mark = definition.get_closest_marker(SWEEP_MARK)
        self.tolerances_for(definition)  # an invalid tolerance is a collection error too
        if mark is None:
            cases = [Case()]
        elif mark.args:
            raise SweepError("diffbench.sweep takes keyword arguments only, e.g. sweep(seeds=[0, 1])")
        else:
            cases = expand_sweep(mark.kwargs, max_cases=self.settings.max_cases, presets=self.presets)
        self._record_sweep(definition.nodeid, [case.id for case in cases] if mark is not None else ["default"])
        return cases

    def _record_sweep(self, nodeid: str, case_ids: list[str]) -> None:
        """Keep the names of every case of the test ``nodeid`` (see :attr:`sweeps`); a worker also
        hands them to the xdist controller in its ``workeroutput``."""
        from pytest_diffbench.store.paths import case_folder, path_segment

        folder, names = case_folder(nodeid), sorted({path_segment(case_id) for case_id in case_ids})
        self.sweeps[folder] = frozenset(names)
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput.setdefault(SWEEPS_KEY, {})[folder] = names

    def tolerances_for(self, node: pytest.Item) -> Tolerances:
        """Ini defaults, overridden by the sweep's ``tolerance=`` and the tolerance marker."""
        sweep_mark = node.get_closest_marker(SWEEP_MARK)
        marker = node.get_closest_marker(TOLERANCE_MARK)
        from_sweep = dict(sweep_mark.kwargs.get("tolerance") or {}) if sweep_mark else {}
        from_marker = dict(marker.kwargs) if marker else {}
        both = sorted(set(from_sweep) & set(from_marker))
        if both:
            raise SweepError(f"tolerance {', '.join(both)} is set both in sweep(tolerance=...) and @diffbench.tolerance; set it once")
        try:
            tolerances = self.settings.tolerances.merged(from_sweep, source="sweep(tolerance=...)")
            return tolerances.merged(from_marker, source="@diffbench.tolerance")
        except ValueError as exc:
            raise SweepError(str(exc)) from None

    def workflow_version_for(self, node: pytest.Item) -> str:
        mark = node.get_closest_marker(SWEEP_MARK)
        version = mark.kwargs.get("workflow_version") if mark else None
        return str(version) if version is not None else self.settings.workflow_version

    def plan_batches(self, cases: "list[tuple[str, Case]]") -> None:
        """Chunk the cases that differ only in their seed into batches of ``--diffbench-batch``
        (see :mod:`pytest_diffbench.spec.batches`), from the whole collection, before any
        deselection: a case's chunk is the same whatever runs."""
        from pytest_diffbench.spec.batches import plan_batches

        self.batches = plan_batches(cases, self.settings.batch)

    # -- running ----------------------------------------------------------------------------

    def start_case(self, item: pytest.Item, case: Case, pipeline: Any, runner: "Runner | None" = None) -> "DiffbenchCase":
        """The case ``item`` runs, ready to generate. ``runner``: instead of the session's (calibrate's
        cold repeat: a fresh ImageGenerator without warm-up)."""
        from pytest_diffbench.run.case import DiffbenchCase

        return DiffbenchCase(nodeid=item.nodeid, case=case, pipeline=pipeline,
                             runner=runner if runner is not None else self._runner_for(pipeline),
                             workflow_version=self.workflow_version_for(item), deterministic=self.settings.deterministic,
                             batch=self.batches.get(item.nodeid))

    def _runner_for(self, pipeline: Any) -> "Runner":
        from pytest_diffbench.run.case import SelfRunner
        from pytest_diffbench.run.protocol import DiffbenchPipeline

        if isinstance(pipeline, DiffbenchPipeline):
            return SelfRunner()
        if self._runner is None:
            from pytest_diffbench.run.generation import ImageGenerator
            from pytest_diffbench.run.threads import apply_threads

            self._runner = ImageGenerator()
            apply_threads(self._share_cpu_between_workers())
        return self._runner

    def _share_cpu_between_workers(self) -> "ThreadPolicy":
        """The thread policy of this run's pytest processes (see :mod:`pytest_diffbench.run.threads`),
        decided once per process: the controller's (or single process's) at session start, for
        as many processes as xdist starts, before this run loads the CPU; a worker's for its
        share. A note joins the warnings when the load was above the cores. Imports no torch."""
        from pytest_diffbench.run.threads import machine_threads, planned_workers

        if self.thread_policy is None:
            option = self.config.option
            workers = self.workers if self.is_worker else planned_workers(
                getattr(option, "numprocesses", None), getattr(option, "maxprocesses", None), getattr(option, "dist", None))
            self.thread_policy = machine_threads(workers)
            note = self.thread_policy.note()
            if note and not self.is_worker:
                self.warnings.append(note)
        return self.thread_policy

    def machine_info(self, device: str) -> MachineInfo:
        """The machine of ``device``, with what ``pytest_diffbench_machine_info`` hooks add (once per device).

        Raises :class:`MachineInfoError` naming the hook when one raises: the machine record goes
        into the case's baseline sidecar and its environment check, so a case cannot be recorded
        without it (it fails with that one line; the hook is tried again for the next case)."""
        if device not in self._machines:
            from pytest_diffbench.plugin.user_hooks import call_each
            from pytest_diffbench.run.machine import collect_machine_info

            fields: dict[str, Any] = collect_machine_info(device).as_dict()
            failures = call_each(self.config.hook.pytest_diffbench_machine_info, self.config.rootpath, "machine_info",
                                 config=self.config, machine_info=fields)
            if failures:
                raise MachineInfoError(f"diffbench cannot record the machine of this case: {failures[0].describe()}")
            self._machines[device] = MachineInfo.from_mapping(fields)
        return self._machines[device]

    def with_added_columns(self, item: pytest.Item, result: CaseResult) -> CaseResult:
        """``result`` with the columns the ``pytest_diffbench_result_row`` hooks that apply to
        ``item`` (its conftest.py files' and the plugins', as pytest's own hooks through
        ``item.ihook``) add to its row, kept in :attr:`CaseResult.extra`: they ride with the result
        to the xdist controller, the journal and results.csv. A hook that changes one of
        diffbench's own columns has the change dropped; one that raises adds no column; each is
        one warning."""
        from pytest_diffbench.plugin.user_hooks import call_each, cell_text

        result = result.with_changes(extra={})
        row = result.to_row()
        added = dict(row)
        failures = call_each(item.ihook.pytest_diffbench_result_row, self.config.rootpath, "row",
                             config=self.config, result=result, row=added)
        for failure in failures:
            self._warn(f"WARNING: {failure.describe()}; results.csv has no columns from it for the cases where it raised")
        changed = sorted(key for key in row if added.get(key) != row[key])
        if changed:
            self._warn(f"WARNING: a pytest_diffbench_result_row hook changed diffbench's column(s) {', '.join(changed)}; "
                       "hooks may only add columns, so the change was dropped")
        return result.with_changes(extra={key: cell_text(value) for key, value in added.items()
                                          if key not in row and value is not None})

    def _warn(self, warning: str) -> None:
        """Add ``warning`` to the run's warnings once."""
        if warning not in self.warnings:
            self.warnings.append(warning)

    def finish_case(self, item: pytest.Item, dcase: "DiffbenchCase") -> CaseResult:
        """:meth:`_finish_case`; the result and the case's image then feed :attr:`reference` on the writer's thread."""
        result = self._finish_case(item, dcase)
        reference = self.reference  # made here, not on the writer's thread
        self.writer.submit(item.nodeid, "ssim_vs_most_steps", functools.partial(self._score_reference, reference, result, dcase.image))
        return result

    def from_worker(self, output: Mapping[str, Any]) -> None:
        """On an xdist controller: what a worker handed over when it ended (its ``workeroutput``):
        its sweeps, its ssim_vs_most_steps scores, its failed background writes (applied at :meth:`finish`),
        its warnings (each said once) and the messages of its unavailable metrics."""
        from pytest_diffbench.judge.convergence import REFERENCE_KEY
        from pytest_diffbench.judge.metrics import take_unavailable_messages

        take_unavailable_messages(output.get(UNAVAILABLE_KEY, []))
        self.sweeps.update({folder: frozenset(names) for folder, names in output.get(SWEEPS_KEY, {}).items()})
        self.reference.take(output.get(REFERENCE_KEY, {}))
        self._worker_failures += [WriteFailure(**failure) for failure in output.get(WRITE_FAILURES_KEY, [])]
        for warning in output.get(WARNINGS_KEY, []):
            self._warn(warning)

    def _score_reference(self, reference: "ReferenceScorer", result: CaseResult, image: "Image.Image | None") -> None:
        """Feed ``reference`` (:attr:`reference`, on the writer's thread); a failure is a warning,
        as the score is a derived one."""
        try:
            reference.finished(result, image)
        except Exception as exc:
            self.warnings.append(f"WARNING: diffbench could not score ssim_vs_most_steps of {result.nodeid} as it "
                                 f"finished ({type(exc).__name__}: {exc}); it is scored from the files at the end")

    def _finish_case(self, item: pytest.Item, dcase: "DiffbenchCase") -> CaseResult:
        """Judge the finished case and write what its verdict asks for; its result.

        The verdict (the baseline read and decoded once, the metrics, the gates) is made here, so
        pytest reports the case right. Without ``--diffbench-update``/``--diffbench-update-timing``
        the case's run-folder files (its PNG, encoded there, its record, its input images) go to
        :attr:`writer` and are written while the next case generates. With them every write is
        made here, in order, as a conflict with another run changes the verdict: the output is
        encoded once, written to the run folder, then the same bytes (never decoded again) to
        the baseline."""
        from pytest_diffbench.judge.lifecycle import BrokenBaseline, CaseInputs, StoredBaseline, judge
        from pytest_diffbench.store.baselines import BaselineError, BaselineStore
        from pytest_diffbench.store.files import encode_png
        from pytest_diffbench.store.paths import case_path, pin_key

        if dcase.image is None or dcase.config is None or dcase.measurement is None:
            message = f"{item.nodeid}: the test did not call diffbench.generate(); a diffbench case makes one image"
            return self.error_result(item, dcase.case, message)
        assert self.folder is not None, "diffbench runs cases only after the session has started"
        settings, config = self.settings, dcase.config
        machine = self.machine_info(dcase.device)
        pin = pin_key(settings.pin, {"device": config.device, "dtype": config.dtype, "device_name": machine.device_name,
                                     "torch": machine.torch, "diffusers": machine.diffusers, "platform": machine.platform})
        from pytest_diffbench.plugin.tolerance_source import case_tolerances

        applied = case_tolerances(self, item, pin, dcase.case.id)
        mixed = self._other_pipeline(item.nodeid, config.to_dict())
        if mixed:  # the other cases would be refused alike: stop (an xdist controller stops when the worker does)
            item.session.shouldstop = (f"diffbench: a resumed case of run {self.folder.run_id} ran with another "
                                       "pipeline than its earlier cases")
            return self.error_result(item, dcase.case, mixed).with_changes(config=config.to_dict(),
                                                                            config_hash=config.hash)
        store = BaselineStore(settings.baseline_dir, pin)
        case = case_path(item.nodeid)
        image_path, _ = store.paths(case)
        inputs = CaseInputs(
            run_id=self.folder.run_id, timestamp=_now(), nodeid=item.nodeid, case_id=dcase.case.id,
            config=config.to_dict(), config_hash=config.hash, prompt=config.prompt, image=dcase.image,
            measurement=dcase.measurement, machine=machine, tolerances=applied.tolerances,
            tolerance_source=applied.source, seed_plan=dcase.case.seed_plan, seed_index=dcase.case.seed_index,
            metric_modes={"lpips": settings.lpips}, device=dcase.device, strict_env=settings.strict_env,
            worker=self.worker, workers=self.workers, pin=pin, case=case,
            baseline_path=self._display(image_path), output_path=self._display(self.folder.image(case)),
        )
        sidecar_json = inputs.sidecar().to_json()
        if settings.update is None and not settings.update_timing:  # no baseline write: all of it in the background
            result = judge(inputs, _baseline_state(store, case)[0], None).result
            self._write_case_later(item.nodeid, case, dcase.image, sidecar_json, dcase.inputs.images)
            return result
        # An update writes in the foreground, the run folder's copy first (a conflict changes the
        # verdict); the output is encoded once, for the run folder and the baseline
        png = encode_png(dcase.image)
        self.folder.write_case(case, png, sidecar_json)
        self.folder.write_inputs(dcase.inputs.images)
        baseline, stored_png, stamp = _baseline_state(store, case)
        judgement = judge(inputs, baseline, settings.update, update_timing=settings.update_timing)
        result = judgement.result
        if judgement.sidecar is not None:
            if judgement.keeps_image and isinstance(baseline, StoredBaseline):
                written, pixels = stored_png, baseline.image
            else:
                written, pixels = png, dcase.image
            try:
                store.write(case, written, judgement.sidecar, keep_replaced_in=self.folder.replaced_dir, expected=stamp,
                            pixels=pixels)
            except BaselineError as exc:
                # Another run changed the pair since it was read (or it cannot be written): never
                # written over; the case is judged as without update against what is there now.
                now, _, _ = _baseline_state(store, case)
                said = isinstance(now, BrokenBaseline) and now.message == str(exc)  # a folder or link in the way
                note = "" if said else f"not {judgement.action.value}: {exc}"
                result = judge(inputs, now, None, note=note).result
        return result

    def _write_case_later(self, nodeid: str, case: str, image: "Image.Image", sidecar_json: str,
                          input_images: "Mapping[str, Image.Image]") -> None:
        """Hand the case's run-folder files to :attr:`writer`: its output image, encoded there,
        with its record, then its input images. A failure is the case's, named when the writer is drained."""
        from pytest_diffbench.store.files import encode_png

        folder = self.folder
        assert folder is not None

        def write_case() -> None:
            folder.write_case(case, encode_png(image), sidecar_json)

        self.writer.submit(nodeid, self._display(folder.image(case)), write_case)
        if input_images:
            self.writer.submit(nodeid, self._display(folder.inputs), functools.partial(folder.write_inputs, input_images))

    def _other_pipeline(self, nodeid: str, config: Mapping[str, Any]) -> str:
        """In a resumed run (without ``--diffbench-resume-changed``): why the case cannot join the
        run when the pipeline fields of its config (:data:`~pytest_diffbench.store.jobs.PIPELINE_FIELDS`:
        model, fingerprint, dtype, device, ...) differ from those all the run's earlier cases of its
        test share; "" otherwise (also when those earlier cases differ among themselves)."""
        if self.settings.resume_changed or not self._earlier:
            return ""
        from pytest_diffbench.store.paths import case_folder

        test = case_folder(nodeid)
        earlier = {json.dumps(pipeline_fields(r.config), sort_keys=True) for r in self._earlier.values()
                   if case_folder(r.nodeid) == test and r.config_hash}
        if len(earlier) != 1:
            return ""
        before, now = json.loads(earlier.pop()), pipeline_fields(config)
        fields = sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))
        if not fields:
            return ""
        assert self.folder is not None
        return (f"{nodeid}: this case ran with another pipeline than the cases of its test that run "
                f"{self.folder.run_id} finished before ({', '.join(fields)} differ), so the resumed run would mix "
                "them; start a new run, or pass --diffbench-resume-changed to keep both")

    def error_result(self, item: pytest.Item, case: Case, message: str) -> CaseResult:
        """The result of a case that could not finish (setup error, exception in the test)."""
        return CaseResult(
            run_id=self.folder.run_id if self.folder else "", timestamp=_now(), nodeid=item.nodeid, case_id=case.id,
            outcome=Outcome.ERROR, message=message, failure_text=message,
            config={"seed": case.seed, "sampler": case.sampler, "steps": case.steps, "cfg": case.cfg},
            worker=self.worker, workers=self.workers, seed_plan=case.seed_plan, seed_index=case.seed_index,
        )

    def as_reported(self, result: CaseResult, report: pytest.TestReport, call: "pytest.CallInfo[None]") -> CaseResult:
        """``result`` made to agree with pytest's report of a phase of its case: a case pytest
        counts xfailed is :attr:`~Outcome.XFAILED`; a case whose image passed but which pytest
        fails (a strict xfail that passed, a teardown error) is :attr:`~Outcome.ERROR` saying why.
        Otherwise ``result`` itself."""
        wasxfail = getattr(report, "wasxfail", None)
        if report.when == "call" and report.skipped and wasxfail is not None:
            why = f"xfailed ({wasxfail})" if wasxfail else "xfailed"
            return result.with_changes(outcome=Outcome.XFAILED, message=f"{why}: {result.message}" if result.message else why)
        if report.failed and result.passed:
            failure = (f"{type(call.excinfo.value).__name__}: {call.excinfo.value}" if call.excinfo is not None
                       else report.longreprtext)
            what = "teardown failed" if report.when == "teardown" else "the image passed but pytest failed the test"
            message = f"{what}: {' '.join(failure.split())}"
            return result.with_changes(outcome=Outcome.ERROR, message=message, failure_text=message)
        return result

    def add_result(self, result: CaseResult, *, same_attempt: bool = False) -> None:
        """Keep a finished case's result, and journal it: on the background writer's thread, after
        the case's files (see :mod:`pytest_diffbench.store.writer`).

        A case run again (pytest-rerunfailures) keeps one result, its last attempt's, with the
        number of attempts; with ``same_attempt`` (a teardown error after the call) it replaces the
        result of the attempt it belongs to. A journal that cannot be written any more (a full
        disk) becomes one warning; the run goes on and still writes results.csv at its end.

        A resumed case refused for another pipeline (:meth:`finish_case`, on this process or an
        xdist worker) did not finish: it is neither kept nor journaled, so the run stays resumable.
        """
        if self._refused_for_pipeline(result):
            if result.nodeid not in self._other_pipeline_cases:
                self._other_pipeline_cases.append(result.nodeid)
            return
        earlier = self._results.pop(result.nodeid, None)
        if earlier is not None:
            attempts = earlier.attempts if same_attempt else earlier.attempts + 1
            result = result.with_changes(attempts=max(result.attempts, attempts))
        self._results[result.nodeid] = result
        self._write_changed_jobs()
        if self._journal is not None:  # after the case's files, on the writer's thread: see store.writer
            self.writer.submit(result.nodeid, self._display(self._journal.path),
                               functools.partial(self._journal_line, self._journal, result))

    def add_skip(self, nodeid: str, reason: str) -> None:
        """Keep that pytest skipped the diffbench case ``nodeid`` (see :attr:`skipped`), and journal
        it (on the writer's thread, in order with the other cases' lines): the case is finished, so
        the run is not left paused for it, and a resume does not run it again."""
        self.skipped[nodeid] = reason
        self._results.pop(nodeid, None)
        if self._journal is not None:
            self.writer.submit(nodeid, self._display(self._journal.path),
                               functools.partial(self._journal_write, self._journal, lambda j: j.append_skip(nodeid, reason)))

    def _journal_line(self, journal: Journal, result: CaseResult) -> None:
        """Journal ``result`` (on the writer's thread, after the case's files): as an error naming
        the file when a write of the case failed. A journal that cannot be written any more (a
        full disk) becomes one warning and is closed; the run goes on and still writes
        results.csv at its end."""
        failure = self.writer.failure(result.nodeid)
        self._journal_write(journal, lambda j: j.append(_write_failed(result, failure) if failure is not None else result))

    def _journal_write(self, journal: Journal, write: Callable[[Journal], None]) -> None:
        """Run ``write`` on ``journal`` unless it failed before; a failure becomes the one warning
        of :meth:`_journal_line` and closes the journal."""
        if self._journal_failed:
            return
        try:
            write(journal)
        except OSError as exc:
            self._journal_failed = True
            self.warnings.append(f"WARNING: diffbench could not write the journal {journal.path} "
                                 f"({type(exc).__name__}: {exc}); a kill now would lose this run's finished cases")
            journal.close()

    def drain_writes(self) -> None:
        """Wait until the background writer wrote every case's files and journal line (before
        anything reads the run folder); each failed write makes its case's result an error."""
        self._take_write_failures(self.writer.drain(), journal=False)

    def _take_write_failures(self, failures: Sequence[WriteFailure], *, journal: bool) -> None:
        """Keep ``failures`` (the first of each case) and make each case's result an error naming
        the file; with ``journal`` (a worker's failures, which no journal line said yet) journal it."""
        failed = {failure.nodeid for failure in self.write_failures}
        for failure in failures:
            if failure.nodeid in failed:
                continue
            failed.add(failure.nodeid)
            self.write_failures.append(failure)
            result = self._results.get(failure.nodeid)
            if result is None:
                continue
            self._results[failure.nodeid] = result = _write_failed(result, failure)
            if journal and self._journal is not None and not self._journal_failed:
                try:
                    self._journal.append(result)
                except OSError:
                    pass  # the run's results.csv still says it; the case runs again on resume (no image)

    def _refused_for_pipeline(self, result: CaseResult) -> bool:
        """Whether ``result`` is :meth:`finish_case`'s refusal of a resumed case made by another
        pipeline: an error that carries its config (no other error does) that :meth:`_other_pipeline` refuses."""
        return (result.outcome is Outcome.ERROR and bool(result.config_hash)
                and bool(self._other_pipeline(result.nodeid, result.config)))

    def _display(self, path: Path) -> str:
        """``path`` relative to the rootdir, as results and messages show it."""
        try:
            return Path(path).resolve().relative_to(self.config.rootpath.resolve()).as_posix()
        except ValueError:
            return Path(path).as_posix()

    # -- session end ------------------------------------------------------------------------

    def finish(self) -> None:
        """Write the run's files (controller or single process only): results.csv and
        environment.json, then ``latest``, then every derived artifact on its own (a failing one
        becomes a warning). summary.md also goes to $GITHUB_STEP_SUMMARY when that is set. A run
        that ends with jobs left (Ctrl-C, ``-x``) gets :attr:`resume_hint`, the command that resumes it.

        A session that ran no case (``-k`` selecting nothing) removes its empty run folder, so
        ``latest`` keeps naming the last real run; so does a new run stopped before its first test
        (collection errors, Ctrl-C while collecting): its job list goes with it, as the run never
        began. A refused resume leaves the run's folder as it was.
        """
        self._restore_determinism()
        failures = self.writer.close()
        if self.is_worker:
            workeroutput = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:  # the controller's results, journal and scores take them
                from pytest_diffbench.judge.convergence import REFERENCE_KEY
                from pytest_diffbench.judge.metrics import unavailable_messages

                workeroutput[REFERENCE_KEY] = self.reference.handover()
                workeroutput[WARNINGS_KEY] = list(self.warnings)
                workeroutput[UNAVAILABLE_KEY] = unavailable_messages()
                if failures:
                    workeroutput[WRITE_FAILURES_KEY] = [dataclasses.asdict(failure) for failure in failures]
            return
        self._take_write_failures(failures, journal=False)
        self._take_write_failures(self._worker_failures, journal=True)
        if self.folder is None:
            return
        folder = self.folder
        if self._refused:
            self._close_journal()
            self.folder = None
            return
        if not self.tests_began:  # nothing ran: a new run never began, a resumed one stays as it was
            self._jobs_to_write = False
            if not self._earlier:
                folder.jobs.unlink(missing_ok=True)
        if self._other_pipeline_cases:
            self.warnings.append(self._other_pipeline_note(folder))
        if self._earlier:
            before = sum(1 for nodeid in self._earlier if nodeid not in self._results)
            self.warnings.append(f"diffbench: resumed run {folder.run_id}: {before} case{'' if before == 1 else 's'} "
                                 f"finished before, {len(self._results)} ran now")
        try:
            self._write_changed_jobs()
            if self.results or not folder.is_empty():
                self._write_run_files(folder)
        finally:
            self._close_journal()
        self.resume_hint = self._resume_hint(folder)
        if not self.results and folder.is_empty():
            folder.remove_empty()
            self.folder = None
            self.warnings.append("diffbench: no diffbench case ran, so no run folder was written (latest still names "
                                 "the last run that had cases)")

    def _restore_determinism(self) -> None:
        """Put back the settings --diffbench-deterministic replaced (a pytester run shares its process)."""
        if self._before_determinism is not None:
            from pytest_diffbench.run.determinism import restore_determinism

            restore_determinism(self._before_determinism)
            self._before_determinism = None

    def _resume_hint(self, folder: RunFolder) -> str | None:
        """The line naming the jobs left and the exact command that resumes the run (this
        session's arguments, ``--diffbench-resume=<run_id>`` in place of any resume flag); None
        when every job finished."""
        if self.jobs is None or not self.tests_began:
            return None
        done = {*(result.nodeid for result in self.results), *self.skipped}
        left = sum(1 for job in self.jobs if job.nodeid not in done)
        if not left:
            return None
        command = shlex.join(["pytest", *_without_resume(self.config.invocation_params.args),
                              f"--diffbench-resume={folder.run_id}"])
        return (f"diffbench: run {folder.run_id} paused with {left} of {len(self.jobs)} cases not run; "
                f"resume it with: {command}")

    def _other_pipeline_note(self, folder: RunFolder) -> str:
        """Why the cases :meth:`add_result` refused for another pipeline did not run, and how to go on."""
        count = len(self._other_pipeline_cases)
        return (f"diffbench: {count} resumed case{'' if count == 1 else 's'} of run {folder.run_id} ran with another "
                f"pipeline than its earlier cases (first: {self._other_pipeline_cases[0]}), so "
                f"{'it was' if count == 1 else 'they were'} refused and the run stopped; "
                f"{'it stays' if count == 1 else 'they stay'} to run: resume with the run's pipeline, or add "
                "--diffbench-resume-changed to the resume command to keep both, or start a new run")

    def _close_journal(self) -> None:
        """Close the journal, which ends the run's lock (see :mod:`pytest_diffbench.store.journal`)."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _write_run_files(self, folder: RunFolder) -> None:
        from pytest_diffbench.report.artifacts import write_artifacts
        from pytest_diffbench.run.identity import run_environment
        from pytest_diffbench.store.files import atomic_write_text
        from pytest_diffbench.store.results import sorted_results, write_results

        try:
            scored = self.reference.with_scores(sorted_results(self.results), self._pixels)
            self._results = {result.nodeid: result for result in scored}
        except Exception as exc:  # a derived score; the results are still written without it
            self.warnings.append(f"WARNING: diffbench could not score ssim_vs_most_steps: {type(exc).__name__}: {exc}")
        try:
            write_results(folder.results, [result.to_row() for result in self.results])
        except OSError as exc:  # a full disk: the journal still holds every finished case
            self.warnings.append(f"WARNING: diffbench could not write the run's record in {folder.path}: "
                                 f"{type(exc).__name__}: {exc.strerror or exc}; its journal keeps every finished case "
                                 f"(diffbench report {folder.run_id} writes the rest once there is room)")
            return
        environment: dict[str, Any] = {}
        try:  # the run's environment (git, versions, hooks' machine fields): its failure costs only environment.json
            environment = run_environment(run_id=folder.run_id, args=self.config.invocation_params.args,
                                          rootdir=self.config.rootpath, machines=[r.machine for r in self.results],
                                          threads=self._share_cpu_between_workers(),
                                          determinism=self.determinism.as_dict() if self.determinism else None)
            atomic_write_text(folder.environment, json.dumps(environment, indent=2, sort_keys=True) + "\n")
        except Exception as exc:
            self.warnings.append(f"WARNING: diffbench could not write {folder.environment.name} in {folder.path}: "
                                 f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}")
        try:
            folder.mark_latest()
        except OSError as exc:  # the run's record is written; only the pointer to it is missing
            self.warnings.append(f"WARNING: diffbench could not mark the run as latest in {folder.latest}: "
                                 f"{type(exc).__name__}: {exc}")
        artifacts = write_artifacts(folder, self.results, rootdir=self.config.rootpath,
                                    bundle_images=self.settings.bundle_images, environment=environment)
        self.warnings += artifacts.warnings
        self.bundle = artifacts.bundle
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary and artifacts.summary_markdown:  # GitHub Actions shows this file on the run's page
            self._append_step_summary(step_summary, artifacts.summary_markdown)

    def _append_step_summary(self, step_summary: str, markdown: str) -> None:
        """Append summary.md to ``$GITHUB_STEP_SUMMARY``; a path that cannot be appended to (a
        folder, a full disk, a missing folder) becomes one warning, the run's files are written."""
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(markdown)
        except OSError as exc:
            self.warnings.append(f"WARNING: diffbench could not append summary.md to $GITHUB_STEP_SUMMARY "
                                 f"({step_summary}): {type(exc).__name__}: {exc.strerror or exc}")

    def _pixels(self, result: CaseResult) -> Any:
        from pytest_diffbench.judge.metrics.images import to_rgb_array
        from pytest_diffbench.store.paths import case_path
        from PIL import Image

        assert self.folder is not None
        path = self.folder.image(case_path(result.nodeid))
        if not path.is_file():
            return None
        with Image.open(path) as image:
            return to_rgb_array(image)

    def summary_lines(self) -> list[str]:
        """Lines for pytest's terminal summary (see :func:`pytest_diffbench.plugin.terminal.summary_lines`)."""
        from pytest_diffbench.plugin.terminal import summary_lines

        return summary_lines(self)


#: pytest's options (``config.option`` names) of the modes that run no test: they list, plan or
#: show something (``--collect-only``, ``--setup-plan``, ``--setup-only``, which sets up fixtures
#: but calls no test, ``--fixtures``, ``--fixtures-per-test``, ``--markers``, ``--version``,
#: ``--help``), so a diffbench run claims no run folder for them.
NO_TEST_MODES = ("collectonly", "setupplan", "setuponly", "showfixtures", "show_fixtures_per_test", "markers",
                 "version", "help")


def runs_tests(config: pytest.Config) -> bool:
    """Whether this pytest session may call a test (no mode of :data:`NO_TEST_MODES` is on)."""
    return not any(getattr(config.option, mode, False) for mode in NO_TEST_MODES)


class MachineInfoError(Exception):
    """A ``pytest_diffbench_machine_info`` hook raised; the message names it (see :meth:`DiffbenchSession.machine_info`)."""


class _SweepsFromWorkers:
    """Registered on an xdist controller: each worker's :attr:`DiffbenchSession.sweeps`, which it
    hands over in its ``workeroutput`` when it ends (the controller collects nothing itself)."""

    def __init__(self, session: DiffbenchSession) -> None:
        self.session = session

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.session.from_worker(getattr(node, "workeroutput", {}))


def _without_resume(args: Sequence[str]) -> list[str]:
    """pytest's arguments without ``--diffbench-resume[=RUN_ID]`` (and the value argparse took
    for it from the next argument) and ``--diffbench-resume-changed``."""
    kept: list[str] = []
    skip_value = False
    for arg in map(str, args):
        if skip_value and not arg.startswith("-"):
            skip_value = False
            continue
        skip_value = arg == "--diffbench-resume"
        if arg != "--diffbench-resume-changed" and arg != "--diffbench-resume" and not arg.startswith("--diffbench-resume="):
            kept.append(arg)
    return kept


def _changes_note(run_id: str, changes: JobChanges) -> str:
    return (f"diffbench: run {run_id} resumed with --diffbench-resume-changed although its job list changed: "
            f"{changes.describe()}; its job list is now the cases collected now")


@functools.lru_cache(maxsize=256)
def _source_of(function: Any) -> str | None:
    """The source of a test function, read once for all the cases of its sweep; None when it
    cannot be read (a function made at run time)."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return None


def _write_failed(result: CaseResult, failure: WriteFailure) -> CaseResult:
    """``result`` made an error saying which file of the case could not be written and why."""
    message = failure.message()
    return result.with_changes(outcome=Outcome.ERROR, message=message, failure_text=message)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _baseline_state(store: "BaselineStore", case: str) -> "tuple[BaselineState, bytes, str]":
    """What the store holds for ``case`` (a readable pair, a broken one, or nothing), the PNG's
    bytes (b"" without a readable pair) and the stamp of the bytes it was read from, which a write
    then checks."""
    from pytest_diffbench.judge.lifecycle import BrokenBaseline, StoredBaseline

    found = store.read(case)
    if found.fault:
        return BrokenBaseline(found.fault), b"", found.stamp
    baseline = found.baseline
    if baseline is None:
        return None, b"", found.stamp
    return StoredBaseline(baseline.sidecar, baseline.image), baseline.png, found.stamp
