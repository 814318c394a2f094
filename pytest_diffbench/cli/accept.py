"""``diffbench accept``: promote a finished run's output images to baselines, without generating.

For each chosen case the run folder holds the output image and ``configs/<case>.json``, the full
sidecar a baseline of it gets; both go through
:meth:`~pytest_diffbench.store.baselines.BaselineStore.write`, the one writer
``--diffbench-update`` uses too, so an accepted baseline is byte for byte what an update would
have written from the same run. What happened to each case is a
:class:`~pytest_diffbench.spec.outcomes.BaselineAction`, the vocabulary of results.csv's
``baseline_action`` column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable, Sequence

from pytest_diffbench.cli.collected import FIX, collected_nodeids
from pytest_diffbench.cli.keywords import keyword_filter
from pytest_diffbench.cli.runs import baseline_image, load_results, reading, resolve_run, run_file
from pytest_diffbench.cli.settings import CliSettings, CommandError
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.escape import terminal_text
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome
from pytest_diffbench.spec.sidecar import Sidecar, SidecarError
from pytest_diffbench.store.baselines import BaselineError, BaselineStore
from pytest_diffbench.store.files import PathEscapeError, sha256_bytes
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder

#: The actions ``accept`` can report, in the order of its closing tally.
ACTIONS = (BaselineAction.CREATED, BaselineAction.REFRESHED, BaselineAction.REWRITTEN,
           BaselineAction.UNCHANGED, BaselineAction.REFUSED)
REGENERATE = "regenerate it with pytest --diffbench --diffbench-update"
#: Why a case the current test files do not collect is refused, and what to do.
UNCOLLECTED = ("the current test files do not collect this case (its test, sweep or file changed since the run), so "
               "no run would use its baseline; accept a run of the current tests, or pass --allow-uncollected")

#: How ``--allow-uncollected`` marks a case it accepted although the current test files do not collect it.
NOT_COLLECTED = "(not collected by the current tests)"


@dataclass(frozen=True)
class Accepted:
    """What ``accept`` did to one case's baseline, and a detail for the user (a path or a reason)."""

    nodeid: str
    action: BaselineAction
    detail: str
    #: Accepted although the current test files do not collect the case (``--allow-uncollected``).
    uncollected: bool = False

    def line(self) -> str:
        """The line ``accept`` prints for the case: the action, the node id and the detail, and
        :data:`NOT_COLLECTED` for an uncollected case."""
        return f"{self.action.value:<9} {self.nodeid}: {self.detail}{f' {NOT_COLLECTED}' if self.uncollected else ''}"


def select(results: Sequence[CaseResult], *, failed_only: bool, keywords: Sequence[str]) -> list[CaseResult]:
    """The results to accept: not passed ones with ``failed_only``; with ``keywords`` (pytest ``-k``
    expressions, see :mod:`pytest_diffbench.cli.keywords`), those whose node id matches one of them.
    Raises CommandError for an expression pytest cannot parse."""
    matches = keyword_filter(keywords)
    return [result for result in results if (not failed_only or not result.passed) and matches(result.nodeid)]


def accept_case(folder: RunFolder, baseline_dir: Path, result: CaseResult,
                collected: Callable[[], frozenset[str] | None] | None = None, *,
                allow_uncollected: bool = False) -> Accepted:
    """Promote one case's output to its baseline under the pin the run recorded for it.

    Refused (and nothing written) when the case's output was invalid (a flat or tiny image), the run
    has no image or record of the case, the record is unreadable or disagrees with results.csv, the
    current baseline is of another config, the recorded pin is not one folder name, a path would
    leave the baseline folder or the run folder (``..``, a symbolic link), the current test files
    do not collect the case (``collected()``: the node ids they do, or None when unknown; a
    ``collected`` of None skips the check) and ``allow_uncollected`` is false, or writing fails.
    With ``allow_uncollected`` such a case is accepted and marked
    (:attr:`Accepted.uncollected`). Raises :class:`CommandError` when ``collected()`` does (a
    test file that cannot be collected).
    """
    def refused(reason: str) -> Accepted:
        return Accepted(result.nodeid, BaselineAction.REFUSED, reason)

    if result.outcome is Outcome.INVALID_OUTPUT:
        return refused(f"its output is not a valid baseline: {result.message}")
    case = case_path(result.nodeid)
    try:
        image_path, config_path = run_file(folder, folder.image(case)), run_file(folder, folder.config(case))
        kept = run_file(folder, folder.replaced_dir)
    except CommandError as exc:
        return refused(str(exc))
    missing = [path.name for path in (image_path, config_path) if not path.is_file()]
    if missing:
        return refused(f"the run has no {' and no '.join(missing)} for it (outcome {result.outcome.value}): "
                       f"{image_path if not image_path.is_file() else config_path} does not exist")
    if not result.pin:
        return refused("results.csv records no baseline pin for it")
    try:
        baseline_image(baseline_dir, result)
    except PathEscapeError as exc:
        return refused(str(exc))
    try:
        sidecar = Sidecar.from_json(reading(config_path, lambda: config_path.read_text(encoding="utf-8")),
                                    require_image_sha256=False)
        png = reading(image_path, image_path.read_bytes)
    except CommandError as exc:
        return refused(str(exc))
    except SidecarError as exc:
        return refused(f"its record {config_path} {exc}")
    if result.config_hash and sidecar.config_hash != result.config_hash:
        return refused(f"its record {config_path} is of config {sidecar.config_hash[:12]} but results.csv says "
                       f"{result.config_hash[:12]}")
    nodeids = collected() if collected is not None else None
    uncollected = nodeids is not None and result.nodeid not in nodeids
    if uncollected and not allow_uncollected:
        return refused(UNCOLLECTED)
    store = BaselineStore(baseline_dir, result.pin)
    found = store.read(case)
    current, broken = found.baseline, found.fault
    if current is not None and current.sidecar.config_hash != sidecar.config_hash:
        return refused(f"the baseline is for config {current.sidecar.config_hash[:12]}, the run's output for "
                       f"{sidecar.config_hash[:12]}; the case changed, {REGENERATE}")
    if current is not None and current.sidecar.image_sha256 == sha256_bytes(png):
        return Accepted(result.nodeid, BaselineAction.UNCHANGED, str(current.image_path), uncollected)
    try:
        written = store.write(case, png, sidecar, keep_replaced_in=kept, expected=found.stamp)
    except BaselineError as exc:  # a conflict with a run that wrote the pair meanwhile, a path, a failed write
        return refused(str(exc))
    if broken:
        action, detail = BaselineAction.REWRITTEN, f"{written.image_path} (the old pair was unreadable: {broken})"
    elif current is not None:
        action, detail = BaselineAction.REFRESHED, f"{written.image_path} (the old pair is kept in {kept})"
    else:
        action, detail = BaselineAction.CREATED, str(written.image_path)
    return Accepted(result.nodeid, action, detail, uncollected)


def command_accept(settings: CliSettings, run: str, *, failed_only: bool, keywords: Sequence[str],
                   allow_uncollected: bool = False) -> int:
    """Accept the chosen cases of the run (a run killed before its end: those its journal holds);
    print one line per case as it is done, then a tally. Exit status 1 when any case was refused.
    A case the current test files do not collect is refused unless ``allow_uncollected``: then it
    is accepted, its line says so and the tally counts it; a collection that fails is then one
    note and the cases are accepted unmarked.

    Raises CommandError when the baseline folder is not a folder, or a test file of the chosen
    cases cannot be collected.
    """
    folder = resolve_run(settings.output_dir, run)
    chosen = select(load_results(folder), failed_only=failed_only, keywords=keywords)
    if not chosen:
        print("no case of the run matches; nothing changed")
        return 0
    if settings.baseline_dir.exists() and not settings.baseline_dir.is_dir():
        raise CommandError(f"diffbench_baseline_dir {settings.baseline_dir} is not a folder; "
                           "name a folder (it is made when missing)")
    @cache
    def collected() -> frozenset[str] | None:
        try:
            return collected_nodeids(settings.rootdir, settings.inipath,
                                     {result.nodeid.split("::", 1)[0] for result in chosen})
        except CommandError as exc:
            if not allow_uncollected:
                raise
            print(terminal_text(f"note: {str(exc).removesuffix(f'; {FIX}')}; accepting without marking the cases they do not collect"))
            return None

    done = []
    for result in chosen:
        done.append(accept_case(folder, settings.baseline_dir, result, collected, allow_uncollected=allow_uncollected))
        print(terminal_text(done[-1].line()))
    tally = Counter(a.action for a in done)
    closing = ", ".join(f"{tally[action]} {action.value}" for action in ACTIONS if tally[action])
    uncollected = sum(a.uncollected for a in done)
    if uncollected:
        closing += f"; {uncollected} of them not collected by the current tests (no run uses those baselines)"
    print(closing)
    return 1 if any(a.action is BaselineAction.REFUSED for a in done) else 0
