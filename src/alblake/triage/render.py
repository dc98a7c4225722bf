"""Triage results for people and programs: an aligned text table, CSV, JSON, and an HTML section of the report.

Every row says what was counted: ``326 of 326 (100.0%)`` hits in the window against ``8 of 3,671 (0.22%)`` in the
baseline, or ``31 of 137 > 0.122 s`` (window requests slower than the value's baseline p95) with both p95s.
Values from the logs (routes, user agents) are made terminal-safe (``alblake.display.printable``) or HTML-escaped.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from alblake.display import printable
from alblake.triage import Finding, TriageResult
from alblake.triage.dimensions import DIMENSIONS

_MAX_VALUE = 48
_LABELS = {d.name: d.label for d in DIMENSIONS}
CSV_COLUMNS = (
    "rank", "signal", "dimension", "value", "score", "source", "window_requests", "window_hits", "baseline_requests",
    "baseline_hits", "window_latency", "window_slow", "baseline_latency", "baseline_slow", "window_p50",
    "window_p95", "baseline_p50", "baseline_p95",
)


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} ({100 * part / whole:.2f}%)" if whole else f"{part:,} of 0"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def window_text(finding: Finding) -> str:
    if finding.signal == "latency":
        return f"{finding.window_slow:,} of {finding.window_latency:,} slower; p95 {_seconds(finding.window_p95)}"
    return _share(finding.window_hits, finding.window_requests)


def baseline_text(finding: Finding) -> str:
    if finding.signal == "latency":
        return f"p95 {_seconds(finding.baseline_p95)} ({finding.baseline_slow:,} of {finding.baseline_latency:,} above)"
    return _share(finding.baseline_hits, finding.baseline_requests)


def _short(text: str) -> str:
    text = printable(text)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _hits(result: TriageResult) -> str:
    return "selected requests" if result.query.selection else "5xx"


def _minutes(start: datetime, end: datetime) -> str:
    minutes = int((end - start).total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:g} h"


def summary_lines(result: TriageResult) -> list[str]:
    window = result.window
    overall = result.overall
    lines = [
        f"window     {window.start:%Y-%m-%d %H:%M} - {window.end:%H:%M} UTC ({_minutes(window.start, window.end)}); "
        f"baseline the {_minutes(window.baseline_start, window.start)} before",
        f"selection  {printable(result.selection_label)}",
    ]
    if overall:
        lines.append(
            f"overall    {_share(overall['w_hits'], overall['w_requests'])} in the window, "
            f"{_share(overall['b_hits'], overall['b_requests'])} in the baseline; "
            f"p95 {_seconds(overall['w_p95'])} vs {_seconds(overall['b_p95'])}"
        )
    parts = []
    for label, names in (("rollup", result.query.from_rollup), ("curated table", result.query.from_curated)):
        shown = [n for n in names if n != "all"]
        if shown:
            parts.append(f"{label} ({', '.join(shown)})")
    lines.append(f"read       {'; '.join(parts)}; {result.engine}, {result.seconds:.2f} s")
    lines += [f"note       {printable(n)}" for n in result.notes]
    return lines


def format_text(result: TriageResult) -> str:
    """The summary, then the findings as an aligned table."""
    header = ["rank", "signal", "dimension", "value", "score", "window", "baseline"]
    rows = [
        [str(i), f.signal, f.dimension, _short(f.value), f"+{f.score:,.0f}", window_text(f), baseline_text(f)]
        for i, f in enumerate(result.findings, 1)
    ]
    lines = [*summary_lines(result), ""]
    if not result.overall.get("w_requests"):
        lines.append("the window holds no requests: is ingest behind (alblake status)? For an earlier incident give "
                     "--from and --to, or --now with --since")
        return "\n".join(lines) + "\n"
    if not rows:
        lines.append("nothing stands out: no dimension value has more hits or slow requests than its baseline predicts")
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    numeric = {0, 4}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in
                         enumerate(zip(cells, widths, strict=True))).rstrip()

    lines += [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
    lines.append("score: window requests beyond what the value's baseline predicts, net of its share of the traffic")
    return "\n".join(lines) + "\n"


def _row(rank: int, finding: Finding) -> dict[str, Any]:
    return {"rank": rank, **finding.as_dict()}


def csv_rows(result: TriageResult) -> list[list[Any]]:
    """The findings as rows of ``CSV_COLUMNS`` (the CLI writes them with its formula-safe CSV writer)."""
    return [[_row(i, f)[c] for c in CSV_COLUMNS] for i, f in enumerate(result.findings, 1)]


def as_json(result: TriageResult) -> dict[str, Any]:
    window = result.window
    return {
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat(),
                   "baseline_start": window.baseline_start.isoformat()},
        "selection": result.selection_label,
        "engine": result.engine,
        "seconds": round(result.seconds, 3),
        "sources": {d: result.source(d) for d in (*result.query.from_rollup, *result.query.from_curated)},
        "overall": result.overall,
        "findings": [_row(i, f) for i, f in enumerate(result.findings, 1)],
        "notes": result.notes,
    }


def _compared(result: TriageResult) -> str:
    """The labels of the dimensions the result compares, as a phrase ('target ip:port, route template and ...')."""
    labels = [_LABELS[name] for name in (*result.query.from_rollup, *result.query.from_curated) if name in _LABELS]
    return ", ".join(labels[:-1]) + f" and {labels[-1]}" if len(labels) > 1 else "".join(labels)


def html_section(result: TriageResult, title: str = "Triage: what is different about the window",
                 more: str | None = None) -> str:
    """A card of the HTML report: the summary lines and the findings table. ``more``: the command that compares
    the dimensions this result leaves out (``alblake triage`` over the same window), named in the card."""
    esc = html.escape
    left_out = [d.label for d in DIMENSIONS
                if d.name not in result.query.from_rollup and d.name not in result.query.from_curated]
    others = ""
    if more is not None and left_out:
        others = f" The other dimensions ({esc(', '.join(left_out))}): <code>{esc(more)}</code>"
    elif more is not None:
        others = f" <code>{esc(more)}</code>"
    summary = "".join(f"<li>{esc(line)}</li>" for line in summary_lines(result))
    head = "".join(f"<th>{h}</th>" for h in ("rank", "signal", "dimension", "value", "score", "window", "baseline"))
    body = "".join(
        f'<tr data-mark="row"><td class="num">{i}</td><td>{esc(f.signal)}</td><td>{esc(f.dimension)}</td>'
        f'<td>{esc(f.value)}</td><td class="num">+{f.score:,.0f}</td><td>{esc(window_text(f))}</td>'
        f"<td>{esc(baseline_text(f))}</td></tr>"
        for i, f in enumerate(result.findings, 1)
    ) or '<tr><td colspan="7" class="muted">nothing stands out</td></tr>'
    return (
        '<section class="card wide" id="q-triage" data-rows="' + str(len(result.findings)) + '">'
        f"<h2>{esc(title)}</h2>"
        f'<p class="desc">The window\'s {esc(_hits(result))} and latency against the '
        f"{esc(_minutes(result.window.baseline_start, result.window.start))} before, by "
        f"{esc(_compared(result))}; scores are requests beyond the baseline.{others}</p>"
        f'<ul class="muted">{summary}</ul>'
        f'<table class="data" id="triage-findings"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        "</section>"
    )
