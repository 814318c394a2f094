"""pytest-diffbench: regression tests for diffusion pipelines.

``import pytest_diffbench as diffbench``, decorate a test with ``@diffbench.sweep(...)``, call
``diffbench.generate(prompt)`` in it, and run ``pytest --diffbench``.
"""

from pytest_diffbench.spec.sweep import sweep, tolerance

__version__ = "0.1.0"
__all__ = ["sweep", "tolerance", "__version__"]
