"""results.csv against CSV injection: text a spreadsheet would run as a formula is written with a
leading quote (OWASP), numbers stay numbers, and reading the file gives the exact text back."""

from __future__ import annotations

import csv

import pytest

from pytest_diffbench.store.results import read_results, write_results

FORMULAS = [
    '=HYPERLINK("http://x","y")',   # the quoted instances
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "-",
    "'=1+1",                        # text that already starts with a quote before a trigger
    "''@x",
]


def write_and_read(tmp_path, result):
    path = write_results(tmp_path / "results.csv", [result.to_row()])
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.DictReader(handle)), read_results(path)[0]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_prompt_is_written_quoted_and_read_back_exactly(tmp_path, make_result, formula):
    result = make_result(config={"prompt": formula, "negative_prompt": formula}, message=formula, device_name=formula)
    cells, back = write_and_read(tmp_path, result)
    for column in ("prompt", "negative_prompt", "message", "device_name"):
        assert cells[column] == "'" + formula, column
    assert back.setting("prompt") == back.setting("negative_prompt") == back.message == formula
    assert back.machine.device_name == formula


@pytest.mark.parametrize("text", ["an astronaut", "'quoted'", "'", "a=b", "email@x", "C:\\-x"])
def test_other_text_is_written_as_it_is(tmp_path, make_result, text):
    cells, back = write_and_read(tmp_path, make_result(config={"prompt": text}, message=text))
    assert cells["prompt"] == cells["message"] == text
    assert back.setting("prompt") == back.message == text


def test_negative_numbers_stay_numbers(tmp_path, make_result):
    result = make_result(cfg=-1.5, slowdown=-0.05, extra={"delta": "-0.25", "gain": "+1e-3", "formula": "-1+2"})
    cells, back = write_and_read(tmp_path, result)
    assert (cells["cfg"], cells["slowdown"]) == ("-1.5", "-0.05")
    assert (cells["delta"], cells["gain"], cells["formula"]) == ("-0.25", "+1e-3", "'-1+2")
    assert back.setting("cfg") == -1.5 and back.slowdown == -0.05
    assert back.extra == {"delta": "-0.25", "gain": "+1e-3", "formula": "-1+2"}


@pytest.mark.parametrize("text", ["a\rb", "a\r\nb", "a\nb"])
def test_a_line_break_in_a_cell_keeps_its_row_whole(tmp_path, make_result, text):
    result = make_result(config={"prompt": text}, nodeid=f"t.py::test_x[{text}]")
    path = write_results(tmp_path / "results.csv", [result.to_row(), make_result().to_row()])
    back = read_results(path)
    assert [r.setting("prompt") for r in back] == ["an astronaut", text] or [r.setting("prompt") for r in back] == [text, "an astronaut"]
    assert text in {r.nodeid.split("[")[1][:-1] for r in back}
