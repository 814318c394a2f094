"""``noise-floor.json``: the measured noise floors, beside the baselines, per pin key.

One file, ``<baseline_dir>/noise-floor.json``::

    {"format": 1,
     "pins": {"cpu-float32": {"examples/test_shapes.py::test_circle": {
         "test": {<floor>}, "cases": {"seed0-euler-20steps-cfg7.5": {<floor>}, ...}}}}}

where ``<floor>`` is :meth:`~pytest_diffbench.judge.noise_floor.Floor.as_dict`. A calibration
run merges what it measured into the file (:func:`write_noise_floors`): other pins', other
tests' and other cases' entries stay; a test's own floor is recomputed over all its stored
cases. Written atomically with sorted keys, so the same floors give the same bytes.

A file that is not a noise floor is never overwritten: a calibration run moves it aside
(:func:`set_aside`, ``noise-floor.json.corrupt-<n>``) and measures anew.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pytest_diffbench.judge.noise_floor import Floor, combine
from pytest_diffbench.store.files import PathEscapeError, atomic_write_text, inside

#: The file's name, in the baseline folder.
NOISE_FLOOR_FILE = "noise-floor.json"
#: The version of the file's layout.
FORMAT = 1


#: What a broken file's message advises; a calibration run keeps the file aside (:func:`set_aside`).
ANEW = (f"; rerun pytest --diffbench --diffbench-calibrate=N to measure it anew (the broken file is kept beside it as "
        f"{NOISE_FLOOR_FILE}.corrupt-<n>), or delete the file")


class NoiseFloorError(ValueError):
    """A noise-floor.json that cannot be read or used; the message (one line) names the file."""


class BrokenNoiseFloor(NoiseFloorError):
    """A noise-floor.json that cannot be read or is not a noise floor of this format. The message
    (one line) names the file, says what is wrong and advises :data:`ANEW`; ``problem`` is the
    message without the advice."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem + ANEW)
        self.problem = problem


@dataclass(frozen=True)
class TestFloors:
    """One test's floors: its own (over its cases) and each case's, by case id."""

    test: Floor
    cases: Mapping[str, Floor] = field(default_factory=dict)


@dataclass(frozen=True)
class NoiseFloors:
    """Every floor of a noise-floor.json: pin -> test node id -> :class:`TestFloors`."""

    pins: Mapping[str, Mapping[str, TestFloors]] = field(default_factory=dict)

    def lookup(self, pin: str, test: str, case_id: str) -> tuple[Floor, str] | None:
        """The floor that applies to a case and which it is (``case`` or ``test``): the case's own,
        else its test's; None when the pin has neither."""
        floors = self.pins.get(pin, {}).get(test)
        if floors is None:
            return None
        own = floors.cases.get(case_id)
        return (own, "case") if own is not None else (floors.test, "test")

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "pins": {
            pin: {test: {"test": floors.test.as_dict(), "cases": {case: floor.as_dict() for case, floor in floors.cases.items()}}
                  for test, floors in tests.items()}
            for pin, tests in self.pins.items()}}


def noise_floor_path(baseline_dir: Path) -> Path:
    """Where the noise floors of ``baseline_dir`` live. Raises NoiseFloorError when that is a
    symbolic link (diffbench never writes through links out of the baseline folder)."""
    try:
        return inside(Path(baseline_dir), NOISE_FLOOR_FILE)
    except PathEscapeError as exc:
        raise NoiseFloorError(f"{Path(baseline_dir) / NOISE_FLOOR_FILE}: {exc}") from None


def read_noise_floors(path: Path) -> NoiseFloors:
    """The floors in ``path``; none when it does not exist. Raises NoiseFloorError (one line
    naming ``path`` and what is wrong) for a file that is not a noise floor of this format."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return NoiseFloors()
    except (OSError, UnicodeDecodeError) as exc:
        raise BrokenNoiseFloor(f"{path} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("pins"), dict):
            raise ValueError(f"it is not a noise floor of format {FORMAT} (a mapping with 'format' and 'pins')")
        return NoiseFloors({str(pin): _tests(tests) for pin, tests in data["pins"].items()})
    except ValueError as exc:  # json.JSONDecodeError is one
        raise BrokenNoiseFloor(f"{path} is not a valid noise floor: {' '.join(str(exc).split())}") from None


def set_aside(path: Path) -> Path:
    """Move the (broken) file ``path`` to ``<path>.corrupt-<n>``, the first such name not taken,
    and return where it went: nothing is overwritten or lost. Raises OSError when it cannot be moved."""
    number = 1
    while True:
        kept = Path(f"{path}.corrupt-{number}")
        try:
            os.link(path, kept, follow_symlinks=False)  # fails when the name is taken: never overwrites
        except FileExistsError:
            number += 1
            continue
        except FileNotFoundError:
            raise
        except OSError:  # a folder, or a file system without hard links: renamed onto the free name
            if os.path.lexists(kept):
                number += 1
                continue
            os.rename(path, kept)
            return kept
        os.unlink(path)
        return kept


def _tests(tests: Any) -> dict[str, TestFloors]:
    if not isinstance(tests, dict):
        raise ValueError("a pin's entry is not a mapping of tests")
    found = {}
    for test, entry in tests.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("test"), dict) or not isinstance(entry.get("cases"), dict):
            raise ValueError(f"the entry of {test!r} is not a mapping with 'test' and 'cases'")
        try:
            cases = {str(case): Floor.from_dict(_mapping(floor)) for case, floor in entry["cases"].items()}
            found[str(test)] = TestFloors(Floor.from_dict(entry["test"]), cases)
        except ValueError as exc:
            raise ValueError(f"the entry of {test!r}: {exc}") from None
    return found


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("a case's floor is not a mapping")
    return value


def merged(floors: NoiseFloors, pin: str, measured: Mapping[str, Mapping[str, Floor]]) -> NoiseFloors:
    """``floors`` with ``measured`` (test node id -> case id -> floor) of ``pin`` merged in: each
    measured case replaces its old floor, every other entry stays, and each measured test's own
    floor is recomputed over all its cases (:func:`~pytest_diffbench.judge.noise_floor.combine`)."""
    tests = dict(floors.pins.get(pin, {}))
    for test, cases in measured.items():
        if not cases:
            continue
        earlier = tests.get(test)
        all_cases = {**(earlier.cases if earlier else {}), **cases}
        tests[test] = TestFloors(combine(all_cases.values()), dict(sorted(all_cases.items())))
    return NoiseFloors({**floors.pins, pin: dict(sorted(tests.items()))})


def write_noise_floors(path: Path, measured: Mapping[str, Mapping[str, Mapping[str, Floor]]]) -> NoiseFloors:
    """Merge ``measured`` (pin -> test node id -> case id -> floor) into the file at ``path``
    (atomically, sorted keys: the same floors give the same bytes) and return what it holds now.
    Runs of this user merging into the same baseline folder take turns (its baseline lock,
    :func:`~pytest_diffbench.store.baselines.pair_lock`). Raises NoiseFloorError for an existing
    file that is not a noise floor (it is left as it is) or a lock that cannot be taken, and
    OSError when it cannot be written."""
    # imported here: the baseline store imports Pillow, which a pytest run without --diffbench never needs
    from pytest_diffbench.store.baselines import BaselineError, pair_lock

    try:
        with pair_lock(Path(path).parent):  # another run merging at the same time waits: neither loses entries
            floors = read_noise_floors(path)
            for pin, tests in sorted(measured.items()):
                floors = merged(floors, pin, tests)
            atomic_write_text(path, json.dumps(floors.as_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")
    except BaselineError as exc:
        raise NoiseFloorError(f"{path} was not written: {exc}") from None
    return floors
