"""The named queries of sql/rollup/ (``alblake query NAME``): their answers over a lake, computed independently
from the curated rows in Python, and their SQL one text for Athena and DuckDB."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import expressions as exp

from alblake import analysis
from alblake.cli import main
from alblake.lake.generational import open_local_lake
from alblake.rollup.routes import OTHER_ROUTE, route_template
from alblake.rollup.sketch import ALPHA, exact_quantile
from alblake.rollup.table import ROUTE_CAP
from tests.triage_fixtures import incident_lake

__all__ = ["incident_lake"]  # fixture

NAMES = [q.name for q in analysis.rollup_queries()]


def _curated(lake: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in open_local_lake(lake).visible_files():
        rows += pq.read_table(path, columns=["request_url", "elb", "elb_status_code", "target_processing_time"]
                              ).to_pylist()
    return rows


def test_the_rollup_queries_are_listed_and_portable() -> None:
    assert {"latency_by_route", "errors_by_route", "routes"} <= set(NAMES)
    assert not set(NAMES) & {q.name for q in analysis.list_queries()}
    for name in NAMES:
        query = analysis.get_query(name)
        body = re.sub(r"--[^\n]*", "", query.sql)
        for dialect in ("trino", "duckdb"):
            sqlglot.parse_one(body, read=dialect)
        trino = sqlglot.parse_one(body, read="trino")
        assert [f.name for f in trino.find_all(exp.Anonymous)] == []
        assert {t.name for t in trino.find_all(exp.Table)} <= {"alb_rollup_1m", "alb_logs", "cells", "cumulative",
                                                                "buckets", "urls", "paths", "routes", "ranks",
                                                                "ranked", "folded"}
        assert '"' not in body


def _kept_routes(rows: list[dict[str, object]]) -> set[tuple[str, str]]:
    """(route, elb) pairs the queries name: per load balancer, the ROUTE_CAP most requested routes of the rows
    (ties by name); the others are summed as (other) (docs/ROLLUP.md, caps)."""
    counts: Counter[tuple[str, str]] = Counter((str(route_template(str(r["request_url"]))), str(r["elb"]))
                                               for r in rows)
    kept: set[tuple[str, str]] = set()
    for elb in {e for _, e in counts}:
        ranked = sorted((key for key in counts if key[1] == elb), key=lambda key: (-counts[key], key[0]))
        kept.update(ranked[:ROUTE_CAP])
    return kept


def _folded_route(row: dict[str, object], kept: set[tuple[str, str]]) -> str:
    route = str(route_template(str(row["request_url"])))
    return route if (route, str(row["elb"])) in kept else OTHER_ROUTE


def test_latency_by_route_is_within_alpha_of_the_exact_percentiles(incident_lake: Path) -> None:
    table = analysis.run_query("latency_by_route", incident_lake)
    times: dict[str, list[float]] = defaultdict(list)
    rows = _curated(incident_lake)
    kept = _kept_routes(rows)
    for row in rows:
        seconds = row["target_processing_time"]
        if isinstance(seconds, float) and seconds >= 0:
            times[_folded_route(row, kept)].append(seconds)
    checked = 0
    for row in table.to_pylist():
        values = times[row["route"]]
        assert row["requests"] == len(values)
        for column, permille in (("p50", 500), ("p95", 950), ("p99", 990)):
            exact = exact_quantile(values, permille)
            assert exact is not None
            assert abs(row[column] - exact) <= ALPHA * exact + 1e-12, (row["route"], column)
        checked += 1
    assert checked >= 15
    p95 = table.column("p95").to_pylist()
    assert p95 == sorted(p95, reverse=True)


def test_errors_by_route_counts_the_curated_rows(incident_lake: Path) -> None:
    table = analysis.run_query("errors_by_route", incident_lake)
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    rows = _curated(incident_lake)
    kept = _kept_routes(rows)
    for row in rows:
        key = (_folded_route(row, kept), str(row["elb"]))
        expected[key][0] += 1
        expected[key][1] += 500 <= int(str(row["elb_status_code"])) <= 599
    got = {(r["route"], r["elb"]): [r["requests"], r["errors_5xx"]] for r in table.to_pylist()}
    assert got == dict(expected)
    assert len(got) == ROUTE_CAP + 1  # the day has over 200 routes: the cap over the whole window folds them


@pytest.mark.parametrize("name", ["latency_by_route", "errors_by_route", "routes"])
def test_alblake_query_runs_them(name: str, incident_lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", name, "--lake", str(incident_lake)]) == 0
    out = capsys.readouterr().out
    assert "/api/v1/users/{id}/orders" in out
    assert main(["query", name, "--sql"]) == 0
    assert capsys.readouterr().out.strip() == analysis.get_query(name).sql
