"""results.csv: one row per case, the run's record of truth.

Rows are sorted by node id, so runs with and without xdist give the same rows in the same order;
lists and dicts are canonical JSON. Written with pandas, atomically, by the controller.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_diffbench.judge.result import CaseResult, columns
from pytest_diffbench.store.files import atomic_write_text


def _cell(value: Any) -> Any:
    """Lists and dicts as canonical JSON text, so a CSV cell round-trips."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return value


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
    frame = pd.DataFrame([{column: _cell(row.get(column)) for column in header} for row in rows],
                         columns=header, dtype=object)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def write_results(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write results.csv at ``path`` atomically (see :func:`results_csv`)."""
    atomic_write_text(path, results_csv(rows))
    return path


def read_results(path: Path) -> list[CaseResult]:
    """The results of a results.csv. Raises FileNotFoundError naming the file when it is absent,
    ValueError naming the column when a row is not of this schema."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist: is {Path(path).parent} a diffbench run folder?")
    with open(path, newline="", encoding="utf-8") as handle:
        return [CaseResult.from_row(row) for row in csv.DictReader(handle)]
