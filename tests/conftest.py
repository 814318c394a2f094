"""Shared fixtures of the test suite.

``project`` is a small diffbench test project in a temporary folder (pytester's): it writes test
modules and ini files, runs ``pytest --diffbench`` on them in this process (a
:class:`~pytest_diffbench.testing.FakePipeline` by default, no torch) or in a child process (the
built-in models), and reads back what the runs left. Everything shared is a fixture, so the
tests work under ``--import-mode=importlib`` as well as the default import mode.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import pkgutil
import py_compile
import re
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

import pytest

import pytest_diffbench
from pytest_diffbench.testing import FAKE_PIPELINE_ENV, DiffbenchRun, run_in_process, use_fake_pipeline

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The folder of the suite's plugin for the runs its tests start (tests/suite_plugin/diffbench_suite.py).
SUITE_PLUGIN_DIR = REPO_ROOT / "tests" / "suite_plugin"
SUITE_PLUGIN = "diffbench_suite"


def _import_suite_plugin() -> ModuleType:
    """The suite plugin, imported by path once per process: in sys.modules before any pytester
    snapshot, so the in-process runs that load it ($PYTEST_PLUGINS) find it there, imported once."""
    if SUITE_PLUGIN not in sys.modules:
        spec = importlib.util.spec_from_file_location(SUITE_PLUGIN, SUITE_PLUGIN_DIR / f"{SUITE_PLUGIN}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[SUITE_PLUGIN] = module
        spec.loader.exec_module(module)
    return sys.modules[SUITE_PLUGIN]


suite_plugin = _import_suite_plugin()


def _suite_plugin_on_workers_path() -> None:
    """Put the suite plugin's folder on the sys.path of the xdist workers of in-process ``-n`` runs.

    xdist hands its workers the sys.path this process started with (``xdist.plugin._sys_path``,
    frozen when xdist was imported), not $PYTHONPATH: without its folder there, a worker could not
    import the plugin that $PYTEST_PLUGINS names. It goes onto this process's sys.path too, in
    case a run imports xdist again (freezing sys.path anew)."""
    folder = str(SUITE_PLUGIN_DIR)
    if folder not in sys.path:
        sys.path.append(folder)
    try:
        from xdist import plugin as xdist_plugin
    except ImportError:  # no xdist: no workers
        return
    frozen = getattr(xdist_plugin, "_sys_path", None)
    if isinstance(frozen, list) and folder not in frozen:
        frozen.append(folder)


_suite_plugin_on_workers_path()

import forked_pytest  # noqa: E402 (tests/suite_plugin/forked_pytest.py: on sys.path from here on)
import module_stealing  # noqa: E402 (tests/suite_plugin/module_stealing.py)

#: The pin of a case on the CPU in float32 (the default ``{device}-{dtype}``).
PIN = "cpu-float32"
#: The id of ``@diffbench.sweep(seeds=0, steps=2)``'s one case.
CASE = "seed0-euler-2steps-cfg7.5"
#: results.csv fields that legitimately differ between two runs of the same cases.
VOLATILE_FIELDS = frozenset({
    "run_id", "timestamp", "seconds_per_image", "warmup_seconds", "baseline_seconds_per_image",
    "slowdown", "worker", "workers", "baseline_workers", "output_path",
})


BUILTIN_CONFTEST = '''
import pytest


@pytest.fixture(scope="session", autouse=True)
def _uses_the_builtin_pipeline():
    """No conftest pipeline: the plugin's diffbench_pipeline (--diffbench-model) is used."""
'''


def diffbench_test(name: str = "test_case", sweep: str = "seeds=0, steps=2", body: str = 'diffbench.generate("a red cube")',
                   decorators: Iterable[str] = ()) -> str:
    """Source of one diffbench test function (no imports)."""
    lines = [*decorators, f"@diffbench.sweep({sweep})", f"def {name}(diffbench):"]
    lines += ["    " + line for line in textwrap.dedent(body).strip().splitlines()]
    return "\n".join(lines) + "\n"


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def edit_sidecar(path: Path, **sections: dict[str, Any]) -> None:
    """Update sections of a baseline sidecar (``environment={...}``, ``measurement={...}``)."""
    data = read_json(path)
    for section, values in sections.items():
        data[section].update(values)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def stable_row(result: Any) -> dict[str, Any]:
    """A result's results.csv row without the fields that differ between runs of the same cases."""
    return {key: value for key, value in result.to_row().items() if key not in VOLATILE_FIELDS}


def text_of(outcome: pytest.RunResult) -> str:
    return outcome.stdout.str() + "\n" + outcome.stderr.str()


#: What the fork servers of the running test's children import (:func:`run_forked`): torch and
#: diffusers for a test marked ``model`` (set before its fixtures, module-scoped ones included).
_preload: list[tuple[str, ...]] = [forked_pytest.LIGHT]


#: How many modules were imported when :func:`freeze_imported` last froze the heap.
_modules_when_frozen = [0]
#: Modules imported since the last freeze that make the next test's setup freeze again (torch
#: and diffusers bring about 2,000; a FakePipeline run's modules are dropped after it).
FREEZE_AFTER_MODULES = 200


def freeze_imported() -> None:
    """Collect the garbage, then move every object left into the garbage collector's permanent
    generation (:func:`gc.freeze`), when at least :data:`FREEZE_AFTER_MODULES` modules were
    imported since the last time: before the first test, and after the test that imported torch.

    Each in-process pytest run ends with two full collections (pytest's unraisable- and
    thread-exception plugins), and each traverses every object of this process that is not
    frozen: with torch and diffusers imported, that made a FakePipeline run's CPU time about twice
    as long. Frozen objects are never freed; those alive at a test's setup are the modules' and
    the session's and modules' fixtures'."""
    if len(sys.modules) >= _modules_when_frozen[0] + FREEZE_AFTER_MODULES:
        gc.collect()
        gc.freeze()
        _modules_when_frozen[0] = len(sys.modules)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Which fork server the test's children come from (:data:`_preload`); the heap frozen after
    many imports (:func:`freeze_imported`)."""
    _preload[0] = forked_pytest.MODEL if item.get_closest_marker("model") is not None else forked_pytest.LIGHT
    freeze_imported()


@pytest.fixture(scope="session", autouse=True)
def _xdist_workers_forked() -> Iterator[None]:
    """The xdist workers of the tests' in-process ``pytest -n`` runs are forked from a warm server
    too (``forked_pytest.forked_execnet_workers``; of :data:`_preload`'s imports), not started
    from scratch: each saves about half its 1 CPU-s start. Session-scoped and autouse, it covers
    only the processes that run tests, never the controller of this suite's own workers."""
    with forked_pytest.forked_execnet_workers(lambda: _preload[0]):
        yield


def run_forked(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """:meth:`pytest.Pytester.runpytest_subprocess`, with the child forked from a warm server
    (tests/suite_plugin/forked_pytest.py) that has imported what the running test's children
    import (torch and diffusers for a test marked ``model``): the same arguments
    (``--basetemp`` in a new ``runpytest-*`` folder), environment ($PYTHONPATH led by the
    project's folder) and result, without the child's start-up imports (about 0.6 CPU-s; 12 with
    torch and diffusers). A child whose environment differs from the server's in what modules
    read at import starts from scratch instead."""
    basetemp = tempfile.mkdtemp(prefix="runpytest-", dir=pytester.path)
    plugins = [arg for plugin in pytester.plugins for arg in ("-p", str(plugin))]
    args = (*plugins, f"--basetemp={basetemp}", *args)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    print("running: python -m pytest", *args)
    print("     in:", Path.cwd())
    start = time.monotonic()
    done = forked_pytest.run_python(["-m", "pytest", *args], env=env, preload=_preload[0], timeout=None)
    return pytest.RunResult(done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), time.monotonic() - start)


class DiffbenchProject:
    """A diffbench test project in ``pytester``'s folder (see the module docstring).

    The helper functions above are attributes too, so a test reaches everything through the
    fixture: ``project.test(...)``, ``project.snapshot(...)``.
    """

    PIN = PIN
    CASE = CASE
    REPO_ROOT = REPO_ROOT
    test = staticmethod(diffbench_test)
    read_json = staticmethod(read_json)
    edit_sidecar = staticmethod(edit_sidecar)
    sha256_file = staticmethod(sha256_file)
    snapshot = staticmethod(snapshot)
    stable_row = staticmethod(stable_row)
    text = staticmethod(text_of)

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.monkeypatch = monkeypatch
        self.path = pytester.path
        self.output_dir = pytester.path / ".diffbench"
        self.baselines = pytester.path / "baselines"
        monkeypatch.setenv("PYTEST_ADDOPTS", SUITE_ADDOPTS)  # pytester removed child_environment's
        use_fake_pipeline(pytester)

    # -- writing the project ------------------------------------------------------------------

    def write_tests(self, *tests: str, module: str = "test_gen") -> Path:
        """A test module made of ``tests`` (sources from :meth:`test` or plain code)."""
        source = "import pytest_diffbench as diffbench\n\n\n" + "\n\n".join(tests)
        return self.pytester.makepyfile(**{module: source})

    def write_ini(self, **keys: Any) -> None:
        """A pytest.ini with ``diffbench_<key> = value`` for each keyword (replaces any earlier one)."""
        lines = ["[pytest]"] + [f"diffbench_{key} = {value}" for key, value in keys.items()]
        self.pytester.makeini("\n".join(lines) + "\n")

    def fake(self, **keywords: Any) -> None:
        """The keywords of the FakePipeline of the following runs (``weights=``, ``drift=``, ...)."""
        self.monkeypatch.setenv(FAKE_PIPELINE_ENV, json.dumps(keywords))

    def use_builtin_pipeline(self) -> None:
        """Runs use the plugin's own diffbench_pipeline (``--diffbench-model``), not a FakePipeline."""
        self.pytester.makeconftest(BUILTIN_CONFTEST)

    # -- running ------------------------------------------------------------------------------

    def run(self, *args: str, update: str | None = None, lpips: str | None = "off", subprocess: bool = False) -> DiffbenchRun:
        """``pytest --diffbench`` on the project: in this process, or in a child with ``subprocess``.

        ``update`` adds ``--diffbench-update=UPDATE``; ``lpips`` adds ``--diffbench-lpips=LPIPS``
        (None: the ini's or the default mode).
        """
        flags = ["--diffbench", "-p", "no:cacheprovider", "-rA"]
        if lpips is not None:
            flags.append(f"--diffbench-lpips={lpips}")
        if update is not None:
            flags.append(f"--diffbench-update={update}")
        if not subprocess:  # reads the run folder the run used (its diffbench_output_dir)
            return run_in_process(self.pytester, "-p", "no:cacheprovider", *flags, *args)  # as run_plain's
        return DiffbenchRun.after(self.run_plain(*flags, *args, subprocess=True), self.path, self.output_dir)

    def run_plain(self, *args: str, subprocess: bool = False, fresh: bool = False) -> pytest.RunResult:
        """pytest on the project with ``args`` only (no ``--diffbench`` unless given): in this
        process, or with ``subprocess`` in a child forked from a warm server (:func:`run_forked`),
        or with ``fresh`` too in a child started from scratch (a test of what the child imports)."""
        if subprocess and fresh:
            return self.pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        if subprocess:
            return run_forked(self.pytester, "-p", "no:cacheprovider", *args)
        return self.pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)

    # -- reading what runs left -----------------------------------------------------------------

    def baseline_pair(self, test: str, case_id: str = CASE, module: str = "test_gen", pin: str = PIN) -> tuple[Path, Path]:
        """(PNG, JSON sidecar) paths of one case's baseline."""
        base = self.baselines / pin / module / test
        return base / f"{case_id}.png", base / f"{case_id}.json"

    def runs(self) -> list[Path]:
        """The run folders under ``.diffbench/runs``, by name."""
        runs = self.output_dir / "runs"
        return sorted(runs.iterdir()) if runs.is_dir() else []

    def latest(self) -> str | None:
        latest = self.output_dir / "latest"
        return latest.read_text(encoding="utf-8").strip() if latest.is_file() else None


#: Modules of libraries that an in-process run imports lazily, beyond pytest_diffbench's own
#: modules and what the plugin preloads itself (plugin/hooks.py's IN_PROCESS_PRELOAD): results.csv's
#: writer, SSIM (with scipy.ndimage), the image formats Pillow registers on its first open, and
#: two codecs. tests/integration/test_in_process_imports.py names any that is missing.
LAZY_LIBRARY_MODULES = ("pandas.io.formats.csvs", "skimage.metrics._structural_similarity", "PIL.BmpImagePlugin",
                        "PIL.GifImagePlugin", "PIL.JpegImagePlugin", "PIL.PpmImagePlugin", "encodings.ascii",
                        "encodings.unicode_escape")
#: A statement at the top of a module that imports a library which loads torch, or another module.
_TOP_IMPORT = re.compile(r"^(?:import|from)[ \t]+([\w.]+)(?:[ \t]+import[ \t]+(?:\(([^)]*)\)|([\w \t,]+)))?", re.MULTILINE)
_TORCH_LIBRARIES = ("torch", "diffusers", "transformers", "lpips", "accelerate", "peft")
#: An import statement anywhere in a module, indented too (:data:`_TOP_IMPORT`'s groups).
_ANY_IMPORT = re.compile(r"^[ \t]*" + _TOP_IMPORT.pattern[1:], re.MULTILINE)


def imported_by(source: str, *, anywhere: bool = False) -> set[str]:
    """What the import statements at the top of ``source`` (with ``anywhere``, indented ones too)
    name: each module, and ``module.name`` for each name of a ``from module import``."""
    pattern = _ANY_IMPORT if anywhere else _TOP_IMPORT
    return {target for module, grouped, names in pattern.findall(source)
            for target in [module, *(f"{module}.{n.split()[0]}" for n in (grouped or names).split(",") if n.strip())]}


@functools.lru_cache(maxsize=None)
def module_imports(package: ModuleType = pytest_diffbench, *, anywhere: bool = False) -> dict[str, set[str]]:
    """:func:`imported_by` of each module of ``package``, by module name. Read from the sources."""
    imports = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        spec = importlib.util.find_spec(info.name)
        if spec is not None and spec.origin is not None and spec.origin.endswith(".py"):
            imports[info.name] = imported_by(Path(spec.origin).read_text(encoding="utf-8"), anywhere=anywhere)
    return imports


def modules_without_torch(package: ModuleType = pytest_diffbench) -> list[str]:
    """The modules of ``package`` whose import does not load torch: none of the statements at
    their top (not indented) imports a library of :data:`_TORCH_LIBRARIES`, or a module of the
    package that does. Read from the sources, nothing is imported."""
    imports = module_imports(package)
    heavy = {name for name, targets in imports.items() if any(t.split(".")[0] in _TORCH_LIBRARIES for t in targets)}
    while True:
        more = {name for name, targets in imports.items() if name not in heavy and targets & heavy}
        if not more:
            return sorted(set(imports) - heavy)
        heavy |= more


@pytest.fixture(scope="session", autouse=True)
def _preloaded_modules() -> None:
    """Import once per process what in-process runs would import lazily (pytest_diffbench's own
    modules without torch, :data:`LAZY_LIBRARY_MODULES`), before any test's ``pytester``.

    pytester drops every module an in-process run imported when the run ends, so each run
    imported (executed) them again: about a third of a FakePipeline run's CPU time, in the ~900
    such runs of the suite. Imported before pytester's snapshots, they stay, as in a user's
    process. A module that fails to import is left to the tests that use it."""
    for name in [*modules_without_torch(), *LAZY_LIBRARY_MODULES]:
        try:
            importlib.import_module(name)
        except Exception:  # a broken module fails the tests that import it, not every test
            continue


@pytest.fixture(scope="session")
def torch() -> ModuleType:
    """torch, imported when a test asks for it: test modules do not import it at their top, so
    collecting the suite (also for ``-m "not model"``) imports nothing heavy. Session-scoped, it is
    set up before any ``pytester``/``project``: pytester's sys.modules snapshot drops what a test
    imports during its runs, and a process cannot import torch twice."""
    return importlib.import_module("torch")


@pytest.fixture(autouse=True)
def _model_stack_before_in_process_model_runs(request: pytest.FixtureRequest) -> None:
    """A ``model`` test that runs pytest in this process (it uses ``pytester``) gets torch,
    diffusers, transformers and the diffbench modules that import them (``forked_pytest.MODEL``,
    what its child runs' server imports too) imported before its runs. Test modules import them
    only in the tests that use them (not at collection), and pytester drops every module first
    imported during an in-process run when the run ends; these register operators with torch
    when imported (torch itself, and ``torch._inductor.test_operators``, which diffusers' pipelines
    bring), so importing one again in a later test of the same process crashes. FakePipeline runs
    (the tests not marked ``model``) import none of them."""
    if request.node.get_closest_marker("model") and "pytester" in request.fixturenames:
        request.getfixturevalue("torch")
        for name in forked_pytest.MODEL:
            importlib.import_module(name)


def checked_hash_cache_is_current(source: Path, cached: Path) -> bool:
    """Whether ``cached`` is a checked-hash .pyc (PEP 552: flags 3 after the magic number, then
    the source's hash) made from ``source`` as it is now. Raises OSError when ``source`` cannot be
    read; a missing or unreadable ``cached`` is not current."""
    header = importlib.util.MAGIC_NUMBER + (3).to_bytes(4, "little") + importlib.util.source_hash(source.read_bytes())
    try:
        with open(cached, "rb") as handle:
            return handle.read(16) == header
    except OSError:
        return False


def precompile(*folders: Path) -> None:
    """Write a hash-checked .pyc for each module under ``folders`` whose .pyc is missing or was made
    from other source (a module already up to date is only hashed).

    The runs the suite starts in child processes never write bytecode (:func:`child_environment`),
    so each would compile pytest_diffbench's ~90 modules from source (about 0.3 CPU-s of every
    child). A hash-checked .pyc is read even then, and only while its source hashes the same: an
    edited module is never read stale, whatever its timestamp. py_compile writes each .pyc
    atomically, so two suites compiling at once do not spoil one. A module that does not compile
    is left to the tests that import it."""
    for folder in folders:
        for source in sorted(folder.rglob("*.py")):
            cached = Path(importlib.util.cache_from_source(str(source)))
            try:
                if checked_hash_cache_is_current(source, cached):
                    continue
                py_compile.compile(str(source), str(cached), doraise=True,
                                   invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            except (OSError, py_compile.PyCompileError):
                continue


def rewritten_modules(config: pytest.Config, folder: Path) -> list[Path]:
    """The modules pytest rewrites the asserts of in a run of the suite and in the runs it starts:
    each test module and conftest.py under ``folder``, and each module of an installed pytest
    plugin's distribution (one with a ``pytest11`` entry point, such as pytest-xdist's: pytest
    rewrites those when it loads the plugin, in every child pytest and xdist worker)."""
    patterns = config.getini("python_files")
    tests = [source for source in sorted(folder.rglob("*.py"))
             if source.name == "conftest.py" or any(source.match(pattern) for pattern in patterns)]
    plugins = {Path(str(dist.locate_file(file))) for dist in importlib.metadata.distributions()
               if any(entry.group == "pytest11" for entry in dist.entry_points)
               for file in dist.files or () if file.suffix == ".py"}
    return tests + sorted(plugins)


def prerewrite(config: pytest.Config, sources: Iterable[Path]) -> None:
    """Write pytest's cached, assertion-rewritten code of each of ``sources`` whose cache is
    missing or was made from other source.

    pytest reads that cache even when it writes no bytecode, but then never writes it: each xdist
    worker rewrote the suite's ~190 test modules again (about 5 CPU-s each), and each child pytest
    and worker the runs start rewrote pytest-xdist's modules (about 0.3 CPU-s each). pytest checks
    the cache by its source's hash (checked-hash pycs, as pytest 9.2 writes them: flags 3 after the
    magic number), and writes it atomically, as here with pytest's own, private, functions. A module
    that does not read or compile is left to pytest; a pytest whose functions differ (any other
    error) gets no cache from here and rewrites as before."""
    try:
        from _pytest.assertion import rewrite

        state = config.stash[rewrite.assertstate_key]
        for source in sources:
            cached = rewrite.get_cache_dir(source) / (source.name[:-3] + rewrite.PYC_TAIL)
            try:
                if checked_hash_cache_is_current(source, cached):
                    continue
                source_hash, code = rewrite._rewrite_test(source, config)
                cached.parent.mkdir(exist_ok=True)
                rewrite._write_pyc(state, code, source_hash, cached)
            except (OSError, SyntaxError):
                continue
    except Exception:  # another pytest's private functions, or --assert=plain: a cache is only a saving
        return


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or the one process) of a suite run precompiles pytest_diffbench and the
    suite plugin for the child processes (:func:`precompile`), and the suite's test modules for
    its xdist workers (:func:`prerewrite`), before xdist starts them."""
    if not hasattr(config, "workerinput"):
        precompile(Path(pytest_diffbench.__file__).parent, SUITE_PLUGIN_DIR)
        prerewrite(config, rewritten_modules(config, REPO_ROOT / "tests"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules that may import torch (:func:`imports_torch`) run first, then the modules with a
    test that starts child processes (marked ``subprocess``), each module's tests together and in
    their order. Every xdist worker sorts the same.

    xdist's worksteal gives each worker an equal run of the sorted tests; a worker that runs out
    takes the end of the other's queue. The first, at the head of the first worker's run, are done
    before the other runs out (as measured): they run in that worker only, and the other never
    pays torch's and diffusers' import (about 5 CPU-s). The second hold the suite's longest tests
    (the kill tests take tens of seconds each): early in a queue, the end that a worker takes is
    short in-process tests, instead of one long test keeping a core busy while the other has
    nothing left."""
    starts_children = {item.path for item in items if item.get_closest_marker("subprocess")}
    items.sort(key=lambda item: (not imports_torch(item.path), item.path not in starts_children))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist worksteal`` whose steals take whole modules (tests/suite_plugin/module_stealing.py):
    a module split between the workers sets its module-scoped fixtures up in each, and the suite
    shares runs that cost seconds that way (``shared_project``). Other modes are xdist's own."""
    return module_stealing.scheduler(config, log)


@functools.lru_cache(maxsize=None)
def _modules_with_torch(package: ModuleType = pytest_diffbench) -> frozenset[str]:
    """The modules of ``package`` that load torch when imported (not :func:`modules_without_torch`),
    and those with an import statement of such a module or of a library of :data:`_TORCH_LIBRARIES`
    in a function (one step: not the modules whose functions import those)."""
    loading = set(module_imports(package)) - set(modules_without_torch(package))
    return frozenset(loading | {name for name, targets in module_imports(package, anywhere=True).items()
                                if any(t in loading or t.split(".")[0] in _TORCH_LIBRARIES for t in targets)})


@functools.lru_cache(maxsize=None)
def imports_torch(path: Path) -> bool:
    """Whether the test module at ``path`` may import torch, at its top or within a test: an
    import statement of a library of :data:`_TORCH_LIBRARIES` or of a pytest_diffbench module
    that may load one (:func:`_modules_with_torch`). Read from the source; an unreadable
    module counts as not importing it."""
    try:
        source = path.read_text(encoding="utf-8")
    except OSError:
        return False
    heavy = _modules_with_torch()
    return any(target in heavy or target.split(".")[0] in _TORCH_LIBRARIES for target in imported_by(source, anywhere=True))


#: Tiny offline builders of every diffusers pipeline family (imports torch: only tests that use them pay).
FAMILY_BUILDERS = REPO_ROOT / "tests" / "families" / "builders.py"


@pytest.fixture(scope="session")
def builders() -> ModuleType:
    """tests/families/builders.py, imported by path once per process."""
    name = "diffbench_family_builders"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FAMILY_BUILDERS)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def _empty_torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty-torch-home")


#: $PYTEST_ADDOPTS of the runs tests start: without anyio's pytest plugin, which an installed
#: library brings and no test uses (importing it is about 0.4 of a child pytest's 1.1 CPU-s start).
SUITE_ADDOPTS = "-p no:anyio"


def child_environment(monkeypatch: pytest.MonkeyPatch, torch_home: Path, *, real_plot: bool = False) -> None:
    """What runs started by a test see: no LPIPS weights unless the test provides them (an empty
    ``torch_home`` as TORCH_HOME), one torch thread (on a shared CPU, OpenMP's spinning threads
    make each run several times slower; the images are tiny), no bytecode written (a test module
    rewritten within the same second could otherwise be read back stale), no
    $GITHUB_STEP_SUMMARY of the CI job running this suite, and no $CI or $BUILD_NUMBER (with
    either set, pytest prints whole failure messages in its short summary: the runs would print
    differently on CI).

    Atomic writes and journal lines skip ``os.fsync`` (it guards against power loss, which no test
    causes; a killed process's writes stay in the page cache; the tests of fsync itself patch it
    again): in this process, and in every pytest it starts, which loads the suite plugin
    (tests/suite_plugin/diffbench_suite.py, named in $PYTEST_PLUGINS, its folder on $PYTHONPATH).
    There, unless ``real_plot``, diffbench runs also write a 1x1 plot.png without matplotlib.

    $PYTEST_ADDOPTS is :data:`SUITE_ADDOPTS`, not this pytest's (pytester removes it when it starts
    a project: :class:`DiffbenchProject` sets it again)."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    for name in ("CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(FAKE_PIPELINE_ENV, raising=False)
    monkeypatch.setenv("PYTEST_ADDOPTS", SUITE_ADDOPTS)
    plugins = [name for name in os.environ.get("PYTEST_PLUGINS", "").split(",") if name.strip() and name != SUITE_PLUGIN]
    monkeypatch.setenv("PYTEST_PLUGINS", ",".join([*plugins, SUITE_PLUGIN]))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(SUITE_PLUGIN_DIR)])))
    monkeypatch.setenv(suite_plugin.PROCESS_ENV, str(os.getpid()))
    monkeypatch.setenv(suite_plugin.FSYNC_ENV, "skip")
    monkeypatch.setenv(suite_plugin.PLOT_ENV, "real" if real_plot else "stand-in")
    monkeypatch.setattr(os, "fsync", suite_plugin.skipped_fsync)


def draws_real_plot(node: pytest.Item | pytest.Module) -> bool:
    """Whether the runs of ``node``'s tests draw the real plot.png: it is marked ``real_plot`` (a
    test, or a module through ``pytestmark``). The plot's own tests (tests/unit/report/test_plot*.py)
    call report/plot.py directly and always draw it."""
    return node.get_closest_marker("real_plot") is not None


def plan_plot_not_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs (and in-process ``diffbench`` commands) work out plot.png's panels
    (:func:`~pytest_diffbench.report.plot.plan`) but write a 1x1 stand-in (the suite plugin's
    ``PLOT_STAND_IN``) instead of building and drawing the figure."""
    from pytest_diffbench.report import artifacts, plot

    def planned_not_drawn(results: Any, title: str) -> bytes:
        plot.plan(results)
        return suite_plugin.PLOT_STAND_IN

    monkeypatch.setattr(artifacts, "speed_quality_png", planned_not_drawn)


@pytest.fixture(autouse=True)
def _plot_planned_not_drawn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs (and in-process ``diffbench`` commands) of a test work out plot.png's
    panels but do not draw it: they write the 1x1 stand-in (the suite plugin's ``PLOT_STAND_IN``)
    instead, unless :func:`draws_real_plot` (the test is marked ``real_plot``).

    Building, laying out and drawing the figure with matplotlib is most of a FakePipeline run's
    CPU time (about 0.25 of 0.4 CPU-s for two cases), in the suite's ~800 such runs. The plan
    (:func:`~pytest_diffbench.report.plot.plan`: each panel's points, gates and axis ranges, all
    that depends on the results) still runs on every run's results, so a result the figure
    cannot take still fails as it would; what matplotlib does with a plan is the plot tests'
    (tests/unit/report/test_plot*.py). Runs in child processes write the stand-in without the plan
    (see :func:`_child_environment`).
    """
    if not draws_real_plot(request.node):
        plan_plot_not_draw(monkeypatch)


@pytest.fixture(autouse=True)
def _child_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _empty_torch_home: Path) -> None:
    """Every test's runs see :func:`child_environment`. Its child processes draw the real plot.png
    when :func:`draws_real_plot`, and in the end-to-end tests of real models (marked ``model``
    under tests/e2e), which run diffbench as a user does; elsewhere they write the stand-in."""
    end_to_end = request.node.path.relative_to(REPO_ROOT).parts[:2] == ("tests", "e2e")
    real_plot = draws_real_plot(request.node) or (end_to_end and request.node.get_closest_marker("model") is not None)
    child_environment(monkeypatch, _empty_torch_home, real_plot=real_plot)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> DiffbenchProject:
    """A diffbench test project whose runs use a FakePipeline (see :class:`DiffbenchProject`).

    An xdist worker id inherited from this (possibly xdist) process must not leak into the
    results of the runs: $PYTEST_XDIST_WORKER is set to a worker that does not exist.
    """
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw9")
    return DiffbenchProject(pytester, monkeypatch)


class _SharedRequest:
    """What :class:`pytest.Pytester` needs of its fixture request, for a project shared by a
    module's tests: the module's node and config, and finalizers that run when the project's
    ``with`` block ends (pytester's restore of sys.modules and sys.path, its hook recorders)."""

    function = None
    instance = None

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.node = request.node
        self.config = request.config
        self.finalizers: list[Callable[[], object]] = []

    def addfinalizer(self, finalizer: Callable[[], object]) -> None:
        self.finalizers.append(finalizer)


@pytest.fixture(scope="module")
def shared_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   _empty_torch_home: Path) -> Callable[[], contextlib.AbstractContextManager[DiffbenchProject]]:
    """``with shared_project() as project:`` a :class:`DiffbenchProject` for a module-scoped fixture
    whose runs several tests of the module assert on (each in-process run costs about 0.4 CPU-s,
    so tests that check different things of the same scenario share it instead of re-running it).

    Inside the block, the project's folder is the working directory and the environment is the
    one the ``project`` fixture gives (:func:`child_environment`, $PYTEST_XDIST_WORKER=gw9, and
    plot.png's stand-in unless the module :func:`draws_real_plot`); when
    it ends, both are restored, as are sys.modules and sys.path, as at the end of a test. What the
    runs left stays on disk for the module's tests to read: they must not change it (a test that
    changes the project takes its own ``project``).
    """

    @contextlib.contextmanager
    def shared() -> Iterator[DiffbenchProject]:
        shared_request = _SharedRequest(request)
        with pytest.MonkeyPatch.context() as monkeypatch:
            real_plot = draws_real_plot(request.node)
            child_environment(monkeypatch, _empty_torch_home, real_plot=real_plot)
            if not real_plot:
                plan_plot_not_draw(monkeypatch)
            monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw9")
            try:
                pytester = pytest.Pytester(shared_request, tmp_path_factory, monkeypatch,  # type: ignore[arg-type]
                                           _ispytest=True)
                yield DiffbenchProject(pytester, monkeypatch)
            finally:
                for finalizer in reversed(shared_request.finalizers):
                    finalizer()

    return shared


def copy_run(made: DiffbenchRun, to: Path) -> DiffbenchRun:
    """Copy the whole project folder of ``made`` (test files, ini, conftest, baselines, run
    folders) into ``to``: the same run, read from there, for a test that changes what the run
    left. A run's files name each other by paths relative to the project, so the copy reads as
    the run would have had it been made in ``to`` (with the same ``outcome``)."""
    shutil.copytree(made.root, to, symlinks=True, dirs_exist_ok=True)
    return DiffbenchRun(made.outcome, Path(to), Path(to) / made.output_dir.relative_to(made.root), made.run_id)


@pytest.fixture(scope="session", name="copy_run")
def copy_run_fixture() -> Callable[[DiffbenchRun, Path], DiffbenchRun]:
    """:func:`copy_run`: ``copy_run(shared_run, pytester.path)`` gives a test its own copy of a run
    made once by a module-scoped fixture (see ``shared_project``)."""
    return copy_run


@pytest.fixture(scope="session", name="stable_row")
def stable_row_fixture() -> Callable[[Any], dict[str, Any]]:
    """:func:`stable_row`, for tests whose runs come from a module-scoped fixture, not ``project``."""
    return stable_row


@pytest.fixture(scope="session")
def checkout_pythonpath() -> str:
    """PYTHONPATH for a child Python: this checkout first (``training`` lives there), then the rest."""
    return os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
