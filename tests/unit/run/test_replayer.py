"""The Replayer on the built-in model, in this process: a config's own VAE is put in, one that
cannot be loaded is one line, a deterministic bundle turns the switch on before any pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_diffbench.run.determinism import current_determinism, restore_determinism

pytestmark = pytest.mark.model

CONFIG: dict[str, Any] = {"model": "diffbench/diffbench-tiny", "workflow": "StableDiffusionPipeline", "seed": 0,
                          "sampler": "Euler", "steps": 2, "cfg": 7.5, "width": 64, "height": 64,
                          "prompt": "a red circle on a blue background", "negative_prompt": None, "dtype": "float32",
                          "device": "cpu", "vae": "diffbench/diffbench-tiny", "pipeline_kwargs": {}}


def no_inputs(name: str) -> bytes:
    raise KeyError(name)


def test_a_recorded_vae_of_its_own_is_put_in_and_one_that_cannot_be_loaded_is_one_line(tmp_path: Path) -> None:
    from pytest_diffbench.run.pipelines import load_tiny_pipeline
    from pytest_diffbench.run.replay import Replayer, ReplayRefused

    own = load_tiny_pipeline().vae
    own.register_to_config(scaling_factor=own.config.scaling_factor * 2)  # another VAE: other pixels
    own.save_pretrained(tmp_path / "vaes" / "brighter")
    replayer = Replayer(no_inputs, model_root=tmp_path)
    plain = replayer.regenerate(CONFIG)
    swapped = replayer.regenerate({**CONFIG, "vae": "vaes/brighter"})
    assert not [note for note in plain.notes + swapped.notes if note.startswith("vae ")]
    assert plain.image.tobytes() != swapped.image.tobytes()
    with pytest.raises(ReplayRefused, match=r"^the recorded VAE 'no/such/vae' cannot be loaded with "):
        replayer.regenerate({**CONFIG, "vae": "no/such/vae"})


def test_a_deterministic_bundle_turns_the_switch_on_before_any_pipeline() -> None:
    from pytest_diffbench.run.replay import Replayer

    before = current_determinism()
    try:
        Replayer(no_inputs, model_root=Path("."), deterministic=True)
        assert current_determinism().deterministic_algorithms is True
    finally:
        restore_determinism(before)


@pytest.mark.parametrize("option, shown", [
    (None, "the case ran on cuda:99 and is replayed there, but this machine has no such device"),
    ("cuda:99", "--device cuda:99 asks for cuda:99, but this machine has no such device"),
])
def test_a_device_this_machine_lacks_says_where_the_case_ran_and_where_it_is_replayed(tmp_path: Path, option, shown) -> None:
    import torch

    from pytest_diffbench.run.replay import Replayer

    with pytest.raises(ValueError) as raised:
        Replayer(no_inputs, model_root=tmp_path, device=option)._load("m", "W", torch.device("cuda:99"), torch.float32)
    assert str(raised.value).startswith(shown)
