"""Fixtures of the end-to-end tests (child processes on the built-in models, LPIPS, CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def torch_home_with_alexnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TORCH_HOME holding stand-in (random, seeded) AlexNet weights under torchvision's file
    name, where LPIPS looks for them; no download."""
    import torch
    import torchvision

    from pytest_diffbench.judge.metrics.lpips import ALEXNET_CHECKPOINT

    home = tmp_path_factory.mktemp("torch-home")
    path = home / "hub" / "checkpoints" / ALEXNET_CHECKPOINT
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return home
