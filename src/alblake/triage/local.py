"""Triage over a lake with DuckDB: the views ``alb_logs`` and ``alb_rollup_1m`` of ``alblake.analysis.connect`` over
the lake's visible files, and a check that the rollup covers the window (else the curated table answers all)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from alblake.analysis import connect, execute, files_read
from alblake.ports import Lake
from alblake.rollup.files import rollup_url
from alblake.rollup.table import NAME
from alblake.schema import TABLE_NAME
from alblake.scope import EVERYTHING, Scope
from alblake.triage import RunSql, Window

_HOUR = re.compile(r"/day=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/")


def rollup_gaps(con: duckdb.DuckDBPyConnection, window: Window) -> list[str]:
    """The data files of the window's and baseline's hours that the connection's ``alb_logs`` reads and whose rollup
    file its ``alb_rollup_1m`` does not (written before the rollup existed, or a lake without it): the rollup does
    not hold those hours completely. From the files the views were made of (``files_read``): the same moment of
    the lake as the queries, and no second listing."""
    read = files_read(con)
    rolled = set(read.get(NAME, ()))
    gaps = []
    for url in read.get(TABLE_NAME, ()):
        if rollup_url(url) in rolled:
            continue
        hour = _hour_of(url)
        if hour is None or window.baseline_start - timedelta(hours=1) < hour < window.end:
            gaps.append(url)
    return gaps


def _hour_of(url: str) -> datetime | None:
    found = _HOUR.search(url)
    return None if found is None else datetime.fromisoformat(f"{found.group(1)}T{found.group(2)}:00:00+00:00")


def newest_time(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest request time ``alb_logs`` holds: read from the files of its newest partition-hour (a lake is
    partitioned by the hour of ``time``), and from all of them only when that hour has no row in the scope."""
    newest_hour = max((hour for url in files_read(con).get(TABLE_NAME, ()) if (hour := _hour_of(url)) is not None),
                      default=None)
    within = [f"day = '{newest_hour:%Y-%m-%d}' AND hour = '{newest_hour:%H}'"] if newest_hour is not None else []
    for where in [*within, "TRUE"]:
        newest = execute(con, f'SELECT max("time") AS newest FROM {TABLE_NAME} WHERE {where}').column("newest")[0]
        if newest.is_valid:
            value: datetime = newest.as_py()
            return value
    return None


def sql_runner(con: duckdb.DuckDBPyConnection) -> RunSql:
    """A function that runs triage SQL on ``con``."""

    def run(sql: str) -> pa.Table:
        return execute(con, sql)

    return run


@contextmanager
def local_connection(lake: Lake, scope: Scope = EVERYTHING) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the lake's views (its part ``scope``), closed on exit."""
    con = connect(lake, scope)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def local_sql(lake: Lake, scope: Scope = EVERYTHING) -> Iterator[RunSql]:
    """A function that runs triage SQL over the lake (its part ``scope``) with DuckDB (closed on exit)."""
    with local_connection(lake, scope) as con:
        yield sql_runner(con)
