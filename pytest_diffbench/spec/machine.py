"""One schema for "what a figure was measured on": :class:`MachineInfo` and its projections.

The same record goes into every baseline sidecar (all fields), every results row (the
:data:`RESULT_FIELDS`), environment.json's ``devices`` (the same fields) and the comparison of a
baseline's environment with the run's (:data:`COMPARED_FIELDS`). Collecting it is
:mod:`pytest_diffbench.run.machine`'s job; users add fields with the
``pytest_diffbench_machine_info`` hook, which land in :attr:`MachineInfo.extra`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

#: Fields of a results row (and of environment.json's devices).
RESULT_FIELDS: tuple[str, ...] = ("device_name", "driver", "cuda", "torch", "diffusers", "transformers", "python")
#: Fields whose change between a baseline and the run is reported (and fails with --diffbench-strict-env).
COMPARED_FIELDS: tuple[str, ...] = ("device_name", "driver", "cuda", "torch", "diffusers", "transformers")


@dataclass(frozen=True)
class MachineInfo:
    """The software and device one case ran on. Empty strings mean "not known", never invented."""

    python: str = ""
    platform: str = ""
    machine: str = ""
    torch: str = ""
    diffusers: str = ""
    transformers: str = ""
    pytest_diffbench: str = ""
    #: The CUDA version torch was built with (``torch.version.cuda``) when the case ran on a CUDA
    #: device; "" on the CPU or MPS, whatever torch was built with.
    cuda: str = ""
    #: ``cpu``, ``cuda``, ``mps``.
    device_type: str = ""
    #: The GPU's name from torch (CUDA), the processor's model name on the CPU.
    device_name: str = ""
    #: The NVIDIA driver version from NVML; "" elsewhere.
    driver: str = ""
    #: How peak memory was measured (or why it was not).
    memory_measured: str = ""
    #: Fields added by ``pytest_diffbench_machine_info`` hooks, as text.
    extra: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        """Every field, ``extra`` flattened in (the sidecar's ``environment`` object)."""
        known = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**{key: str(value) for key, value in self.extra.items()}, **known}

    def result_fields(self) -> dict[str, str]:
        """The :data:`RESULT_FIELDS` (results.csv's columns)."""
        return {name: getattr(self, name) for name in RESULT_FIELDS}

    def device_fields(self) -> dict[str, str]:
        """environment.json's entry of this device: the :data:`RESULT_FIELDS` and the added fields."""
        return {**dict(self.extra), **self.result_fields()}

    def diff(self, baseline: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """``{field: (baseline value, this value)}`` for the fields that differ: the
        :data:`COMPARED_FIELDS` and every field a hook added (on either side).

        A baseline made on another device type than CUDA has no ``cuda``: sidecars written
        before it was a CUDA device's only hold torch's CUDA build there, which is no difference.
        """
        ours = self.as_dict()
        theirs = {key: str(value or "") for key, value in baseline.items()}
        if theirs.get("device_type") and theirs["device_type"] != "cuda":
            theirs["cuda"] = ""
        known = {f.name for f in dataclasses.fields(self)}
        added = (set(self.extra) | set(baseline)) - known
        return {key: (theirs.get(key, ""), ours.get(key, "")) for key in (*COMPARED_FIELDS, *sorted(added))
                if theirs.get(key, "") != ours.get(key, "")}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "MachineInfo":
        """From a sidecar's ``environment``, a results row or a hook's dict: known fields by name,
        any other key into :attr:`extra`. Missing fields are ""."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {key: "" if data.get(key) is None else str(data[key]) for key in names}
        extra = {str(key): str(value) for key, value in data.items() if key not in names and key != "extra"}
        return cls(**known, extra=extra)


def format_diff(diff: Mapping[str, tuple[str, str]]) -> str:
    """``"torch: 2.4 -> 2.5; driver: ..."`` (results.csv's ``env_diff``)."""
    return "; ".join(f"{key}: {old} -> {new}" for key, (old, new) in sorted(diff.items()))
