"""A catalogue of bad inputs, tried from outside as a user (or an attacker) would.

Each entry is a small project (a test module, maybe an ini file, maybe baselines damaged after a
first run) and a command: ``pytest --diffbench ...`` or ``diffbench ...``, run in a child process
on a FakePipeline (no model). Every entry should be refused; the script classifies what it got:

* ``clear``: refused (exit status not 0), no traceback, the error in a few lines;
* ``traceback``: a Python traceback, an INTERNALERROR or a library's frames in the output;
* ``warned``: exit status 0 with a ``WARNING`` line (a damaged file the command can do without,
  such as a corrupt environment.json, is named and left out);
* ``silent``: exit status 0 and no warning, the bad input accepted;
* ``escape``: a file written outside the project folder (a path escape);
* ``loss``: a file the user had (outside ``.diffbench/`` and ``baselines/``) is gone.

A few entries are hostile situations rather than bad inputs (``valid=True``: another program's
temporary file next to diffbench's): they should pass (``ok``) and lose nothing.

A first entry, a valid sweep, must pass (``ok``); if it does not, the harness itself is broken
and the script stops.

It prints one line per entry and the totals, for the closing note of the hardening issue::

    OMP_NUM_THREADS=1 python benchmarks/bad_inputs.py [-k SUBSTRING] [-v]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pytest_diffbench.testing import FAKE_PIPELINE_CONFTEST

TEST = '''
import pytest_diffbench as diffbench

@diffbench.sweep({sweep})
def test_case(diffbench):
    {body}
'''
PIN = "cpu-float32"
#: Frames of a Python traceback (pytest's long form and the interpreter's), or a plugin that broke.
FRAMES = re.compile(r"(Traceback \(most recent call last\)|INTERNALERROR|^\S+\.py:\d+: in |^  File \"|"
                    r"Error while loading plugin)", re.M)


@dataclass
class Entry:
    kind: str
    name: str
    sweep: str = "seeds=0, steps=2"
    body: str = 'diffbench.generate("a red cube")'
    ini: str = ""
    conftest: str = ""
    #: Runs of pytest before the damage (e.g. ["--diffbench-update"] to write baselines).
    before: list[list[str]] = field(default_factory=list)
    damage: Callable[[Path], None] | None = None
    #: The command: "pytest" args after ``--diffbench``, or ["diffbench", ...]. The default,
    #: ``--diffbench-update``, passes unless the bad input is refused (no missing-baseline failure).
    command: list[str] = field(default_factory=lambda: ["--diffbench-update"])
    #: Environment variables of the command (values may hold ``{project}``).
    env: dict[str, str] = field(default_factory=dict)
    #: Files (relative to the project, may start with ``../``) written before the command.
    files: dict[str, str] = field(default_factory=dict)
    #: A situation diffbench must handle (pass, lose nothing), not an input it must refuse.
    valid: bool = False


def baseline(project: Path, suffix: str) -> Path:
    return next((project / "baselines" / PIN).rglob(f"*{suffix}"))


def write(path_of: Callable[[Path], Path], data: bytes | str) -> Callable[[Path], None]:
    def damage(project: Path) -> None:
        path = path_of(project)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    return damage


def edit_sidecar(**changes: object) -> Callable[[Path], None]:
    def damage(project: Path) -> None:
        import json

        path = baseline(project, ".json")
        data = json.loads(path.read_text(encoding="utf-8"))
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            node = data
            for part in parents:
                node = node[part]
            node[last] = value
        path.write_text(json.dumps(data), encoding="utf-8")
    return damage


def png_dir(project: Path) -> None:
    png = baseline(project, ".png")
    png.unlink()
    png.mkdir()


def truncate_png(project: Path) -> None:
    png = baseline(project, ".png")
    png.write_bytes(png.read_bytes()[:60])


def symlink_pin(project: Path) -> None:
    outside = project.parent / "outside-baselines"
    shutil.copytree(project / "baselines" / PIN, outside)
    shutil.rmtree(project / "baselines" / PIN)
    (project / "baselines" / PIN).symlink_to(outside)


def results_csv(project: Path) -> Path:
    runs = project / ".diffbench" / "runs"
    return next(runs.glob("*/results.csv"))


def drop_column(column: str) -> Callable[[Path], None]:
    def damage(project: Path) -> None:
        import csv

        path = results_csv(project)
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, [c for c in rows[0] if c != column])
            writer.writeheader()
            writer.writerows({k: v for k, v in row.items() if k != column} for row in rows)
    return damage


def set_column(column: str, value: str) -> Callable[[Path], None]:
    def damage(project: Path) -> None:
        import csv

        path = results_csv(project)
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row[column] = value
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return damage


def crafted_latest(project: Path) -> None:
    (project / ".diffbench" / "latest").write_text("../../../elsewhere\n", encoding="utf-8")


def symlink_in_run(sub: str, whole: bool) -> Callable[[Path], None]:
    """The run folder's ``sub`` folder (``whole``) or its first file becomes a link to a folder or
    file outside the project."""
    def damage(project: Path) -> None:
        run = results_csv(project).parent
        outside = project.parent / "outside-run"
        outside.mkdir(exist_ok=True)
        (outside / "secret.json").write_text('{"secret": 1}', encoding="utf-8")
        target = run / sub
        if whole:
            shutil.rmtree(target, ignore_errors=True)
            target.symlink_to(outside)
            return
        child = next(path for path in sorted(target.rglob("*")) if path.is_file())
        child.unlink()
        child.symlink_to(outside / "secret.json")
    return damage


def pipeline_returning(expression: str) -> str:
    """A conftest whose pipeline returns ``(<expression>, measurement)``; ``image`` and ``m`` are the
    FakePipeline's own."""
    return FAKE_PIPELINE_CONFTEST + textwrap.dedent(f'''

        import numpy as np
        from PIL import Image
        from pytest_diffbench.spec.measurement import Measurement


        class Odd(FakePipeline):
            def diffbench_generate(self, sampler, seed, call_kwargs):
                image, m = super().diffbench_generate(sampler, seed, call_kwargs)
                return {expression}


        @pytest.fixture(scope="session")
        def diffbench_pipeline():
            return Odd()
    ''')


def one_white_pixel() -> str:
    return "(lambda im: (im.putpixel((5, 5), (255, 255, 255)), im)[1])(Image.new('RGB', (64, 64)))"


UPDATE = [["--diffbench-update"]]
#: A finished run to damage (the diffbench command reads runs).
RUN_ONCE = UPDATE
#: Judge against the damaged baselines (an update would rewrite them, as it should).
JUDGE: list[str] = []
CLI_RUN = ["diffbench", "report", "latest"]
CONTROL = Entry("control", "a valid sweep", before=UPDATE)
ENTRIES: list[Entry] = [
    # -- sweep values (item 7)
    Entry("sweep", "seed is a string", sweep='seeds=["a"], steps=2'),
    Entry("sweep", "seed is a float", sweep="seeds=[1.5], steps=2"),
    Entry("sweep", "negative seed", sweep="seeds=[-1], steps=2"),
    Entry("sweep", "zero steps", sweep="seeds=0, steps=[0]"),
    Entry("sweep", "width not a multiple of 8", sweep="seeds=0, steps=2, width=[60]"),
    Entry("sweep", "NaN guidance scale", sweep='seeds=0, steps=2, cfg=[float("nan")]'),
    Entry("sweep", "inf in an extra axis", sweep='seeds=0, steps=2, strength=[float("inf")]'),
    Entry("sweep", "unknown sampler", sweep='seeds=0, steps=2, samplers=["Euler b"]'),
    Entry("sweep", "two names for one sampler", sweep='seeds=0, steps=2, samplers=["Euler", "euler"]'),
    Entry("sweep", "numerically equal cfg", sweep="seeds=0, steps=2, cfg=[7.5, 7.5000000000001]"),
    Entry("sweep", "duplicate seeds", sweep="seeds=[0, 0], steps=2"),
    Entry("sweep", "tolerance is a string", sweep='seeds=0, steps=2, tolerance="min_ssim"'),
    Entry("sweep", "unknown axis the pipeline ignores", sweep="seeds=0, steps=2, foo=[1, 2]"),
    Entry("sweep", "lora_scale without a LoRA", sweep="seeds=0, steps=2, lora_scale=[0.5]"),
    Entry("sweep", "generate() overrides the steps", body='diffbench.generate("a red cube", num_inference_steps=3)'),
    Entry("sweep", "generate() overrides the guidance scale", body='diffbench.generate("a red cube", guidance_scale=1.0)'),
    Entry("sweep", "generate() keyword the pipeline ignores", body='diffbench.generate("a red cube", bogus_keyword=1)'),
    Entry("sweep", "empty prompt list axis", sweep="seeds=[], steps=2"),
    # -- tolerances (items 6/7)
    Entry("tolerance", "min_ssim above 1", ini="diffbench_min_ssim = 2"),
    Entry("tolerance", "time_regression inf", ini="diffbench_time_regression = inf"),
    Entry("tolerance", "max_vram_mb inf", ini="diffbench_max_vram_mb = inf"),
    Entry("tolerance", "negative max_seconds", ini="diffbench_max_seconds = -1"),
    Entry("tolerance", "min_psnr NaN", ini="diffbench_min_psnr = nan"),
    # -- settings (item 6)
    Entry("settings", "device cuda without CUDA", command=["--diffbench-device=cuda"]),
    Entry("settings", "device cuda:99", command=["--diffbench-device=cuda:99"]),
    Entry("settings", "device mps", ini="diffbench_device = mps"),
    Entry("settings", "device nonsense", ini="diffbench_device = gpu0"),
    Entry("settings", "strict_env maybe", ini="diffbench_strict_env = maybe"),
    Entry("settings", "pin with attribute access", ini="diffbench_pin = {device.__class__}"),
    Entry("settings", "pin with a format spec", ini="diffbench_pin = {device:>10}"),
    Entry("settings", "pin with a conversion", ini="diffbench_pin = {device!r}"),
    Entry("settings", "pin unknown field", ini="diffbench_pin = {gpu}"),
    Entry("settings", "empty baseline dir", command=["--diffbench-baseline-dir="]),
    Entry("settings", "baseline dir is a file", command=["--diffbench-baseline-dir=conftest.py"]),
    Entry("settings", "output dir is a file", command=["--diffbench-output-dir=conftest.py"]),
    Entry("settings", "bad update mode", command=["--diffbench-update=sometimes"]),
    Entry("settings", "bad lpips mode", command=["--diffbench-lpips=maybe"]),
    Entry("settings", "bad dtype", command=["--diffbench-dtype=float7"]),
    Entry("settings", "pipeline fixture returns a str",
          conftest='import pytest\n@pytest.fixture(scope="session")\ndef diffbench_pipeline():\n    return "runwayml/sd"\n'),
    Entry("settings", "pipeline fixture returns None",
          conftest='import pytest\n@pytest.fixture(scope="session")\ndef diffbench_pipeline():\n    return None\n'),
    # -- damaged baselines (item 4): refused without update
    Entry("baseline", "garbage PNG", before=UPDATE, damage=write(lambda p: baseline(p, ".png"), b"not a png at all"), command=JUDGE),
    Entry("baseline", "zero-byte PNG", before=UPDATE, damage=write(lambda p: baseline(p, ".png"), b""), command=JUDGE),
    Entry("baseline", "truncated PNG", before=UPDATE, damage=truncate_png, command=JUDGE),
    Entry("baseline", "PNG is a directory", before=UPDATE, damage=png_dir, command=JUDGE),
    Entry("baseline", "sidecar not JSON", before=UPDATE, damage=write(lambda p: baseline(p, ".json"), "{not json"), command=JUDGE),
    Entry("baseline", "sidecar not UTF-8", before=UPDATE, damage=write(lambda p: baseline(p, ".json"), b"\xff\xfe{}"), command=JUDGE),
    Entry("baseline", "config_hash is a number", before=UPDATE, damage=edit_sidecar(config_hash=123), command=JUDGE),
    Entry("baseline", "config is a string", before=UPDATE, damage=edit_sidecar(config="a string"), command=JUDGE),
    Entry("baseline", "measurement is a list", before=UPDATE, damage=edit_sidecar(measurement=[]), command=JUDGE),
    Entry("baseline", "seconds_per_image is text", before=UPDATE, damage=edit_sidecar(measurement__seconds_per_image="fast"), command=JUDGE),
    Entry("baseline", "sidecar is a JSON list", before=UPDATE, damage=write(lambda p: baseline(p, ".json"), "[]"), command=JUDGE),
    Entry("baseline", "symlinked pin folder", before=UPDATE, damage=symlink_pin, command=JUDGE),
    # -- the diffbench command (items 8, 10)
    Entry("cli", "results.csv lacks a column", before=RUN_ONCE, damage=drop_column("outcome"), command=CLI_RUN),
    Entry("cli", "results.csv mistyped column", before=RUN_ONCE, damage=set_column("ssim", "high"), command=CLI_RUN),
    Entry("cli", "results.csv is binary", before=RUN_ONCE, damage=write(results_csv, b"\x00\xff\x00PK\x03\x04" * 50), command=CLI_RUN),
    Entry("cli", "corrupt environment.json", before=RUN_ONCE,
          damage=write(lambda p: results_csv(p).parent / "environment.json", "{"), command=CLI_RUN),
    Entry("cli", "malformed pyproject.toml", before=RUN_ONCE,
          damage=write(lambda p: p / "pyproject.toml", "[tool.pytest.ini_options\n"), command=["diffbench", "list"]),
    Entry("cli", "bad ini value", before=RUN_ONCE,
          damage=write(lambda p: p / "pytest.ini", "[pytest]\ndiffbench_strict_env = maybe\n"), command=["diffbench", "list"]),
    Entry("cli", "baseline dir is a file", before=RUN_ONCE,
          command=["diffbench", "accept", "latest", "--diffbench-baseline-dir=conftest.py"]),
    Entry("cli", "run id with ..", before=RUN_ONCE, command=["diffbench", "show", "../../x"]),
    Entry("cli", "absolute run id", before=RUN_ONCE, command=["diffbench", "report", "/etc"]),
    Entry("cli", "unknown run id", before=RUN_ONCE, command=["diffbench", "show", "20990101T000000Z-000000"]),
    Entry("path", "crafted latest", before=RUN_ONCE, damage=crafted_latest, command=["diffbench", "show", "latest"]),
    Entry("path", "pin column with ..", before=RUN_ONCE, damage=set_column("pin", "../../escaped-pin"),
          command=["diffbench", "accept", "latest"]),
    Entry("path", "baseline_path outside", before=RUN_ONCE, damage=set_column("baseline_path", "/etc/passwd"), command=CLI_RUN),
    Entry("path", "symlinked grids/", before=RUN_ONCE, damage=symlink_in_run("grids", whole=True), command=CLI_RUN),
    Entry("path", "symlinked configs/*.json", before=RUN_ONCE, damage=symlink_in_run("configs", whole=False), command=CLI_RUN),
    # -- found by trying the fixes from outside (a second round)
    Entry("output", "NaN seconds per image", conftest=pipeline_returning("image, Measurement(float('nan'), None, None)")),
    Entry("output", "negative seconds, infinite VRAM", conftest=pipeline_returning("image, Measurement(-1.0, float('inf'), None)")),
    Entry("output", "a numpy array instead of an image", conftest=pipeline_returning("np.asarray(image), m")),
    Entry("output", "None instead of an image", conftest=pipeline_returning("None, m")),
    Entry("output", "a float image full of NaN",
          conftest=pipeline_returning("Image.fromarray(np.full((64, 64), np.nan, dtype=np.float32), 'F'), m")),
    Entry("output", "black with one white pixel", conftest=pipeline_returning(f"{one_white_pixel()}, m")),
    Entry("output", "fully transparent RGBA", conftest=pipeline_returning("Image.new('RGBA', (64, 64), (200, 10, 10, 0)), m")),
    Entry("settings", "pipeline fixture returns the class",
          conftest=FAKE_PIPELINE_CONFTEST.replace("return FakePipeline(**json.loads(os.environ.get(FAKE_PIPELINE_ENV) or \"{}\"))",
                                                  "return FakePipeline")),
    Entry("settings", "output dir inside the baseline dir", command=["--diffbench-update", "--diffbench-output-dir=baselines"]),
    Entry("settings", "baseline dir inside the output dir", command=["--diffbench-update", "--diffbench-baseline-dir=.diffbench/b"]),
    Entry("settings", "baseline dir is the rootdir", command=["--diffbench-update", "--diffbench-baseline-dir=."]),
    Entry("settings", "GITHUB_STEP_SUMMARY is a folder", env={"GITHUB_STEP_SUMMARY": "{project}"}, valid=True),
    Entry("sweep", "return_dict keyword", body='diffbench.generate("a red cube", return_dict=False)'),
    Entry("sweep", "latents axis", sweep="seeds=0, steps=2, latents=[None]"),
    Entry("sweep", "attention scale without a LoRA", sweep='seeds=0, steps=2, cross_attention_kwargs=[{"scale": 0.8}]'),
    Entry("sweep", "empty workflow_version", sweep='seeds=0, steps=2, workflow_version=""'),
    Entry("tolerance", "tolerance given as text", sweep='seeds=0, steps=2, tolerance={"min_ssim": "0.9"}'),
    Entry("collection", "test files outside the rootdir share a baseline",
          files={"../other/test_z.py": TEST.format(sweep="seeds=0, steps=2", body='diffbench.generate("a red cube")'),
                 "../other2/test_w.py": TEST.format(sweep="seeds=0, steps=2", body='diffbench.generate("a blue cube")')},
          command=["--diffbench-update", "--rootdir=.", "../other/test_z.py", "../other2/test_w.py"]),
    Entry("loss", "another program's temp file in the output dir", valid=True,
          files={"shared/other/.state.json.k2j4h5g6.tmp": "x"}, command=["--diffbench-update", "--diffbench-output-dir=shared"]),
    Entry("loss", "another program's temp file in the baseline dir", valid=True,
          files={"baselines/.notes.txt.a1b2c3d4.tmp": "x"}),
]


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    for name in ("CI", "BUILD_NUMBER", "GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    return env


def user_files(root: Path) -> set[Path]:
    """Files a user has: everything under ``root`` but diffbench's own output and baselines."""
    return {p for p in root.rglob("*") if p.is_file() and not {".diffbench", "baselines", "__pycache__"} & set(p.parts)}


def run(project: Path, command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if command[:1] == ["diffbench"]:
        argv = [sys.executable, "-m", "pytest_diffbench.cli.main", *command[1:]]
    else:
        argv = [sys.executable, "-m", "pytest", "--diffbench", "--diffbench-lpips=off", "-p", "no:cacheprovider",
                "-p", "no:randomly", "-q", *command]
    return subprocess.run(argv, cwd=project, env={**child_env(), **(env or {})}, capture_output=True, text=True,
                          timeout=300)


def outside_files(root: Path, project: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and project not in p.parents and "outside" not in p.as_posix()]


def try_entry(entry: Entry, root: Path) -> tuple[str, str]:
    project = root / "project"
    project.mkdir()
    (project / "conftest.py").write_text(entry.conftest or FAKE_PIPELINE_CONFTEST, encoding="utf-8")
    body = textwrap.indent(entry.body, "    ").strip()
    (project / "test_case.py").write_text(TEST.format(sweep=entry.sweep, body=body), encoding="utf-8")
    if entry.ini:
        (project / "pytest.ini").write_text(f"[pytest]\n{entry.ini}\n", encoding="utf-8")
    for name, text in entry.files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text, encoding="utf-8")
    for before in entry.before:
        setup = run(project, before)
        if setup.returncode != 0:
            return "setup-failed", setup.stdout.strip().splitlines()[-1:][0] if setup.stdout.strip() else setup.stderr[-200:]
    if entry.damage is not None:
        entry.damage(project)
    had, outside = user_files(root), set(outside_files(root, project))
    result = run(project, entry.command, {k: v.format(project=project) for k, v in entry.env.items()})
    output = result.stdout + result.stderr
    escaped = [p for p in outside_files(root, project) if p not in outside]
    lost = sorted(had - user_files(root))
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(("=", "_"))]
    first = next((line for line in lines if re.search(r"error|invalid|refus|not |cannot|must|unknown", line, re.I)),
                 lines[-1] if lines else "")
    if escaped:
        return "escape", f"wrote {escaped[0]}"
    if lost:
        return "loss", f"{lost[0]} is gone"
    if FRAMES.search(output):
        return "traceback", first
    warning = next((line for line in lines if line.startswith("WARNING")), None)
    if entry.valid:
        return ("ok", warning or first) if result.returncode == 0 else ("refused", first)
    if result.returncode == 0:
        return ("warned", warning) if warning else ("silent", first)
    return "clear", first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only entries whose kind or name contains this")
    parser.add_argument("-v", action="store_true", help="print each entry's first error line")
    args = parser.parse_args()
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="diffbench-bad-") as tmp:
        verdict, line = try_entry(CONTROL, Path(tmp))
    if verdict != "silent":  # accepted, as a valid input should be
        print(f"the control entry (a valid sweep) was not accepted: {verdict}: {line}", file=sys.stderr)
        return 1
    entries = [e for e in ENTRIES if args.k.lower() in f"{e.kind} {e.name}".lower()]
    for entry in entries:
        with tempfile.TemporaryDirectory(prefix="diffbench-bad-") as tmp:
            verdict, line = try_entry(entry, Path(tmp))
        counts[verdict] = counts.get(verdict, 0) + 1
        print(f"{verdict:11} {entry.kind:9} {entry.name}" + (f"\n            {line.strip()[:200]}" if args.v else ""), flush=True)
    print("bad inputs tried: {}; clear one-line errors: {}; warnings: {}; tracebacks: {}; silent acceptances: {}; "
          "losses: {}; path escapes: {}; setup failures: {}; hostile situations handled: {} of {}".format(
              sum(not e.valid for e in entries), counts.get("clear", 0), counts.get("warned", 0),
              counts.get("traceback", 0), counts.get("silent", 0), counts.get("loss", 0), counts.get("escape", 0),
              counts.get("setup-failed", 0), counts.get("ok", 0), sum(e.valid for e in entries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
