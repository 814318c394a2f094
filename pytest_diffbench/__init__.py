"""pytest-diffbench: regression tests for diffusion pipelines.

``import pytest_diffbench as diffbench``, decorate a test with ``@diffbench.sweep(...)``, call
``diffbench.generate(prompt)`` in it, and run ``pytest --diffbench``. A ``diffbench_pipeline``
fixture that returns ``diffbench.two_stage(base, refiner, handoff=0.8)`` runs a base and its
refiner for each case (imports no torch until a case runs).
"""

from pytest_diffbench.run.stages import two_stage
from pytest_diffbench.spec.sweep import sweep, tolerance

__version__ = "0.1.0"
__all__ = ["sweep", "tolerance", "two_stage", "__version__"]
