"""Fixtures of the pipeline-family tests: the tiny builders (builders.py) and a lifecycle check.

Each family test writes a project of one test module per :class:`Variant` (one ``test_case``
each, so each module has its own baseline), runs ``pytest --diffbench --diffbench-update=all`` in
a child process, then rewrites the variants with their deliberate change and runs again: the
unchanged variants must pass with the same config hash, each changed one must be a
stale-baseline whose message names the changed config field on a line of its own. Two child
processes per family, whatever the number of changes. Every sidecar stays under
:data:`MAX_SIDECAR_BYTES` and every message under :data:`MAX_MESSAGE_BYTES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from pytest_diffbench.spec.outcomes import BaselineAction, Outcome
from pytest_diffbench.testing import DiffbenchRun

#: Upper bounds on a baseline sidecar and a case's message (inputs are digests, not pixels; a
#: stale-baseline message lists the changed fields, cut): before issue 11, 351 KB and 107 KB.
MAX_SIDECAR_BYTES = 16 * 1024
MAX_MESSAGE_BYTES = 4 * 1024
#: The module-level code every variant module starts with: ``ramp(shift)`` is a 64x64 RGB test
#: image (a colour ramp, ``shift`` moves one pixel's red value), ``halves()`` a left/right mask.
IMAGES = '''
import numpy as np
from PIL import Image


def ramp(shift=0):
    y, x = np.mgrid[0:64, 0:64]
    pixels = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    pixels[10, 10, 0] += shift
    return pixels


def halves(left=0):
    y, x = np.mgrid[0:64, 0:64]
    return Image.fromarray(np.where(x >= 32 + left, 255, 0).astype(np.uint8), mode="L")
'''


@dataclass(frozen=True)
class Variant:
    """One test module of a family project (``test_<name>.py``, one test ``test_case``).

    ``setup``: statements on ``pipe`` in the module's own ``diffbench_pipeline`` fixture, in both
    runs (None: the module uses the conftest's pipeline, unless ``change`` is set); ``change``:
    statements added after ``setup`` in the second run only; ``body`` the test's body in both
    runs, ``new_body`` the second run's. ``field``: the config path the second run's stale
    message must name (``scheduler.shift``); None when the variant must pass in both runs.
    ``refused``: instead, the second run must refuse the case (outcome ``error``) with one line
    holding this text. ``family``: the module fixture's family, when it is not the project's.
    """

    name: str
    field: str | None = None
    body: str = 'diffbench.generate("a red cube")'
    new_body: str | None = None
    setup: str | None = None
    change: str = ""
    sweep: str = "seeds=0, steps=2"
    family: str | None = None
    refused: str | None = None

    def source(self, builders: ModuleType, family: str, second: bool) -> str:
        """The module's source in the first or (``second``) the second run."""
        body = self.new_body if second and self.new_body is not None else self.body
        setup = "\n".join(part for part in (self.setup or "", self.change if second else "") if part)
        own = self.setup is not None or self.family is not None or (second and bool(self.change))
        head = builders.fixture_source(self.family or family, setup, scope="module") if own else ""
        test = "\n".join(["", "", f"@diffbench.sweep({self.sweep})", "def test_case(diffbench):",
                          *("    " + line for line in body.strip().splitlines())])
        return "import pytest_diffbench as diffbench\n" + head + IMAGES + test + "\n"


def printed(run: DiffbenchRun) -> str:
    """What pytest printed in ``run`` (stdout and stderr)."""
    return run.outcome.stdout.str() + "\n" + run.outcome.stderr.str()


@dataclass
class FamilyRuns:
    """The two runs of :func:`family_lifecycle`: ``made`` (the update) and ``again`` (the rerun)."""

    made: DiffbenchRun
    again: DiffbenchRun

    def result(self, name: str, second: bool = True) -> Any:
        """The result of variant ``name`` in the rerun (``second``) or the update."""
        return (self.again if second else self.made).result(f"test_{name}.py::")


def stale_line(message: str, field: str) -> str | None:
    """The part of a stale-baseline ``message`` that names ``field`` as a changed config path
    (``scheduler.shift``: ``scheduler.shift: <absent> -> 3.0``, also a nested path below it such as
    ``scheduler.shift.approx: values differ ...``), up to the end of its line or its ``;``."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(field)}(\.[\w.\[\]]+|\[[^\]]*\])*: [^;\n]*")
    match = pattern.search(message)
    return None if match is None else match.group(0)


@pytest.fixture
def family_lifecycle(project: Any, builders: ModuleType) -> Any:
    """``check(family, variants, extra=())``: the family's conftest, the variants' modules (and
    ``extra`` (module name, source) pairs, unchanged in both runs), the update run (every variant
    passes and creates its baseline), then the rerun with the changes: each unchanged variant
    passes with its first config hash, each changed one is a stale-baseline naming its field.
    Returns the :class:`FamilyRuns`; the ``extra`` modules' outcomes are the caller's to check."""

    def check(family: str, variants: list[Variant], extra: tuple[tuple[str, str], ...] = ()) -> FamilyRuns:
        project.pytester.makepyfile(**builders.project_files(family))

        def write(second: bool) -> None:
            modules = {f"test_{v.name}": v.source(builders, family, second) for v in variants}
            project.pytester.makepyfile(**modules, **dict(extra))

        write(second=False)
        made = project.run(update="all", subprocess=True)
        assert made.run_id is not None, printed(made)[-3000:]
        for variant in variants:
            first = made.result(f"test_{variant.name}.py::")
            assert (first.outcome, first.baseline_action) == (Outcome.PASSED, BaselineAction.CREATED), (
                variant.name, first.message, project.text(made.outcome)[-3000:])
        write(second=True)
        again = project.run(subprocess=True)
        assert again.run_id is not None, printed(again)[-3000:]
        problems = []
        for variant in variants:
            before, after = made.result(f"test_{variant.name}.py::"), again.result(f"test_{variant.name}.py::")
            if variant.refused is not None:
                if after.outcome is not Outcome.ERROR or variant.refused not in after.message or "\n" in after.message.strip():
                    problems.append(f"{variant.name}: expected a one-line refusal with {variant.refused!r}, got "
                                    f"{after.outcome.value}: {after.message[:600]}")
            elif variant.field is None:
                if (after.outcome, after.config_hash) != (Outcome.PASSED, before.config_hash):
                    problems.append(f"{variant.name}: expected passed, got {after.outcome.value}: {after.message[:600]}")
            elif after.outcome is not Outcome.STALE_BASELINE or stale_line(after.message, variant.field) is None:
                problems.append(f"{variant.name}: expected stale-baseline naming {variant.field}, got "
                                f"{after.outcome.value}: {after.message[:600]}")
        assert not problems, "\n".join(problems)
        sidecars = {path.name: path.stat().st_size for path in project.baselines.rglob("*.json")}
        assert max(sidecars.values()) <= MAX_SIDECAR_BYTES, sidecars
        messages = [len(result.message.encode()) for run in (made, again) for result in run.results]
        assert max(messages) <= MAX_MESSAGE_BYTES, max(messages)
        return FamilyRuns(made, again)

    return check


def sampler_module(accepted: list[str], refused: list[str], body: str = 'diffbench.generate("a red cube")') -> tuple[str, str]:
    """An extra module (``test_samplers``) with ``test_accepted`` swept over ``accepted`` sampler
    names and ``test_refused`` over ``refused`` (none when empty), each case calling ``body``."""
    tests = [f"@diffbench.sweep(seeds=0, steps=2, samplers={names!r})\ndef test_{kind}(diffbench):\n    {body}\n"
             for kind, names in (("accepted", accepted), ("refused", refused)) if names]
    return "test_samplers", "import pytest_diffbench as diffbench\n" + IMAGES + "\n\n" + "\n\n".join(tests)


def check_samplers(run: DiffbenchRun, family: str, accepted: list[str], refused: list[str]) -> None:
    """In ``run``: every accepted sampler's case passed (created or matched its baseline: seeded,
    the same image in another process); every refused one errored with one line naming the
    sampler, the scheduler ``family`` (``flow-matching``) and the samplers that work."""
    by_sampler = {(r.nodeid.split("::")[1].split("[")[0], r.setting("sampler")): r for r in run.results
                  if r.nodeid.startswith("test_samplers.py::")}
    problems = []
    for name in accepted:
        result = by_sampler.get(("test_accepted", name))
        if result is None or result.outcome is not Outcome.PASSED:
            problems.append(f"{name}: expected to pass, got {result and (result.outcome.value, result.message[:400])}")
    for name in refused:
        result = by_sampler.get(("test_refused", name))
        message = "" if result is None else result.message
        if (result is None or result.outcome is not Outcome.ERROR or "\n" in message.strip()
                or f"'{name}'" not in message or family not in message or "Samplers that work" not in message):
            problems.append(f"{name}: expected a one-line refusal naming it and {family}, got "
                            f"{result and (result.outcome.value, message[:400])}")
    if refused and "During handling of the above exception" in printed(run):
        problems.append("a refusal is printed with a chained exception ('During handling of the above exception')")
    assert not problems, "\n".join(problems)
