"""Text a test or a committed baseline sidecar chose reaches summary.md, results.csv and the
terminal as text: no HTML or images in summary.md, no formula cells, no terminal escapes."""

from __future__ import annotations

import csv

import pytest

from pytest_diffbench.cli.main import main

PROMPTS = ['<img src=http://x/y.png>', '=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0"]


def parametrized(prompt: str, case_id: str) -> str:
    return (f"import pytest\n\n@pytest.mark.parametrize('p', [{prompt!r}], ids=[{case_id!r}])\n"
            "@diffbench.sweep(seeds=0, steps=2)\ndef test_case(diffbench, p):\n    diffbench.generate(p)\n")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_a_hostile_prompt_and_id_stay_text_in_summary_md_and_results_csv(project, prompt):
    case_id = "a|b`c<img src=http://x/i.png>![x](http://x)<!--"
    project.write_tests(parametrized("a red cube", case_id))
    project.run(update="missing")
    project.write_tests(parametrized(prompt, case_id))  # a changed prompt: its message names both prompts
    run = project.run()
    run.outcome.assert_outcomes(failed=1)
    summary = run.folder.summary.read_text(encoding="utf-8")
    html = pytest.importorskip("markdown_it").MarkdownIt("commonmark").enable("table").render(summary)
    assert "<img" not in html and "<a " not in html and "<!--" not in html  # as a pull-request comment shows it
    assert html.count("<tr>") == 1 + 1 + 1 + 1  # two tables: a header and one row each
    failing = [line for line in summary.splitlines() if line.startswith("| ``test_case")]
    assert len(failing) == 1 and failing[0].count(" | ") == 2  # three cells: no pipe escaped its cell
    with open(run.folder.results, newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["prompt"] == (prompt if prompt[0] not in "=+-@" else "'" + prompt)
    assert run.result("test_case").setting("prompt") == prompt  # read back exactly


def test_ansi_escapes_of_a_committed_sidecar_are_shown_escaped(project, capsys):
    project.write_tests(project.test())
    project.run(update="missing")
    _, sidecar = project.baseline_pair("test_case")
    project.edit_sidecar(sidecar, environment={"device_name": "\x1b[31mevil\x1b[0m\u202e", "torch": "1.0\r\x1b[2J"})
    run = project.run()
    text = project.text(run.outcome)
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[31mevil\\x1b[0m\\u202e" in text and "1.0\\r\\x1b[2J" in text
    assert "\x1b[31m" in run.results[0].env_diff  # the record keeps the text; only the output escapes it
    capsys.readouterr()
    project.monkeypatch.chdir(project.path)  # the command reads the project's ini from here
    assert main(["show", "latest"]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown
    run.folder.summary.write_text("## run\n\x1b[2J\x1b[31mred\u202e\n", encoding="utf-8")  # a summary.md from elsewhere
    assert main(["show", "latest"]) == 0
    assert capsys.readouterr().out == "## run\n\\x1b[2J\\x1b[31mred\\u202e\n"
