"""The stash keys the hooks and fixtures share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.plugin.session import DiffbenchSession

if TYPE_CHECKING:
    from pytest_diffbench.run.case import DiffbenchCase

SESSION_KEY = pytest.StashKey[DiffbenchSession]()
CASE_KEY = pytest.StashKey["DiffbenchCase"]()
RESULT_KEY = pytest.StashKey[CaseResult]()
#: The fixture a sweep parametrizes.
CASE_FIXTURE = "_diffbench_case"
