"""pytest-diffbench: regression tests for diffusion pipelines.

``import pytest_diffbench as diffbench``, decorate a test with ``@diffbench.sweep(...)``, call
``diffbench.generate(prompt)`` in it, and run ``pytest --diffbench``. A ``diffbench_pipeline``
fixture that returns ``diffbench.two_stage(base, refiner, handoff=0.8)`` runs a base and its
refiner for each case (imports no torch until a case runs). ``diffbench.seed_plan("name", n=8)``
gives named seeds, the same on every machine, for ``sweep(seeds=...)``.
"""

from pytest_diffbench.run.stages import two_stage
from pytest_diffbench.spec.seeds import SeedPlan, seed_plan
from pytest_diffbench.spec.sweep import sweep, tolerance

__version__ = "0.1.0"
__all__ = ["sweep", "tolerance", "seed_plan", "SeedPlan", "two_stage", "__version__"]
