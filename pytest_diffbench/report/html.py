"""report.html: one self-contained page per run that works wherever the run folder is unzipped.

No network and no absolute paths: styles and script are inline, images are linked relative to
the run folder (the labeled comparison grids, which hold baseline | output | difference, and
the sweep sheets), and only files that the page's folder holds: in the run folder, files that lie
there with no symbolic link on the way; in the bundle, the files the bundle holds (a file of the
run folder that the bundle leaves out is named as text, not linked). The case table sorts by any
column (test then case by default) and filters by outcome, sampler, steps and test; it shows what
failed with each value and tolerance, and the change of seconds per image only against a baseline
timed as this run was (same device, as many pytest workers). Every string that comes from a user (prompts above all) is
HTML-escaped, and the rows reach the script as JSON inside a ``<script type="application/json">``
block with ``<`` escaped, so no prompt can close the block or inject markup.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from pytest_diffbench.judge.checks import format_number
from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.summary import (badges, case_order, change_footnote, outcome_counts, speed_change, stages_text,
                                             timing_mismatch_of, what_failed)
from pytest_diffbench.store.files import regular_files
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder


def table_columns(metrics: MetricRegistry = REGISTRY) -> tuple[tuple[str, str], ...]:
    """Columns of the case table: (results column, header), every registered metric among them."""
    return (
        ("case", "case"), ("test", "test"), ("outcome", "outcome"), ("what_failed", "what failed"),
        ("sampler", "sampler"), ("steps", "steps"), ("cfg", "cfg"), ("seed", "seed"), *((m.name, m.label) for m in metrics),
        ("ssim_vs_most_steps", "SSIM vs most steps"), ("seconds_per_image", "s/img"),
        ("baseline_seconds_per_image", "baseline s/img"), ("change", "change"), ("peak_vram_mb", "VRAM MiB"),
        ("stages", "stages"), ("prompt", "prompt"),
    )


def numeric_columns(metrics: MetricRegistry = REGISTRY) -> tuple[str, ...]:
    """Columns shown with 4 significant digits, as failure messages print numbers (see
    :func:`~pytest_diffbench.judge.checks.format_number`: ``12346``, not ``1.235e+04``)."""
    return (*(m.name for m in metrics), "ssim_vs_most_steps", "seconds_per_image", "baseline_seconds_per_image",
            "peak_vram_mb")


FILTERS = ("outcome", "sampler", "steps", "test")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
.counts span{display:inline-block;margin-right:1rem;padding:.2rem .6rem;border-radius:4px;background:#eee}
.counts .passed{background:#d7f5d7}.counts .failed{background:#f8d3d3}
table{border-collapse:collapse;font-size:.85rem}th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:left}
th{cursor:pointer;background:#f4f4f4}tr.failed td.outcome{color:#b00;font-weight:bold}
.filters label{margin-right:1rem}img{max-width:100%;image-rendering:pixelated}.absent{color:#777}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem}
"""

_SCRIPT = """
const rows = JSON.parse(document.getElementById('diffbench-rows').textContent);
const body = document.querySelector('#cases tbody');
const columns = [...document.querySelectorAll('#cases th')].map(th => th.dataset.key);
const filters = [...document.querySelectorAll('.filters select')];
let sortKey = null, sortUp = true;  // null: the rows' own order, test then case
function linked(td, href, text) {
  const a = document.createElement(href ? 'a' : 'span');
  if (href) a.href = href;
  a.textContent = text; td.appendChild(a);
}
function cell(row, key) {
  const td = document.createElement('td');
  td.className = key;
  if (key === 'case') {
    linked(td, row.config, row.case);
    for (const [key, label] of [['grid', 'grid'], ['image', 'image']]) {
      if (row[key]) linked(td, row[key], ' [' + label + ']');
      if (row[key + '_absent']) {
        const note = document.createElement('span');
        note.className = 'absent'; note.textContent = ' [' + label + ' ' + row[key + '_absent'] + ']'; td.appendChild(note);
      }
    }
  } else { td.textContent = row[key] ?? ''; }
  if (row[key + '_title']) td.title = row[key + '_title'];
  return td;
}
function render() {
  const chosen = Object.fromEntries(filters.map(f => [f.name, f.value]));
  const shown = rows.filter(r => filters.every(f => !chosen[f.name] || String(r[f.name]) === chosen[f.name]));
  if (sortKey) shown.sort((a, b) => {  // stable: equal values keep test then case
    const x = a[sortKey], y = b[sortKey];
    const nx = parseFloat(x), ny = parseFloat(y);
    const order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x ?? '').localeCompare(String(y ?? ''), undefined, {numeric: true});
    return sortUp ? order : -order;
  });
  body.replaceChildren(...shown.map(r => {
    const tr = document.createElement('tr');
    tr.className = r.outcome === 'passed' ? 'passed' : 'failed';
    columns.forEach(k => tr.appendChild(cell(r, k)));
    return tr;
  }));
  document.getElementById('shown').textContent = shown.length + ' of ' + rows.length + ' cases shown';
}
document.querySelectorAll('#cases th').forEach(th => th.addEventListener('click', () => {
  sortUp = sortKey === th.dataset.key ? !sortUp : true; sortKey = th.dataset.key; render();
}));
filters.forEach(f => f.addEventListener('change', render));
render();
"""


def _text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key in numeric_columns():
        try:
            return format_number(float(value))
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _target(folder: RunFolder, path: Path, bundled: Collection[str] | None,
            present: Collection[str]) -> tuple[str, str]:
    """How the page points at ``path``, a file of the run: (link, note).

    The link is ``path`` relative to the run folder when the page's folder holds it: with
    ``bundled`` None (the run folder's page), a file there with no symbolic link on the way (as
    :func:`~pytest_diffbench.report.bundle.in_run` checks: one of ``present``, the run folder's
    files of :func:`~pytest_diffbench.store.files.regular_files`); otherwise (the bundle's page) one of
    ``bundled``'s paths. The note says where a file the bundle leaves out lies; both are "" for a
    file the run folder does not hold.
    """
    relative = folder.relative(path)
    if relative not in present:
        return "", ""
    if bundled is None or relative in bundled:
        return relative, ""
    return "", f"not in the bundle: {relative} in the run folder {folder.run_id}"


def _row(result: CaseResult, folder: RunFolder, bundled: Collection[str] | None, present: Collection[str]) -> dict[str, Any]:
    case = case_path(result.nodeid)
    values = result.to_row()
    row = {key: _text(key, values.get(key)) for key, _ in table_columns()}
    params = result.nodeid[len(result.test):]  # "[...]": the sweep's case id and any other parameter
    config, _ = _target(folder, folder.config(case), bundled, present)
    grid, grid_absent = _target(folder, folder.case_grid(case), bundled, present)
    image, image_absent = _target(folder, folder.image(case), bundled, present)
    row.update(case=params[1:-1] or result.case_id or result.nodeid, config=config, grid=grid, grid_absent=grid_absent,
               image=image, image_absent=image_absent, badge=" | ".join(badges(result)), stages=stages_text(result),
               test=result.test,
               what_failed=what_failed(result), what_failed_title=result.message if not result.passed else "",
               change=speed_change(result), change_title=timing_mismatch_of(result))
    return row


def _figure(link: str, absent: str, alt: str, caption: str = "") -> str:
    """A figure of one image of the run: the image when ``link`` is set, else the ``absent`` note
    (where the file lies); "" when neither is set."""
    esc = html.escape
    if not (link or absent):
        return ""
    shown = f'<img src="{esc(link)}" alt="{esc(alt)}">' if link else f'<p class="absent">{esc(alt)}: {esc(absent)}</p>'
    return f"<figure>{f'<figcaption>{esc(caption)}</figcaption>' if caption else ''}{shown}</figure>"


def render_report(folder: RunFolder, results: Sequence[CaseResult], environment: Mapping[str, Any], *,
                  bundled: Collection[str] | None = None) -> str:
    """The page's HTML (see the module docstring): the run folder's page, or with ``bundled`` (the
    bundle's files, POSIX paths relative to the run folder) the bundle's page."""
    esc = html.escape
    run_id = folder.run_id
    present = frozenset(regular_files(folder.path)[0])
    rows = [_row(result, folder, bundled, present) for result in sorted(results, key=case_order)]
    counts = "".join(f'<span class="{"passed" if outcome == "passed" else "failed"}">{count} {esc(outcome)}</span>'
                     for outcome, count in outcome_counts(results))
    filters = []
    for key in FILTERS:
        values = sorted({row[key] for row in rows}, key=lambda v: (len(v), v) if key == "steps" else (0, v))
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        filters.append(f'<label>{key} <select name="{key}"><option value="">all</option>{options}</select></label>')
    headers = "".join(f'<th data-key="{key}">{esc(title)}</th>' for key, title in table_columns())
    failing = [row for row in rows if row["outcome"] != "passed" and (row["grid"] or row["grid_absent"])]
    grids = "".join(_figure(row["grid"], row["grid_absent"], f'grid of {row["case"]}',
                            f'{row["outcome"]}: {row["test"]}[{row["case"]}] · ' + " · ".join(filter(None, (row["what_failed"], row["badge"]))))
                    for row in failing)
    sheets = "".join(_figure(*_target(folder, path, bundled, present), "sweep sheet")
                     for path in sorted(folder.sheets.rglob("*.png")))
    data = json.dumps(rows, sort_keys=True, ensure_ascii=True).replace("<", "\\u003c")
    plot = _figure(*_target(folder, folder.plot, bundled, present), "seconds per image vs SSIM")
    plot = f"<h2>Speed vs quality</h2>{plot}" if plot else ""
    footnote = change_footnote(results)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>diffbench run {esc(run_id)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>diffbench run {esc(run_id)}</h1>
<p class="counts" id="counts">{counts or "no cases ran"}</p>
<h2>Cases</h2>
<p class="filters">{"".join(filters)} <span id="shown"></span></p>
<table id="cases"><thead><tr>{headers}</tr></thead><tbody></tbody></table>
{f'<p class="absent" id="footnote">{esc(footnote)}</p>' if footnote else ""}
<h2>Failing cases: baseline | output | difference</h2>
{grids or "<p>none</p>"}
{plot}
<h2>Sweep sheets</h2>
{sheets or "<p>none</p>"}
<h2>Environment</h2>
<pre>{esc(json.dumps(environment, indent=2, sort_keys=True))}</pre>
<script type="application/json" id="diffbench-rows">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
