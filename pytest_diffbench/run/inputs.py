"""Inputs are data, not config: the images and tensors given to ``diffbench.generate()``.

:func:`prepare_inputs` takes the keywords of one ``generate()`` call and returns, for every
keyword whose value is a PIL image, a numpy array or a torch tensor, or holds some in lists,
tuples or mappings (``ip_adapter_image=[a, b]``, ``added_cond_kwargs={"image_embeds": t}``):

* the value the pipeline gets (see the conversion rules below);
* its record in the frozen config: a small digest, never the pixels themselves;
* the images to save once per digest in the run folder (``inputs/<name>``).

Conversion rules (an *image keyword* is one whose name ends in ``image`` or ``images``:
``image``, ``mask_image``, ``control_image``, ``ip_adapter_image``, ...):

* A PIL image, under any keyword, is an image.
* Under an image keyword, a numpy array of shape ``HxW``, ``HxWxC`` or ``NxHxWxC`` (channels
  last, C = 1, 3 or 4) or a torch tensor of shape ``CxHxW`` or ``NxCxHxW`` (channels first,
  C = 1 or 3) is an image (``N`` images: a list of them). Its values: ``uint8`` 0-255, ``bool``
  (False black, True white), or floats in [0, 1] (read as ``round(value * 255)``: 8 bits per
  channel, as in a PNG). Any other dtype, a float outside [0, 1] (beyond
  :data:`RANGE_SLACK`), NaN or inf is refused with one line naming the keyword.
* Every image goes to the pipeline as a PIL image: mode ``L`` under a keyword containing
  ``mask``, ``RGB`` otherwise (an alpha channel is dropped, a grey image gets three equal
  channels). This is what diffusers makes of a PIL image itself (a uint8 array, which diffusers
  does not rescale, would give wrong images; an RGBA image given to img2img would be taken for
  latents), so a PIL image, a uint8 array and a float array of one picture give one image.
* Any other array or tensor (a 4-channel tensor under ``image``: a refiner's latents; image
  embeddings in ``added_cond_kwargs``) goes to the pipeline unchanged: data, not a picture.
  Floats must be finite.

Records (JSON, in the config's ``pipeline_kwargs``; a list of them for a list):

* An image: ``{"sha256": ..., "size": [width, height], "mode": "RGB", "name": "<16 hex>.png"}``,
  the SHA-256 of the decoded pixels after conversion (the line ``<mode> <w>x<h>`` and the raw
  bytes, row by row, as :func:`pytest_diffbench.store.baselines.pixels_sha256` does for RGB), so a
  PNG file and an array of the same pixels record alike. ``name`` is its file under the run
  folder's ``inputs/``.
* Float data: ``{"array": "torch"|"numpy", "shape": [...], "dtype": "float32", "~values": {"mean",
  "rms", "sketch", "rtol"}}``. The ``~values`` summary is compared by value within its relative
  tolerance ``rtol`` (:data:`VALUES_RTOL`: 1e-3 for float32 and float64) and left out of the
  config hash (see :func:`pytest_diffbench.spec.config.exact_part`), so another thread count,
  which changes the last bits of latents, never makes a baseline stale, while a real change is
  caught. ``sketch`` is :data:`SKETCH_SIZE` random projections of the
  values (signs from a fixed integer hash, the same on every machine): the relative distance
  between two sketches estimates the relative L2 distance between the tensors.
* Integer or bool data: ``{"array", "shape", "dtype", "sha256"}``, compared exactly.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from pytest_diffbench.spec.config import APPROX_KEY, DEFAULT_VALUES_RTOL

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

#: Random projections in a float tensor's ``~values`` summary.
SKETCH_SIZE = 16
#: How far outside [0, 1] a float image may stray (round-off) before it is refused; it is clipped.
RANGE_SLACK = 1e-6
#: The relative tolerance of a float tensor's ``~values`` by dtype (others: 1e-3): about four
#: times the rounding of half the elements by one unit in the last place, so a change of thread
#: count passes and a change of 1% (0.1% for 32 and 64 bits) is caught.
VALUES_RTOL = {"float16": 4e-3, "bfloat16": 3e-2}
#: Hex digits of the SHA-256 in an input's file name.
NAME_DIGITS = 16
#: Channel counts of an image array: numpy (channels last) and torch (channels first).
NUMPY_CHANNELS = (1, 3, 4)
TORCH_CHANNELS = (1, 3)


class InputError(ValueError):
    """An input ``generate()`` cannot take; the message is one line naming the keyword."""


@dataclass
class PreparedInputs:
    """What :func:`prepare_inputs` made of one call's keywords."""

    #: Every keyword, with the value the pipeline gets (images converted, the rest unchanged).
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    #: The record of each keyword that held images, arrays or tensors (see the module docstring).
    records: dict[str, Any] = field(default_factory=dict)
    #: The images to save in the run folder's ``inputs/``, by file name (one per digest).
    images: dict[str, "Image.Image"] = field(default_factory=dict)


def prepare_inputs(kwargs: Mapping[str, Any]) -> PreparedInputs:
    """Convert and record the image-like values of ``kwargs`` (see the module docstring).

    Values that are no image, array or tensor, and hold none in their lists, tuples or
    mappings, are passed through unchanged and get no record. Raises :class:`InputError` (one line naming the
    keyword) for an array or tensor that cannot be read as the module docstring says.
    """
    prepared = PreparedInputs()
    for name, value in kwargs.items():
        found = _walk(name, name, value, prepared)
        prepared.call_kwargs[name] = value if found is None else found[0]
        if found is not None:
            prepared.records[name] = found[1]
    return prepared


def _walk(where: str, keyword: str, value: Any, prepared: PreparedInputs) -> tuple[Any, Any] | None:
    """(value for the pipeline, record) of ``value`` when it is, or holds at any depth of lists,
    tuples and mappings, an image, array or tensor (``added_cond_kwargs={"image_embeds": t}``,
    ``ip_adapter_image=[a, b]``); None when it holds none. Inside a mapping, each key is the
    keyword its value is read under (an ``image`` key holds an image)."""
    if _is_array_like(value):
        return _prepare(where, keyword, value, prepared)
    if isinstance(value, (list, tuple)):
        items = [_walk(f"{where}[{i}]", keyword, item, prepared) for i, item in enumerate(value)]
        if all(found is None for found in items):
            return None
        pairs = [(item, item) if found is None else found for item, found in zip(value, items)]
        calls = [call for call, _ in pairs]
        return (tuple(calls) if isinstance(value, tuple) else calls), [record for _, record in pairs]
    if isinstance(value, Mapping):
        found_in = {key: _walk(f"{where}.{key}", str(key), item, prepared) for key, item in value.items()}
        if all(found is None for found in found_in.values()):
            return None
        entries = {key: (value[key], value[key]) if found is None else found for key, found in found_in.items()}
        return {key: call for key, (call, _) in entries.items()}, {key: record for key, (_, record) in entries.items()}
    return None


def _prepare(where: str, keyword: str, value: Any, prepared: PreparedInputs) -> tuple[Any, Any]:
    """(value for the pipeline, record) of one image, array or tensor; images are added to
    ``prepared.images``."""
    from PIL import Image

    mask = "mask" in keyword.lower()
    if isinstance(value, Image.Image):
        return _image(value, mask, prepared)
    array, kind = _as_numpy(value)
    images = _image_arrays(where, keyword, array, kind)
    if images is None:
        return value, _data_record(where, array, kind, str(value.dtype).removeprefix("torch."))
    converted = [_image(Image.fromarray(_to_uint8(where, pixels)), mask, prepared) for pixels in images]
    if array.ndim == 4:  # a batch: a list of images
        return [call for call, _ in converted], [record for _, record in converted]
    return converted[0]


def _is_array_like(value: Any) -> bool:
    """A PIL image, a numpy array or a torch tensor (torch looked for only when it is imported)."""
    import numpy as np
    from PIL import Image

    if isinstance(value, (Image.Image, np.ndarray)):
        return True
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _as_numpy(value: Any) -> "tuple[np.ndarray, str]":
    """(the values as a numpy array, "numpy" or "torch"); a torch tensor is copied to the CPU,
    low-precision floats (float16, bfloat16) widened to float32 for reading."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value, "numpy"
    tensor = value.detach().cpu()
    if tensor.is_floating_point() and tensor.dtype.itemsize < 4:
        return tensor.float().numpy(), "torch"
    return tensor.numpy(), "torch"


def _image_arrays(where: str, keyword: str, array: "np.ndarray", kind: str) -> "list[np.ndarray] | None":
    """The images of ``array`` as channels-last arrays (one per batch item), or None when it is
    data (not under an image keyword, or not of an image's shape). Raises InputError for a
    uint8 array of no image shape under an image keyword (it could only be pixels)."""
    if not _is_image_keyword(keyword):
        return None
    import numpy as np

    if kind == "numpy":
        if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in NUMPY_CHANNELS):
            return [array]
        if array.ndim == 4 and array.shape[3] in NUMPY_CHANNELS:
            return list(array)
    else:
        if array.ndim == 3 and array.shape[0] in TORCH_CHANNELS:
            return [np.moveaxis(array, 0, -1)]
        if array.ndim == 4 and array.shape[1] in TORCH_CHANNELS:
            return [np.moveaxis(item, 0, -1) for item in array]
    if array.dtype == np.uint8:
        layout = "HxW, HxWxC or NxHxWxC with C = 1, 3 or 4" if kind == "numpy" else "CxHxW or NxCxHxW with C = 1 or 3"
        raise InputError(f"generate({where}=...): a uint8 {_kind_name(kind)} of shape {_shape(array)} is not an image; "
                         f"give an image's shape ({layout}) or a PIL image")
    return None


def _is_image_keyword(keyword: str) -> bool:
    return keyword.lower().endswith(("image", "images"))


def _to_uint8(where: str, pixels: "np.ndarray") -> "np.ndarray":
    """``pixels`` (HxW or HxWxC) as uint8, HxW for one channel. Raises InputError for a dtype
    other than uint8, bool and float, for NaN or inf, and for floats outside [0, 1]."""
    import numpy as np

    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    if pixels.dtype == np.bool_:
        return np.where(pixels, 255, 0).astype(np.uint8)
    if not np.issubdtype(pixels.dtype, np.floating):
        raise InputError(f"generate({where}=...): an image of dtype {pixels.dtype} cannot be read; give uint8 (0-255), "
                         "floats in [0, 1], bool, or a PIL image")
    if not np.isfinite(pixels).all():
        raise InputError(f"generate({where}=...): the image holds NaN or inf; give finite values in [0, 1]")
    low, high = float(pixels.min()), float(pixels.max())
    if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise InputError(f"generate({where}=...): a float image must hold values in [0, 1], this one spans "
                         f"{low:.4g} to {high:.4g}; divide uint8 pixels by 255 (or map [-1, 1] with x / 2 + 0.5), "
                         "or give a uint8 array or a PIL image")
    return np.rint(np.clip(pixels.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def _image(image: "Image.Image", mask: bool, prepared: PreparedInputs) -> "tuple[Image.Image, dict[str, Any]]":
    """``image`` in the mode the pipeline gets (``L`` for a mask, else ``RGB``), and its record;
    the image is kept in ``prepared.images`` under its file name."""
    mode = "L" if mask else "RGB"
    converted = image if image.mode == mode else image.convert(mode)
    digest = hashlib.sha256(f"{mode} {converted.width}x{converted.height}\n".encode("ascii"))
    digest.update(converted.tobytes())
    sha = digest.hexdigest()
    name = f"{sha[:NAME_DIGITS]}.png"
    prepared.images.setdefault(name, converted)
    return converted, {"sha256": sha, "size": [converted.width, converted.height], "mode": mode, "name": name}


def _data_record(where: str, array: "np.ndarray", kind: str, dtype: str) -> dict[str, Any]:
    """The record of an array or tensor that is data, not an image (see the module docstring);
    ``dtype`` is the value's own (``bfloat16`` where ``array`` is its float32 copy). Raises
    InputError for NaN or inf in floats, and for dtypes that are neither numbers nor bool."""
    import numpy as np

    record: dict[str, Any] = {"array": kind, "shape": [int(n) for n in array.shape], "dtype": dtype}
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InputError(f"generate({where}=...): the {_kind_name(kind)} holds NaN or inf; give finite values")
        record[APPROX_KEY] = {**float_summary(array), "rtol": VALUES_RTOL.get(dtype, DEFAULT_VALUES_RTOL)}
        return record
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise InputError(f"generate({where}=...): a {_kind_name(kind)} of dtype {array.dtype} cannot be recorded; "
                         "give numbers or bools")
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    digest = hashlib.sha256(f"{array.dtype.name} {_shape(array)}\n".encode("ascii"))
    digest.update(little.tobytes())
    record["sha256"] = digest.hexdigest()
    return record


def float_summary(array: "np.ndarray") -> dict[str, Any]:
    """``{"mean", "rms", "sketch"}`` of a float array (computed in float64): its mean, its root
    mean square, and :data:`SKETCH_SIZE` projections ``sum(x * s_k) / sqrt(n)`` on fixed ±1
    sign vectors ``s_k``, drawn from an integer hash of (element index, k): the same on every
    machine and numpy version. A change of the values by a relative amount ``e`` (in L2) moves
    the sketch by about ``e`` relative; see
    :func:`pytest_diffbench.spec.config.values_distance`."""
    import numpy as np

    values = np.asarray(array, dtype=np.float64).ravel()
    n = max(values.size, 1)
    index = np.arange(values.size, dtype=np.uint64)
    sketch = []
    with np.errstate(over="ignore"):
        for k in range(SKETCH_SIZE):
            mixed = _mix64(index * np.uint64(0x9E3779B97F4A7C15) + np.uint64((k + 1) * 0xBF58476D1CE4E5B9 % 2**64))
            signs = np.where((mixed >> np.uint64(63)) == 1, -1.0, 1.0)
            sketch.append(float(np.dot(values, signs)) / math.sqrt(n))
    return {"mean": float(values.sum() / n), "rms": float(math.sqrt(float(np.dot(values, values)) / n)),
            "sketch": sketch}


def _mix64(x: "np.ndarray") -> "np.ndarray":
    """SplitMix64's finaliser on uint64 values (wrapping arithmetic): well-mixed bits from an index."""
    import numpy as np

    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _kind_name(kind: str) -> str:
    return "tensor" if kind == "torch" else "array"


def _shape(array: "np.ndarray") -> str:
    return "x".join(str(n) for n in array.shape) or "()"
