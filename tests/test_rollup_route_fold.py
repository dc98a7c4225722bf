"""The route cap of the rollup's queries: per load balancer and over the queried rows (a window of any length, any
number of files), the ROUTE_CAP most requested routes keep their name and the others are summed as (other), in
the named queries of sql/rollup/ and in the long-window QuickSight SQL; every other sum stays exact.

The rollup files fold per file (at most ROUTE_CAP routes per load balancer in each, docs/ROLLUP.md); here two
files of 150 routes each give one load balancer 300 routes over the window, which the SQL folds to 200 + (other).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from string import ascii_lowercase

import duckdb
import pyarrow as pa
import pytest

from alblake.analysis import get_query, sql_dir
from alblake.rollup.routes import DUCKDB_MACROS, OTHER_ROUTE
from alblake.rollup.table import ROUTE_CAP, derive
from alblake.schema import ARROW_SCHEMA
from tests.analysis_fixtures import make_rows

BUSY = "app/busy/1f2e3d4c5b6a7980"
QUIET = "app/quiet/0a1b2c3d4e5f6a7b"
NAMES = [a + b for a in ascii_lowercase for b in ascii_lowercase][:300]  # route /aa ... : no identifiers


def requests_of(index: int) -> int:
    return 1 + (index * 7919) % 11  # varied counts, ties included


def file_rows(elb: str, routes: list[int], start: datetime) -> pa.Table:
    base = make_rows(1)[0]
    rows = []
    for index in routes:
        for n in range(requests_of(index)):
            rows.append({**base, "elb": elb, "time": start + timedelta(seconds=n),
                         "request_url": f"http://example.com:80/{NAMES[index]}?page={n}", "elb_status_code": 502
                         if index % 5 == 0 else 200})
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)


@pytest.fixture(scope="module")
def rollup() -> pa.Table:
    day = datetime(2026, 11, 24, 8, tzinfo=UTC)
    files = [
        derive(file_rows(BUSY, list(range(0, 150)), day)),
        derive(file_rows(BUSY, list(range(150, 300)), day + timedelta(hours=1))),
        derive(file_rows(QUIET, list(range(0, 20)), day)),
    ]
    table = pa.concat_tables(files)
    elb_names = [elb.split("/")[1] for elb in table["elb"].to_pylist()]
    table = table.append_column("elb_name", pa.array(elb_names))
    assert len(set(table.filter(pa.compute.equal(table["elb"], BUSY))["route"].to_pylist())) == 300
    return table


def expected(elb: str) -> tuple[set[str], int]:
    """The routes that keep their name (the ROUTE_CAP most requested, ties by name) and the requests of (other)."""
    count = range(300) if elb == BUSY else range(20)
    totals = Counter({f"/{NAMES[i]}": requests_of(i) for i in count})
    ranked = sorted(totals, key=lambda route: (-totals[route], route))
    kept = set(ranked[:ROUTE_CAP])
    return kept, sum(totals[r] for r in ranked[ROUTE_CAP:])


def connection(rollup: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for macro in DUCKDB_MACROS:
        con.execute(macro)
    con.register("alb_rollup_1m", rollup)
    return con


def check_folded(by_route: dict[tuple[str, str], int], rollup: pa.Table) -> None:
    for elb in (BUSY, QUIET):
        kept, other = expected(elb)
        routes = {route: n for (e, route), n in by_route.items() if e == elb}
        assert set(routes) - {OTHER_ROUTE} == kept
        assert routes.get(OTHER_ROUTE, 0) == other
        assert sum(routes.values()) == sum(requests_of(i) for i in (range(300) if elb == BUSY else range(20)))
    assert len([1 for (e, _) in by_route if e == BUSY]) == ROUTE_CAP + 1


def test_errors_by_route_folds_per_load_balancer_over_the_window(rollup: pa.Table) -> None:
    rows = connection(rollup).sql(get_query("errors_by_route").sql).fetchall()
    check_folded({(elb, route): requests for route, elb, requests, *_ in rows}, rollup)
    errors = sum(r[3] for r in rows if r[1] == BUSY)
    assert errors == sum(requests_of(i) for i in range(300) if i % 5 == 0)  # 5xx stay exact through the fold


def test_latency_by_route_folds_per_load_balancer(rollup: pa.Table) -> None:
    rows = connection(rollup).sql(get_query("latency_by_route").sql).fetchall()
    routes = {route: requests for route, requests, *_ in rows}
    kept_busy, other_busy = expected(BUSY)
    kept_quiet, _ = expected(QUIET)
    assert set(routes) - {OTHER_ROUTE} == kept_busy | kept_quiet
    assert routes[OTHER_ROUTE] == other_busy
    assert sum(routes.values()) == sum(rollup["latency_requests"].to_pylist())


def test_long_window_sql_folds_per_load_balancer(rollup: pa.Table) -> None:
    text = "\n".join(line for line in (sql_dir() / "quicksight" / "long_window.sql").read_text().splitlines()
                     if not line.startswith("--"))
    text = text.replace('"AwsDataCatalog"."${GlueDatabase}"."alb_rollup_1m"', "alb_rollup_1m")
    text = re.sub(r"WHERE .*\n", "", text)
    rows = connection(rollup).sql(text).fetchall()
    by_route: Counter[tuple[str, str]] = Counter()
    for _, elb_name, _, route, _, requests, *_ in rows:
        by_route[(BUSY if elb_name == "busy" else QUIET, route)] += requests
    check_folded(dict(by_route), rollup)
    assert len({r[0] for r in rows}) == 2  # two hours


def test_every_query_uses_the_cap_of_the_rollup() -> None:
    texts = [get_query("errors_by_route").sql, get_query("latency_by_route").sql,
             (sql_dir() / "quicksight" / "long_window.sql").read_text()]
    for text in texts:
        assert re.findall(r"route_rank\" <= (\d+)|route_rank <= (\d+)", text)
        caps = {int(a or b) for a, b in re.findall(r"route_rank\" <= (\d+)|route_rank <= (\d+)", text)}
        assert caps == {ROUTE_CAP}
