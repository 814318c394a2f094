"""The baseline sidecar: one schema, one JSON form.

A baseline is a PNG and this JSON beside it: the case's frozen config and its SHA-256, the PNG's
SHA-256 (which ties the pair together), the machine it was made on and its measurement. The same
record is kept for every case in its run folder (``configs/<case>.json``), so ``diffbench
accept`` writes exactly what ``--diffbench-update`` would have written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from pytest_diffbench.spec.machine import MachineInfo
from pytest_diffbench.spec.measurement import Measurement

SIDECAR_FORMAT = 1


class SidecarError(ValueError):
    """A sidecar that is not valid JSON or lacks a field; the message names the field."""


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

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": SIDECAR_FORMAT,
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
        return data

    def to_json(self) -> str:
        """Indented, sorted, ASCII JSON with a final newline: the same record gives the same bytes."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, require_image_sha256: bool = True) -> "Sidecar":
        """Parse and check a sidecar. Raises :class:`SidecarError` naming what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SidecarError(f"is not readable JSON ({exc})") from None
        if not isinstance(data, dict):
            raise SidecarError("is not a JSON object")
        required = ("config", "config_hash") + (("image_sha256",) if require_image_sha256 else ())
        missing = [key for key in required if key not in data]
        if missing:
            raise SidecarError(f"lacks {', '.join(missing)}")
        config, environment = data["config"], data.get("environment", {})
        measured = data.get("measurement", {})
        for key, value, kind in (("config", config, dict), ("config_hash", data["config_hash"], str),
                                 ("image_sha256", data.get("image_sha256", ""), str),
                                 ("environment", environment, dict), ("measurement", measured, dict)):
            if not isinstance(value, kind):
                raise SidecarError(f"has {key} of type {type(value).__name__}, expected a JSON "
                                   f"{'object' if kind is dict else 'string'}")
        return cls(
            case=str(data.get("case", "")),
            config=config,
            config_hash=data["config_hash"],
            environment=MachineInfo.from_mapping(environment),
            measurement=_measurement(measured),
            device_name=str(measured.get("device_name") or ""),
            workers=_number(measured, "workers", int) or 1,
            image_sha256=data.get("image_sha256", ""),
        )


def _number(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SidecarError(f"has measurement.{key} = {value!r}, expected a finite number or null")
    return kind(value)


def _measurement(data: Mapping[str, Any]) -> Measurement | None:
    seconds = _number(data, "seconds_per_image", float)
    if seconds is None:
        return None
    return Measurement(seconds_per_image=seconds, peak_vram_mb=_number(data, "peak_vram_mb", float))
