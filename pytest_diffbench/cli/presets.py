"""``diffbench presets lock|list``: record the presets' versions in their lock, or show where each stands.

    diffbench presets list    each preset, its version and its state against the lock
    diffbench presets lock    record every preset's version and values in diffbench-presets.lock

``lock`` records new presets and bumped versions, never a preset changed without a bump (that one
is refused, naming the fields that changed: bump its version first). Entries of presets that are
no longer defined stay in the lock, so a preset put back under an old version with other values is
still caught. The presets are read as pytest reads them (see :mod:`pytest_diffbench.spec.presets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pytest_diffbench.cli.settings import CommandError
from pytest_diffbench.report.escape import terminal_text
from pytest_diffbench.spec.preset_checks import sweep_problems
from pytest_diffbench.spec.presets import (
    LOCK_NAME,
    Preset,
    PresetError,
    PresetSource,
    changed_fields,
    lock_entry,
    read_lock,
    write_lock,
)

#: The actions of ``diffbench presets``.
ACTIONS = ("list", "lock")


def command_presets(action: str, presets_file: Path | None, rootdir: Path) -> int:
    """Run ``diffbench presets ACTION`` on the presets of ``presets_file`` (the ini's
    ``diffbench_presets_file``; None: ``<rootdir>/pyproject.toml``). Exit status 0; 1 when
    ``lock`` refused a preset changed without a version bump. Raises CommandError (one line) when
    the presets or the lock cannot be read (a preset is invalid: every bad field of every invalid
    preset, see :func:`~pytest_diffbench.spec.presets.parse_preset`), or the lock cannot be written."""
    source = PresetSource(presets_file, rootdir, check=sweep_problems)
    try:
        presets = source.presets()
        lock = read_lock(source.lock_path)
    except PresetError as exc:
        raise CommandError(str(exc)) from None
    if not presets:
        print(f"no presets in {source.path} (add [{source.table_name}.NAME] tables)")
        return 0
    if action == "list":
        for preset in presets.values():
            print(terminal_text(f"{preset.name}  version {preset.version}  {_state(preset, lock.get(preset.name))}"))
        return 0
    refused = {name: changed_fields(preset, lock.get(name)) for name, preset in presets.items()}
    refused = {name: changes for name, changes in refused.items() if changes}
    recorded = {name: lock_entry(preset) for name, preset in presets.items() if name not in refused}
    try:
        write_lock(source.lock_path, {**lock, **recorded})
    except OSError as exc:
        raise CommandError(f"cannot write {source.lock_path}: {exc.strerror or exc}") from None
    for name in recorded:
        before = lock.get(name)
        was = ("" if before is None else " (unchanged)" if before.get("version") == presets[name].version
               else f" (was {before.get('version')})")
        print(terminal_text(f"locked {name} version {presets[name].version}{was}"))
    for name, changes in refused.items():
        print(terminal_text(f"refused {name}: changed without a version bump ({'; '.join(changes)}); bump its "
                            "version, then lock again"))
    print(f"wrote {source.lock_path}" if recorded else f"{LOCK_NAME} left as it was")
    return 1 if refused else 0


def _state(preset: Preset, entry: Mapping[str, Any] | None) -> str:
    """The preset's state against its lock entry (None: none), in words."""
    if entry is None:
        return "never locked"
    changes = changed_fields(preset, entry)
    if changes:
        return f"changed without a version bump: {'; '.join(changes)}"
    if entry.get("version") != preset.version:
        return f"version not locked (the lock has {entry.get('version')})"
    return "locked"
