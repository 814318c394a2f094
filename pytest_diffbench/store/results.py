"""results.csv: one row per case, the run's record of truth.

Rows are sorted by node id, so runs with and without xdist give the same rows in the same order;
lists and dicts are canonical JSON. Written with pandas, atomically, by the controller.

Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return: a prompt ``=HYPERLINK(...)``) are written with a leading ``'``, as
OWASP advises against CSV injection; numbers stay numbers (``-0.05``), and :func:`read_results`
takes the quote off again, so a result read back holds the exact text.
"""

from __future__ import annotations

import csv
import io
import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from pytest_diffbench.judge.result import CaseResult, columns
from pytest_diffbench.store.files import atomic_write_text


#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: Text that is a plain decimal number (``-0.05``, ``+1e-3``): a spreadsheet reads it as a number.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _needs_quote(text: str) -> bool:
    """Whether ``text`` starts, after any quotes, with a formula trigger (a plain number without
    quotes does not count). Text with quotes before a trigger gets one more too, so that taking
    one off on reading gives every text back exactly."""
    rest = text.lstrip("'")
    if rest[:1] not in FORMULA_TRIGGERS or rest == "":
        return False
    return rest != text or _NUMBER.fullmatch(text) is None


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet cannot run: ``=1+1`` as ``'=1+1``; numbers and other text unchanged."""
    return "'" + value if isinstance(value, str) and _needs_quote(value) else value


def unneutralise(value: str) -> str:
    """The text that :func:`neutralise` made ``value`` of."""
    return value[1:] if value.startswith("'") and value.lstrip("'")[:1] in FORMULA_TRIGGERS else value


def _cell(value: Any) -> Any:
    """Lists and dicts as canonical JSON text, so a CSV cell round-trips; formula text neutralised."""
    if isinstance(value, (list, tuple, dict)):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return neutralise(value)


def sorted_results(results: Iterable[CaseResult]) -> list[CaseResult]:
    return sorted(results, key=lambda result: result.nodeid)


def results_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The CSV text of ``rows`` (from :meth:`CaseResult.to_row`, maybe extended by hooks): every
    known column in order, then any added column, sorted by name."""
    import pandas as pd

    known = columns()
    added = sorted({key for row in rows for key in row} - set(known))
    rows = sorted(rows, key=lambda row: str(row.get("nodeid") or ""))  # the same bytes whatever the input order
    header = [*known, *added]
    cells = [{column: _cell(row.get(column)) for column in header} for row in rows]
    frame = pd.DataFrame(cells, columns=header, dtype=object)
    # The csv module quotes a cell holding a character of the line terminator only: with "\n", a
    # "\r" in a cell (a case id, a prompt) would be written bare and split its row on reading.
    has_cr = any(isinstance(value, str) and "\r" in value for row in cells for value in row.values())
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\r\n" if has_cr else "\n")
    return buffer.getvalue()


def write_results(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write results.csv at ``path`` atomically (see :func:`results_csv`)."""
    atomic_write_text(path, results_csv(rows))
    return path


def read_results(path: Path) -> list[CaseResult]:
    """The results of a results.csv, however long its cells (a prompt of millions of characters).

    Raises FileNotFoundError naming the file when it is absent; ValueError saying what is wrong
    with the file when its header names a column twice, when a row has not as many cells as the
    header (a row of NUL bytes a crash left, a cut line; naming its line), or when a row is not
    of this schema (naming the column); csv.Error when it is not CSV.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist: is {Path(path).parent} a diffbench run folder?")
    with open(path, newline="", encoding="utf-8") as handle, _unlimited_fields():
        reader = csv.reader(handle)
        header = next(reader, [])
        twice = sorted({name for name in header if header.count(name) > 1})
        if twice:
            raise ValueError(f"its header names the column {', '.join(map(repr, twice))} twice; a results.csv names "
                             "each column once")
        results = []
        for cells in reader:
            if not cells:  # a blank line
                continue
            if len(cells) != len(header):
                raise ValueError(_bad_row(reader.line_num, cells, len(header)))
            row = {key: unneutralise(value) for key, value in zip(header, cells)}
            results.append(CaseResult.from_row(row))
        return results


def _bad_row(line: int, cells: list[str], width: int) -> str:
    """What is wrong with a row of ``cells`` ending at ``line`` whose width is not the header's ``width``."""
    if "\x00" in "".join(cells) and all(set(cell) <= {"\x00"} for cell in cells):
        return f"line {line} is a row of NUL bytes (left by a crash or a full disk), not a case"
    return f"line {line} has {len(cells)} cells where the header has {width} columns"


@contextmanager
def _unlimited_fields() -> Iterator[None]:
    """Lift the csv module's per-cell limit (131072 characters by default) while reading, then
    put the previous limit back (it is process-wide). The new limit fits a C long on every platform."""
    previous = csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(previous)
