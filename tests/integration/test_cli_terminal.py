"""Whatever the ``diffbench`` command prints passes one boundary that shows control characters
escaped: a run name, a flag's value or a path built from them never colours, clears or
overwrites the terminal, in its own lines, its error lines or argparse's usage errors."""

from __future__ import annotations

import re

import pytest

from pytest_diffbench.cli.main import main

#: Every character that acts on a terminal: C0 and C1 controls (line breaks aside), DEL, bidi controls.
CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
HOSTILE = "x\x1b[31mRED\rX\u202e"
SHOWN = "x\\x1b[31mRED\\rX\\u202e"


@pytest.fixture(autouse=True)
def in_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.chdir(pytester.path)
    return pytester


def diffbench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int | str | None, str, str]:
    """The command's exit status (argparse's SystemExit code too), stdout and stderr."""
    capsys.readouterr()
    try:
        status: int | str | None = main(list(args))
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("command", ["show", "report", "accept"])
def test_a_run_name_with_escapes_is_shown_escaped_in_the_error(capsys, command):
    status, out, err = diffbench(capsys, command, HOSTILE)
    assert status == 2 and out == ""
    assert CONTROLS.search(err) is None and err.count("\n") == 1
    assert err.startswith("diffbench: no run folder ") and err.count(SHOWN) == 2  # the name and the path made of it


def test_an_output_dir_with_escapes_is_shown_escaped_in_a_normal_line_and_an_error(capsys):
    status, out, err = diffbench(capsys, "list", f"--output-dir={HOSTILE}")
    assert status == 0 and err == "" and CONTROLS.search(out) is None
    assert out.startswith("no runs in ") and SHOWN in out and out.count("\n") == 1
    status, out, err = diffbench(capsys, "show", f"--output-dir=o\n{HOSTILE}")
    assert status == 2 and CONTROLS.search(err) is None and err.count("\n") == 1 and f"o\\n{SHOWN}" in err


def test_argparse_usage_errors_are_shown_escaped(capsys):
    status, out, err = diffbench(capsys, "show", "latest", HOSTILE)
    assert status == 2 and out == ""
    assert CONTROLS.search(err) is None and f"unrecognized arguments: {SHOWN}" in err
    status, _, err = diffbench(capsys, "list", f"--bundle-images={HOSTILE}")
    assert status == 2 and CONTROLS.search(err) is None and "invalid choice" in err
