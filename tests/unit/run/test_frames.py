"""A pipeline's output as one image (run.frames): a still as it is, a video as one PNG strip of
its frames, left to right (spec.video), cut back into the same frames; the one-line errors."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pytest
from PIL import Image

from pytest_diffbench.run.case import DiffbenchCase, SelfRunner
from pytest_diffbench.run.frames import OutputError, frame_strip, output_image, video_config
from pytest_diffbench.spec.measurement import Measurement
from pytest_diffbench.spec.sweep import expand_sweep, sweep
from pytest_diffbench.spec.video import config_frames, count_problem, frame_boxes, frame_size
from pytest_diffbench.store.files import encode_png
from pytest_diffbench.testing import FakePipeline


@dataclass
class ImagesOutput:
    images: Any


@dataclass
class FramesOutput:
    frames: Any


def frames_of(count: int, width: int = 24, height: int = 16) -> list[Image.Image]:
    """``count`` different pictures (FakePipeline's, one seed each)."""
    return [FakePipeline().draw("Euler", seed, {"width": width, "height": height}) for seed in range(count)]


def as_levels(frames: list[Image.Image]) -> np.ndarray:
    """The frames as one (frames, H, W, 3) array of values in [0, 1] (diffusers' output_type='np')."""
    return np.stack([np.asarray(frame, dtype=np.float32) / 255 for frame in frames])


def cut(strip: Image.Image, frames: int) -> list[bytes]:
    return [strip.crop(box).tobytes() for box in frame_boxes(strip.width, strip.height, frames)]


# -- stills: as before ------------------------------------------------------------------------


def test_a_still_is_its_one_image_and_one_frame():
    (picture,) = frames_of(1)
    assert output_image(ImagesOutput([picture])) == (picture, 1)
    assert output_image(([picture], None)) == (picture, 1)  # return_dict=False


@pytest.mark.parametrize("output", [ImagesOutput(np.zeros((1, 8, 8, 3))), ImagesOutput([]), object(), (None,)])
def test_a_still_that_is_not_a_pil_image_is_refused_in_one_line(output):
    with pytest.raises(OutputError, match=r"^the pipeline call did not return PIL images \(expected output.images\[0\] "
                                        r"to be a PIL.Image, or output.frames\[0\] a video's frames\); diffbench calls "
                                        "it with output_type='pil'$"):
        output_image(output)


def test_several_images_are_refused_in_one_line():
    with pytest.raises(OutputError, match="^the pipeline returned 2 images; diffbench compares one image per case$"):
        output_image(ImagesOutput(frames_of(2)))


# -- videos: one strip ------------------------------------------------------------------------


def test_a_videos_frames_lie_left_to_right_in_one_strip_and_cut_back_into_the_same_frames():
    frames = frames_of(5)
    strip, count = output_image(FramesOutput([frames]))
    assert count == 5 and strip.size == (5 * 24, 16) and strip.mode == "RGB"
    assert cut(strip, 5) == [frame.tobytes() for frame in frames]
    assert frame_size(*strip.size, 5) == (24, 16)
    reread = Image.open(io.BytesIO(encode_png(strip)))
    assert reread.tobytes() == strip.tobytes()  # lossless in the store's PNG


def test_numpy_torch_and_pil_frames_make_the_same_strip():
    import torch

    frames = frames_of(3)
    levels = as_levels(frames)
    pil, _ = output_image(FramesOutput([frames]))
    from_numpy, numpy_count = output_image(FramesOutput(levels[None]))
    from_torch, torch_count = output_image(FramesOutput(torch.from_numpy(levels).permute(0, 3, 1, 2)[None]))
    from_tuple, tuple_count = output_image(([frames],))  # AnimateDiff with return_dict=False
    assert numpy_count == torch_count == tuple_count == 3
    assert from_numpy.tobytes() == from_torch.tobytes() == from_tuple.tobytes() == pil.tobytes()
    uint8, _ = output_image(FramesOutput(np.stack([np.asarray(f) for f in frames])[None]))
    assert uint8.tobytes() == pil.tobytes()  # uint8 levels are taken as they are, not scaled again


def test_nan_in_array_frames_is_noted_like_a_nan_image_from_diffusers():
    from pytest_diffbench.run.generation import record_nonfinite

    levels = as_levels(frames_of(2))
    levels[1, 0, 0, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing else may leak out
        with record_nonfinite() as found:
            output_image(FramesOutput(levels[None]))
    assert found == ["numpy: invalid value encountered in cast"]


@pytest.mark.parametrize("output, message", [
    (FramesOutput([frames_of(2), frames_of(2)]),
     "the pipeline returned 2 videos; diffbench compares one video per case (leave num_videos_per_prompt at 1)"),
    (FramesOutput(np.zeros((2, 3, 8, 8, 3), dtype=np.float32)), "the pipeline returned 2 videos;"),
    (FramesOutput([[]]), "the pipeline returned a video without frames; diffbench compares at least one frame"),
    (FramesOutput([frames_of(1) + frames_of(1, width=16)]),
     "the pipeline returned frames of different sizes (16x16, 24x16); a video's frames must share one size"),
])
def test_a_video_that_cannot_be_one_strip_is_refused_in_one_line(output, message):
    with pytest.raises(OutputError) as excinfo:
        output_image(output)
    assert str(excinfo.value).startswith(message) and "\n" not in str(excinfo.value)


def torch_zeros(*shape: int) -> Any:
    import torch

    return torch.zeros(shape)


# The frames are made in the test: a torch tensor made here would import torch at collection.
@pytest.mark.parametrize("make_frames, message", [
    (lambda: [["a frame"]],
     "the pipeline's video frames are str, not PIL images; diffbench calls it with output_type='pil'"),
    (lambda: np.zeros((1, 3, 8, 8), dtype=np.float32),
     "the pipeline's video frames have shape (3, 8, 8), not (frames, H, W, C)"),
    (lambda: torch_zeros(1, 3, 5, 8, 8), "the pipeline's video frames have shape (3, 5, 8, 8), not (frames, C, H, W)"),
])
def test_frames_that_are_no_pictures_are_refused_in_one_line(make_frames, message):
    with pytest.raises(OutputError) as excinfo:
        output_image(FramesOutput(make_frames()))
    assert str(excinfo.value).startswith(message)


def test_frames_of_different_modes_make_an_rgb_strip():
    first, second = frames_of(2)
    strip = frame_strip([first.convert("L"), second])
    assert strip.mode == "RGB" and cut(strip, 2)[1] == second.tobytes()


# -- the layout and the config's record ---------------------------------------------------------


def test_frame_geometry_refuses_what_is_no_strip_of_that_many_frames():
    assert frame_boxes(30, 10, 3) == [(0, 0, 10, 10), (10, 0, 20, 10), (20, 0, 30, 10)]
    with pytest.raises(ValueError, match="^a 30x10 image is not a strip of 4 frames: its width is not a multiple of 4$"):
        frame_size(30, 10, 4)
    for frames in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="a frame count must be an int >= 1"):
            frame_size(30, 10, frames)  # type: ignore[arg-type]


def test_the_configs_video_record_gives_the_frame_count():
    assert config_frames({"seed": 0}) == 1 and config_frames({"video": {}}) == 1
    assert config_frames({"video": {"frames": 16, "fps": 8}}) == 16
    for bad in ({"frames": 0}, {"frames": "16"}, {"frames": True}, [16]):
        with pytest.raises(ValueError, match="^config field '?video"):
            config_frames({"video": bad})


class WithFps:
    def __call__(self, prompt: str, num_frames: int = 16, fps: int = 7, target_fps: int | None = None) -> None: ...


class WithoutFps:
    def __call__(self, prompt: str, num_frames: int = 16) -> None: ...


def test_the_video_record_holds_the_frames_and_the_fps_the_call_takes():
    assert video_config(WithFps(), 1, {}) == {}  # a still has none
    assert video_config(WithoutFps(), 8, {"num_frames": 8}) == {"frames": 8}
    assert video_config(WithFps(), 8, {}) == {"frames": 8, "fps": 7, "target_fps": None}
    assert video_config(WithFps(), 8, {"fps": 12}) == {"frames": 8, "fps": 12, "target_fps": None}


@pytest.mark.parametrize("name, output", [("num_images_per_prompt", "image"), ("num_videos_per_prompt", "video")])
def test_several_outputs_per_call_are_refused_before_generating(name, output):
    assert count_problem({name: 1}) == "" and count_problem({}) == ""
    assert count_problem({name: 2}) == (f"{name}=2 is not valid; diffbench compares one {output} per case, so {name} "
                                        f"must be 1 (or left out): sweep the seed for more {output}s")


# -- the case: one frame's size and the video record in the config -------------------------------


class ReturningVideo(FakePipeline):
    """A stand-in whose diffbench_generate returns ``image`` with a measurement of ``frames`` frames."""

    def __init__(self, image: Image.Image, frames: Any) -> None:
        super().__init__(extra_keywords=("num_frames",))
        self.image, self.frames = image, frames

    def diffbench_generate(self, sampler: str, seed: int, call_kwargs: Mapping[str, Any]) -> Any:
        return self.image, Measurement(0.1, frames=self.frames)


def video_case(image: Image.Image, frames: Any) -> DiffbenchCase:
    (case,) = expand_sweep(sweep(steps=2).mark.kwargs, max_cases=8)
    return DiffbenchCase(nodeid="t.py::test[x]", case=case, pipeline=ReturningVideo(image, frames), runner=SelfRunner(),
                         workflow_version="1")


def test_a_video_case_records_one_frames_size_and_its_frame_count():
    strip, count = output_image(FramesOutput([frames_of(3, width=24, height=16)]))
    dcase = video_case(strip, count)
    assert dcase.generate("a red cube", num_frames=3, width=24, height=16) is not None and dcase.config is not None
    assert (dcase.config.width, dcase.config.height, dcase.config.video) == (24, 16, {"frames": 3})
    assert dcase.config.to_dict()["video"] == {"frames": 3}
    (still,) = frames_of(1)
    plain = video_case(still, 1)
    plain.generate("a red cube")
    assert plain.config is not None and "video" not in plain.config.to_dict()  # a still's hash is unchanged


@pytest.mark.parametrize("frames, message", [
    (5, "a 72x16 image is not a strip of 5 frames: its width is not a multiple of 5"),
    (0, "the pipeline's Measurement.frames = 0 is not valid; it must be an int >= 1"),
])
def test_a_frame_count_that_does_not_fit_the_image_is_refused_in_one_line(frames, message):
    strip, _ = output_image(FramesOutput([frames_of(3, width=24, height=16)]))
    dcase = video_case(strip, frames)
    with pytest.raises(pytest.fail.Exception) as excinfo:
        dcase.generate("a red cube")
    assert excinfo.value.pytrace is False and str(excinfo.value.msg).startswith(f"t.py::test[x]: {message}")
    assert dcase.config is None
