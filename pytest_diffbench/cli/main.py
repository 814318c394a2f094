"""The ``diffbench`` command: look at finished runs, rebuild their reports, accept their outputs.

    diffbench list                          runs, newest last, with their outcome counts
    diffbench show [RUN]                    a run's summary (RUN: an id, 'latest' or a folder)
    diffbench report RUN                    rebuild grids, summary.md, plot.png, report.html and the bundle
    diffbench accept RUN [--failed-only] [-k TEXT]
                                            promote a run's output images to baselines

Settings that the command shares with pytest (output folder, baseline folder, bundle images)
come from the same :data:`~pytest_diffbench.options.OPTIONS`: a flag here, else the ini file
pytest would read (pytest.ini, pyproject.toml, tox.ini, setup.cfg above the current folder),
else the default.
"""

from __future__ import annotations

import argparse
import configparser
import io
import json
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from pytest_diffbench.store.baselines import BaselineError, BaselineStore, case_path
from pytest_diffbench.store.files import sha256_bytes
from pytest_diffbench.plugin.options import OPTIONS, Option
from pytest_diffbench.report.artifacts import write_reports
from pytest_diffbench.store.results import ENVIRONMENT_FIELDS, LATEST_FILE, RESULTS_FILE, image_relpath, read_records
from pytest_diffbench.report.summary import SUMMARY_FILE, cell_number, outcome_counts

CLI_OPTIONS: tuple[Option, ...] = tuple(option for option in OPTIONS if option.cli)


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


# -- settings shared with pytest --------------------------------------------------------------


def find_ini(start: Path) -> tuple[Path, dict[str, str]]:
    """The folder and pytest ini values that pytest would use from ``start``, as pytest finds them:
    the first of pytest.ini, pyproject.toml ([tool.pytest.ini_options]), tox.ini ([pytest]) and
    setup.cfg ([tool:pytest]) in ``start`` or a folder above it. Without one: ``start`` and {}."""
    for folder in [start, *start.parents]:
        for name, section in (("pytest.ini", "pytest"), ("pyproject.toml", None), ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
            path = folder / name
            if not path.is_file():
                continue
            if section is None:
                table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("pytest", {}).get("ini_options")
                if table is not None:
                    return folder, {key: str(value) for key, value in table.items()}
                continue
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(path, encoding="utf-8")
            if parser.has_section(section) or name == "pytest.ini":
                return folder, dict(parser[section]) if parser.has_section(section) else {}
    return start, {}


@dataclass(frozen=True)
class Paths:
    rootdir: Path
    output_dir: Path
    baseline_dir: Path
    bundle_images: str


def resolve_paths(args: argparse.Namespace) -> Paths:
    rootdir, ini = find_ini(Path.cwd())
    values = {}
    for option in CLI_OPTIONS:
        flag_value = getattr(args, option.dest, None)
        values[option.dest] = flag_value if flag_value is not None else ini.get(option.ini or "", option.default)
    return Paths(rootdir, rootdir / values["output_dir"], rootdir / values["baseline_dir"], str(values["bundle_images"]))


def resolve_run(paths: Paths, run: str) -> Path:
    """A run folder from an id, 'latest', or a path."""
    if run == "latest":
        latest = paths.output_dir / LATEST_FILE
        if not latest.exists():
            raise CommandError(f"no run yet: {latest} does not exist (run pytest --diffbench first)")
        run = latest.read_text(encoding="utf-8").strip()
    for candidate in (paths.output_dir / "runs" / run, Path(run)):
        if (candidate / RESULTS_FILE).is_file():
            return candidate
    raise CommandError(f"no run folder {run!r}: looked for results.csv in {paths.output_dir / 'runs' / run} and {Path(run)}")


# -- commands ---------------------------------------------------------------------------------


def command_list(paths: Paths, args: argparse.Namespace) -> int:
    runs_dir = paths.output_dir / "runs"
    runs = sorted(p for p in runs_dir.iterdir() if (p / RESULTS_FILE).is_file()) if runs_dir.is_dir() else []
    if not runs:
        print(f"no runs in {runs_dir}")
        return 0
    latest_file = paths.output_dir / LATEST_FILE
    latest = latest_file.read_text(encoding="utf-8").strip() if latest_file.exists() else ""
    for run in runs:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in outcome_counts(read_records(run))) or "no cases"
        print(f"{run.name}{'  (latest)' if run.name == latest else ''}  {counts}")
    return 0


def command_show(paths: Paths, args: argparse.Namespace) -> int:
    run_dir = resolve_run(paths, args.run)
    summary = run_dir / SUMMARY_FILE
    if summary.exists():
        print(summary.read_text(encoding="utf-8"), end="")
    else:
        print(write_reports(run_dir, run_dir.name, read_records(run_dir), paths.bundle_images, paths.rootdir).summary_markdown, end="")
    return 0


def command_report(paths: Paths, args: argparse.Namespace) -> int:
    run_dir = resolve_run(paths, args.run)
    reports = write_reports(run_dir, run_dir.name, read_records(run_dir), paths.bundle_images, paths.rootdir)
    print(f"rebuilt {run_dir / SUMMARY_FILE}")
    print(f"rebuilt {reports.bundle}")
    return 0


def _selected(rows: Sequence[dict[str, str]], failed_only: bool, keywords: Sequence[str]) -> list[dict[str, str]]:
    chosen = [row for row in rows if not failed_only or row["outcome"] != "passed"]
    if keywords:
        chosen = [row for row in chosen if any(k.lower() in row["nodeid"].lower() for k in keywords)]
    return chosen


def accept_case(paths: Paths, run_dir: Path, row: dict[str, str]) -> tuple[str, str]:
    """Promote one case's output to its baseline: ``(action, detail)``, action being one of
    created, replaced, unchanged or refused."""
    case = case_path(row["nodeid"])
    image_path = run_dir / image_relpath(case)
    config_path = run_dir / "configs" / f"{case}.json"
    if not image_path.is_file() or not config_path.is_file():
        return "refused", f"the run has no output image and config for it (outcome {row['outcome']})"
    frozen = json.loads(config_path.read_text(encoding="utf-8"))
    store = BaselineStore(paths.baseline_dir, row["pin"])
    try:
        current = store.load(case)
    except BaselineError:
        current = None  # an unreadable pair is replaced, like --diffbench-update does
    if current is not None and current.config_hash != frozen["config_hash"]:
        return "refused", (f"the baseline is for config {current.config_hash[:12]}, the run's output for "
                           f"{frozen['config_hash'][:12]}; the case changed, regenerate it with pytest --diffbench --diffbench-update")
    png = image_path.read_bytes()
    if current is not None and current.sidecar["image_sha256"] == sha256_bytes(png):
        return "unchanged", str(current.image_path)
    with Image.open(io.BytesIO(png)) as image:
        written = store.write(case, image.convert("RGB"), config=frozen["config"], config_hash=frozen["config_hash"],
                              environment={key: row.get(key, "") for key in ENVIRONMENT_FIELDS},
                              measurement={"seconds_per_image": cell_number(row["seconds_per_image"]),
                                           "peak_vram_mb": cell_number(row["peak_vram_mb"]),
                                           "device_name": row.get("device_name", ""),
                                           "workers": int(row.get("workers") or 1)},
                              keep_replaced_in=run_dir)
    return ("replaced" if current is not None else "created"), str(written.image_path)


def command_accept(paths: Paths, args: argparse.Namespace) -> int:
    run_dir = resolve_run(paths, args.run)
    rows = _selected(read_records(run_dir), args.failed_only, args.keyword or [])
    if not rows:
        print("no case of the run matches; nothing changed")
        return 0
    tally: Counter[str] = Counter()
    for row in rows:
        action, detail = accept_case(paths, run_dir, row)
        tally[action] += 1
        print(f"{action:<9} {row['nodeid']}: {detail}")
    counts = {action: tally[action] for action in ("created", "replaced", "unchanged", "refused")}
    print(", ".join(f"{count} {action}" for action, count in counts.items()))
    return 1 if counts["refused"] else 0


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffbench", description="Look at diffbench runs, rebuild their reports, "
                                     "accept their outputs as baselines.")
    shared = argparse.ArgumentParser(add_help=False)
    for option in CLI_OPTIONS:
        extra = {"choices": option.argparse["choices"]} if option.argparse and "choices" in option.argparse else {}
        shared.add_argument(option.cli, dest=option.dest, default=None,
                            help=f"{option.help} (ini {option.ini}, default {option.default})", **extra)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", parents=[shared], help="list runs with their outcome counts").set_defaults(func=command_list)
    show = commands.add_parser("show", parents=[shared], help="print a run's summary")
    show.add_argument("run", nargs="?", default="latest", help="run id, 'latest' (default) or a run folder")
    show.set_defaults(func=command_show)
    report = commands.add_parser("report", parents=[shared], help="rebuild the grids, summary.md, plot.png, report.html and bundle of a run")
    report.add_argument("run", help="run id, 'latest' or a run folder")
    report.set_defaults(func=command_report)
    accept = commands.add_parser("accept", parents=[shared], help="promote a run's output images to baselines, "
                                 "without generating again")
    accept.add_argument("run", help="run id, 'latest' or a run folder")
    accept.add_argument("--failed-only", action="store_true", help="only cases whose outcome was not passed")
    accept.add_argument("-k", dest="keyword", action="append", metavar="TEXT",
                        help="only cases whose node id contains TEXT (case-insensitive; repeat to widen)")
    accept.set_defaults(func=command_accept)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(resolve_paths(args), args))
    except (CommandError, FileNotFoundError) as exc:
        print(f"diffbench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
