"""The settings the ``diffbench`` command shares with pytest, found the way pytest finds them.

The command builds a real pytest :class:`~pytest.Config` from the current folder, with the
diffbench plugin loaded (as ``pytest --diffbench`` would), so the rootdir and the ini file are
the ones pytest would pick (pytest.ini, .pytest.ini, pyproject.toml, tox.ini, setup.cfg; ``addopts``
and ``PYTEST_ADDOPTS`` included), and then resolves them with
:func:`~pytest_diffbench.plugin.options.read_settings`: the same options, defaults and validators
as a pytest run. A flag of the command (``--output-dir``, ...) is handed to pytest as the
matching ``--diffbench-...`` flag, so it wins over the ini key exactly as it would there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from pytest_diffbench.plugin.options import Option, options

if TYPE_CHECKING:
    import pytest

#: The name of the plugin's ``pytest11`` entry point (pyproject.toml); ``-p`` loads it by that name,
#: also when ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` is set.
PLUGIN_NAME = "diffbench"
#: What the command asks of pytest besides its own flags: the diffbench plugin, and none of the
#: side effects of a test run (no .pytest_cache, no output capturing, no assertion rewriting).
PYTEST_ARGS = ("-p", PLUGIN_NAME, "-p", "no:cacheprovider", "--capture=no", "--assert=plain")


class CommandError(Exception):
    """A problem the user can fix: printed as one line on stderr, exit status 2."""


#: The files pytest takes its ini settings from, in the order it tries them in each folder.
INI_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def read_error(path: Path, exc: Exception) -> CommandError:
    """The one line for ``exc``, raised reading the user's file ``path``: a file that cannot be
    opened, is not UTF-8 text, or does not parse."""
    if isinstance(exc, UnicodeDecodeError):
        byte = exc.object[exc.start:exc.start + 1]
        return CommandError(f"cannot read {path}: it is not UTF-8 text (byte {byte!r} at offset {exc.start})")
    if isinstance(exc, OSError):
        return CommandError(f"cannot read {path}: {exc.strerror or exc}")
    return CommandError(f"cannot read {path}: {_one_line(exc)}")


@dataclass(frozen=True)
class CliSettings:
    """The settings of one ``diffbench`` command: pytest's rootdir and ini file, and the resolved
    diffbench settings the commands use (absolute folders, as a pytest run would use them)."""

    rootdir: Path
    inipath: Path | None
    output_dir: Path
    baseline_dir: Path
    bundle_images: str
    #: The pin key template (``diffbench_pin``); ``accept`` uses the pin each result recorded.
    pin: str
    #: ``diffbench_presets_file`` (absolute), None for pyproject.toml's [tool.diffbench.presets].
    presets_file: Path | None = None


def shared_options() -> tuple[Option, ...]:
    """The options that have a flag of the ``diffbench`` command (``Option.cli``)."""
    return tuple(option for option in options() if option.cli)


def pytest_args(flags: Mapping[str, str | None]) -> list[str]:
    """The pytest command line for the command's ``flags`` (option dest to value, None: not given)."""
    args = list(PYTEST_ARGS)
    for option in shared_options():
        value = flags.get(option.dest)
        if value is not None:
            assert option.flag is not None, f"option {option.dest} has a command flag but no pytest flag"
            args.append(f"{option.flag}={value}")
    return args


def load_settings(flags: Mapping[str, str | None]) -> CliSettings:
    """Resolve the settings from the current folder as pytest would.

    Raises :class:`CommandError` with one line (naming the ini key and what would be valid) for
    a bad value, an unusable ini file, a conftest.py that fails to import, or an ini key no plugin
    registers when pytest's ``strict_config`` is on (as pytest itself refuses it).
    """
    from _pytest.config import ConftestImportFailure, _prepareconfig

    import pytest

    from pytest_diffbench.plugin.options import read_settings

    try:
        config = _prepareconfig(pytest_args(flags))
    except pytest.UsageError as exc:
        raise CommandError(_one_line(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:  # an ini file pytest could not read
        raise read_error(_unreadable_ini(Path.cwd()) or Path("pytest's ini file"), exc) from None
    except ConftestImportFailure as exc:
        raise CommandError(f"cannot import {exc.path}: {type(exc.cause).__name__}: {_one_line(exc.cause)}") from None
    try:
        _refuse_unknown_ini_keys(config)
        settings = read_settings(config)
    except (pytest.UsageError, ValueError) as exc:
        raise CommandError(_one_line(exc)) from None
    finally:
        config._ensure_unconfigure()  # undo what parsing set up (sys.path entries of the ini's pythonpath)
    return CliSettings(rootdir=config.rootpath, inipath=config.inipath, output_dir=settings.output_dir,
                       baseline_dir=settings.baseline_dir, bundle_images=settings.bundle_images, pin=settings.pin,
                       presets_file=settings.presets_file)


def _refuse_unknown_ini_keys(config: "pytest.Config") -> None:
    """Raise :class:`CommandError` naming the ini keys of ``config`` that no plugin registers
    (a misspelt ``diffbench_ouput_dir``), with the known key each is closest to, when
    ``strict_config`` (``--strict-config``, pytest 9's ``strict``) is on, as pytest would refuse
    them. Like pytest's check before collection, it knows the keys of the initial conftest.py files."""
    import difflib

    unknown_keys = getattr(config, "_get_unknown_ini_keys", None)  # pytest's own check (private: absent, no check)
    unknown = sorted(unknown_keys()) if callable(unknown_keys) else []
    if not unknown or not _strict_config(config):
        return
    known = sorted(config._parser._inidict)
    named = ", ".join(f"{key} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(key, known, n=1))
                      else key for key in unknown)
    raise CommandError(f"{config.inipath}: unknown config option{'s' if len(unknown) > 1 else ''} {named}: "
                       "strict_config is on, so pytest and the diffbench command accept only the keys pytest "
                       "and its plugins register (see pytest --help)")


def _strict_config(config: "pytest.Config") -> bool:
    """Whether pytest refuses unknown ini keys in ``config``: its ``strict_config`` ini key or
    ``--strict-config`` flag (in ``addopts`` too), or, where ``strict_config`` is unset, pytest 9's
    ``strict``. pytest 8 has the flag and the key as an option, not an ini key."""
    if getattr(config.option, "strict_config", False):
        return True
    for name in ("strict_config", "strict"):
        try:
            value = config.getini(name)
        except ValueError:  # not an ini key of this pytest
            continue
        if value is not None:
            return bool(value)
    return False


def _unreadable_ini(start: Path) -> Path | None:
    """The first ini file pytest would try from ``start`` upwards that cannot be read as UTF-8 text."""
    for folder in (start, *start.parents):
        for name in INI_FILES:
            path = folder / name
            try:
                if path.is_file():
                    path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return path
    return None


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line, without the ``diffbench:`` prefix main adds."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if " error: " in text:  # pytest's argparse error (e.g. an unknown flag in addopts) opens with the usage
        text = "pytest's command line: " + text.split(" error: ", 1)[1]
    return text.removeprefix("diffbench:").strip()
