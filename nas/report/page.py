"""One self-contained HTML page: inline CSS, SVG and a few lines of JavaScript (sorting and filtering the
table), no external file, server or network, so a copy opens anywhere."""
from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any, Sequence

from nas.files import atomic_write

REPORT_FILE = "report.html"
REFRESH_SECONDS = 15  # how often a browser reloads the page of a run that is still going

STYLE = """
body{font-family:sans-serif;margin:20px;color:#222;max-width:1400px}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:24px 0 6px;border-bottom:1px solid #ddd}
.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px}
.facts dt{color:#666}.facts dd{margin:0}
.charts{display:flex;flex-wrap:wrap;gap:12px}.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0}td.text{text-align:left;font-family:monospace}
tr.failed td{color:#a00}tr.screened td,tr.stopped td{color:#888}tr.best td{background:#fde9e9}
input.filter{margin:6px 0;width:320px}.note{color:#666;font-size:12px}
.status-running{color:#b36b00}.status-finished{color:#1a7f37}.status-interrupted{color:#a00}
"""

SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(table){
  var body=table.tBodies[0];
  table.querySelectorAll('th').forEach(function(th,col){
    th.addEventListener('click',function(){
      var up=th.dataset.dir!=='up';th.dataset.dir=up?'up':'down';
      var rows=Array.from(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[col].dataset.v||a.cells[col].textContent,y=b.cells[col].dataset.v||b.cells[col].textContent;
        var nx=parseFloat(x),ny=parseFloat(y);
        var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return up?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});});});
});
document.querySelectorAll('input.filter').forEach(function(input){
  var table=document.getElementById(input.dataset.table),count=document.getElementById(input.dataset.count);
  input.addEventListener('input',function(){
    var words=input.value.toLowerCase().split(/\\s+/).filter(Boolean),shown=0;
    Array.from(table.tBodies[0].rows).forEach(function(r){
      var text=r.textContent.toLowerCase(),ok=words.every(function(w){return text.indexOf(w)>=0;});
      r.style.display=ok?'':'none';if(ok)shown++;});
    count.textContent=shown;});
});
"""


def facts(items: Sequence[tuple[str, Any]]) -> str:
    """A two-column list of labelled facts (label, value); values are escaped."""
    rows = "".join(f"<dt>{escape(label)}</dt><dd>{escape(str(value))}</dd>" for label, value in items)
    return f'<dl class="facts">{rows}</dl>'


def _cell(value: Any, decimals: int) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return '<td data-v="">–</td>'
        return f'<td data-v="{value!r}">{value:,.{decimals}f}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td data-v="{value}">{value:,}</td>'
    return f'<td class="text">{escape(str(value))}</td>'


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], table_id: str,
          row_class: str | None = None, decimals: dict[str, int] | None = None) -> str:
    """A sortable table (click a header) with a filter box above it; ``row_class`` names the column whose value
    becomes each row's CSS class (e.g. the status); ``decimals``: digits shown per float column (default 4)."""
    decimals = decimals or {}
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        css = f' class="{escape(str(row.get(row_class, "")))}"' if row_class else ""
        body.append(f"<tr{css}>" + "".join(_cell(row.get(c, ""), decimals.get(c, 4)) for c in columns) + "</tr>")
    return (f'<input class="filter" placeholder="filter rows (words, e.g. ok M6k5)" data-table="{table_id}" '
            f'data-count="{table_id}-count"> <span class="note"><span id="{table_id}-count">{len(rows)}</span> '
            f'of {len(rows)} rows</span><div class="scroll"><table id="{table_id}" class="sortable">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def section(title: str, *content: str, note: str = "") -> str:
    """A titled part of the page."""
    extra = f'<p class="note">{escape(note)}</p>' if note else ""
    return f"<h2>{escape(title)}</h2>{extra}{''.join(content)}"


def page(title: str, sections: Sequence[str], live: bool = False) -> str:
    """The whole document; a ``live`` one (its run still going) reloads itself every REFRESH_SECONDS."""
    reload = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if live else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>{reload}'
            f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head><body>'
            f'{"".join(sections)}<script>{SCRIPT}</script></body></html>\n')


def write_page(run_dir: Path, title: str, sections: Sequence[str], live: bool = False) -> Path:
    """Write ``report.html`` in ``run_dir`` atomically (a reader never sees half a page); its path. A ``live``
    page reloads itself in the browser until the page written at the run's end (not live) replaces it."""
    path = Path(run_dir) / REPORT_FILE
    atomic_write(path, page(title, sections, live))
    return path
