"""The tolerances a case is judged with, and where they came from (``diffbench_tolerance_from``).

The session asks :func:`case_tolerances` for every finished case. With the default
``diffbench_tolerance_from = ini`` the tolerances are the ini file's (and the built-in
defaults), over which the test's own (``sweep(tolerance=...)``, ``@diffbench.tolerance``) win.
With ``noise-floor`` the suggested tolerances of the case's measured noise floor (else its
test's), from ``noise-floor.json`` beside the baselines (see ``--diffbench-calibrate`` and
:mod:`pytest_diffbench.judge.noise_floor` for the margins), take the ini's place; the test's own
still win, and a case without a floor keeps the ini's. The source goes into results.csv's
``tolerance_source`` column and every failure message that shows a check.

This module imports neither the session nor the stash keys (the session imports it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import pytest

from pytest_diffbench.judge.noise_floor import suggest
from pytest_diffbench.judge.tolerances import INI_SOURCE, AppliedTolerances, Tolerances, apply_floor, with_explicit
from pytest_diffbench.plugin.options import Settings
from pytest_diffbench.spec.sweep import SWEEP_MARK, TOLERANCE_MARK
from pytest_diffbench.store.noise_floor import NoiseFloorError, noise_floor_path, read_noise_floors

#: ``diffbench_tolerance_from``'s value that takes the gates' tolerances from the noise floor.
NOISE_FLOOR = "noise-floor"
#: How the ``tolerance_source`` of a case gated by the ini tolerances for want of a floor begins.
NO_FLOOR_SOURCE = f"{INI_SOURCE}: no noise floor"


class TolerancesOfSession(Protocol):
    """What :func:`case_tolerances` needs of the diffbench session."""

    settings: Settings
    config: pytest.Config

    def tolerances_for(self, node: pytest.Item) -> Tolerances: ...


def explicit_tolerances(item: pytest.Item) -> frozenset[str]:
    """The names of the tolerances a test sets itself: ``sweep(tolerance=...)``'s and ``@diffbench.tolerance``'s."""
    sweep_mark = item.get_closest_marker(SWEEP_MARK)
    marker = item.get_closest_marker(TOLERANCE_MARK)
    from_sweep = (sweep_mark.kwargs.get("tolerance") or {}) if sweep_mark else {}
    return frozenset(from_sweep) | frozenset(marker.kwargs if marker else ())


def case_tolerances(session: TolerancesOfSession, item: pytest.Item, pin: str, case_id: str) -> AppliedTolerances:
    """The tolerances of the case ``case_id`` of ``item`` under ``pin`` and their source (see the
    module docstring). A noise-floor.json that cannot be read (checked when the run started, so
    changed since) fails the case in one line naming the file."""
    tolerances = session.tolerances_for(item)
    explicit = explicit_tolerances(item)
    if session.settings.tolerance_from != NOISE_FLOOR:
        return AppliedTolerances(tolerances, with_explicit(INI_SOURCE, explicit))
    try:
        path = noise_floor_path(session.settings.baseline_dir)
        floors = read_noise_floors(path)
    except NoiseFloorError as exc:
        problem = str(exc)
    else:
        shown = shown_path(path, session.config.rootpath)
        found = floors.lookup(pin, item.nodeid.split("[")[0], case_id)
        if found is None:
            return AppliedTolerances(tolerances, with_explicit(
                f"{NO_FLOOR_SOURCE} of this case or its test in {shown} (pin {pin}); "
                "measure it with --diffbench-calibrate=N", explicit))
        floor, which = found
        return apply_floor(tolerances, suggest(floor), explicit, f"noise floor of the {which} in {shown} (pin {pin})")
    pytest.fail(problem, pytrace=False)


def shown_path(path: Path, rootdir: Path) -> str:
    """``path`` relative to the rootdir when it is below it, else as it is."""
    try:
        return Path(path).resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return os.fspath(path)
