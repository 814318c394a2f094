"""AnimateDiffPipeline (frames in ``.frames``) end to end, built tiny and offline (builders.py):
each case's output is a strip of its frames, baselined and rerun in another process; another
``num_frames`` and a scheduler key set in the fixture are caught as stale baselines."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Variant

BODY = 'diffbench.generate("a red cube", num_frames=2)'


@pytest.mark.subprocess
@pytest.mark.model
def test_animatediff_lifecycle_frames_and_scheduler(family_lifecycle: Any, project: Any) -> None:
    runs = family_lifecycle("animatediff", [
        Variant("plain", body=BODY),
        Variant("frames", field="video.frames", body=BODY, new_body=BODY.replace("2", "3")),
        Variant("spacing", field="scheduler.timestep_spacing", body=BODY,
                change='pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, timestep_spacing="trailing")'),
    ])
    plain = runs.result("plain")
    assert plain.setting("video")["frames"] == 2
    assert (plain.setting("width"), plain.setting("height")) == (64, 64)  # one frame's size
    from PIL import Image

    with Image.open(project.baseline_pair("test_case", module="test_plain")[0]) as strip:
        assert strip.size == (128, 64)  # two 64x64 frames, left to right
