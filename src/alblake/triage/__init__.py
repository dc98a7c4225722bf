"""``alblake triage``: what is different about the bad traffic.

The selected traffic of a window (its 5xx, or what ``--where`` selects) is compared with a baseline (by default
the 24 hours before the window) across every dimension of :mod:`alblake.triage.dimensions`; for each value,
:mod:`alblake.triage.query` counts, in one SQL statement that runs on Athena and DuckDB alike, how many window
requests are hits (or slow) beyond what the value's own baseline predicts, and how much of that concentrates on
the value rather than following its share of the traffic. The values are ranked by that score, in requests, and
every row keeps the counts behind it. The rollup answers the dimensions it holds; the curated table the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from alblake.errors import InputError
from alblake.scope import parse_age, parse_moment
from alblake.triage.dimensions import DIMENSIONS, Dimension
from alblake.triage.predicate import Where
from alblake.triage.query import ERRORS, TriageQuery, Window, build_query

DEFAULT_BASELINE = timedelta(hours=24)
DEFAULT_TOP = 10

RunSql = Callable[[str], pa.Table]


class TriageInputError(InputError, ValueError):
    """A window, duration or time the command cannot use (the message says which and why)."""


def parse_duration(text: str) -> timedelta:
    """``30m``, ``24h``, ``2d``, ``90s``, ``1w`` (``alblake.scope.parse_age``, as ``--since`` reads them): at least a
    minute."""
    try:
        duration = parse_age(text)
    except ValueError:
        message = f"{text!r}: a duration is a number and a unit (s, m, h, d, w), e.g. 30m or 24h"
        raise TriageInputError(message) from None
    if duration < timedelta(minutes=1):
        raise TriageInputError(f"{text!r}: at least a minute (the rollup's grain)")
    return duration


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``2026-11-24T08:00:00``, ``2026-11-24 08:00``, with or without ``Z``) or a day, UTC if no
    zone (``alblake.scope.parse_moment``, as ``--since`` reads them): absolute only, so that the same command names
    the same window later."""
    try:
        found = parse_moment(text)
    except ValueError:
        found = None
    if found is None or found.relative:
        raise TriageInputError(f"{text!r}: not a time (write 2026-11-24T08:00:00, UTC)")
    return found.at


def _minute(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def make_window(*, since: timedelta | None = None, start: datetime | None = None, end: datetime | None = None,
                baseline: timedelta = DEFAULT_BASELINE, now: datetime | None = None) -> Window:
    """The window from ``--since`` (ending now) or ``--from``/``--to``, on whole minutes, and its baseline."""
    if since is not None and (start is not None or end is not None):
        raise TriageInputError("give --since, or --from and --to, not both")
    if since is not None:
        last = _minute(now or datetime.now(UTC))
        first = last - since
    elif start is not None and end is not None:
        first, last = _minute(start), _minute(end)
    else:
        raise TriageInputError("give --since 30m, or --from TIME and --to TIME")
    if last <= first:
        raise TriageInputError(f"the window ends ({last:%Y-%m-%d %H:%M}) before it starts ({first:%Y-%m-%d %H:%M})")
    if baseline < timedelta(minutes=1):
        raise TriageInputError("--baseline: at least a minute")
    return Window(first, last, first - baseline)


@dataclass(frozen=True)
class Finding:
    """A dimension value whose hits (``signal`` 'errors' or 'selection') or latency ('latency') differ from the
    baseline; ``score`` in requests (see ``sql/triage/rank.sql``) and the counts behind it."""

    signal: str
    dimension: str
    value: str
    score: float
    source: str
    window_requests: int
    window_hits: int
    baseline_requests: int
    baseline_hits: int
    window_latency: int
    window_slow: int
    baseline_latency: int
    baseline_slow: int
    window_p50: float | None
    window_p95: float | None
    baseline_p50: float | None
    baseline_p95: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TriageResult:
    window: Window
    where: str | None
    engine: str
    query: TriageQuery
    overall: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def selection_label(self) -> str:
        return f"--where {self.where}" if self.where else f"5xx of the load balancer ({ERRORS})"

    def source(self, dimension: str) -> str:
        return "rollup" if dimension in self.query.from_rollup else "curated"


def _finding(row: dict[str, Any], signal: str, score: float, source: str) -> Finding:
    return Finding(
        signal=signal, dimension=row["dim"], value=row["value"], score=round(score, 1), source=source,
        window_requests=row["w_requests"], window_hits=row["w_hits"], baseline_requests=row["b_requests"],
        baseline_hits=row["b_hits"], window_latency=row["w_latency"], window_slow=row["w_slow"],
        baseline_latency=row["b_latency"], baseline_slow=row["b_slow"], window_p50=row["w_p50"],
        window_p95=row["w_p95"], baseline_p50=row["b_p50"], baseline_p95=row["b_p95"],
    )


def findings_of(rows: list[dict[str, Any]], query: TriageQuery, top: int = DEFAULT_TOP) -> list[Finding]:
    """The ``top`` findings, highest score first (ties: dimension, value), from the query's rows."""
    hit_signal = "selection" if query.selection else "errors"
    found = []
    for row in rows:
        if row["dim"] == "all":
            continue
        source = "rollup" if row["dim"] in query.from_rollup else "curated"
        if row["hit_score"] is not None and row["hit_score"] >= 1 and row["w_hits"] > 0:
            found.append(_finding(row, hit_signal, row["hit_score"], source))
        if row["slow_score"] is not None and row["slow_score"] >= 1:
            found.append(_finding(row, "latency", row["slow_score"], source))
    found.sort(key=lambda f: (-f.score, f.dimension, f.value, f.signal))
    return found[:top]


def parse_where(text: str) -> Where:
    """``--where``: check ``text`` as a predicate over the curated columns (``alblake.triage.where``, imported here:
    only a command given a predicate pays for the parser's import); ``WhereError`` says what is wrong."""
    from alblake.triage.where import parse_where as parse

    return parse(text)


def run_triage(run_sql: RunSql, window: Window, where: Where | None = None, *, engine: str,
               use_rollup: bool = True, top: int = DEFAULT_TOP, notes: list[str] | None = None,
               dimensions: tuple[Dimension, ...] = DIMENSIONS) -> TriageResult:
    """Build the triage query, run it with ``run_sql`` (DuckDB or Athena) and rank what it returns."""
    query = build_query(window, where, use_rollup=use_rollup, dimensions=dimensions)
    started = time.perf_counter()
    table = run_sql(query.sql)
    seconds = time.perf_counter() - started
    rows = table.to_pylist()
    overall: dict[str, Any] = next((r for r in rows if r["dim"] == "all"), {})
    return TriageResult(window, where.sql if where else None, engine, query, overall,
                        findings_of(rows, query, top), seconds, list(notes or []))


__all__ = ["Finding", "TriageResult", "Window", "make_window", "parse_duration", "parse_time", "parse_where",
           "run_triage"]
