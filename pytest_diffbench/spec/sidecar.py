"""The baseline sidecar: one schema, one JSON form.

A baseline is a PNG and this JSON beside it: the case's frozen config and its SHA-256, the
digests that tie the pair together, the machine it was made on and its measurement. The same
record is kept for every case in its run folder (``configs/<case>.json``), so ``diffbench
accept`` writes exactly what ``--diffbench-update`` would have written.

Formats (the ``format`` key):

* 1: the image is vouched for by ``image_sha256``, the SHA-256 of the PNG's bytes.
* 2 (written now): also ``pixels_sha256``, the SHA-256 of the decoded pixels (see
  :func:`pytest_diffbench.store.baselines.pixels_sha256`), so a losslessly re-encoded PNG (same
  pixels, other bytes, as image optimisers make) is still the same baseline. ``image_sha256`` is
  kept: the PNG's bytes as written.

Both are read; a sidecar keeps the format it was read in, so parsing and writing back gives the
same bytes. :meth:`Sidecar.from_json` checks every key and type, and that ``config_hash`` is the
hash of ``config``; a fault is one :class:`SidecarError` naming the key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from pytest_diffbench.spec.config import config_hash as hash_of_config
from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import FIGURE_RULE, Measurement, is_valid_figure

#: The format this version writes.
SIDECAR_FORMAT = 2
#: The formats this version reads.
READABLE_FORMATS = (1, 2)
_DIGEST = re.compile(r"[0-9a-f]{64}")
_TOP_KEYS = ("case", "config", "config_hash", "environment", "format", "image_sha256", "measurement", "pixels_sha256")
_MEASUREMENT_KEYS = ("device_name", "peak_vram_mb", "seconds_per_image", "workers")


class SidecarError(ValueError):
    """A sidecar that is not valid JSON, lacks a key or has one of the wrong type; the message names the key."""


@dataclass(frozen=True)
class Sidecar:
    """What a baseline (or a run's candidate for one) records next to its image."""

    case: str
    config: Mapping[str, Any]
    config_hash: str
    environment: MachineInfo
    measurement: Measurement | None
    #: Where the measurement was timed: the device's name, and how many pytest processes shared it.
    device_name: str = ""
    workers: int = 1
    #: SHA-256 of the PNG's bytes; "" in a run folder's copy, which sits beside no baseline yet.
    image_sha256: str = ""
    #: SHA-256 of the PNG's decoded pixels (format 2); "" in a run folder's copy and in format 1.
    pixels_sha256: str = ""
    format: int = SIDECAR_FORMAT

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": self.format,
            "case": self.case,
            "config": dict(self.config),
            "config_hash": self.config_hash,
            "environment": self.environment.as_dict(),
            "measurement": {
                "seconds_per_image": self.measurement.seconds_per_image if self.measurement else None,
                "peak_vram_mb": self.measurement.peak_vram_mb if self.measurement else None,
                "device_name": self.device_name,
                "workers": self.workers,
            },
        }
        if self.image_sha256:
            data["image_sha256"] = self.image_sha256
        if self.pixels_sha256:
            data["pixels_sha256"] = self.pixels_sha256
        return data

    def to_json(self) -> str:
        """Indented, sorted, ASCII JSON with a final newline: the same record gives the same bytes."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, require_image_sha256: bool = True) -> "Sidecar":
        """Parse and check a sidecar: every key present with its JSON type, no unknown key, a known
        ``format``, ``config_hash`` the hash of ``config``, and (``require_image_sha256``, a
        baseline's sidecar) the image digest of its format.

        Raises :class:`SidecarError` naming the first key that is wrong and what would be valid.
        """
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise SidecarError(f"is not readable JSON ({exc})") from None
        if not isinstance(data, dict):
            raise SidecarError(f"is a JSON {_json_type(data)}, expected a JSON object")
        fmt: int = data.get("format", 0)
        if "format" in data and (type(fmt) is not int or fmt not in READABLE_FORMATS):
            raise SidecarError(f"has format {_show(fmt)}; this pytest-diffbench reads formats "
                               f"{' and '.join(map(str, READABLE_FORMATS))}")
        digests = ("image_sha256",) if fmt == 1 else ("image_sha256", "pixels_sha256")
        required = ("format", "case", "config", "config_hash", "environment", "measurement")
        missing = [key for key in required + (digests if require_image_sha256 else ()) if key not in data]
        if missing:
            raise SidecarError(f"lacks {', '.join(missing)}")
        known = [key for key in _TOP_KEYS if fmt != 1 or key != "pixels_sha256"]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SidecarError(f"has unknown key {', '.join(map(_show, unknown))}; format {fmt} has only {', '.join(known)}")
        for key, kind in (("case", str), ("config", dict), ("config_hash", str), ("environment", dict),
                          ("measurement", dict)):
            _expect(key, data[key], kind)
        for key in ("config_hash", "image_sha256", "pixels_sha256"):
            if key in data and not _DIGEST.fullmatch(_expect(key, data[key], str)):
                raise SidecarError(f"has {key} = {_show(data[key])}, expected 64 lowercase hex digits (a SHA-256)")
        try:
            expected = hash_of_config(data["config"])
        except (TypeError, ValueError, RecursionError) as exc:
            raise SidecarError(f"has a config that cannot be hashed ({type(exc).__name__})") from None
        if data["config_hash"] != expected:
            raise SidecarError(f"has config_hash {data['config_hash'][:12]}, but its config hashes to {expected[:12]}: "
                               "the config or its hash was edited")
        for key, value in data["environment"].items():
            if value is not None and not isinstance(value, str):
                raise SidecarError(f"has environment.{key} of type {_json_type(value)}, expected a JSON string")
        measured = _measurement_fields(data["measurement"])
        return cls(
            case=data["case"],
            config=data["config"],
            config_hash=data["config_hash"],
            environment=MachineInfo.from_mapping(data["environment"]),
            measurement=measured[0],
            device_name=measured[1],
            workers=measured[2],
            image_sha256=data.get("image_sha256", ""),
            pixels_sha256=data.get("pixels_sha256", ""),
            format=fmt,
        )


def _measurement_fields(data: Mapping[str, Any]) -> tuple[Measurement | None, str, int]:
    """(measurement, device name, workers) from the sidecar's ``measurement`` object."""
    missing = [key for key in _MEASUREMENT_KEYS if key not in data]
    if missing:
        raise SidecarError(f"lacks measurement.{', measurement.'.join(missing)}")
    unknown = sorted(set(data) - set(_MEASUREMENT_KEYS))
    if unknown:
        raise SidecarError(f"has unknown key measurement.{_show(unknown[0])}; expected only {', '.join(_MEASUREMENT_KEYS)}")
    device_name = _expect("measurement.device_name", data["device_name"], str)
    workers = data["workers"]
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SidecarError(f"has measurement.workers = {_show(workers)}, expected a whole number of at least 1")
    seconds = _seconds_or_mib(data, "seconds_per_image")
    vram = _seconds_or_mib(data, "peak_vram_mb")
    measurement = None if seconds is None else Measurement(seconds_per_image=seconds, peak_vram_mb=vram)
    return measurement, device_name, workers


def _seconds_or_mib(data: Mapping[str, Any], key: str) -> float | None:
    value = data[key]
    if value is None:
        return None
    if not is_valid_figure(value):
        raise SidecarError(f"has measurement.{key} = {_show(value)}, expected {FIGURE_RULE} or null")
    return float(value)


def _expect(key: str, value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise SidecarError(f"has {key} of type {_json_type(value)}, expected a JSON {_json_type(kind())}")
    return value


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    """A value for a message: JSON, at most 40 characters, ASCII only (no terminal escapes)."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."
