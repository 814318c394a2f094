"""The diffbench section of pytest's terminal summary.

What a run did, said in the terminal: the outcome counts, the speed table, where the run's files
are; when the run stopped with cases left (Ctrl-C, ``-x``), the command that resumes it; after ``--diffbench-update`` (or ``--diffbench-update-timing``) what happened to the
baselines (created, refreshed, rewritten, retimed, unchanged, not written, each with its cases when few);
for a test whose new cases have no baselines while baselines of the same test are not among
its sweep's cases, that hint (a changed sampler or step count leaves the old ones behind); for
cases without baselines that have baselines under another pin, that; and every warning once. Every line passes :func:`~pytest_diffbench.report.escape.terminal_text`.
"""

from __future__ import annotations

import shlex
import subprocess
from collections import Counter
from pathlib import Path
from typing import Iterable, Protocol

import pytest

from pytest_diffbench.judge.checks import SECONDS, VRAM, budget_checks
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.plugin.options import Settings
from pytest_diffbench.spec.outcomes import BaselineAction, Outcome, UpdateMode
from pytest_diffbench.store.run_folder import RunFolder
from pytest_diffbench.store.writer import WriteFailure

#: Up to this many cases the terminal summary lists every case; above it only the failing ones.
TABLE_MAX_ROWS = 30
#: Up to this many cases of one kind (created, refreshed, ...) are named; above it only counted.
LISTED_CASES = 10
#: The kinds of the baseline listing, in its order: what was written, then what was not.
UNCHANGED, NOT_WRITTEN = "unchanged", "not written"
KINDS = (BaselineAction.CREATED.value, BaselineAction.REFRESHED.value, BaselineAction.REWRITTEN.value,
         BaselineAction.RETIMED.value, UNCHANGED, NOT_WRITTEN)


class Summarised(Protocol):
    """What the summary reads of a run's session (:class:`~pytest_diffbench.plugin.session.DiffbenchSession`)."""

    config: pytest.Config
    settings: Settings
    folder: RunFolder | None
    is_worker: bool
    bundle: Path | None
    warnings: list[str]
    sweeps: dict[str, frozenset[str]]
    resume_hint: str | None
    write_failures: "list[WriteFailure]"

    @property
    def results(self) -> list[CaseResult]: ...


def summary_lines(session: Summarised) -> list[str]:
    """Lines for pytest's terminal summary (controller or single process): counts, the speed
    table, where the results are, the baseline listing after an update, the hint on unused
    baselines, notes and warnings. Control characters in them (an ANSI escape in a committed
    sidecar's machine field that reaches env_diff, a ``\\r`` in a case id) are shown escaped."""
    from pytest_diffbench.report.escape import terminal_text
    from pytest_diffbench.report.summary import case_order, terminal_table

    if session.is_worker:
        return []
    if session.folder is None:  # no run (--collect-only, diffbench off), or one without cases (its warnings say so)
        return [terminal_text(line) for line in session.warnings]
    results, folder, settings = session.results, session.folder, session.settings
    counts = Counter(result.outcome.value for result in results)
    shown = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "no cases ran"
    reruns = sum(result.attempts - 1 for result in results)
    if reruns:  # counted as pytest counts them: each attempt before the last is a rerun
        shown += f", {reruns} rerun"
    total = len(results)
    lines = [f"diffbench: {total} case{'' if total == 1 else 's'}: {shown}"]
    lines += [f"ERROR: {failure.message()} (pytest reported the case before this write; diffbench counts it an "
              "error and the run fails)" for failure in session.write_failures]
    listed = sorted(results, key=case_order)
    if total > TABLE_MAX_ROWS:  # a big sweep shows what needs attention; summary.md has all
        listed = [r for r in listed if not r.passed]
        left_out = total - len(listed)
        if left_out:  # all failing: every case is listed, nothing to point at
            lines.append(f"({left_out} passed case{'s' if left_out > 1 else ''} not listed; see summary.md)")
    if listed:
        lines += terminal_table(listed, among=results)
    if folder.results.is_file():  # not when it could not be written (its warning says why)
        lines.append(f"results: {folder.results}")
    if folder.summary.is_file():
        lines.append(f"summary: {folder.summary}")
    if session.bundle is not None:
        lines.append(f"bundle:  {session.bundle}")
    if settings.update is not None or settings.update_timing:
        lines += baseline_lines(results, settings.update, kept_in=folder.replaced_dir)
    lines += unused_baseline_lines(results, session.sweeps, settings.baseline_dir)
    lines += other_pin_lines(results, settings.baseline_dir)
    lines += unavailable_lines(results)
    env_changes = sorted({r.env_diff for r in results if r.env_diff})
    if env_changes:
        count = sum(1 for r in results if r.env_diff)
        lines.append(f"note: {count} baseline{'s were' if count > 1 else ' was'} made in another environment: "
                     + "; ".join(env_changes[:3]))
    if counts.get(Outcome.MISSING_BASELINE.value):
        lines.append("create missing baselines with: pytest --diffbench --diffbench-update=missing")
    lines += output_warning_lines(results)
    if session.resume_hint:
        lines.append(session.resume_hint)
    return [terminal_text(line) for line in lines + session.warnings]


def baseline_kind(result: CaseResult) -> str:
    """What an update run did to the case's baseline: its action when it wrote, else
    :data:`UNCHANGED` (the case passed against it) or :data:`NOT_WRITTEN` (the case failed)."""
    if result.baseline_action.wrote:
        return result.baseline_action.value
    return UNCHANGED if result.passed else NOT_WRITTEN


def baseline_lines(results: Iterable[CaseResult], update: UpdateMode | None, *, kept_in: Path) -> list[str]:
    """The listing of an update run: ``diffbench: baselines: 3 created, 1 refreshed, 17 unchanged``,
    then each kind's cases (node ids, at most :data:`LISTED_CASES` per kind, else a count), why
    failing cases were not written (after ``--diffbench-update``, one line per reason that applies,
    with its count: :data:`NOT_WRITTEN_REASONS`), and where the replaced pairs are kept."""
    from pytest_diffbench.report.summary import case_order

    ordered = sorted(results, key=case_order)
    by_kind: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for result in ordered:
        by_kind[baseline_kind(result)].append(result.nodeid)
    tally = ", ".join(f"{len(nodeids)} {kind}" for kind, nodeids in by_kind.items() if nodeids)
    lines = [f"diffbench: baselines: {tally or 'no case ran'}"]
    for kind, nodeids in by_kind.items():
        if len(nodeids) > LISTED_CASES:
            lines.append(f"  {kind + ':':<12} {len(nodeids)} cases (see baseline_action and outcome in results.csv)")
        else:
            lines += [f"  {kind + ':':<12} {nodeid}" for nodeid in nodeids]
    if by_kind[NOT_WRITTEN]:
        if update is UpdateMode.MISSING:
            lines.append("  not written: --diffbench-update=missing writes only missing and unreadable baselines; "
                         "review the failures above, then refresh them with --diffbench-update")
        elif update is None:
            lines.append("  not written: --diffbench-update-timing rewrites only the timing of baselines whose image "
                         "passes; see the failures above")
        else:
            reasons = Counter(_not_written_reason(r) for r in ordered if baseline_kind(r) == NOT_WRITTEN)
            lines += [f"  not written: {count} {reason}" for reason, count in sorted(reasons.items(), key=_reason_order)]
    if any(by_kind[action.value] for action in (BaselineAction.REFRESHED, BaselineAction.REWRITTEN, BaselineAction.RETIMED)):
        lines.append(f"  the replaced pairs are kept in {kept_in}")
    return lines


#: Why ``--diffbench-update`` did not write a failing case, by kind, in the listing's order.
NOT_WRITTEN_REASONS = (
    "errored (the test raised or never called diffbench.generate(), or a required metric could not run): "
    "there is no checked output to write; fix the error shown above",
    "with an invalid output (flat, non-finite or too small): such an output never becomes a baseline; see its reason above",
    "over an absolute budget (diffbench_max_seconds or diffbench_max_vram_mb): it fails with any baseline; "
    "raise the budget or make the case fit it",
    "slower than the baseline only: --diffbench-update does not rewrite a timing reference alone; if the new "
    "speed is expected, accept it with --diffbench-update-timing",
    "failed otherwise: see the failures above",
)


def _not_written_reason(result: CaseResult) -> str:
    """Which of :data:`NOT_WRITTEN_REASONS` kept ``--diffbench-update`` from writing the case."""
    error, invalid, budget, slowdown, other = NOT_WRITTEN_REASONS
    if result.outcome is Outcome.ERROR:
        return error
    if result.outcome is Outcome.INVALID_OUTPUT:
        return invalid
    if any(check.name in (SECONDS, VRAM) and check.passed is False for check in budget_checks(result)):
        return budget
    return slowdown if result.time_check == "failed" else other


def _reason_order(item: tuple[str, int]) -> int:
    return NOT_WRITTEN_REASONS.index(item[0])


def unused_baseline_lines(results: Iterable[CaseResult], sweeps: dict[str, frozenset[str]],
                          baseline_dir: Path) -> list[str]:
    """For each test with new cases (``missing-baseline``, or ``created`` by an update) whose
    stored baselines (same pin, PNG and sidecar pairs) include cases its sweep no longer makes: one
    hint naming them and how to review or remove them, then the files there without the other half
    of a pair (a stray PNG), named apart.

    "Not made by its sweep" is judged against every case the sweep expands to at collection
    (``sweeps``), not the cases that ran, so ``-k`` or a node id never makes a false hint. A test
    whose sweep is unknown (not collected by this run) or whose cases are named otherwise (another
    parametrization beside the sweep) gets none.
    """
    from pytest_diffbench.store.baselines import BaselineStore
    from pytest_diffbench.store.paths import case_folder, case_path

    tests: dict[tuple[str, str], list[CaseResult]] = {}
    for result in results:
        tests.setdefault((result.pin, case_folder(result.nodeid)), []).append(result)
    lines = []
    for (pin, folder), ran in sorted(tests.items()):
        new = [r for r in ran if r.outcome is Outcome.MISSING_BASELINE or r.baseline_action is BaselineAction.CREATED]
        names = sweeps.get(folder)
        if not pin or not new or names is None or any(case_path(r.nodeid).rsplit("/", 1)[1] not in names for r in ran):
            continue
        store = BaselineStore(baseline_dir, pin)
        unused = [name for name in store.stored_cases(folder) if name not in names]
        if unused:
            lines += _unused_hint(ran[0].nodeid.split("[", 1)[0], new, unused, baseline_dir / pin / folder)
            lone = [file for file in store.lone_files(folder) if file.rsplit(".", 1)[0] not in names]
            if lone:  # a stray PNG or sidecar: named, neither counted as a baseline nor offered for removal
                lines.append(f"  also there, without the other half of a pair (so no baseline): {_named(lone)}")
    return lines


def _unused_hint(test: str, new: list[CaseResult], unused: list[str], folder: Path) -> list[str]:
    """The hint's two lines: what is new and what went unused, then where to review them and the
    command that removes their pairs (named when few), with absolute paths as the rest of the
    summary shows them, so the command works from any folder: ``git rm`` when git has every one
    committed (:func:`_committed`), else ``rm``."""
    created = all(r.baseline_action is BaselineAction.CREATED for r in new)
    what = (f"{len(new)} new baseline{'s' if len(new) > 1 else ''} created" if created else
            f"{len(new)} new case{'s' if len(new) > 1 else ''} without baselines")
    count = len(unused)
    lines = [f"diffbench: {test}: {what}; {count} baseline{'s' if count > 1 else ''} of this test "
             f"{'were' if count > 1 else 'was'} not used ({_named(unused)}): did a sampler or step count change?"]
    remain = "the old baselines remain; " if created else ""
    files = [f"{name}{suffix}" for name in unused for suffix in (".png", ".json")]
    tool, quiet = ("git rm", " -q") if _committed(folder, files) else ("rm", "")
    where = folder.resolve()
    if count > LISTED_CASES:
        lines.append(f"  {remain}review them in {where}/ and remove the unused ones with {tool}")
    else:
        paths = " ".join(shlex.quote(str(where / file)) for file in files)
        lines.append(f"  {remain}review them in {where}/; remove them with: {tool}{quiet} -- {paths}")
    return lines


def _committed(folder: Path, files: list[str]) -> bool:
    """Whether every one of ``files`` (names in ``folder``) is committed in git's ``HEAD`` (one
    ``git ls-tree`` run in ``folder``), so ``git rm`` removes them; False outside a git work tree,
    without git, before the first commit, or when any is untracked or only staged."""
    try:
        listed = subprocess.run(["git", "ls-tree", "-z", "--name-only", "HEAD", "--", *files], cwd=folder,
                                capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return listed.returncode == 0 and len([name for name in listed.stdout.split(b"\0") if name]) == len(files)


def _named(names: list[str]) -> str:
    """The first :data:`LISTED_CASES` of ``names``, comma-separated, and how many more."""
    more = len(names) - LISTED_CASES
    return ", ".join(names[:LISTED_CASES]) + (f", and {more} more" if more > 0 else "")


def unavailable_lines(results: Iterable[CaseResult]) -> list[str]:
    """One WARNING per metric that was not computed for some case, with its whole advice (LPIPS:
    which file is missing and where it goes) or its exception's message (see
    :func:`~pytest_diffbench.judge.metrics.unavailable_advice`), once per run, whatever the number of cases."""
    from pytest_diffbench.judge.metrics import unavailable_advice

    first: dict[str, str] = {}
    for name, status in sorted((name, status) for r in results for name, status in r.metric_status.items()
                               if status.startswith("unavailable")):
        first.setdefault(name, status)
    return [f"WARNING: {_label(name)} was not computed: {unavailable_advice(name, status)}" for name, status in first.items()]


def other_pin_lines(results: Iterable[CaseResult], baseline_dir: Path) -> list[str]:
    """One line when cases without baselines under this run's pin have baselines under another pin
    folder (made on another device or dtype, or with another ``diffbench_pin``): a pin that differs
    is otherwise only "missing-baseline"."""
    from pytest_diffbench.store.baselines import BaselineStore
    from pytest_diffbench.store.paths import case_path

    missing = [r for r in results if r.outcome is Outcome.MISSING_BASELINE and r.pin]
    if not missing:
        return []
    try:
        pins = sorted(entry.name for entry in baseline_dir.iterdir() if entry.is_dir() and not entry.is_symlink())
    except OSError:
        return []
    found: dict[str, int] = {}
    for pin in pins:
        store = BaselineStore(baseline_dir, pin)
        count = sum(1 for r in missing if r.pin != pin and store.read(case_path(r.nodeid)).baseline is not None)
        if count:
            found[pin] = count
    if not found:
        return []
    where = ", ".join(f"{pin} ({count})" for pin, count in found.items())
    this = ", ".join(sorted({r.pin for r in missing}))
    return [f"diffbench: {len(missing)} case{'s' if len(missing) > 1 else ''} without baselines under pin {this} "
            f"{'have' if len(missing) > 1 else 'has'} baselines under another pin: {where}; run on the device and dtype "
            "they were made with (diffbench_pin names the pin folder), or create baselines for this pin with "
            "--diffbench-update=missing"]


def output_warning_lines(results: list[CaseResult]) -> list[str]:
    """One WARNING line counting the cases whose output is nearly one flat colour (results.csv's
    ``output_warning``), with the first such case and its reason; none when there are none."""
    from pytest_diffbench.report.summary import case_order

    warned = sorted((r for r in results if r.output_warning), key=case_order)
    if not warned:
        return []
    count = len(warned)
    return [f"WARNING: {count} case{'s have' if count > 1 else ' has'} a nearly flat output (see output_warning "
            f"in results.csv); {warned[0].nodeid}: {warned[0].output_warning}"]


def _label(metric_name: str) -> str:
    from pytest_diffbench.judge.metrics import REGISTRY

    metric = REGISTRY.get(metric_name)
    return metric.label if metric is not None else metric_name
