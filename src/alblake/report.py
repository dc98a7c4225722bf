"""A self-contained HTML dashboard of the named queries: the local counterpart of the QuickSight dashboard.

Everything is in one file: CSS, the charts as inline SVG drawn here in Python, and a few lines of inline
JavaScript that only *checks* the rendering (it records each chart's laid-out size and mark count in
``#render-check``, which the browser test reads). No CDN, no fetch: it works offline. Every string that
comes from the logs is HTML-escaped (URLs and user agents are attacker-controlled).
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from queue import Queue
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from alblake import __version__
from alblake.analysis import Query, connect, cursor, execute, list_queries
from alblake.display import fmt, iso_z
from alblake.display import is_rate as _is_rate
from alblake.ports import Lake
from alblake.scope import EVERYTHING, Scope
from alblake.triage.section import report_section

# Dashboard order; queries not listed here are appended after these, drawn by their chart kind.
LAYOUT = (
    "error_rate_by_hour", "requests_by_status", "requests_by_verb", "tls_protocols", "clients_per_target",
    "bytes_per_target", "latency_by_target", "top_clients", "slowest_urls", "failing_urls", "error_reasons",
)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")
STATUS_COLOURS = {2: "#59a14f", 3: "#4e79a7", 4: "#f28e2b", 5: "#e15759"}
MAX_BARS = 25
CHART_WIDTH = 640
LABEL_WIDTH = 190

Value = Any
T = TypeVar("T")


# ------------------------------------------------------------------------------------------ formatting


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Value) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _nice_max(value: float) -> float:
    """A round axis maximum >= value (1, 2, 2.5, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0**exponent
        if candidate >= value:
            return candidate
    return 10.0 ** (exponent + 1)


def _tick(column: str, value: float) -> str:
    """Axis label: like the column's cells, but whole numbers without decimals."""
    if _is_rate(column) or column.endswith("_bytes"):
        return fmt(column, value if _is_rate(column) else round(value))
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.3g}"


def _label(column: str, value: Value) -> str:
    """Category label: codes, ports and names as they are (no thousands separators)."""
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else fmt(column, value)


def _truncate(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------- charts


def _svg(name: str, kind: str, width: int, height: int, body: Sequence[str], title: str) -> str:
    return (
        f'<svg class="chart" data-chart="{_esc(name)}" data-kind="{kind}" role="img" '
        f'aria-label="{_esc(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _empty_chart(name: str, title: str) -> str:
    return _svg(name, "empty", CHART_WIDTH, 40,
                ['<text x="0" y="24" class="muted">no data</text>'], title)


def bar_chart(query: Query, table: pa.Table) -> str:
    """Horizontal bars; one colour per series (``-- y:`` columns), grouped when there are several."""
    assert query.x is not None
    rows = table.to_pylist()[:MAX_BARS]
    if not rows:
        return _empty_chart(query.name, query.title)
    series = list(query.y)
    bar_h = 16 if len(series) == 1 else 13
    group_h = bar_h * len(series) + 8
    legend_h = 22 if len(series) > 1 else 0
    plot_w = CHART_WIDTH - LABEL_WIDTH - 90
    top = legend_h + 4
    height = top + group_h * len(rows) + 24
    vmax = _nice_max(max(_num(r[c]) for r in rows for c in series))
    body: list[str] = []
    for i, column in enumerate(series):
        if len(series) > 1:
            lx = LABEL_WIDTH + i * 120
            body.append(f'<rect x="{lx}" y="4" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>'
                        f'<text x="{lx + 16}" y="14" class="legend">{_esc(column)}</text>')
    for tick in range(5):
        value = vmax * tick / 4
        x = LABEL_WIDTH + plot_w * tick / 4
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 20}" class="grid"/>'
                    f'<text x="{x:.1f}" y="{height - 6}" class="tick" text-anchor="middle">'
                    f"{_esc(_tick(series[0], value))}</text>")
    for r_index, row in enumerate(rows):
        label = _label(query.x, row[query.x])
        y0 = top + r_index * group_h + 4
        body.append(f'<text x="{LABEL_WIDTH - 8}" y="{y0 + group_h / 2:.1f}" class="label" text-anchor="end" '
                    f'dominant-baseline="middle"><title>{_esc(label)}</title>{_esc(_truncate(label))}</text>')
        for s_index, column in enumerate(series):
            value = row[column]
            width = plot_w * _num(value) / vmax
            y = y0 + s_index * bar_h
            colour = PALETTE[s_index % len(PALETTE)]
            if query.name == "requests_by_status" and isinstance(row[query.x], int):
                colour = STATUS_COLOURS.get(row[query.x] // 100, "#9c9c9c")
            body.append(
                f'<rect data-mark="bar" x="{LABEL_WIDTH}" y="{y:.1f}" width="{max(width, 0.5):.1f}" '
                f'height="{bar_h - 2}" fill="{colour}"><title>{_esc(label)} — {_esc(column)}: '
                f"{_esc(fmt(column, value))}</title></rect>"
                f'<text x="{LABEL_WIDTH + width + 4:.1f}" y="{y + bar_h / 2:.1f}" class="value" '
                f'dominant-baseline="middle">{_esc(fmt(column, value))}</text>'
            )
    return _svg(query.name, query.chart, CHART_WIDTH, height, body, query.title)


def line_chart(query: Query, table: pa.Table) -> str:
    """One line per ``-- y:`` column over the ``-- x:`` column (time or category), with point tooltips."""
    assert query.x is not None
    rows = table.to_pylist()
    if not rows:
        return _empty_chart(query.name, query.title)
    series = list(query.y)
    left, right, top, bottom = 70, 20, 30, 46
    width, height = CHART_WIDTH + 200, 300
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [row[query.x] for row in rows]
    if all(isinstance(x, datetime) for x in xs):
        t0, t1 = xs[0].timestamp(), xs[-1].timestamp()
        span = (t1 - t0) or 1.0
        positions = [left + plot_w * ((x.timestamp() - t0) / span if t1 > t0 else 0.5) for x in xs]
        labels = [x.astimezone(UTC).strftime("%m-%d %H:%M") for x in xs]
    else:
        positions = [left + plot_w * ((i / (len(xs) - 1)) if len(xs) > 1 else 0.5) for i in range(len(xs))]
        labels = [str(x) for x in xs]
    vmax = _nice_max(max(_num(r[c]) for r in rows for c in series))
    body: list[str] = []
    for tick in range(5):
        value = vmax * tick / 4
        y = top + plot_h * (1 - tick / 4)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>'
                    f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                    f"{_esc(_tick(series[0], value))}</text>")
    step = max(1, math.ceil(len(xs) / 8))
    for i in range(0, len(xs), step):
        # labels near an edge are anchored inside the chart, so the last one is never cut off
        anchor = "end" if positions[i] > width - right - 40 else "start" if positions[i] < 40 else "middle"
        body.append(f'<text x="{positions[i]:.1f}" y="{height - bottom + 18}" class="tick" '
                    f'text-anchor="{anchor}">{_esc(labels[i])}</text>')
    for s_index, column in enumerate(series):
        colour = PALETTE[(s_index + 1) % len(PALETTE)]
        points = [(positions[i], top + plot_h * (1 - _num(row[column]) / vmax)) for i, row in enumerate(rows)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline data-series="{_esc(column)}" points="{path}" fill="none" stroke="{colour}" '
                    'stroke-width="2"/>')
        for (x, y), row, label in zip(points, rows, labels, strict=True):
            body.append(f'<circle data-mark="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
                        f"<title>{_esc(label)} — {_esc(column)}: {_esc(fmt(column, row[column]))}</title>"
                        "</circle>")
        lx = left + s_index * 120
        body.append(f'<rect x="{lx}" y="6" width="12" height="12" fill="{colour}"/>'
                    f'<text x="{lx + 16}" y="16" class="legend">{_esc(column)}</text>')
    return _svg(query.name, query.chart, width, height, body, query.title)


def html_table(query: Query, table: pa.Table, *, marks: bool = True) -> str:
    columns = table.column_names
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    rows = []
    for row in table.to_pylist():
        cells = []
        for c in columns:
            numeric = isinstance(row[c], int | float) and not isinstance(row[c], bool)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{_esc(fmt(c, row[c]))}</td>")
        mark = ' data-mark="row"' if marks else ""
        rows.append(f"<tr{mark}>{''.join(cells)}</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(columns)}" class="muted">no rows</td></tr>')
    # data-table marks the tables that *are* the visual (checked by the render check), not the data views
    ident = f' data-table="{_esc(query.name)}"' if marks else ""
    return (f'<table class="data"{ident}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _kpis(table: pa.Table) -> str:
    row = table.to_pylist()[0] if table.num_rows else {}
    requests = row.get("requests") or 0
    span = "—"
    if row.get("first_request") and row.get("last_request"):
        span = f"{fmt('', row['first_request'])} → {fmt('', row['last_request'])}"
    cards = [
        ("requests", "Total requests", fmt("requests", requests)),
        ("error_rate", "Error rate (4xx + 5xx)", fmt("error_rate", row.get("error_rate"))),
        ("errors_5xx", "5xx responses", fmt("errors_5xx", row.get("errors_5xx"))),
        ("distinct_clients", "Distinct client IPs", fmt("distinct_clients", row.get("distinct_clients"))),
        ("sent_bytes", "Bytes sent", fmt("sent_bytes", row.get("sent_bytes"))),
        ("received_bytes", "Bytes received", fmt("received_bytes", row.get("received_bytes"))),
    ]
    items = "".join(f'<div class="kpi" data-kpi="{key}"><div class="kpi-value">{_esc(value)}</div>'
                    f'<div class="kpi-label">{_esc(label)}</div></div>' for key, label, value in cards)
    return f'<section class="kpis">{items}</section><p class="muted span">Time range: {_esc(span)}</p>'


def _card(query: Query, table: pa.Table) -> str:
    if query.chart in {"bar", "grouped_bar"}:
        figure = bar_chart(query, table)
    elif query.chart == "line":
        figure = line_chart(query, table)
    else:
        figure = html_table(query, table)
    details = ""
    if query.chart != "table":
        details = f"<details><summary>data ({table.num_rows} row{'' if table.num_rows == 1 else 's'})</summary>" \
                  f"{html_table(query, table, marks=False)}</details>"
    wide = " wide" if query.chart in {"line", "table"} else ""
    return (f'<section class="card{wide}" id="q-{_esc(query.name)}" data-rows="{table.num_rows}">'
            f"<h2>{_esc(query.title)}</h2><p class=\"desc\">{_esc(query.description)} "
            f'<code>alblake query {_esc(query.name)}</code></p>{figure}{details}</section>')


_CSS = """
:root { color-scheme: light; --fg: #1f2430; --muted: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: #f6f7f9; }
header { padding: 20px 28px 8px; } header h1 { margin: 0 0 4px; font-size: 22px; }
main { padding: 0 28px 28px; display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr));
       gap: 18px; }
.kpis { grid-column: 1 / -1; display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr));
        gap: 12px; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.kpi-value { font-size: 24px; font-weight: 600; } .kpi-label { color: var(--muted); }
.span { grid-column: 1 / -1; margin: 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
        overflow-x: auto; }
.card.wide { grid-column: 1 / -1; }
.card h2 { margin: 0 0 4px; font-size: 16px; } .desc { margin: 0 0 10px; color: var(--muted); }
.muted { color: var(--muted); fill: #6b7280; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg .grid { stroke: #eceef1; stroke-width: 1; } svg .tick { font-size: 11px; fill: #6b7280; }
svg .label { font-size: 12px; fill: #1f2430; } svg .value { font-size: 10px; fill: #374151; }
svg .legend { font-size: 12px; fill: #1f2430; }
table.data { border-collapse: collapse; width: 100%; font-size: 13px; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
                               max-width: 520px; overflow-wrap: anywhere; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
details { margin-top: 8px; } summary { cursor: pointer; color: var(--muted); }
code { font-size: 12px; background: #f1f2f4; padding: 1px 4px; border-radius: 3px; }
#render-check { display: none; }
footer { padding: 0 28px 24px; color: var(--muted); }
"""

# Records what the browser actually laid out; read by tests/test_report.py through --dump-dom.
_RENDER_CHECK_JS = """
(function () {
  var out = [];
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var box = svg.getBoundingClientRect(), bbox = svg.getBBox();
    out.push({chart: svg.getAttribute("data-chart"), kind: svg.getAttribute("data-kind"),
              marks: svg.querySelectorAll("[data-mark]").length,
              width: Math.round(box.width), height: Math.round(box.height),
              drawn: Math.round(bbox.width * bbox.height)});
  });
  document.querySelectorAll("table[data-table]").forEach(function (t) {
    out.push({chart: t.getAttribute("data-table"), kind: "table",
              marks: t.querySelectorAll("[data-mark]").length,
              width: Math.round(t.getBoundingClientRect().width),
              height: Math.round(t.getBoundingClientRect().height), drawn: 1});
  });
  document.getElementById("render-check").textContent = JSON.stringify(out);
  document.body.setAttribute("data-rendered", String(out.length));
})();
"""


def scope_text(scope: Scope) -> str:
    """How the page names the part of the lake it shows ('' for all of it)."""
    parts = []
    if scope.elb:
        parts.append(f"load balancer {scope.elb}")
    if scope.since:
        parts.append(f"from {iso_z(scope.since)}")
    if scope.until:
        parts.append(f"until {iso_z(scope.until)}")
    return ", ".join(parts)


def build_html(
    results: dict[str, pa.Table], queries: Sequence[Query], *, source: str, scope: Scope = EVERYTHING,
    sections: Sequence[str] = (),
) -> str:
    by_name = {q.name: q for q in queries}
    order = [n for n in LAYOUT if n in by_name] + [q.name for q in queries
                                                    if q.name not in LAYOUT and q.chart != "kpi"]
    kpi = next((q for q in queries if q.chart == "kpi"), None)
    parts = [_kpis(results[kpi.name]) if kpi else ""]
    parts += [_card(by_name[name], results[name]) for name in order]
    parts += list(sections)  # ready-made cards (the triage section)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ALB access logs — alblake report</title><style>{_CSS}</style></head><body>"
        f"<header><h1>ALB access logs</h1><div class=\"muted\">Lake: <code>{_esc(source)}</code> · "
        + (f"{_esc(scope_text(scope))} · " if scope_text(scope) else "")
        + f"generated {generated} by alblake {_esc(__version__)} · same SQL as the Athena named queries"
        "</div></header>"
        f"<main>{''.join(parts)}</main>"
        "<footer>Percentiles here are exact (DuckDB quantile_cont); Athena's approx_percentile is an "
        "approximation. Times are UTC.</footer>"
        f'<pre id="render-check"></pre><script>{_RENDER_CHECK_JS}</script></body></html>\n'
    )


def render_report(
    lake: Lake | Path | str, out_path: Path | str, *, source: str | None = None, scope: Scope = EVERYTHING
) -> Path:
    """Run every named query over the lake (within ``scope``) and write the dashboard to ``out_path``; returns
    the path. ``lake`` is a ``Lake`` or its location; ``source`` is how the page names it (default: the location).
    """
    queries = list_queries()
    con = connect(lake, scope)
    try:
        results, sections = run_queries(con, lake, scope, queries)
    finally:
        con.close()
    out = Path(out_path)
    named = source if source is not None else str(lake)
    out.write_text(build_html(results, queries, source=named, scope=scope, sections=sections), encoding="utf-8")
    return out


def run_queries(
    con: duckdb.DuckDBPyConnection, lake: Lake | Path | str, scope: Scope, queries: Sequence[Query], *, lanes: int = 2
) -> tuple[dict[str, pa.Table], list[str]]:
    """The queries' tables, by name, and the triage section (alblake.triage: the newest 30 minutes against the 24
    hours before), ``lanes`` at a time on as many connections to the database of ``con``. DuckDB runs the queries
    of different connections at the same time; it is told to use one thread fewer than the cores, as each lane's
    own thread works on its query too. On a day of data a query is short, and DuckDB spends more CPU time
    splitting it across threads than it saves: queries side by side keep the cores as busy for less."""
    if lanes <= 1:
        return {q.name: execute(con, q) for q in queries}, [report_section(lake, scope, con)]
    con.execute(f"SET threads = {max(1, (os.cpu_count() or lanes) - lanes + 1)}")
    free: Queue[duckdb.DuckDBPyConnection] = Queue()
    opened = [cursor(con) for _ in range(lanes - 1)]
    for connection in (con, *opened):
        free.put(connection)

    def on_free(task: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        connection = free.get()
        try:
            return task(connection)
        finally:
            free.put(connection)

    try:
        with ThreadPoolExecutor(lanes) as pool:
            section = pool.submit(on_free, partial(report_section, lake, scope))  # the longest first
            tables = {q.name: pool.submit(on_free, partial(execute, query=q)) for q in longest_first(queries)}
            return {q.name: tables[q.name].result() for q in queries}, [section.result()]
    finally:
        for connection in opened:
            connection.close()


# What makes a query long: hash tables of every client address, or every value of a group kept for an exact
# percentile (DuckDB's quantile_cont); such a query takes 2-4 times the time of a plain GROUP BY over a day.
_LONG = re.compile(r"\bclient_ip\b|\bapprox_percentile\b|\bquantile", re.IGNORECASE)


def longest_first(queries: Sequence[Query]) -> list[Query]:
    """The queries in the order the lanes start them: the long ones (``_LONG``) first, so that no lane is left with
    a long query while the other has nothing to do (on the bench day, 30-50 ms of a 0.7 s run)."""
    return sorted(queries, key=lambda query: _LONG.search(query.sql) is None)

