"""The vocabularies of a finished case: its :class:`Outcome` and what happened to its baseline."""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    """How one case ended; exactly one per case, in results.csv's ``outcome`` column."""

    PASSED = "passed"
    FAILED_QUALITY = "failed-quality"
    FAILED_SPEED = "failed-speed"
    FAILED_MEMORY = "failed-memory"
    MISSING_BASELINE = "missing-baseline"
    STALE_BASELINE = "stale-baseline"
    #: The baseline was made by another ``workflow_version``.
    VERSION_MISMATCH = "version-mismatch"
    #: ``--diffbench-strict-env``: the baseline was made on another device or software
    #: environment (device name, driver, CUDA, torch, diffusers, transformers, a hook's field).
    ENV_MISMATCH = "env-mismatch"
    #: The output cannot be a baseline: one flat colour (NaN decodes to black), non-finite
    #: values, or too small to score. Judged before any baseline is read or written.
    INVALID_OUTPUT = "invalid-output"
    ERROR = "error"
    #: The test is marked ``xfail`` and failed as expected (pytest counts it xfailed); the
    #: message says what failed.
    XFAILED = "xfailed"

    @property
    def passed(self) -> bool:
        return self is Outcome.PASSED


class BaselineAction(str, Enum):
    """What a run (``--diffbench-update``) or ``diffbench accept`` did to a case's baseline pair.

    One vocabulary for both: results.csv's ``baseline_action`` column and the lines the command
    prints.
    """

    #: Nothing was written (the column is empty).
    NONE = ""
    #: There was no baseline; the case's output became it.
    CREATED = "created"
    #: A readable baseline was replaced (its old pair is kept in the run folder).
    REFRESHED = "refreshed"
    #: An unreadable baseline (half a pair, broken sidecar, edited PNG) was replaced.
    REWRITTEN = "rewritten"
    #: ``--diffbench-update-timing``: the baseline kept its image and took this run's timing
    #: (its old sidecar is kept in the run folder).
    RETIMED = "retimed"
    #: ``diffbench accept``: the baseline already holds the run's image.
    UNCHANGED = "unchanged"
    #: ``diffbench accept``: the run's image is of another config than the baseline's.
    REFUSED = "refused"

    @property
    def wrote(self) -> bool:
        """True when the baseline pair was written."""
        return self in (BaselineAction.CREATED, BaselineAction.REFRESHED, BaselineAction.REWRITTEN,
                        BaselineAction.RETIMED)


class UpdateMode(str, Enum):
    """``--diffbench-update[=all|missing]``."""

    #: Write missing and unreadable baselines and refresh changed or failing ones.
    ALL = "all"
    #: Write only missing and unreadable baselines.
    MISSING = "missing"
