"""The triage query: one SQL statement, the same text for Athena and DuckDB, from the files in ``sql/triage/``.

It reads the rollup for the dimensions the rollup holds (target, route, verb, target group, and the totals) and
the curated table for the others (client network, user-agent family, error_reason, classification, TLS protocol,
domain); everything from the curated table when the ``--where`` predicate reads columns the rollup lacks, or when
the rollup is not there for the whole range (``use_rollup=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from string import Template

from alblake.analysis import sql_dir
from alblake.rollup.routes import route_path_sql, route_template_sql, segment_count_sql
from alblake.rollup.sketch import bucket_index_sql, bucket_value_sql
from alblake.triage.dimensions import ALL, DIMENSIONS, Dimension
from alblake.triage.where import Where

ERRORS = "elb_status_code >= 500"  # what "errors" means when there is no --where: responses 500-599 of the LB
PER_DIMENSION = 10  # values kept per dimension and signal


@dataclass(frozen=True)
class Window:
    """The window [start, end) and its baseline [baseline_start, start), whole minutes (the rollup's grain)."""

    start: datetime
    end: datetime
    baseline_start: datetime

    @property
    def first_day(self) -> str:
        return f"{self.baseline_start:%Y-%m-%d}"

    @property
    def last_day(self) -> str:
        return f"{self.end:%Y-%m-%d}"


@dataclass(frozen=True)
class TriageQuery:
    sql: str
    from_rollup: tuple[str, ...]  # dimension names read from the rollup
    from_curated: tuple[str, ...]
    selection: bool  # a --where selection (share of the selection) rather than errors (error rate)


def _body(name: str, **values: str) -> str:
    """A template's SQL (its comment lines dropped first), placeholders filled."""
    text = (sql_dir() / "triage" / f"{name}.sql").read_text(encoding="utf-8")
    return Template("\n".join(line for line in text.splitlines() if not line.startswith("--"))).substitute(values)


def _timestamp(when: datetime) -> str:
    return f"TIMESTAMP '{when:%Y-%m-%d %H:%M:%S}'"


def _dims(dimensions: list[Dimension]) -> str:
    return ", ".join(f"('{d.name}')" for d in dimensions)


def _values(dimensions: list[Dimension], prefix: str) -> str:
    return " ".join(f"WHEN '{d.name}' THEN {prefix}d_{d.name}" for d in dimensions)


def _columns(dimensions: list[Dimension], source: str) -> str:
    expressions = [(d.rollup if source == "rollup" else d.curated) for d in dimensions]
    return ",\n    ".join(f"{e} AS d_{d.name}" for d, e in zip(dimensions, expressions, strict=True)
                          if not (source == "curated" and d.name == "route"))


_ROUTES = """
route_urls AS (SELECT DISTINCT request_url FROM curated_rows WHERE request_url IS NOT NULL),
route_paths AS (
  SELECT request_url, route_path, {count} AS route_segments
  FROM (SELECT request_url, {path} AS route_path FROM route_urls) AS urls
),
route_map AS (SELECT request_url, {template} AS route FROM route_paths),"""


def build_query(window: Window, where: Where | None, *, use_rollup: bool = True,
                dimensions: tuple[Dimension, ...] = DIMENSIONS) -> TriageQuery:
    """The triage SQL for the window and the predicate (None: errors, i.e. ``elb_status_code >= 500``)."""
    hit = f"({where.sql})" if where is not None else f"({ERRORS})"
    rollup_ok = use_rollup and (where is None or where.rollup_ready)
    in_rollup = [ALL, *(d for d in dimensions if d.rollup is not None)] if rollup_ok else []
    in_curated = [d for d in dimensions if d not in in_rollup] + ([] if rollup_ok else [ALL])
    times = {
        "window_start": _timestamp(window.start),
        "window_end": _timestamp(window.end),
        "baseline_start": _timestamp(window.baseline_start),
        "first_day": window.first_day,
        "last_day": window.last_day,
        "hit": hit,
    }
    parts: list[str] = []
    cells: list[str] = []
    if in_rollup:
        parts.append(_body("rollup_cells", dims=_dims(in_rollup), values=_values(in_rollup, "r."),
                           columns=_columns(in_rollup, "rollup"), **times))
        cells += ["SELECT * FROM rollup_counts", "SELECT * FROM rollup_latency"]
    if in_curated:
        with_route = any(d.name == "route" for d in in_curated)
        routes = _ROUTES.format(
            count=segment_count_sql("route_path"),
            path=route_path_sql("request_url"),
            template=route_template_sql("request_url", path="route_path", count="route_segments"),
        ) if with_route else ""
        values = " ".join(
            f"WHEN '{d.name}' THEN " + ("coalesce(m.route, '-')" if d.name == "route" else f"c.d_{d.name}")
            for d in in_curated
        )
        parts.append(_body(
            "curated_cells", dims=_dims(in_curated), values=values, columns=_columns(in_curated, "curated"),
            bucket=bucket_index_sql("target_processing_time"), routes=routes,
            route_join=" LEFT JOIN route_map m ON c.request_url = m.request_url" if with_route else "", **times,
        ))
        cells.append("SELECT * FROM curated_cells")
    selection = where is not None
    rank = _body(
        "rank", scope="n_hit" if selection else "n", per_dimension=str(PER_DIMENSION),
        w_p50=bucket_value_sql("p.w_p50_bucket"), w_p95=bucket_value_sql("p.w_p95_bucket"),
        b_p50=bucket_value_sql("p.b_p50_bucket"), b_p95=bucket_value_sql("p.b_p95_bucket"),
    )
    cells_cte = "cells AS (\n  " + "\n  UNION ALL ".join(cells) + "\n)"
    rank_ctes, _, final = rank.partition("\nSELECT dim, value,")
    sql = "WITH " + ",\n".join([*parts, cells_cte, rank_ctes.strip()]) + "\nSELECT dim, value," + final
    return TriageQuery(sql, tuple(d.name for d in in_rollup), tuple(d.name for d in in_curated), selection)
