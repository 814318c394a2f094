"""Every command-line option and ini key, defined once, and :func:`read_settings`.

Each :class:`Option` knows its flag, its ini key, its default and its help, so the pytest hooks
and the ``diffbench`` command share one definition and one set of validators. The tolerance keys
are derived from the metric registry and the budgets.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Literal

import pytest

from pytest_diffbench.judge.metrics import METRIC_MODES as LPIPS_MODES
from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistrationError, refused_metrics, reserve
from pytest_diffbench.judge.tolerances import Tolerances, default_tolerances, tolerance_help, tolerance_names
from pytest_diffbench.report.bundle import BUNDLE_IMAGES
from pytest_diffbench.spec.outcomes import UpdateMode
from pytest_diffbench.spec.targets import BUILTIN_MODELS, DTYPE_NAMES, check_available, check_device

UPDATE_MODES = tuple(mode.value for mode in UpdateMode)
#: The values of ``diffbench_tolerance_from``.
TOLERANCE_SOURCES = ("ini", "noise-floor")
PIN_FIELDS = ("device", "dtype", "device_name", "torch", "diffusers", "platform")
#: The characters a pin template may hold besides its ``{field}`` parts.
PIN_LITERAL = "A-Za-z0-9._-"
_PIN_PART = re.compile(r"\{(?P<field>[^{}]*)\}|(?P<literal>[" + PIN_LITERAL + r"]+)")
#: How much of the baseline folder a run checks at configure time (see :func:`read_settings`).
FolderCheck = Literal["off", "exists", "writable"]


@dataclass(frozen=True)
class Option:
    """One setting: ``flag`` on the command line, ``ini`` in the ini file, or both."""

    dest: str
    help: str
    default: Any = None
    flag: str | None = None
    ini: str | None = None
    ini_type: Literal["string", "bool"] = "string"
    argparse: dict[str, Any] | None = None
    #: The flag of the ``diffbench`` command for the same setting, if it has one.
    cli: str | None = None


def _update_mode(value: str) -> str:
    if value not in UPDATE_MODES:
        raise argparse.ArgumentTypeError(
            f"--diffbench-update got {value!r}; valid values are {', '.join(UPDATE_MODES)} "
            "(write test paths before the flag, or use --diffbench-update=all)"
        )
    return value


#: The options that do not depend on the metric registry.
FIXED_OPTIONS: tuple[Option, ...] = (
    Option("enabled", "run diffbench cases: generate, compare with baselines, gate on quality and speed",
           default=False, flag="--diffbench", argparse={"action": "store_true"}),
    Option("update", "write baselines: 'all' (the default when the flag has no value) writes missing ones and "
           "refreshes changed or failing ones (a timing reference only with its image, see "
           "--diffbench-update-timing), 'missing' only missing ones", flag="--diffbench-update",
           argparse={"nargs": "?", "const": "all", "type": _update_mode, "metavar": "{all,missing}"}),
    Option("update_timing", "rewrite the timing reference (seconds per image, peak VRAM) of each baseline whose image "
           "still passes, from this run's measurement: accept a new speed on purpose (--diffbench-update rewrites "
           "timing only with the image); a command-line flag only, so no ini file makes it a habit",
           default=False, flag="--diffbench-update-timing", argparse={"action": "store_true"}),
    Option("strict_env", "fail cases whose baseline was made in another environment "
           "(device incl. CPU model, driver, CUDA, library versions); outcome env-mismatch",
           default=False, flag="--diffbench-strict-env", ini="diffbench_strict_env", ini_type="bool",
           argparse={"action": "store_true", "default": None}),
    Option("baseline_dir", "folder of the baselines, relative to the rootdir", default="baselines",
           flag="--diffbench-baseline-dir", ini="diffbench_baseline_dir", cli="--baseline-dir"),
    Option("pin", "template of the baseline pin key, from the fields " + ", ".join(PIN_FIELDS),
           default="{device}-{dtype}", ini="diffbench_pin"),
    Option("output_dir", "folder that receives run folders (runs/<run_id>/) and 'latest', relative to the rootdir",
           default=".diffbench", flag="--diffbench-output-dir", ini="diffbench_output_dir", cli="--output-dir"),
    Option("lpips", "LPIPS: auto (use it when AlexNet's weights load), required, or off", default="auto",
           flag="--diffbench-lpips", ini="diffbench_lpips", argparse={"choices": LPIPS_MODES}),
    Option("model", "pipeline of the diffbench_pipeline fixture: {} (the shipped model, random weights "
           "for plumbing tests), or a diffusers folder (relative to the rootdir) or hub id".format(" or ".join(BUILTIN_MODELS)),
           default="diffbench-tiny", flag="--diffbench-model", ini="diffbench_model"),
    Option("device", "device of the diffbench_pipeline fixture: auto, cpu, cuda, cuda:N, mps", default="auto",
           flag="--diffbench-device", ini="diffbench_device"),
    Option("dtype", "dtype of the diffbench_pipeline fixture: auto (float16 on CUDA, else float32), float32, float16, bfloat16",
           default="auto", flag="--diffbench-dtype", ini="diffbench_dtype"),
    Option("workflow_version", "version of your workflow; a baseline of another version fails as version-mismatch",
           default="1", ini="diffbench_workflow_version"),
    Option("bundle_images", "output images in the run's bundle: failures (the default), all, or none",
           default="failures", flag="--diffbench-bundle-images", ini="diffbench_bundle_images",
           argparse={"choices": BUNDLE_IMAGES}, cli="--bundle-images"),
    Option("max_cases", "largest number of cases one sweep may expand to", default="512", ini="diffbench_max_cases"),
    Option("deterministic", "make generation deterministic before any pipeline is built (what diffusers' "
           "enable_full_determinism does: deterministic algorithms, CUBLAS_WORKSPACE_CONFIG, cuDNN deterministic "
           "without benchmark, TF32 off); recorded in each case's config, so baselines made with it are compared with it",
           default=False, flag="--diffbench-deterministic", ini="diffbench_deterministic", ini_type="bool",
           argparse={"action": "store_true", "default": None}),
    Option("resume", "go on with a run that was stopped: run only the cases of its job list that did not finish, "
           "in the same run folder; without a value the newest run folder (write --diffbench-resume=RUN_ID: "
           "a value after a space is read as the run id)", flag="--diffbench-resume",
           argparse={"nargs": "?", "const": "latest", "metavar": "RUN_ID"}),
    Option("resume_changed", "let --diffbench-resume go on although the job list or config hashes of the cases "
           "differ from the run's", default=False, flag="--diffbench-resume-changed", argparse={"action": "store_true"}),
    Option("calibrate", "measure the noise floor: run each case N times (N >= 2) and with perturbations that should "
           "not matter, and write noise-floor.json beside the baselines", flag="--diffbench-calibrate",
           argparse={"metavar": "N"}),
    Option("tolerance_from", "where gates take their default tolerances: ini (the diffbench_<metric> keys) or "
           "noise-floor (the measured noise-floor.json of the pin, see --diffbench-calibrate)",
           default="ini", ini="diffbench_tolerance_from"),
    Option("presets_file", "a TOML file of presets ([presets.NAME] tables), relative to the rootdir; by default "
           "presets are read from pyproject.toml's [tool.diffbench.presets.NAME]", ini="diffbench_presets_file"),
    Option("batch", "run up to N cases of one test that differ only in their seed as one pipeline call (one CPU "
           "generator per image); recorded in each case's config, as a batch changes the numerics, so baselines made "
           "unbatched (the default, 1) are compared with unbatched runs", default="1", flag="--diffbench-batch",
           ini="diffbench_batch", argparse={"metavar": "N"}),
)

# No metric's tolerance may take one of these ini keys (diffbench_max_cases: a metric "cases").
reserve((option.ini for option in FIXED_OPTIONS if option.ini), "an ini key")


def options() -> tuple[Option, ...]:
    """Every option: the fixed ones, then one ini key ``diffbench_<tolerance>`` per tolerance of the
    metrics registered now and of the budgets."""
    defaults, helps = default_tolerances(), tolerance_help()
    return FIXED_OPTIONS + tuple(
        Option(name, f"default tolerance {name}: {helps[name]}", default=defaults[name], ini=f"diffbench_{name}")
        for name in tolerance_names()
    )


class OptionDeclarations:
    """Declares every option on pytest's parser, and then, as plugins and conftest.py files are
    registered, the ini tolerance key of each metric they registered since (a conftest.py is
    imported after this plugin declared its options). Registered as a plugin for that hook."""

    def __init__(self, parser: pytest.Parser) -> None:
        self.parser = parser
        self.declared: set[str] = set()
        #: The token of this run's REGISTRY.lock (None unless the run makes cases).
        self.lock: object = None
        self.declare()

    def declare(self) -> None:
        """Declare the options not declared yet."""
        group = self.parser.getgroup("diffbench", "diffusion pipeline regression tests")
        for option in options():
            if option.dest in self.declared:
                continue
            self.declared.add(option.dest)
            if option.flag:
                group.addoption(option.flag, dest=f"diffbench_{option.dest}", help=option.help, **(option.argparse or {}))
            if option.ini:
                default = option.default if option.ini_type == "bool" else ("off" if option.default is None else str(option.default))
                self.parser.addini(option.ini, option.help, type=option.ini_type, default=default)

    def pytest_plugin_registered(self) -> None:
        self.declare()

    # -- the metrics of this run (see MetricRegistry.lock) ------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        """A metric refused while diffbench's modules loaded is a usage error. In a run that makes
        cases the tolerances, ini keys and columns are fixed from here on: new metrics are refused
        until the run ends (a run without ``--diffbench`` judges nothing, so it takes them)."""
        refused = refused_metrics()
        if refused:
            raise pytest.UsageError(f"diffbench: {refused[0]}")
        if runs_cases(config):
            self.lock = REGISTRY.lock("a conftest.py below the rootdir is imported at collection, after that")

    def pytest_unconfigure(self) -> None:
        REGISTRY.unlock(self.lock)

    @pytest.hookimpl(wrapper=True)
    def pytest_load_initial_conftests(self, early_config: pytest.Config) -> Generator[None, None, None]:
        """The rootdir's conftest.py registered a metric diffbench refuses: one line, not its
        import's traceback (``--help`` and ``--version`` go on with a warning, as pytest does)."""
        try:
            return (yield)
        except Exception as exc:
            error = getattr(exc, "cause", exc)
            shown = early_config.known_args_namespace
            if isinstance(error, MetricRegistrationError) and not (shown.help or shown.version):
                raise pytest.UsageError(f"diffbench: {error}") from None
            raise

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """A conftest.py imported at collection that registered a metric diffbench refuses (too
        late, or a name it cannot take): its collection error is the one line, not its import's
        traceback (under xdist too, where a worker collects)."""
        report = yield
        excinfo = getattr(getattr(report, "call", None), "excinfo", None)
        error = getattr(excinfo.value, "cause", excinfo.value) if excinfo is not None else None
        if isinstance(error, MetricRegistrationError):
            report.longrepr = f"diffbench: {error}"
        return report


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one pytest run (command line over ini over defaults)."""

    enabled: bool
    update: UpdateMode | None
    strict_env: bool
    baseline_dir: Path
    pin: str
    output_dir: Path
    lpips: str
    model: str
    device: str
    dtype: str
    workflow_version: str
    max_cases: int
    bundle_images: str
    tolerances: Tolerances
    #: ``--diffbench-update-timing``: rewrite the timing of baselines whose image passes.
    update_timing: bool = False
    #: The local diffusers folder ``model`` names (absolute), None for a built-in model or a hub id.
    model_folder: Path | None = None
    #: ``--diffbench-deterministic``: deterministic algorithms, recorded in every case's config.
    deterministic: bool = False
    #: ``--diffbench-resume[=RUN_ID]``: the run to go on with ("latest" by default), None without the flag.
    resume: str | None = None
    #: ``--diffbench-resume-changed``: resume although the job list or config hashes changed.
    resume_changed: bool = False
    #: ``--diffbench-calibrate=N``: how many times each case runs to measure the noise floor, None without it.
    calibrate: int | None = None
    #: ``diffbench_tolerance_from``: "ini" or "noise-floor".
    tolerance_from: str = "ini"
    #: ``diffbench_presets_file``: the TOML file of presets (absolute), None for pyproject.toml's.
    presets_file: Path | None = None
    #: ``--diffbench-batch=N`` (ini ``diffbench_batch``): how many seeds of one test run as one pipeline call (1: unbatched).
    batch: int = 1


class SettingError(Exception):
    """A setting's value is not valid; ``key`` names it (its ini key, or its flag when it has none).
    :func:`read_settings` raises it as the :class:`pytest.UsageError` of its message."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def read_settings(config: pytest.Config, *, baseline_dir_check: FolderCheck | None = None) -> Settings:
    """Resolve every option; a bad value is a :class:`pytest.UsageError` naming the option.

    With ``--diffbench`` (or ``--diffbench-update``, ``--diffbench-update-timing``) the settings are also checked against this
    machine: ``diffbench_device`` must be a device torch sees here (torch is imported only then,
    and only for a device other than ``auto`` and ``cpu``), and the baseline folder must be a folder
    (or not exist yet), and writable with ``--diffbench-update``. ``baseline_dir_check`` overrides
    the baseline folder's check (the ``diffbench`` command, which runs without ``--diffbench``,
    passes what it needs).

    A run without ``--diffbench`` refuses a bad value too (sweeps expand at its collection, under
    ``diffbench_max_cases``). ``pytest --help`` alone does not: it shows help with a warning
    naming each bad value (its default applies) and checks nothing against the machine, so the
    valid values can always be looked up.
    """
    showing_help = bool(config.getoption("help", False))
    ignored: set[str] = set()
    while True:
        try:
            return _resolve(config, baseline_dir_check, frozenset(ignored), machine=not showing_help)
        except SettingError as exc:
            if not showing_help or exc.key in ignored:
                raise pytest.UsageError(str(exc)) from None
            ignored.add(exc.key)
            config.issue_config_time_warning(pytest.PytestConfigWarning(f"{exc} (its default applies to this help)"),
                                             stacklevel=2)


#: The flags that make a pytest run make diffbench cases: ``--diffbench``, and ``--diffbench-update(-timing)``,
#: ``--diffbench-resume`` and ``--diffbench-calibrate``, which imply it.
RUN_FLAGS = ("enabled", "update", "update_timing", "resume", "calibrate")


def runs_cases(config: pytest.Config) -> bool:
    """Whether this pytest run makes diffbench cases: ``--diffbench`` or a flag implying it."""
    return any(config.getoption(f"diffbench_{dest}") not in (None, False) for dest in RUN_FLAGS)


def _resolve(config: pytest.Config, baseline_dir_check: FolderCheck | None, ignored: frozenset[str], *,
             machine: bool) -> Settings:
    """:func:`read_settings`'s settings with the options whose ini key or flag is in ``ignored`` at
    their defaults; ``machine``: check them against this machine when the run makes cases."""
    raw = {option.dest: option.default if ignored & {option.ini, option.flag} else _raw_value(config, option)
           for option in options()}
    root = config.rootpath
    tolerances = Tolerances()
    for name in tolerance_names():
        try:
            tolerances = tolerances.merged({name: raw[name]}, source=f"ini diffbench_{name}", text=True)
        except ValueError as exc:
            raise SettingError(f"diffbench: {exc}", f"diffbench_{name}") from None
    writes = raw["update"] is not None or bool(raw["update_timing"])
    calibrate = None if raw["calibrate"] is None else _check(_repeats, raw["calibrate"], "--diffbench-calibrate")
    resume = None if raw["resume"] is None else _check(_required("name a run id, or give the flag alone for the latest run"),
                                                       raw["resume"], "--diffbench-resume")
    enabled = machine and runs_cases(config)  # the flags are checked above; none has an ini key
    if baseline_dir_check is None:
        baseline_dir_check = "writable" if writes else "exists" if enabled else "off"
    baseline_dir = _check(_required("name a folder, relative to the rootdir"), raw["baseline_dir"], "diffbench_baseline_dir")
    _check(lambda path: check_folder(root / path, root, baseline_dir_check), baseline_dir, "diffbench_baseline_dir")
    output_dir = _check(_required("name a folder, relative to the rootdir"), raw["output_dir"], "diffbench_output_dir")
    problem = folders_problem(root, baseline_dir, output_dir)
    if problem:  # with --help, the output folder's default is tried first, then the baseline folder's
        raise SettingError(f"diffbench: {problem}",
                           "diffbench_baseline_dir" if "diffbench_output_dir" in ignored else "diffbench_output_dir")
    device = _check(check_device, raw["device"], "diffbench_device")
    if enabled and device not in ("auto", "cpu"):
        device = _check(_available_device, device, "diffbench_device")
    model = _check(_required(f"name a built-in model ({', '.join(BUILTIN_MODELS)}), a diffusers folder or a hub id"),
                   raw["model"], "diffbench_model")
    model_folder = None
    if enabled:
        model, model_folder = _check(lambda name: resolve_model(name, root, Path.cwd()), model, "diffbench_model")
    presets_text = None if raw["presets_file"] in (None, "", "off") else str(raw["presets_file"]).strip()
    presets_file = None if presets_text is None else root / presets_text
    if enabled and presets_text is not None:
        _check(lambda text: check_presets_file(root / text), presets_text, "diffbench_presets_file")
    return Settings(
        enabled=enabled,
        update=None if raw["update"] is None else UpdateMode(raw["update"]),
        update_timing=bool(raw["update_timing"]),
        strict_env=bool(raw["strict_env"]),
        baseline_dir=root / baseline_dir,
        pin=_check(check_pin_template, raw["pin"], "diffbench_pin"),
        output_dir=root / output_dir,
        lpips=_check(_choice(LPIPS_MODES), raw["lpips"], "diffbench_lpips"),
        model=model,
        model_folder=model_folder,
        device=device,
        dtype=_check(_choice(DTYPE_NAMES), raw["dtype"], "diffbench_dtype"),
        workflow_version=_check(_required("give the version of your workflow, e.g. 1"), raw["workflow_version"],
                                "diffbench_workflow_version"),
        max_cases=_check(_positive_int, raw["max_cases"], "diffbench_max_cases"),
        bundle_images=_check(_choice(BUNDLE_IMAGES), raw["bundle_images"], "diffbench_bundle_images"),
        tolerances=tolerances,
        deterministic=bool(raw["deterministic"]),
        resume=resume,
        resume_changed=bool(raw["resume_changed"]),
        calibrate=calibrate,
        tolerance_from=_check(_choice(TOLERANCE_SOURCES), raw["tolerance_from"], "diffbench_tolerance_from"),
        presets_file=presets_file,
        batch=_check(_batch_size, raw["batch"],
                     "diffbench_batch" if config.getoption("diffbench_batch") is None else "--diffbench-batch"),
    )


def resolve_model(name: str, root: Path, cwd: Path) -> tuple[str, Path | None]:
    """The name to record for ``--diffbench-model`` ``name`` and the local folder to load it from
    (None for a built-in model or a hub id), with ``root`` the rootdir and ``cwd`` the current
    directory. Reads the file system only; imports no torch.

    ``name`` is a local path when it starts with ``./``, ``../``, ``/`` or ``~`` (or is absolute),
    or when it has a path separator and its first part exists under ``root`` or ``cwd``;
    anything else is a built-in name or a hub id, recorded as written. A local path is looked
    up under ``root``, then ``cwd``, and recorded relative to ``root`` in POSIX form (no ``./``,
    no trailing slash) when the folder is inside it, so every spelling of one folder (and a
    teammate's checkout) records one name; else as written, normalised. Raises ValueError (one
    line) when a local path is not a folder holding ``model_index.json`` (a diffusers pipeline).
    """
    if name in BUILTIN_MODELS or name in {f"diffbench/{builtin}" for builtin in BUILTIN_MODELS}:
        return name, None
    expanded = Path(os.path.expanduser(name))
    separators = {"/", os.sep, os.altsep or "/"}
    local = name.startswith(("./", "../", "~", "/")) or expanded.is_absolute() or name in (".", "..") or (
        any(sep in name for sep in separators) and any((base / expanded.parts[0]).exists() for base in (root, cwd)))
    if not local:
        return name, None
    candidates = [expanded] if expanded.is_absolute() else [root / expanded, cwd / expanded]
    folder = next((Path(os.path.abspath(path)) for path in candidates if path.is_dir()), None)
    valid = "name a diffusers folder (one with model_index.json), a hub id or a built-in model " + ", ".join(BUILTIN_MODELS)
    if folder is None:
        what = "it is a file, not a folder" if any(path.exists() for path in candidates) else (
            "there is no such folder" + ("" if expanded.is_absolute() else " under the rootdir or the current directory"))
        raise ValueError(f"{what}; {valid}")
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"the folder has no model_index.json, so it is not a diffusers pipeline; {valid}")
    try:
        return folder.relative_to(os.path.abspath(root)).as_posix(), folder
    except ValueError:
        return Path(os.path.normpath(name)).as_posix(), folder


def _raw_value(config: pytest.Config, option: Option) -> Any:
    if option.flag:
        value = config.getoption(f"diffbench_{option.dest}")
        if value is not None:
            return value
    if option.ini:
        try:
            return config.getini(option.ini)
        except (ValueError, pytest.UsageError) as exc:  # pytest's own conversion (ini_type "bool"): name the key
            hint = "; use true or false" if option.ini_type == "bool" else ""
            raise SettingError(f"diffbench: {option.ini} is not valid: {exc}{hint}", option.ini) from None
    return option.default


def _check(parse: Callable[[Any], Any], value: Any, name: str) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        raise SettingError(f"diffbench: {name} = {value!r} is not valid: {exc}", name) from None


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"valid values are {', '.join(choices)}")
        return text
    return parse


def _required(what: str) -> Callable[[Any], str]:
    """A check that refuses an empty value, saying ``what`` would be valid."""
    def parse(value: Any) -> str:
        text = str(value).strip()
        if not text:
            raise ValueError(f"it is empty; {what}")
        return text
    return parse


def check_presets_file(path: Path) -> Path:
    """``path`` when it is a readable TOML file; else ValueError saying what it is and what would be
    valid. Only the file: each preset in it is checked when a sweep names it (see spec.presets)."""
    valid = "name a TOML file of [presets.NAME] tables, relative to the rootdir"
    if not path.is_file():
        raise ValueError(f"{'it is a folder' if path.is_dir() else 'there is no such file'}; {valid}")
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"it cannot be read as TOML ({' '.join(str(exc).split())}); {valid}") from None
    return path


def _int_at_least(minimum: int, problem: str) -> Callable[[Any], int]:
    """A check of an integer setting of at least ``minimum``; ``problem`` is its ValueError's text."""
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise ValueError(problem)
        return number
    return parse


#: ``--diffbench-calibrate``'s N: one repeat has no spread.
_repeats = _int_at_least(2, "give how many times each case runs, an integer of at least 2")
_positive_int = _int_at_least(1, "it must be a positive integer")
#: ``--diffbench-batch``'s N: 1 runs every case on its own.
_batch_size = _int_at_least(1, "give how many seeds run as one pipeline call, a positive integer (1: unbatched)")


def folders_problem(root: Path, baseline_dir: str, output_dir: str) -> str:
    """Why the baseline folder and the output folder (each relative to ``root``, the rootdir, or
    absolute) cannot be used together, on one line naming both keys; "" when they can.

    The baseline folder is committed and the output folder is not, so neither may hold the
    other (``git add baselines/`` would commit run folders, or runs would sit among the
    baselines), they may not be one folder, and the baseline folder may not be the rootdir or
    a folder above it (the whole project would be the baseline folder).
    """
    baselines, outputs, project = ((root / path).resolve() for path in (baseline_dir, output_dir, "."))
    shown = f"diffbench_baseline_dir = {baseline_dir!r}"
    if baselines == project or baselines in project.parents:
        return (f"{shown} is not valid: it is the rootdir{'' if baselines == project else ' or a folder above it'}, "
                "so the whole project would be the baseline folder (and diffbench_output_dir inside it); "
                "name a folder of its own, e.g. baselines")
    shown_output = f"diffbench_output_dir = {output_dir!r}"
    if outputs == baselines:
        return (f"{shown_output} is {shown}: runs would be written among the baselines and committed with them; "
                "name two folders apart, e.g. .diffbench and baselines")
    if baselines in outputs.parents:
        return (f"{shown_output} is inside {shown}: run folders would be committed with the baselines; "
                "name a folder outside it, e.g. .diffbench")
    if outputs in baselines.parents:
        return (f"{shown} is inside {shown_output}: the baselines would sit among the run folders, which are not "
                "committed; name a folder outside it, e.g. baselines")
    return ""


def check_pin_template(template: Any) -> str:
    """Check a pin template: ``{field}`` parts, each one of :data:`PIN_FIELDS`, and the literal
    characters of :data:`PIN_LITERAL`, e.g. ``{device}-{dtype}`` or ``gpu-{torch}``.

    No attribute access, indexing, format spec or conversion (``{device.__class__}``,
    ``{device:>10}``, ``{device!r}``), no other character, not empty. Raises ValueError naming the
    first part that is not valid and the valid fields.
    """
    text = str(template)
    valid = (f"valid fields are {', '.join('{' + f + '}' for f in PIN_FIELDS)}, joined by letters, digits, "
             "'.', '_' or '-'")
    if not text:
        raise ValueError(f"it is empty; {valid}")
    position = 0
    while position < len(text):
        match = _PIN_PART.match(text, position)
        if match is None:
            rest = text[position:]
            what = f"unclosed field {rest!r}" if rest.startswith("{") else f"character {rest[0]!r} is not allowed"
            raise ValueError(f"{what}; {valid}")
        if match.group("field") is not None and match.group("field") not in PIN_FIELDS:
            raise ValueError(f"unknown or malformed field {match.group('field')!r}; {valid}")
        position = match.end()
    return text


def check_folder(path: Path, root: Path, check: FolderCheck) -> None:
    """Check that ``path`` can be a folder diffbench uses: ``exists``: it is a folder or can be
    made one (no file in the way); ``writable``: besides, it (or the folder it would be made in)
    is writable; ``off``: nothing.

    Raises ValueError saying what is in the way (a path on it shown relative to ``root``).
    """
    if check == "off":
        return
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    where = "it" if existing == path else f"{_shown(existing, root)}, on its path,"
    if not existing.is_dir():
        raise ValueError(f"{where} is a file, not a folder; name a folder diffbench may create and write, "
                         "relative to the rootdir")
    if check == "writable" and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{where} is not writable, and --diffbench-update writes baselines there; make it writable "
                         "or name another folder")


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _available_device(device: str) -> str:
    """``device`` if torch sees it on this machine (see spec.targets.check_available)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return check_available(device, cuda_count=cuda_count, mps=bool(mps is not None and mps.is_available()))
