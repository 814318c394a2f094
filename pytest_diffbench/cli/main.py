"""The ``diffbench`` command: the parser and the dispatch to the commands.

    diffbench list                          runs, newest last, with their outcome counts (or: unfinished)
    diffbench show [RUN]                    a run's summary (RUN: an id, 'latest' or its folder in <output>/runs)
    diffbench report RUN                    rebuild grids, summary.md, plot.png, report.html and the bundle
                                            (and results.csv from the journal of a run killed before its end)
    diffbench accept RUN [--failed-only] [-k EXPR] [--allow-uncollected]
                                            promote a run's output images to baselines (of cases
                                            the current test files still collect)
    diffbench replay BUNDLE_OR_RUN [-k EXPR] [--device D] [--model-root DIR]
                                            regenerate every case of a bundle (or run) from its frozen
                                            config alone and compare each image with the bundle's:
                                            identical, within tolerance or different (exit status 1 on
                                            any difference, 3 when some could not be replayed)
    diffbench presets lock|list             record the presets' versions in their lock / show their state

The settings it shares with pytest (output folder, baseline folder, bundle images) come from a
flag of the command, else from the ini file pytest would read from the current folder, else the
default (see :mod:`pytest_diffbench.cli.settings`). They are resolved and checked before any
command runs, so a bad value changes nothing. A problem the user can fix (a bad setting, an ini
file, results.csv, journal or summary.md that cannot be read, a run named outside
``<output>/runs``) is one line on stderr naming the file, and exit status 2; ``accept`` exits
with 1 when it refused a case, ``report`` when an artifact could not be written or a path was
refused.

Everything the command prints (its own lines, its errors, argparse's usage errors) passes one
boundary, :func:`main`, which shows every control character escaped
(:func:`~pytest_diffbench.report.escape.terminal_text`): a run name, a path or a file's text
with an ANSI escape or a ``\\r`` in it can never colour, clear or overwrite the terminal.
"""

from __future__ import annotations

import argparse
import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import Sequence, TextIO

from pytest_diffbench.cli.accept import command_accept
from pytest_diffbench.cli.commands import command_list, command_report, command_show
from pytest_diffbench.cli.presets import ACTIONS as PRESET_ACTIONS
from pytest_diffbench.cli.presets import command_presets
from pytest_diffbench.cli.replay import command_replay
from pytest_diffbench.cli.settings import CommandError, load_settings, shared_options
from pytest_diffbench.report.escape import terminal_text

RUN_HELP = "run id, 'latest' or a run's folder in <output dir>/runs"
KEYWORD_HELP = ("only cases matching EXPR, pytest's -k expression over the node id (case-insensitive words joined by "
                "and, or, not and parentheses; repeat to widen)")


def build_parser() -> argparse.ArgumentParser:
    """The command's parser: one sub-command each, every one taking the shared settings' flags."""
    parser = argparse.ArgumentParser(prog="diffbench", description="Look at diffbench runs, rebuild their reports, "
                                     "replay them, accept their outputs as baselines.")
    shared = argparse.ArgumentParser(add_help=False)
    for option in shared_options():
        assert option.cli is not None
        choices = (option.argparse or {}).get("choices")
        shared.add_argument(option.cli, dest=option.dest, default=None, choices=choices,
                            help=f"{option.help} (as {option.flag}; default: ini {option.ini}, else {option.default})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", parents=[shared], help="list runs with their outcome counts")
    show = commands.add_parser("show", parents=[shared], help="print a run's summary.md")
    show.add_argument("run", nargs="?", default="latest", help=f"{RUN_HELP} (default: latest)")
    report = commands.add_parser("report", parents=[shared], help="rebuild the grids, summary.md, plot.png, "
                                 "report.html and bundle of a run")
    report.add_argument("run", help=RUN_HELP)
    accept = commands.add_parser("accept", parents=[shared], help="promote a run's output images to baselines, "
                                 "without generating again")
    accept.add_argument("run", help=RUN_HELP)
    accept.add_argument("--failed-only", action="store_true", help="only cases whose outcome was not passed")
    accept.add_argument("-k", dest="keywords", action="append", default=[], metavar="EXPR", help=KEYWORD_HELP)
    accept.add_argument("--allow-uncollected", action="store_true",
                        help="also accept cases the current test files no longer collect (refused by default)")
    replay = commands.add_parser("replay", parents=[shared], help="regenerate every case of a bundle or run from its "
                                 "frozen config and compare each image with the bundle's")
    replay.add_argument("target", metavar="BUNDLE_OR_RUN", help=f"a bundle (diffbench-<run_id>.zip, or the folder it was unzipped into), "
                        f"or a {RUN_HELP}")
    replay.add_argument("-k", dest="keywords", action="append", default=[], metavar="EXPR", help=KEYWORD_HELP)
    replay.add_argument("--device", default=None, help="generate on this device (cpu, cuda, cuda:N, mps) instead of the "
                        "one each config records")
    replay.add_argument("--model-root", default=None, metavar="DIR", help="the folder a local model recorded by its "
                        "path (relative to the rootdir) is looked for under (default: the rootdir)")
    presets = commands.add_parser("presets", parents=[shared], help="record the presets' versions in "
                                  "diffbench-presets.lock (lock), or show each preset's state against it (list)")
    presets.add_argument("action", choices=PRESET_ACTIONS)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Resolve the settings, then run the parsed command; its exit status."""
    settings = load_settings({option.dest: getattr(args, option.dest, None) for option in shared_options()})
    if args.command == "list":
        return command_list(settings)
    if args.command == "show":
        return command_show(settings, args.run)
    if args.command == "report":
        return command_report(settings, args.run)
    if args.command == "accept":
        return command_accept(settings, args.run, failed_only=args.failed_only, keywords=args.keywords,
                              allow_uncollected=args.allow_uncollected)
    if args.command == "presets":
        return command_presets(args.action, settings.presets_file, settings.rootdir)
    if args.command == "replay":
        return command_replay(settings, args.target, keywords=args.keywords, device=args.device,
                              model_root=args.model_root)
    raise AssertionError(f"unknown command {args.command!r}")  # argparse accepts only the commands above


class TerminalStream(io.TextIOBase):
    """A text stream that writes to ``target`` with every control character shown escaped, line
    breaks kept (see :func:`~pytest_diffbench.report.escape.terminal_text`)."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        """Write ``text`` escaped; the number of characters of ``text`` (as a stream's write says)."""
        self.target.write(terminal_text(text, keep_newlines=True))
        return len(text)

    def flush(self) -> None:
        self.target.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``diffbench`` with ``argv`` (default: the process's arguments); the exit status.

    Its output, and argparse's, goes through :class:`TerminalStream`; a :class:`CommandError` is
    printed as one line (a line break in it shown as ``\\n``). argparse exits (SystemExit) with
    status 2 on a usage error, 0 after ``--help``.
    """
    out, err = TerminalStream(sys.stdout), TerminalStream(sys.stderr)
    with out, err, redirect_stdout(out), redirect_stderr(err):  # closed here, not later by the garbage collector
        args = build_parser().parse_args(argv)
        try:
            return run_command(args)
        except CommandError as exc:
            print(f"diffbench: {terminal_text(str(exc))}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
