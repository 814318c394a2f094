"""The shipped diffbench-tiny model, its training data and its training script.

These tests import the repository's ``training`` package, which is not installed, and in neither
import mode is the repository root on sys.path. It goes there only while ``training`` itself is
imported: its modules are found through the package from then on, and a root left on sys.path
would let a stale ``*.egg-info`` there name other entry points to the pytest runs of other tests.
"""

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if "training" not in sys.modules:
    sys.path.insert(0, REPO_ROOT)
    try:
        import training  # noqa: F401
    finally:
        sys.path.remove(REPO_ROOT)
