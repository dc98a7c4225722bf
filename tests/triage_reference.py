"""The triage query as it was before it was restructured for speed (one statement per source that crossed every
row with every dimension, and scored every value of a dimension), kept as the reference the current query must
agree with: same findings, same overall counts (tests/test_triage_reference.py). Test code only."""

from __future__ import annotations

from string import Template

from alblake.rollup.routes import route_path_sql, route_template_sql, segment_count_sql
from alblake.rollup.sketch import bucket_index_sql, bucket_value_sql
from alblake.triage.dimensions import user_agent_family_sql
from alblake.triage.query import ERRORS, PER_DIMENSION, TriageQuery, Window
from alblake.triage.where import Where

__all__ = ["build_query"]


class Dimension:
    def __init__(self, name: str, curated: str, rollup: str | None) -> None:
        self.name, self.curated, self.rollup = name, curated, rollup


def _split(text: str, sep: str, index: int) -> str:
    return f"coalesce(split_part({text}, '{sep}', {index}), '')"


def client_network_sql(ip: str = "client_ip") -> str:
    v4 = " || '.' || ".join(_split(ip, ".", i) for i in (1, 2, 3)) + " || '.0/24'"
    head = f"CASE WHEN strpos({ip}, '::') > 0 THEN split_part({ip}, '::', 1) ELSE {ip} END"
    count = f"CASE WHEN ({head}) = '' THEN 0 ELSE length({head}) - length(replace({head}, ':', '')) + 1 END"
    groups = [f"CASE WHEN {count} >= {i} THEN {_split(head, ':', i)} ELSE '0' END" for i in (1, 2, 3)]
    v6 = " || ':' || ".join(groups) + " || '::/48'"
    return f"CASE WHEN {ip} IS NULL THEN '-' WHEN strpos({ip}, ':') = 0 THEN {v4} ELSE {v6} END"


_TARGET = "CASE WHEN target_ip IS NULL THEN '-' ELSE target_ip || ':' || CAST(target_port AS VARCHAR) END"
_TARGET_GROUP = "coalesce(nullif(split_part(target_group_arn, '/', 2), ''), '-')"
DIMENSIONS = (
    Dimension("target", _TARGET, _TARGET),
    Dimension("route", "route", "coalesce(route, '-')"),
    Dimension("verb", "coalesce(request_verb, '-')", "coalesce(request_verb, '-')"),
    Dimension("target_group", _TARGET_GROUP, _TARGET_GROUP),
    Dimension("client_network", client_network_sql(), None),
    Dimension("user_agent", user_agent_family_sql(), None),
    Dimension("error_reason", "coalesce(lambda_error_reason, '-')", None),
    Dimension("classification", "coalesce(classification, '-')", None),
    Dimension("tls_protocol", "coalesce(ssl_protocol, '-')", None),
    Dimension("domain", "coalesce(domain_name, '-')", None),
)
ALL = Dimension("all", "'(all)'", "'(all)'")

_TEMPLATES = {
    "rollup_cells": """rollup_rows AS (
  SELECT
    CASE WHEN minute >= ${window_start} THEN 'window' ELSE 'baseline' END AS period,
    coalesce(${hit}, FALSE) AS hit,
    requests, latency_requests, latency_buckets, latency_counts,
    ${columns}
  FROM alb_rollup_1m
  WHERE minute >= ${baseline_start} AND minute < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
),
rollup_counts AS (
  SELECT d.dim AS dim, CASE d.dim ${values} END AS value, r.period AS period, CAST(NULL AS INTEGER) AS bucket,
         CAST(sum(r.requests - r.latency_requests) AS BIGINT) AS n,
         CAST(sum(CASE WHEN r.hit THEN r.requests - r.latency_requests ELSE 0 END) AS BIGINT) AS n_hit
  FROM rollup_rows r CROSS JOIN (VALUES ${dims}) AS d(dim)
  GROUP BY 1, 2, 3
),
rollup_latency AS (
  SELECT d.dim AS dim, CASE d.dim ${values} END AS value, r.period AS period, CAST(u.bucket AS INTEGER) AS bucket,
         CAST(sum(r.latency_counts[u.i]) AS BIGINT) AS n,
         CAST(sum(CASE WHEN r.hit THEN r.latency_counts[u.i] ELSE 0 END) AS BIGINT) AS n_hit
  FROM rollup_rows r
    CROSS JOIN UNNEST(r.latency_buckets) WITH ORDINALITY AS u(bucket, i)
    CROSS JOIN (VALUES ${dims}) AS d(dim)
  GROUP BY 1, 2, 3, 4
)""",
    "curated_cells": """curated_rows AS (
  SELECT
    CASE WHEN "time" >= ${window_start} THEN 'window' ELSE 'baseline' END AS period,
    coalesce(${hit}, FALSE) AS hit,
    ${bucket} AS bucket,
    request_url,
    ${columns}
  FROM alb_logs
  WHERE "time" >= ${baseline_start} AND "time" < ${window_end} AND day >= '${first_day}' AND day <= '${last_day}'
),${routes}
curated_cells AS (
  SELECT d.dim AS dim, CASE d.dim ${values} END AS value, c.period AS period, c.bucket AS bucket,
         CAST(count(*) AS BIGINT) AS n, CAST(sum(CASE WHEN c.hit THEN 1 ELSE 0 END) AS BIGINT) AS n_hit
  FROM curated_rows c${route_join} CROSS JOIN (VALUES ${dims}) AS d(dim)
  GROUP BY 1, 2, 3, 4
)""",
    "rank": """totals AS (
  SELECT dim, value,
         sum(CASE WHEN period = 'window' THEN n ELSE 0 END) AS w_requests,
         sum(CASE WHEN period = 'window' THEN n_hit ELSE 0 END) AS w_hits,
         sum(CASE WHEN period = 'baseline' THEN n ELSE 0 END) AS b_requests,
         sum(CASE WHEN period = 'baseline' THEN n_hit ELSE 0 END) AS b_hits
  FROM cells GROUP BY dim, value
),
dim_totals AS (
  SELECT dim, sum(w_requests) AS all_w_requests, sum(w_hits) AS all_w_hits,
         sum(b_requests) AS all_b_requests, sum(b_hits) AS all_b_hits
  FROM totals GROUP BY dim
),
hist AS (
  SELECT dim, value, bucket,
         sum(CASE WHEN period = 'window' THEN ${scope} ELSE 0 END) AS w_n,
         sum(CASE WHEN period = 'baseline' THEN n ELSE 0 END) AS b_n
  FROM cells WHERE bucket IS NOT NULL GROUP BY dim, value, bucket
),
cumulative AS (
  SELECT dim, value, bucket, w_n, b_n,
         sum(w_n) OVER (PARTITION BY dim, value ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
           AS w_upto,
         sum(b_n) OVER (PARTITION BY dim, value ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
           AS b_upto,
         sum(w_n) OVER (PARTITION BY dim, value) AS w_total,
         sum(b_n) OVER (PARTITION BY dim, value) AS b_total
  FROM hist
),
percentiles AS (
  SELECT dim, value, max(w_total) AS w_latency, max(b_total) AS b_latency,
         min(CASE WHEN w_total > 0 AND 1000 * w_upto >= 500 * w_total THEN bucket END) AS w_p50_bucket,
         min(CASE WHEN w_total > 0 AND 1000 * w_upto >= 950 * w_total THEN bucket END) AS w_p95_bucket,
         min(CASE WHEN b_total > 0 AND 1000 * b_upto >= 500 * b_total THEN bucket END) AS b_p50_bucket,
         min(CASE WHEN b_total > 0 AND 1000 * b_upto >= 950 * b_total THEN bucket END) AS b_p95_bucket
  FROM cumulative GROUP BY dim, value
),
slow AS (
  SELECT h.dim AS dim, h.value AS value,
         sum(CASE WHEN h.bucket > p.b_p95_bucket THEN h.w_n ELSE 0 END) AS w_slow,
         sum(CASE WHEN h.bucket > p.b_p95_bucket THEN h.b_n ELSE 0 END) AS b_slow
  FROM hist h JOIN percentiles p ON h.dim = p.dim AND h.value = p.value
  GROUP BY h.dim, h.value
),
scored AS (
  SELECT t.dim AS dim, t.value AS value,
         CAST(t.w_requests AS BIGINT) AS w_requests, CAST(t.w_hits AS BIGINT) AS w_hits,
         CAST(t.b_requests AS BIGINT) AS b_requests, CAST(t.b_hits AS BIGINT) AS b_hits,
         CAST(d.all_w_requests AS BIGINT) AS all_w_requests, CAST(d.all_w_hits AS BIGINT) AS all_w_hits,
         CAST(d.all_b_requests AS BIGINT) AS all_b_requests, CAST(d.all_b_hits AS BIGINT) AS all_b_hits,
         CAST(coalesce(p.w_latency, 0) AS BIGINT) AS w_latency, CAST(coalesce(p.b_latency, 0) AS BIGINT) AS b_latency,
         ${w_p50} AS w_p50, ${w_p95} AS w_p95, ${b_p50} AS b_p50, ${b_p95} AS b_p95,
         CAST(coalesce(s.w_slow, 0) AS BIGINT) AS w_slow, CAST(coalesce(s.b_slow, 0) AS BIGINT) AS b_slow,
         t.w_hits - t.w_requests * coalesce(CASE WHEN t.b_requests > 0 THEN CAST(t.b_hits AS DOUBLE) / t.b_requests
           END, CAST(d.all_b_hits AS DOUBLE) / nullif(d.all_b_requests, 0), 0) AS hit_excess,
         CASE WHEN p.b_latency > 0 AND p.w_latency > 0
              THEN s.w_slow - p.w_latency * CAST(s.b_slow AS DOUBLE) / p.b_latency END AS slow_excess
  FROM totals t
    JOIN dim_totals d ON t.dim = d.dim
    LEFT JOIN percentiles p ON t.dim = p.dim AND t.value = p.value
    LEFT JOIN slow s ON t.dim = s.dim AND t.value = s.value
),
shared AS (
  SELECT scored.*,
         hit_excess - coalesce(sum(hit_excess) OVER (PARTITION BY dim) * CAST(w_requests AS DOUBLE)
           / nullif(all_w_requests, 0), 0) AS hit_score,
         slow_excess - coalesce(sum(slow_excess) OVER (PARTITION BY dim) * CAST(w_latency AS DOUBLE)
           / nullif(sum(w_latency) OVER (PARTITION BY dim), 0), 0) AS slow_score
  FROM scored
),
ranked AS (
  SELECT shared.*,
         row_number() OVER (PARTITION BY dim ORDER BY hit_score DESC, value ASC) AS hit_rank,
         row_number() OVER (PARTITION BY dim ORDER BY slow_score DESC NULLS LAST, value ASC) AS slow_rank
  FROM shared
)
SELECT dim, value, w_requests, w_hits, b_requests, b_hits, all_w_requests, all_w_hits, all_b_requests, all_b_hits,
       w_latency, b_latency, w_p50, w_p95, b_p50, b_p95, w_slow, b_slow, hit_excess, slow_excess, hit_score,
       slow_score
FROM ranked
WHERE dim = 'all' OR hit_rank <= ${per_dimension} OR slow_rank <= ${per_dimension}
ORDER BY dim ASC, value ASC""",
}


def _fill(name: str, **values: str) -> str:
    return Template(_TEMPLATES[name]).substitute(values)


def _timestamp(when: object) -> str:
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
        parts.append(_fill("rollup_cells", dims=_dims(in_rollup), values=_values(in_rollup, "r."),
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
        parts.append(_fill(
            "curated_cells", dims=_dims(in_curated), values=values, columns=_columns(in_curated, "curated"),
            bucket=bucket_index_sql("target_processing_time"), routes=routes,
            route_join=" LEFT JOIN route_map m ON c.request_url = m.request_url" if with_route else "", **times,
        ))
        cells.append("SELECT * FROM curated_cells")
    selection = where is not None
    rank = _fill(
        "rank", scope="n_hit" if selection else "n", per_dimension=str(PER_DIMENSION),
        w_p50=bucket_value_sql("p.w_p50_bucket"), w_p95=bucket_value_sql("p.w_p95_bucket"),
        b_p50=bucket_value_sql("p.b_p50_bucket"), b_p95=bucket_value_sql("p.b_p95_bucket"),
    )
    cells_cte = "cells AS (\n  " + "\n  UNION ALL ".join(cells) + "\n)"
    rank_ctes, _, final = rank.partition("\nSELECT dim, value,")
    sql = "WITH " + ",\n".join([*parts, cells_cte, rank_ctes.strip()]) + "\nSELECT dim, value," + final
    return TriageQuery(sql, tuple(d.name for d in in_rollup), tuple(d.name for d in in_curated), selection)
