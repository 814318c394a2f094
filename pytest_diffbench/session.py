"""The diffbench session: what the pytest hooks hand off to.

It owns the settings, the run folder, the image generator and the records of finished cases,
expands sweeps, hands each finished case to :func:`pytest_diffbench.evaluation.evaluate_case`
(baseline lookup, update, comparison, gates) and writes the run's files at the end. The hooks in
:mod:`pytest_diffbench.plugin` only route pytest's events to it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pytest

from pytest_diffbench.files import atomic_write_text
from pytest_diffbench.options import Settings
from pytest_diffbench.sweep import SWEEP_MARK, TOLERANCE_MARK, Case, SweepError, expand_sweep
from pytest_diffbench.tolerances import Tolerances

if TYPE_CHECKING:
    from pytest_diffbench.case import DiffbenchCase
    from pytest_diffbench.generation import ImageGenerator

#: workerinput keys: xdist workers write into the controller's run folder.
RUN_ID_KEY = "diffbench_run_id"
RUN_DIR_KEY = "diffbench_run_dir"
#: Up to this many cases the terminal summary lists every case; above it only the failing ones.
TABLE_MAX_ROWS = 30


class DiffbenchSession:
    """State of one pytest process (controller or xdist worker) for diffbench."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.records: list[dict[str, Any]] = []
        self.run_id: str | None = None
        self.run_dir: Path | None = None
        self._generator: ImageGenerator | None = None
        self.bundle_path: Path | None = None
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        # From xdist's workerinput, not $PYTEST_XDIST_WORKER: a pytest started from inside an
        # xdist worker (pytester, subprocess) inherits that variable without being a worker.
        self.worker: str = str(workerinput.get("workerid", "main")) if workerinput is not None else "main"
        #: pytest processes sharing the machine's devices in this run (xdist's -n, else 1).
        self.workers: int = int(workerinput.get("workercount", 1)) if workerinput is not None else 1
        if workerinput is not None and RUN_DIR_KEY in workerinput:
            self.run_id, self.run_dir = workerinput[RUN_ID_KEY], Path(workerinput[RUN_DIR_KEY])
        elif settings.enabled and not self.is_worker:
            from pytest_diffbench.results import create_run_folder

            self.run_id, self.run_dir = create_run_folder(settings.output_dir)

    # -- collection -------------------------------------------------------------------------

    def expand(self, definition: pytest.Function) -> list[Case]:
        """The cases of a test; a test without a sweep has one default case."""
        mark = definition.get_closest_marker(SWEEP_MARK)
        self.tolerances_for(definition)  # an invalid tolerance is a collection error too
        if mark is None:
            return [Case()]
        if mark.args:
            raise SweepError("diffbench.sweep takes keyword arguments only, e.g. sweep(seeds=[0, 1])")
        return expand_sweep(mark.kwargs, max_cases=self.settings.max_cases)

    def tolerances_for(self, node: pytest.Item) -> Tolerances:
        """Ini defaults, overridden by the sweep's ``tolerance=`` and the tolerance marker."""
        tolerances = self.settings.tolerances
        sweep_mark = node.get_closest_marker(SWEEP_MARK)
        marker = node.get_closest_marker(TOLERANCE_MARK)
        from_sweep = dict(sweep_mark.kwargs.get("tolerance") or {}) if sweep_mark else {}
        from_marker = dict(marker.kwargs) if marker else {}
        both = sorted(set(from_sweep) & set(from_marker))
        if both:
            raise SweepError(f"tolerance {', '.join(both)} is set both in sweep(tolerance=...) and @diffbench.tolerance; set it once")
        try:
            tolerances = tolerances.merged(from_sweep, source="sweep(tolerance=...)")
            return tolerances.merged(from_marker, source="@diffbench.tolerance")
        except ValueError as exc:
            raise SweepError(str(exc)) from None

    def workflow_version_for(self, node: pytest.Item) -> str:
        mark = node.get_closest_marker(SWEEP_MARK)
        version = mark.kwargs.get("workflow_version") if mark else None
        return str(version) if version is not None else self.settings.workflow_version

    # -- running ----------------------------------------------------------------------------

    def start_case(self, item: pytest.Item, case: Case, pipeline: Any) -> "DiffbenchCase":
        from pytest_diffbench.case import DiffbenchCase
        from pytest_diffbench.generation import ImageGenerator

        if self._generator is None:
            self._generator = ImageGenerator()
            self._share_cpu_between_workers()
        return DiffbenchCase(nodeid=item.nodeid, case=case, pipeline=pipeline, generator=self._generator,
                             workflow_version=self.workflow_version_for(item))

    def _share_cpu_between_workers(self) -> None:
        """Give each xdist worker its share of the CPU cores for torch's thread pool.

        Every worker's torch would otherwise use all cores, and N workers spinning N x cores
        threads run several times slower than one. ``OMP_NUM_THREADS`` set by the user wins.
        """
        if not self.is_worker or "OMP_NUM_THREADS" in os.environ:
            return
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.workers))

    def finish_case(self, item: pytest.Item, dcase: "DiffbenchCase") -> tuple[dict[str, Any], str | None]:
        """Compare, gate, maybe write the baseline: the case's record, and its failure text
        when the outcome is not passed."""
        from pytest_diffbench.evaluation import evaluate_case

        if dcase.image is None:
            message = f"{item.nodeid}: the test did not call diffbench.generate(); a diffbench case makes one image"
            return self.error_record(item, dcase.case, message), message
        return evaluate_case(self, item, dcase)

    def error_record(self, item: pytest.Item, case: Case, message: str) -> dict[str, Any]:
        """The record of a case that could not finish (setup error, exception in the test)."""
        return self.base_record(item, case, outcome="error", message=message)

    def base_record(self, item: pytest.Item, case: Case, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "run_id": self.run_id,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "nodeid": item.nodeid,
            "test": item.nodeid.split("[")[0],
            "case_id": case.id,
            "seed": case.seed,
            "sampler": case.sampler,
            "steps": case.steps,
            "cfg": case.cfg,
            "worker": self.worker,
            "workers": self.workers,
        }
        record.update(fields)
        return record

    def add_record(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))

    # -- session end ------------------------------------------------------------------------

    def finish(self) -> Path | None:
        """Write results.csv, environment.json, summary.md, plot.png and the bundle, and mark the run as latest
        (controller or single process only; summary.md also goes to $GITHUB_STEP_SUMMARY when set).

        A session that ran no case (``--collect-only``, ``-k`` selecting nothing) removes its
        empty run folder instead, so ``latest`` keeps naming the last real run.
        """
        if self.is_worker or self.run_dir is None:
            return None
        if not self.records and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()
            self.run_dir = None
            return None
        from pytest_diffbench.convergence import add_reference_ssim
        from pytest_diffbench.identity import run_environment
        from pytest_diffbench.reports import write_reports
        from pytest_diffbench.results import ENVIRONMENT_FILE, mark_latest, write_results

        add_reference_ssim(self.run_dir, self.records)
        path = write_results(self.run_dir, self.records)
        environment = run_environment(run_id=self.run_id or "", args=self.config.invocation_params.args,
                                      rootdir=self.config.rootpath, records=self.records)
        atomic_write_text(self.run_dir / ENVIRONMENT_FILE, json.dumps(environment, indent=2, sort_keys=True) + "\n")
        reports = write_reports(self.run_dir, self.run_id or "", self.records, self.settings.bundle_images,
                                self.config.rootpath, environment)
        self.bundle_path = reports.bundle
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:  # GitHub Actions shows this file on the run's page
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(reports.summary_markdown)
        mark_latest(self.settings.output_dir, self.run_id or "")
        return path

    def sorted_records(self) -> list[dict[str, Any]]:
        return sorted(self.records, key=lambda record: record["nodeid"])

    def summary_lines(self) -> list[str]:
        """Lines for pytest's terminal summary: counts, the speed table, where the results are, warnings."""
        from pytest_diffbench.summary import terminal_table

        if self.run_dir is None or self.is_worker:
            return []
        counts = Counter(record["outcome"] for record in self.records)
        shown = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "no cases ran"
        total = len(self.records)
        lines = [f"diffbench: {total} case{'' if total == 1 else 's'}: {shown}"]
        shown_records = self.sorted_records()
        if total > TABLE_MAX_ROWS:  # a big sweep shows what needs attention; summary.md has all
            shown_records = [r for r in shown_records if r["outcome"] != "passed"]
            lines.append(f"({total - len(shown_records)} passed cases not listed; see summary.md)")
        if shown_records:
            lines += terminal_table(shown_records)
        lines += [f"results: {self.run_dir / 'results.csv'}", f"summary: {self.run_dir / 'summary.md'}"]
        if self.bundle_path is not None:
            lines.append(f"bundle:  {self.bundle_path}")
        unavailable = sorted({r["lpips_status"] for r in self.records if str(r.get("lpips_status", "")).startswith("unavailable")})
        lines += [f"WARNING: LPIPS was not computed: {status.removeprefix('unavailable: ')}" for status in unavailable]
        env_changes = sorted({r["env_diff"] for r in self.records if r.get("env_diff")})
        if env_changes:
            count = sum(1 for r in self.records if r.get("env_diff"))
            lines.append(f"note: {count} baseline{'s were' if count > 1 else ' was'} made in another environment: "
                         + "; ".join(env_changes[:3]))
        if counts.get("missing-baseline"):
            lines.append("create missing baselines with: pytest --diffbench --diffbench-update=missing")
        return lines
