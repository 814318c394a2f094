"""Presets: named, version-pinned sweep defaults (``@diffbench.sweep(preset="NAME")``).

A preset is a TOML table in the project's ``pyproject.toml`` (``[tool.diffbench.presets.NAME]``)
or in the file of the ini ``diffbench_presets_file`` (``[presets.NAME]``)::

    [tool.diffbench.presets.portrait]
    version = "2"                  # required: bump it whenever a value below changes
    model = "diffbench-tiny"       # the pipeline of its cases (see plugin.fixtures)
    samplers = ["Euler", "DPM++ 2M"]
    steps = 20
    cfg = 5.5
    width = 64
    height = 64                    # or size = [64, 64]
    negative_prompt = "blurry"
    workflow = "3"                 # the workflow version, as sweep(workflow_version=...)
    pipeline_kwargs = { guidance_rescale = 0.7 }

Each value means what the sweep keyword of its name means (a list is an axis); the sweep's own
keywords override the preset's (``pipeline_kwargs`` key by key). The preset's name and version go
into every case's config (``preset``), so its baselines are pinned to its version.

A lock file, ``diffbench-presets.lock`` beside the presets' file, records each preset's version,
the hash of its values and the values themselves (canonical JSON, sorted keys: the same values
give the same bytes). A preset whose values differ from the lock's under the same version is an
error naming the fields that changed. A preset whose version differs from the lock's, or that the
lock does not have yet (never locked), is an error too until the lock records it: ``diffbench
presets lock``, or a run with ``--diffbench-update`` (which records bumped and new presets as it
collects them; never a changed one without a bump).

Nothing here imports torch; ``tomllib`` reads TOML.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_diffbench.spec.config import canonical_json, diff_configs, normalise, short_repr

#: The lock file's name; it lies beside the presets' file.
LOCK_NAME = "diffbench-presets.lock"
#: The lock file's format; a change of its layout bumps it.
LOCK_FORMAT = 1
#: The fields of a preset, with what each takes.
PRESET_FIELDS: dict[str, str] = {
    "version": "a non-empty string or integer (required)",
    "model": "a model name: a built-in model, a diffusers folder or a hub id",
    "vae": "a VAE folder or hub id",
    "loras": "a LoRA file or a list of them",
    "sampler": "a sampler name (or use samplers)",
    "samplers": "a sampler name or a list of them",
    "steps": "a positive integer or a list of them",
    "cfg": "a number >= 0 or a list of them",
    "width": "a positive integer or a list of them",
    "height": "a positive integer or a list of them",
    "size": "[width, height]",
    "negative_prompt": "a string",
    "workflow": "the workflow version, a non-empty string",
    "pipeline_kwargs": "a table of pipeline keywords and their values",
}
#: Fields whose value is one string.
_TEXT_FIELDS = ("model", "vae", "negative_prompt", "workflow")


class PresetError(ValueError):
    """A preset that cannot be used: unknown, invalid, or edited without a version bump. One line
    naming the preset, the field and what would be valid."""


@dataclass(frozen=True)
class Preset:
    """One preset: its name, version, source (display path) and values (normalised, without ``version``)."""

    name: str
    version: str
    source: str
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of :attr:`values` (the version excluded)."""
        return hashlib.sha256(canonical_json(self.values).encode("ascii")).hexdigest()

    @property
    def label(self) -> str:
        """``name@version``, as grids show it."""
        return f"{self.name}@{self.version}"

    def text(self, name: str) -> str:
        """A string field (``model``, ``vae``, ``negative_prompt``, ``workflow``); "" when not set."""
        value = self.values.get(name)
        return value if isinstance(value, str) else ""

    @property
    def loras(self) -> tuple[str, ...]:
        value = self.values.get("loras")
        return (value,) if isinstance(value, str) else tuple(value or ())

    def sweep_defaults(self) -> dict[str, Any]:
        """The sweep keywords the preset sets (see :func:`sweep_defaults`)."""
        return sweep_defaults(self.values)


def sweep_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep keywords a preset's ``values`` set: ``samplers``, ``steps``, ``cfg`` and ``axes``
    (width, height and the pipeline keywords), as :func:`~pytest_diffbench.spec.sweep.sweep`
    would pass them."""
    defaults: dict[str, Any] = {}
    for name, key in (("sampler", "samplers"), ("samplers", "samplers"), ("steps", "steps"), ("cfg", "cfg")):
        if name in values:
            defaults[key] = values[name]
    axes: dict[str, Any] = {}
    if "size" in values:
        axes["width"], axes["height"] = values["size"]
    axes.update({name: values[name] for name in ("width", "height") if name in values})
    axes.update(values.get("pipeline_kwargs") or {})
    if axes:
        defaults["axes"] = axes
    return defaults


#: What a sweep refuses of a preset's values (see :func:`~pytest_diffbench.spec.preset_checks.sweep_problems`).
ValueCheck = Callable[[Mapping[str, Any]], list[str]]


def parse_preset(name: str, table: Any, source: str, check: ValueCheck | None = None) -> Preset:
    """The preset ``name`` of the TOML ``table`` read from ``source``. Raises PresetError, one
    line naming the preset and every bad field of it (joined by "; ") with what is valid: a field
    that is not one of :data:`PRESET_FIELDS`, a missing or empty version, a value of the wrong
    type, both ``sampler`` and ``samplers``, ``size`` with ``width``/``height``, and what
    ``check`` says of the values (the sweep's own checks, see
    :func:`~pytest_diffbench.spec.preset_checks.sweep_problems`: steps, cfg, samplers, sizes,
    pipeline keywords), so a preset every sweep would refuse is refused when read."""
    where = f"preset {name!r} ({source})"
    if not isinstance(table, Mapping):
        raise PresetError(f"{where} is not a table; write [..presets.{name}] with fields {', '.join(PRESET_FIELDS)}")
    problems = _field_problems(table)
    values = {key: value for key, value in table.items() if key != "version" and key in PRESET_FIELDS}
    if "cfg" in values:  # cfg 5 and 5.0 are one guidance scale (as in FrozenConfig): one hash, one lock
        values["cfg"] = [_float(v) for v in values["cfg"]] if isinstance(values["cfg"], list) else _float(values["cfg"])
    unreadable = len(problems)
    for key, value in values.items():
        try:
            values[key] = normalise(value, where=key, finite=True)
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
    size, kwargs = values.get("size", [0, 0]), values.get("pipeline_kwargs", {})
    if check and len(problems) == unreadable and isinstance(size, list) and len(size) == 2 and isinstance(kwargs, Mapping):
        problems += check(values)  # values a sweep can be given: what it refuses of them
    if problems:
        raise PresetError(f"{where}: {'; '.join(problems)}")
    return Preset(name=name, version=str(table["version"]).strip(), source=source, values=canonical_values(values))


#: Fields whose one value and one-element list make the same cases (a one-value axis).
_AXIS_FIELDS = ("samplers", "steps", "cfg", "width", "height", "loras")


def _single(value: Any) -> Any:
    """The one element of a one-element list; anything else as it is."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def canonical_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """A preset's ``values`` in one spelling of each set of cases they make, so that an edit that
    changes no case changes no hash: a one-element axis as its value (``steps = [2]`` is
    ``steps = 2``, in ``pipeline_kwargs`` too), ``samplers`` of one as ``sampler``, and one
    ``width`` with one ``height`` as ``size``. Also applied to a lock's values before comparing."""
    out = dict(values)
    for name in _AXIS_FIELDS:
        if name in out:
            out[name] = _single(out[name])
    if "samplers" in out and not isinstance(out["samplers"], list) and "sampler" not in out:
        out["sampler"] = out.pop("samplers")
    if "size" not in out and not isinstance(out.get("width", []), list) and not isinstance(out.get("height", []), list):
        out["size"] = [out.pop("width"), out.pop("height")]
    kwargs = out.get("pipeline_kwargs")
    if isinstance(kwargs, Mapping):
        out["pipeline_kwargs"] = {key: _single(value) for key, value in kwargs.items()}
    return out


def _field_problems(table: Mapping[str, Any]) -> list[str]:
    """What is wrong with the fields of a preset's ``table`` on their own (names and types), each
    naming the field and what is valid; none when nothing is."""
    problems: list[str] = []
    unknown = sorted(set(table) - set(PRESET_FIELDS))
    if unknown:
        verb = "is not a preset field" if len(unknown) == 1 else "are not preset fields"
        problems.append(f"{', '.join(map(repr, unknown))} {verb}; valid fields are {', '.join(PRESET_FIELDS)} "
                        "(pipeline keywords go in pipeline_kwargs)")
    version = table.get("version")
    if isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version).strip():
        problems.append(f"version = {short_repr(version)} is not valid; every preset needs a version, "
                        f"{PRESET_FIELDS['version']}, e.g. version = \"1\"")
    for text in _TEXT_FIELDS:
        if text in table and (not isinstance(table[text], str) or not table[text].strip()):
            problems.append(f"{text} = {short_repr(table[text])} is not valid; give {PRESET_FIELDS[text]}")
    loras = table.get("loras", [])
    if not (isinstance(loras, str) or isinstance(loras, list) and all(isinstance(item, str) for item in loras)):
        problems.append(f"loras = {short_repr(loras)} is not valid; give {PRESET_FIELDS['loras']}")
    for first, second in (("sampler", "samplers"), ("size", "width"), ("size", "height")):
        if first in table and second in table:
            problems.append(f"set {first} or {second}, not both")
    size = table.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2):
        problems.append(f"size = {short_repr(size)} is not valid; give {PRESET_FIELDS['size']}, e.g. [512, 512]")
    kwargs = table.get("pipeline_kwargs", {})
    if not isinstance(kwargs, Mapping):
        problems.append(f"pipeline_kwargs = {short_repr(kwargs)} is not valid; give a table, e.g. "
                        "pipeline_kwargs = { guidance_rescale = 0.7 }")
    return problems


def _float(value: Any) -> Any:
    """An int (not a bool) as a float; anything else as it is."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class PresetSource:
    """The presets of a project, read on first use and checked against their lock.

    ``presets_file``: the ini's ``diffbench_presets_file`` (``[presets.NAME]`` tables), or None
    for ``<rootdir>/pyproject.toml``'s ``[tool.diffbench.presets.NAME]``. With ``record``
    (``--diffbench-update``), a preset whose version the lock does not have yet is recorded in it
    when first used. ``check``: what a sweep refuses of a preset's values (see :func:`parse_preset`),
    given by whoever can import the sweep (this module cannot: the sweep imports it).

    A preset that is invalid (see :func:`parse_preset`) fails only what uses it: :meth:`presets`
    (``diffbench presets lock|list``) refuses the file, naming every invalid preset, while
    :meth:`get` of a valid preset works, and of an unknown one says it is unknown (and which
    presets of the file are invalid)."""

    def __init__(self, presets_file: Path | None, rootdir: Path, *, record: bool = False,
                 check: ValueCheck | None = None) -> None:
        self.path = presets_file if presets_file is not None else rootdir / "pyproject.toml"
        self.table: tuple[str, ...] = ("presets",) if presets_file is not None else ("tool", "diffbench", "presets")
        self.explicit = presets_file is not None
        self.lock_path = self.path.parent / LOCK_NAME
        self.record = record
        self.check = check
        self._parsed: tuple[dict[str, Preset], dict[str, str]] | None = None
        self._checked: dict[str, Preset] = {}

    @property
    def table_name(self) -> str:
        return ".".join(self.table)

    def presets(self) -> dict[str, Preset]:
        """Every preset by name. Raises PresetError (one line naming the file) when the presets file
        is missing or not TOML, or a preset is invalid (see :func:`parse_preset`; every invalid
        preset of the file, with all its bad fields)."""
        presets, errors = self._read_once()
        if len(errors) == 1:
            raise PresetError(next(iter(errors.values())))
        if errors:
            raise PresetError(f"{len(errors)} presets of {self.path.name} are invalid: {' | '.join(errors.values())}")
        return presets

    def _read_once(self) -> tuple[dict[str, Preset], dict[str, str]]:
        """The valid presets by name, and the error of each invalid one by name."""
        if self._parsed is None:
            self._parsed = self._read()
        return self._parsed

    def _read(self) -> tuple[dict[str, Preset], dict[str, str]]:
        if not self.path.is_file():
            if self.explicit:
                raise PresetError(f"diffbench_presets_file = {self.path} does not exist; name a TOML file of "
                                  "[presets.NAME] tables, relative to the rootdir")
            return {}, {}
        try:
            data: Any = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PresetError(f"cannot read the presets of {self.path}: {' '.join(str(exc).split())}") from None
        for key in self.table:
            data = data.get(key, {}) if isinstance(data, Mapping) else {}
        if not isinstance(data, Mapping):
            raise PresetError(f"{self.path}: [{self.table_name}] is not a table of presets")
        presets: dict[str, Preset] = {}
        errors: dict[str, str] = {}
        for name, table in sorted(data.items()):
            try:
                presets[name] = parse_preset(name, table, self.path.name, self.check)
            except PresetError as exc:
                errors[name] = str(exc)
        return presets, errors

    def get(self, name: str) -> Preset:
        """The preset ``name``, checked against the lock (see :func:`lock_problem`; recorded in the
        lock first with ``record``). Raises PresetError naming it and, when unknown, the presets
        that exist (and those of them that are invalid); its own error when it is invalid."""
        if name in self._checked:
            return self._checked[name]
        presets, errors = self._read_once()
        if name in errors:
            raise PresetError(errors[name])
        if name not in presets:
            known = ", ".join(sorted([*presets, *errors])) or f"none (add [{self.table_name}.{name}] to {self.path.name})"
            invalid = (f" ({', '.join(map(repr, errors))} {'is' if len(errors) == 1 else 'are'} invalid: see diffbench "
                       "presets list)" if errors else "")
            raise PresetError(f"unknown preset {name!r}; the presets of {self.path.name} are: {known}{invalid}")
        preset = presets[name]
        lock = read_lock(self.lock_path)
        problem = lock_problem(preset, lock.get(name))
        if problem and self.record and not changed_fields(preset, lock.get(name)):
            write_lock(self.lock_path, {**lock, name: lock_entry(preset)})
        elif problem:
            raise PresetError(problem)
        self._checked[name] = preset
        return preset


def lock_entry(preset: Preset) -> dict[str, Any]:
    """What the lock records of ``preset``: its version, the hash of its values, the values."""
    return {"version": preset.version, "hash": preset.content_hash, "values": dict(preset.values)}


def changed_fields(preset: Preset, entry: Mapping[str, Any] | None) -> list[str]:
    """``field: old -> new`` for each value that differs from the lock's ``entry`` of the same
    version (none when there is no entry, its version differs, or its hash matches)."""
    if entry is None or entry.get("version") != preset.version or entry.get("hash") == preset.content_hash:
        return []
    old = entry.get("values")
    if not isinstance(old, Mapping):
        return ["(the lock's values are unreadable)"]
    old = canonical_values(old)  # a lock written before a spelling was normalised stays valid
    if canonical_json(old) == canonical_json(preset.values):
        return []
    return [f"{path}: {short_repr(before)} -> {short_repr(after)}" for path, before, after in diff_configs(old, preset.values)] \
        or ["(values the lock hashes otherwise)"]


def lock_problem(preset: Preset, entry: Mapping[str, Any] | None) -> str:
    """Why ``preset`` cannot be used with the lock's ``entry`` for it (None: never locked), on one
    line; "" when the lock has its version and values."""
    changes = changed_fields(preset, entry)
    if changes:
        return (f"preset {preset.name!r} ({preset.source}) changed without a version bump: {'; '.join(changes)}; "
                f"its lock has version {preset.version!r} with other values, so bump its version (baselines of version "
                f"{preset.version!r} would silently drift), then run diffbench presets lock (or --diffbench-update)")
    how = "record it with diffbench presets lock, or run pytest --diffbench --diffbench-update"
    if entry is None:
        return f"preset {preset.name!r} ({preset.source}) version {preset.version!r} was never locked; {how}"
    if entry.get("version") != preset.version:
        return (f"preset {preset.name!r} ({preset.source}) is version {preset.version!r}, but {LOCK_NAME} has version "
                f"{entry.get('version')!r}; {how}")
    return ""


def read_lock(path: Path) -> dict[str, Mapping[str, Any]]:
    """The lock's entries by preset name; empty when there is no lock. Raises PresetError when it
    cannot be read."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PresetError(f"cannot read {path}: {' '.join(str(exc).split())}; remove it and run diffbench presets lock") from None
    presets = data.get("presets") if isinstance(data, Mapping) and data.get("format") == LOCK_FORMAT else None
    if not isinstance(presets, Mapping) or not all(isinstance(entry, Mapping) for entry in presets.values()):
        raise PresetError(f"{path} is not a diffbench presets lock of format {LOCK_FORMAT}; remove it and run diffbench "
                          "presets lock")
    return dict(presets)


def lock_bytes(entries: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The lock file of ``entries``: JSON with sorted keys, two-space indents, ASCII, a final newline."""
    data = {"format": LOCK_FORMAT, "presets": {name: dict(entry) for name, entry in entries.items()}}
    return (json.dumps(normalise(data), sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def write_lock(path: Path, entries: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the lock of ``entries`` at ``path`` whole or not at all (a temporary file beside it,
    then renamed over it); nothing is written when it already holds those bytes."""
    data = lock_bytes(entries)
    if path.is_file() and path.read_bytes() == data:
        return
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

