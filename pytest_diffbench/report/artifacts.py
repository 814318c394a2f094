"""Writing the derived artifacts of a run, each on its own.

The record of truth (results.csv, environment.json) and ``latest`` are written first by the
caller; then grids, summary.md, plot.png, report.html and the bundle, in that order. An artifact
that fails becomes one warning line naming it and the error, and the others are still written:
a broken figure never costs a run its results or changes pytest's exit status. The pytest
session and ``diffbench report`` share this one path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.bundle import write_bundle
from pytest_diffbench.report.grids import write_grids
from pytest_diffbench.report.html import render_report
from pytest_diffbench.report.plot import panels, speed_quality_png
from pytest_diffbench.report.summary import case_order, summary_markdown
from pytest_diffbench.store.files import atomic_write_bytes, atomic_write_text
from pytest_diffbench.store.run_folder import RunFolder


@dataclass
class Artifacts:
    """What :func:`write_artifacts` left: the summary text, the paths written, and a warning per
    artifact that failed."""

    summary_markdown: str = ""
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: CPU seconds of this process (``time.process_time``: steady on a busy machine, unlike the
    #: wall clock) each artifact's step took, by its name, in the order they ran (a summary.md
    #: written again after a failed bundle adds its time to the first).
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bundle(self) -> Path | None:
        return next((p for p in self.written if p.suffix == ".zip"), None)


def write_artifacts(folder: RunFolder, results: Sequence[CaseResult], *, rootdir: Path, bundle_images: str,
                    environment: Mapping[str, Any]) -> Artifacts:
    """Write every derived artifact of ``folder`` from ``results`` (see the module docstring).

    ``rootdir`` resolves the baseline paths the results hold relative to it; ``environment`` is
    the run's environment.json.
    """
    results = sorted(results, key=case_order)
    done = Artifacts()

    def summary(bundle_name: str | None = folder.bundle.name) -> Path:
        done.summary_markdown = summary_markdown(results, folder.run_id, bundle_name)
        atomic_write_text(folder.summary, done.summary_markdown)
        return folder.summary

    def plot() -> Path | None:
        if not panels(results):
            return None
        atomic_write_bytes(folder.plot, speed_quality_png(results, f"diffbench run {folder.run_id}"))
        return folder.plot

    def report() -> Path:
        atomic_write_text(folder.report, render_report(folder, results, environment))
        return folder.report

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("grids", lambda: write_grids(folder, rootdir, results, done.warnings)),
        (folder.summary.name, summary),
        (folder.plot.name, plot),
        (folder.report.name, report),
        ("the bundle", lambda: write_bundle(folder, results, bundle_images)),
    ]
    for name, step in steps:
        _attempt(done, folder, name, step)
    if folder.summary in done.written and folder.bundle not in done.written:
        # the bundle (written after summary.md, which it holds) failed: summary.md must not name it
        done.written.remove(folder.summary)
        _attempt(done, folder, folder.summary.name, lambda: summary(None))
    return done


def _attempt(done: Artifacts, folder: RunFolder, name: str, step: Callable[[], Any]) -> None:
    """Run one artifact's ``step``, adding what it wrote to ``done``; a failure becomes a warning
    naming it, since one artifact's failure must not cost the others (see the module docstring)."""
    start = time.process_time()
    try:
        written = step()
    except Exception as exc:
        done.warnings.append(f"WARNING: diffbench could not write {name} in {folder.path}: {type(exc).__name__}: {exc}")
        return
    finally:
        done.seconds[name] = done.seconds.get(name, 0.0) + time.process_time() - start
    done.written += written if isinstance(written, list) else [written] if written is not None else []
