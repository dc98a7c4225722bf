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
from alblake.triage.dimensions import ALL, DIMENSIONS, KEY, Dimension
from alblake.triage.predicate import Where

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

    @property
    def window_first_day(self) -> str:
        return f"{self.start:%Y-%m-%d}"


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


def _sets(dimensions: list[Dimension]) -> dict[str, str]:
    """The grouping-set placeholders of a cells template: one set per dimension (its key column ``k_<name>``
    with the period and bucket; 'all' groups by those alone), and which set a row is of (``grouping``)."""
    keyed = [d for d in dimensions if d is not ALL]
    sets = ", ".join(f"(k_{d.name}, in_window, bucket)" if d is not ALL else "(in_window, bucket)" for d in dimensions)
    dim = " ".join(f"WHEN grouping(k_{d.name}) = 0 THEN '{d.name}'" for d in keyed)
    key = " ".join(f"WHEN grouping(k_{d.name}) = 0 THEN k_{d.name}" for d in keyed)
    return {
        "sets": sets,
        "ordinals": ", ".join(str(i) for i in range(1, 3 + len(keyed))),
        "dim": f"CASE {dim} ELSE 'all' END" if keyed else "'all'",
        "key": f"CASE {key} ELSE '(all)' END" if keyed else "'(all)'",
    }


def _keys(dimensions: list[Dimension], source: str) -> str:
    return "".join(f",\n    {d.rollup if source == 'rollup' else d.curated} AS k_{d.name}"
                   for d in dimensions if d is not ALL)


_ROUTES = """
route_urls AS (SELECT DISTINCT dim_key AS request_url FROM keyed WHERE dim = 'route' AND dim_key IS NOT NULL),
route_paths AS (
  SELECT request_url, route_path, {count} AS route_segments
  FROM (SELECT request_url, {path} AS route_path FROM route_urls) AS urls
),
route_map AS (SELECT request_url, {template} AS route FROM route_paths),"""

_REGROUP = """  SELECT {dim} AS dim, {value} AS value, k.in_window AS in_window, k.bucket AS bucket,
         CAST(sum(k.n) AS BIGINT) AS n, CAST(sum(k.n_hit) AS BIGINT) AS n_hit
  FROM keyed k{join}
  WHERE k.dim {test}
  GROUP BY 1, 2, 3, 4"""


def _cells(in_curated: list[Dimension], sources: list[str]) -> list[str]:
    """The CTEs from the grouped keys to the cells (dimension, value, period, bucket): keys that are their values
    as they are; keys a value is derived from, mapped once per distinct key and summed again per value."""
    derived = [(d.name, d.of_key) for d in in_curated if d.of_key is not None]
    routed = any(d.name == "route" for d in in_curated)
    keyed = "keyed AS (\n  " + "\n  UNION ALL ".join(f"SELECT * FROM {s}" for s in sources) + "\n)"
    mapped = [name for name, _ in derived] + (["route"] if routed else [])
    parts = ["  SELECT dim, dim_key AS value, in_window, bucket, n, n_hit FROM keyed"
             + (f" WHERE dim NOT IN ({_names(mapped)})" if mapped else "")]
    if derived:
        value = "CASE k.dim " + " ".join(f"WHEN '{name}' THEN {of_key.replace(KEY, 'k.dim_key')}"
                                          for name, of_key in derived) + " END"
        names = _names([name for name, _ in derived])
        parts.append(_REGROUP.format(dim="k.dim", value=value, join="", test=f"IN ({names})"))
    ctes = [keyed]
    if routed:
        join = " LEFT JOIN route_map m ON k.dim_key = m.request_url"
        parts.append(_REGROUP.format(dim="'route'", value="coalesce(m.route, '-')", join=join, test="= 'route'"))
        ctes.append(_ROUTES.format(
            count=segment_count_sql("route_path"),
            path=route_path_sql("request_url"),
            template=route_template_sql("request_url", path="route_path", count="route_segments"),
        ).strip().rstrip(","))
    return [*ctes, "cells AS (\n" + "\n  UNION ALL\n".join(parts) + "\n)"]


_WINDOW_VALUES = """window_{name} AS (
  SELECT DISTINCT {value} AS value FROM alb_logs
  WHERE "time" >= {window_start} AND "time" < {window_end} AND day >= '{first_day}' AND day <= '{last_day}'
),
"""


def _folding(in_curated: list[Dimension], window: Window) -> dict[str, str]:
    """The placeholders that fold the values a dimension of many values has only in the baseline (curated_cells)."""
    many = [d for d in in_curated if d.many_values]
    values = "".join(_WINDOW_VALUES.format(
        name=d.name, value=d.curated, window_start=_timestamp(window.start), window_end=_timestamp(window.end),
        first_day=window.window_first_day, last_day=window.last_day) for d in many)
    folded = "".join(
        f", CASE WHEN k_{d.name} IN (SELECT value FROM window_{d.name}) THEN k_{d.name} END AS k_{d.name}"
        if d.many_values else f", k_{d.name}" for d in in_curated if d is not ALL)
    return {"window_values": values, "folded": folded}


def _names(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


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
    sources: list[str] = []
    if in_rollup:
        columns = list(dict.fromkeys(c for d in in_rollup for c in d.rollup_columns))
        parts.append(_body("rollup_cells", keys=_keys(in_rollup, "rollup"), columns="".join(f", {c}" for c in columns),
                           column_ordinals=", ".join(str(i) for i in range(1, 3 + len(columns))),
                           **_sets(in_rollup), **times))
        sources.append("rollup_sets")
    if in_curated:
        parts.append(_body("curated_cells", keys=_keys(in_curated, "curated"),
                           bucket=bucket_index_sql("target_processing_time"), **_folding(in_curated, window),
                           **_sets(in_curated), **times))
        sources.append("curated_sets")
    selection = where is not None
    rank = _body(
        "rank", scope="n_hit" if selection else "n", per_dimension=str(PER_DIMENSION),
        w_p50=bucket_value_sql("p.w_p50_bucket"), w_p95=bucket_value_sql("p.w_p95_bucket"),
        b_p50=bucket_value_sql("p.b_p50_bucket"), b_p95=bucket_value_sql("p.b_p95_bucket"),
    )
    rank_ctes, _, final = rank.partition("\nSELECT dim, value,")
    ctes = [*parts, *_cells(in_curated, sources), rank_ctes.strip()]
    sql = "WITH " + ",\n".join(ctes) + "\nSELECT dim, value," + final
    return TriageQuery(sql, tuple(d.name for d in in_rollup), tuple(d.name for d in in_curated), selection)
