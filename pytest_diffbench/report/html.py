"""report.html: one self-contained page per run that works wherever the run folder is unzipped.

No network and no absolute paths: styles and script are inline, images are linked relative to
the run folder (the labeled comparison grids, which hold baseline | output | difference, and
the sweep sheets), and only files that lie in the run folder with no symbolic link on the way
(see :func:`~pytest_diffbench.report.bundle.in_run`). The case table sorts by any column and filters by outcome, sampler, steps
and test. Every string that comes from a user (prompts above all) is HTML-escaped, and the
rows reach the script as JSON inside a ``<script type="application/json">`` block with ``<``
escaped, so no prompt can close the block or inject markup.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_diffbench.judge.metrics import REGISTRY, MetricRegistry
from pytest_diffbench.judge.result import CaseResult
from pytest_diffbench.report.bundle import in_run
from pytest_diffbench.report.summary import badge, outcome_counts
from pytest_diffbench.store.files import PathEscapeError
from pytest_diffbench.store.paths import case_path
from pytest_diffbench.store.run_folder import RunFolder


def table_columns(metrics: MetricRegistry = REGISTRY) -> tuple[tuple[str, str], ...]:
    """Columns of the case table: (results column, header), every registered metric among them."""
    return (
        ("case", "case"), ("test", "test"), ("outcome", "outcome"), ("sampler", "sampler"), ("steps", "steps"),
        ("cfg", "cfg"), ("seed", "seed"), *((m.name, m.label) for m in metrics),
        ("ssim_vs_most_steps", "SSIM vs most steps"),
        ("seconds_per_image", "s/img"), ("peak_vram_mb", "VRAM MiB"), ("prompt", "prompt"),
    )


def numeric_columns(metrics: MetricRegistry = REGISTRY) -> tuple[str, ...]:
    """Columns shown with 4 significant digits."""
    return (*(m.name for m in metrics), "ssim_vs_most_steps", "seconds_per_image", "peak_vram_mb")


FILTERS = ("outcome", "sampler", "steps", "test")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
.counts span{display:inline-block;margin-right:1rem;padding:.2rem .6rem;border-radius:4px;background:#eee}
.counts .passed{background:#d7f5d7}.counts .failed{background:#f8d3d3}
table{border-collapse:collapse;font-size:.85rem}th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:left}
th{cursor:pointer;background:#f4f4f4}tr.failed td.outcome{color:#b00;font-weight:bold}
.filters label{margin-right:1rem}img{max-width:100%;image-rendering:pixelated}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem}
"""

_SCRIPT = """
const rows = JSON.parse(document.getElementById('diffbench-rows').textContent);
const body = document.querySelector('#cases tbody');
const columns = [...document.querySelectorAll('#cases th')].map(th => th.dataset.key);
const filters = [...document.querySelectorAll('.filters select')];
let sortKey = 'case', sortUp = true;
function cell(row, key) {
  const td = document.createElement('td');
  td.className = key;
  if (key === 'case') {
    const link = document.createElement('a');
    link.href = row.config; link.textContent = row.case; td.appendChild(link);
    for (const [key, label] of [['grid', ' [grid]'], ['image', ' [image]']]) {
      if (row[key]) { const a = document.createElement('a'); a.href = row[key]; a.textContent = label; td.appendChild(a); }
    }
  } else { td.textContent = row[key] ?? ''; }
  return td;
}
function render() {
  const chosen = Object.fromEntries(filters.map(f => [f.name, f.value]));
  const shown = rows.filter(r => filters.every(f => !chosen[f.name] || String(r[f.name]) === chosen[f.name]));
  shown.sort((a, b) => {
    const x = a[sortKey], y = b[sortKey];
    const nx = parseFloat(x), ny = parseFloat(y);
    const order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x ?? '').localeCompare(String(y ?? ''));
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
            return f"{float(value):.4g}"
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _link(folder: RunFolder, path: Path) -> str:
    """``path`` relative to the run folder when it is a file there (not through a link), else ""."""
    try:
        return folder.relative(path) if in_run(folder, path).is_file() else ""
    except PathEscapeError:
        return ""


def _row(result: CaseResult, folder: RunFolder) -> dict[str, Any]:
    case = case_path(result.nodeid)
    values = result.to_row()
    row = {key: _text(key, values.get(key)) for key, _ in table_columns()}
    params = result.nodeid[len(result.test):]  # "[...]": the sweep's case id and any other parameter
    row.update(case=params[1:-1] or result.case_id or result.nodeid, config=folder.relative(folder.config(case)),
               grid=_link(folder, folder.case_grid(case)), image=_link(folder, folder.image(case)),
               badge=badge(result), test=result.test)
    return row


def render_report(folder: RunFolder, results: Sequence[CaseResult], environment: Mapping[str, Any]) -> str:
    """The page's HTML (see the module docstring)."""
    esc = html.escape
    run_id = folder.run_id
    rows = [_row(result, folder) for result in sorted(results, key=lambda r: r.nodeid)]
    counts = "".join(f'<span class="{"passed" if outcome == "passed" else "failed"}">{count} {esc(outcome)}</span>'
                     for outcome, count in outcome_counts(results))
    filters = []
    for key in FILTERS:
        values = sorted({row[key] for row in rows}, key=lambda v: (len(v), v) if key == "steps" else (0, v))
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        filters.append(f'<label>{key} <select name="{key}"><option value="">all</option>{options}</select></label>')
    headers = "".join(f'<th data-key="{key}">{esc(title)}</th>' for key, title in table_columns())
    failing = [row for row in rows if row["outcome"] != "passed" and row["grid"]]
    grids = "".join(f'<figure><figcaption>{esc(row["outcome"])}: {esc(row["test"])}[{esc(row["case"])}]'
                    f' · {esc(row["badge"])}</figcaption><img src="{esc(row["grid"])}" alt="grid of {esc(row["case"])}"></figure>'
                    for row in failing)
    sheets = "".join(f'<figure><img src="{esc(link)}" alt="sweep sheet"></figure>'
                     for link in sorted(filter(None, (_link(folder, path) for path in folder.sheets.rglob("*.png")))))
    data = json.dumps(rows, sort_keys=True, ensure_ascii=True).replace("<", "\\u003c")
    plot_link = _link(folder, folder.plot)
    plot = f'<h2>Speed vs quality</h2><img src="{plot_link}" alt="seconds per image vs SSIM">' if plot_link else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>diffbench run {esc(run_id)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>diffbench run {esc(run_id)}</h1>
<p class="counts" id="counts">{counts or "no cases ran"}</p>
<h2>Cases</h2>
<p class="filters">{"".join(filters)} <span id="shown"></span></p>
<table id="cases"><thead><tr>{headers}</tr></thead><tbody></tbody></table>
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
