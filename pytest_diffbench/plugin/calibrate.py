"""``--diffbench-calibrate=N``: measure each case's noise floor; ``diffbench_tolerance_from =
noise-floor``: gate with it.

With ``--diffbench-calibrate=N`` each diffbench case's test body runs more than once, each time
with a fresh :class:`~pytest_diffbench.run.case.DiffbenchCase` (the ``diffbench`` argument):

1. ``cold``: a pipeline timed without its warm-up first (a fresh image generator that skips it;
   not applicable to a pipeline that runs itself, such as a FakePipeline);
2. ``threads``: torch's CPU thread pool at another size (half, or 2 when it has 1 thread): in
   one process this is what another xdist worker count changes (see
   :mod:`pytest_diffbench.run.threads`); not applicable to a pipeline that runs itself;
3. N plain repeats, the last of which is the case as pytest runs it: judged against its
   baseline as usual, its image and result the run's.

A batch of one against the default batch is recorded as not applicable: diffbench makes one
image per call. The repeats' images are compared pair by pair and their timings measured
(:mod:`pytest_diffbench.judge.noise_floor`); the floors go into ``noise-floor.json`` beside the
baselines (:mod:`pytest_diffbench.store.noise_floor`), merged with what is there, when the run ends;
each case's floor is also journaled as it finishes (``noise-floor.json.pending.jsonl``), so a run
killed before its end leaves them for the next calibrate run (its resume), which merges them too
and says how many. The terminal summary prints the suggested tolerances. A noise-floor.json that is not a
noise floor is moved aside first (``noise-floor.json.corrupt-<n>``, never overwritten), and the
summary says so. Under xdist each worker
measures its cases and the floor rides on the case's test report to the controller, which
writes the file.

With ``diffbench_tolerance_from = noise-floor`` the terminal summary names the cases that had no
floor and were gated by the ini tolerances (:class:`UncalibratedGates`).

Other plugins' ``pytest_pyfunc_call`` hooks (async test runners) run every repeat; diffbench's
judging runs only on the last. Function-scoped fixtures are set up once for all repeats.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator

import pytest

from pytest_diffbench.judge.noise_floor import PLAIN, Floor, Repeat, measure_case, suggest
from pytest_diffbench.plugin.keys import CASE_KEY, RESULT_KEY
from pytest_diffbench.plugin.session import DiffbenchSession
from pytest_diffbench.plugin.tolerance_source import NO_FLOOR_SOURCE, NOISE_FLOOR, shown_path
from pytest_diffbench.store.noise_floor import (
    BrokenNoiseFloor,
    NoiseFloorError,
    NoiseFloors,
    noise_floor_path,
    read_noise_floors,
    set_aside,
    write_noise_floors,
)

if TYPE_CHECKING:
    from pytest_diffbench.run.case import DiffbenchCase

#: The module of diffbench's pytest hooks: its pytest_pyfunc_call judges a case (the last repeat only).
HOOKS_MODULE = "pytest_diffbench.plugin.hooks"
#: The attribute of a case's call report that carries its measured floor to the xdist controller.
REPORT_ATTRIBUTE = "diffbench_noise_floor"
#: Why a batch of one against the default batch is not measured.
BATCH_NOTE = "not applicable: diffbench makes one image per pipeline call (no batching yet)"
#: Why the cold and threads perturbations do not apply to a pipeline that runs itself.
SELF_RUN_NOTE = "not applicable: the pipeline runs itself (no diffbench warm-up, no torch threads)"


@dataclass(frozen=True)
class MeasuredCase:
    """A case's floor and where it goes in noise-floor.json: pin key, test node id, case id."""

    pin: str
    test: str
    case_id: str
    floor: Floor

    def to_transport(self) -> dict[str, Any]:
        return {"pin": self.pin, "test": self.test, "case": self.case_id, "floor": self.floor.as_dict()}

    @classmethod
    def from_transport(cls, data: dict[str, Any]) -> "MeasuredCase":
        return cls(str(data["pin"]), str(data["test"]), str(data["case"]), Floor.from_dict(data["floor"]))


MEASURED_KEY = pytest.StashKey[MeasuredCase]()
#: The suffix of the file, beside noise-floor.json, of the floors measured but not merged yet.
PENDING_SUFFIX = ".pending.jsonl"


def register_calibration(config: pytest.Config, session: DiffbenchSession) -> None:
    """At configure time, with ``--diffbench``: check noise-floor.json when a calibration writes it
    or the gates read it, and register :class:`Calibration` for ``--diffbench-calibrate`` and
    :class:`UncalibratedGates` for ``diffbench_tolerance_from = noise-floor``. A file that is not a
    noise floor is a UsageError (one line naming it), except in a calibration, which moves it aside
    (:func:`~pytest_diffbench.store.noise_floor.set_aside`; the controller, before any worker
    starts) and measures anew."""
    settings = session.settings
    if not settings.enabled or (settings.calibrate is None and settings.tolerance_from != NOISE_FLOOR):
        return
    notes = []
    try:
        path = noise_floor_path(settings.baseline_dir)
        try:
            read_noise_floors(path)
        except BrokenNoiseFloor as exc:
            if settings.calibrate is None:
                raise
            if not session.is_worker:
                notes.append(_set_aside_note(path, exc))
    except NoiseFloorError as exc:
        raise pytest.UsageError(f"diffbench: {exc}") from None
    if settings.calibrate is not None:
        calibration = Calibration(session, path)
        calibration.warnings += notes
        config.pluginmanager.register(calibration, "diffbench-calibrate")
    if settings.tolerance_from == NOISE_FLOOR:
        config.pluginmanager.register(UncalibratedGates(session), "diffbench-uncalibrated-gates")


def _set_aside_note(path: Path, broken: BrokenNoiseFloor) -> str:
    """Move the broken noise-floor.json ``path`` aside; the warning that says where it went. Raises
    NoiseFloorError (one line) when it cannot be moved."""
    try:
        kept = set_aside(path)
    except OSError as exc:
        raise NoiseFloorError(f"{broken.problem}; it could not be moved aside to measure anew ({type(exc).__name__}: "
                              f"{exc}); move or delete it") from None
    return (f"WARNING: diffbench calibrate: {broken.problem}; it is kept as {kept.name} beside it, and the floors were "
            "measured anew")


class Calibration:
    """The plugin of a ``--diffbench-calibrate=N`` run (see the module docstring)."""

    def __init__(self, session: DiffbenchSession, path: Path) -> None:
        self.session = session
        self.path = path
        assert session.settings.calibrate is not None, "registered for --diffbench-calibrate only"
        self.repeats: int = session.settings.calibrate
        #: What this process measured (the controller: every worker's too): pin -> test -> case -> floor.
        self.measured: dict[str, dict[str, dict[str, Floor]]] = defaultdict(lambda: defaultdict(dict))
        #: Each perturbation's notes over the measured cases (name -> distinct notes without figures).
        self.kinds: dict[str, set[str]] = defaultdict(set)
        self.floors: NoiseFloors | None = None
        self.warnings: list[str] = []
        #: Each case's floor as it is measured (one JSON line), beside noise-floor.json until the run's
        #: end merges them: a run killed before its end leaves them for the next calibrate run (its resume).
        self.pending = path.with_name(path.name + PENDING_SUFFIX)
        #: How many cases' floors of an earlier, killed run this run merged (not measured again).
        self.earlier_cases = 0

    # -- running the repeats --------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
        dcase = pyfuncitem.stash.get(CASE_KEY, None)
        if dcase is None:
            return (yield)
        repeats, notes = self._extra_repeats(pyfuncitem, dcase)
        try:
            return (yield)  # the last plain repeat: the case as pytest runs and diffbench judges it
        finally:
            self._measure(pyfuncitem, dcase, repeats, notes)

    def _extra_repeats(self, item: pytest.Function, judged: "DiffbenchCase") -> tuple[list[Repeat] | None, dict[str, str]]:
        """Run the cold, threads and all but the last plain repeats; their repeats and the
        perturbations' notes. None for the repeats when one failed (a warning says why)."""
        from pytest_diffbench.run.protocol import DiffbenchPipeline

        self_run = isinstance(judged.pipeline, DiffbenchPipeline)
        notes = {"cold": SELF_RUN_NOTE, "threads": SELF_RUN_NOTE} if self_run else {}
        notes["batch"] = BATCH_NOTE
        runs: list[tuple[str, DiffbenchCase]] = []
        try:
            if not self_run:
                runs.append(("cold", self._run_cold(item, judged)))
                runs.append(("threads", self._run_threads(item, judged, notes)))
            runs += [(PLAIN, self._run_once(item, judged, self._fresh(item, judged))) for _ in range(self.repeats - 1)]
        except Exception as exc:  # the last repeat runs on and reports it as the case's failure
            self.warnings.append(f"WARNING: diffbench calibrate: {item.nodeid}: a repeat raised {type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())}; no noise floor for this case")
            return None, notes
        repeats = []
        for label, dcase in runs:
            if dcase.image is None or dcase.measurement is None:
                return None, notes  # the test made no image: the last repeat reports it
            repeats.append(Repeat(label, dcase.image, dcase.measurement.seconds_per_image))
        if not self_run:
            cold = repeats[0]
            notes["cold"] = f"first call without warm-up: {cold.seconds:.4g} s per image"
        return repeats, notes

    def _fresh(self, item: pytest.Function, judged: "DiffbenchCase") -> "DiffbenchCase":
        return self.session.start_case(item, judged.case, judged.pipeline)

    def _run_once(self, item: pytest.Function, judged: "DiffbenchCase", dcase: "DiffbenchCase") -> "DiffbenchCase":
        """Call the test body with ``dcase`` as its ``diffbench`` argument (and in the item's
        stash) through every ``pytest_pyfunc_call`` but diffbench's own; the judged case is put
        back afterwards."""
        manager = item.config.pluginmanager
        judging = [plugin for plugin in manager.get_plugins() if getattr(plugin, "__name__", None) == HOOKS_MODULE]
        call = manager.subset_hook_caller("pytest_pyfunc_call", remove_plugins=[*judging, self])
        item.funcargs["diffbench"], item.stash[CASE_KEY] = dcase, dcase
        try:
            call(pyfuncitem=item)
        finally:
            item.funcargs["diffbench"], item.stash[CASE_KEY] = judged, judged
        return dcase

    def _run_cold(self, item: pytest.Function, judged: "DiffbenchCase") -> "DiffbenchCase":
        """The case through a fresh image generator that times its first call without a warm-up."""
        from pytest_diffbench.run.generation import ImageGenerator

        runner = ImageGenerator()
        runner.warm_up = False
        return self._run_once(item, judged, self.session.start_case(item, judged.case, judged.pipeline, runner))

    def _run_threads(self, item: pytest.Function, judged: "DiffbenchCase", notes: dict[str, str]) -> "DiffbenchCase":
        """The case with torch's CPU pool at another size (half of it, or 2 threads from 1)."""
        import torch

        before = torch.get_num_threads()
        other = before // 2 if before > 1 else 2
        torch.set_num_threads(other)
        try:
            dcase = self._run_once(item, judged, self._fresh(item, judged))
        finally:
            torch.set_num_threads(before)
        seconds = dcase.measurement.seconds_per_image if dcase.measurement else None
        timing = f": {seconds:.4g} s per image" if seconds is not None else ""
        notes["threads"] = f"torch on {other} CPU thread(s) instead of {before}{timing}"
        return dcase

    def _measure(self, item: pytest.Function, judged: "DiffbenchCase", repeats: list[Repeat] | None,
                 notes: dict[str, str]) -> None:
        """The case's floor from its repeats and the judged one, kept for its report; a floor that
        cannot be measured is a warning."""
        from pytest_diffbench.spec.video import config_frames

        result = item.stash.get(RESULT_KEY, None)
        if repeats is None or result is None or not result.pin or judged.image is None or judged.measurement is None \
                or judged.config is None:
            return
        everything = [*repeats, Repeat(PLAIN, judged.image, judged.measurement.seconds_per_image)]
        try:
            floor = measure_case(everything, prompt=judged.config.prompt, device=judged.device,
                                 modes={"lpips": self.session.settings.lpips},
                                 frames=config_frames(judged.config.to_dict()), perturbations=notes)
        except Exception as exc:  # a size mismatch, a required metric that cannot run
            self.warnings.append(f"WARNING: diffbench calibrate: {item.nodeid}: no noise floor: "
                                 f"{type(exc).__name__}: {' '.join(str(exc).split())}")
            return
        item.stash[MEASURED_KEY] = MeasuredCase(result.pin, result.test, judged.case.id, floor)

    # -- carrying the floors to the controller, writing them ---------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: "pytest.CallInfo[None]") -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "setup" and MEASURED_KEY in item.stash:
            del item.stash[MEASURED_KEY]  # an earlier attempt's (pytest-rerunfailures)
        measured = item.stash.get(MEASURED_KEY, None)
        if report.when == "call" and measured is not None:
            setattr(report, REPORT_ATTRIBUTE, measured.to_transport())
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if data is None:
            return
        measured = MeasuredCase.from_transport(data)
        self.measured[measured.pin][measured.test][measured.case_id] = measured.floor
        if not self.session.is_worker:  # durable as each case finishes: a killed run keeps its cases' floors
            try:
                with open(self.pending, "a", encoding="utf-8") as file:
                    file.write(json.dumps(measured.to_transport(), sort_keys=True, allow_nan=False) + "\n")
                    file.flush()
                    os.fsync(file.fileno())
            except (OSError, ValueError):
                pass  # the run's end writes this run's floors all the same
        for name, note in measured.floor.perturbations.items():
            self.kinds[name].add(note if note.startswith("not applicable") else "applied")

    def pytest_sessionfinish(self) -> None:
        """The controller (or single process) merges the measured floors into noise-floor.json."""
        if self.session.is_worker:
            return
        earlier = self._pending_floors()
        if not self.measured and not earlier:
            return
        floors: dict[str, dict[str, dict[str, Floor]]] = defaultdict(lambda: defaultdict(dict))
        for pin, tests in [*earlier.items(), *self.measured.items()]:  # this run's own last: they win
            for test, cases in tests.items():
                floors[pin][test].update(cases)
        try:
            try:
                self.floors = write_noise_floors(self.path, floors)
            except BrokenNoiseFloor as exc:  # broken during the run: kept aside, this run's floors written
                self.warnings.append(_set_aside_note(self.path, exc))
                self.floors = write_noise_floors(self.path, floors)
        except (NoiseFloorError, OSError) as exc:
            self.warnings.append(f"WARNING: diffbench calibrate: the noise floors were not written: "
                                 f"{type(exc).__name__}: {exc}")
            return
        self.pending.unlink(missing_ok=True)
        self.earlier_cases = sum(1 for pin, tests in earlier.items() for test, cases in tests.items()
                                 for case in cases if case not in self.measured.get(pin, {}).get(test, {}))

    def _pending_floors(self) -> dict[str, dict[str, dict[str, Floor]]]:
        """The floors an earlier calibrate run measured and journaled in :attr:`pending` but never
        merged into noise-floor.json (it was killed): pin -> test -> case -> floor. A line that
        cannot be read (the one a kill cut short) is skipped."""
        found: dict[str, dict[str, dict[str, Floor]]] = defaultdict(lambda: defaultdict(dict))
        try:
            text = self.pending.read_text(encoding="utf-8")
        except OSError:
            return found
        for line in text.splitlines():
            try:
                case = MeasuredCase.from_transport(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue
            found[case.pin][case.test][case.case_id] = case.floor
        return found

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = self.summary_lines()
        if lines:
            terminalreporter.section("diffbench noise floor")
            for line in lines:
                terminalreporter.write_line(line, yellow=line.startswith("WARNING"))

    def summary_lines(self) -> list[str]:
        """Each measured test's floor and suggested tolerances, the margins, and any warning."""
        lines = list(self.warnings)
        if self.floors is None:
            return lines
        cases = sum(len(tests) for pins in self.measured.values() for tests in pins.values())
        kinds = "; ".join(f"{name}: {', '.join(sorted(notes))}" for name, notes in sorted(self.kinds.items()))
        lines.append(f"{self.repeats} repeats of {cases} case(s), with perturbations ({kinds}); "
                     f"written to {shown_path(self.path, self.session.config.rootpath)}")
        if self.earlier_cases:
            lines.append(f"and the floors of {self.earlier_cases} case(s) an earlier calibrate run measured before "
                         "it was killed (finished before this resume)")
        for pin, tests in sorted(self.measured.items()):
            for test in sorted(tests):
                floor = self.floors.pins[pin][test].test
                figures = ", ".join(f"{name} {_figure(value)}" for name, value in sorted(floor.figures.items()))
                spread = "-" if floor.seconds_cv is None else f"{floor.seconds_cv:.1%}"
                lines.append(f"{test} [{pin}, {floor.cases} case(s)]: floor {figures}, seconds/image cv {spread}")
                suggested = ", ".join(f"{name} = {value:g}" for name, value in sorted(suggest(floor).items()))
                lines.append(f"    suggested: {suggested or 'none'}")
        lines.append("margins: twice the measured distance from identical (1 - SSIM, LPIPS, PSNR's squared error: "
                     "-3.01 dB), at least SSIM 0.005, LPIPS 0.01, PSNR one grey level (48.13 dB); "
                     "time_regression = max(0.05, 3 * sqrt(2) * cv)")
        lines.append(f"gate with them: diffbench_tolerance_from = {NOISE_FLOOR} in the ini file (a floor sets only "
                     "gates that are on: time_regression stays off unless the ini turns it on)")
        return lines


class UncalibratedGates:
    """With ``diffbench_tolerance_from = noise-floor``: the terminal summary names the cases that
    had no noise floor and were gated by the ini tolerances (their results' ``tolerance_source``),
    counted per test, the first :data:`SHOWN_TESTS` tests named."""

    #: How many tests the summary names.
    SHOWN_TESTS = 5

    def __init__(self, session: DiffbenchSession) -> None:
        self.session = session

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        line = self.summary_line()
        if line:
            terminalreporter.section("diffbench noise floor")
            terminalreporter.write_line(line, yellow=True)

    def summary_line(self) -> str | None:
        """The warning naming the cases gated without a floor; None when every case had one."""
        if self.session.is_worker:
            return None
        per_test: dict[str, int] = defaultdict(int)
        for result in self.session.results:
            if result.tolerance_source.startswith(NO_FLOOR_SOURCE):
                per_test[result.test] += 1
        if not per_test:
            return None
        cases = sum(per_test.values())
        tests = [f"{test} ({count} case{'s' if count != 1 else ''})" for test, count in sorted(per_test.items())]
        more = len(tests) - self.SHOWN_TESTS
        named = ", ".join(tests[:self.SHOWN_TESTS])
        if more > 0:
            named += f" and {more} more test{'s' if more != 1 else ''}"
        path = shown_path(noise_floor_path(self.session.settings.baseline_dir), self.session.config.rootpath)
        advice = ("the floors this calibration measures gate from the next run" if self.session.settings.calibrate
                  else f"measure {'them' if cases != 1 else 'it'} with --diffbench-calibrate=N")
        return (f"WARNING: diffbench: {cases} case{'s' if cases != 1 else ''} had no noise floor in {path} and "
                f"{'were' if cases != 1 else 'was'} gated by the ini tolerances (diffbench_tolerance_from = "
                f"{NOISE_FLOOR}): {named}; {advice}")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
