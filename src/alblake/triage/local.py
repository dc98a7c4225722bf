"""Triage over a lake with DuckDB: the views ``alb_logs`` and ``alb_rollup_1m`` of ``alblake.analysis.connect`` over
the lake's visible files, and a check that the rollup covers the window (else the curated table answers all)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pyarrow as pa

from alblake.analysis import connect, execute
from alblake.lake.generational import owning_folder
from alblake.ports import Lake
from alblake.rollup.table import NAME
from alblake.scope import EVERYTHING, Scope
from alblake.triage import RunSql, Window


def rollup_gaps(lake: Lake, window: Window) -> list[str]:
    """Data files of the window's and baseline's hours without their rollup file (written before the rollup
    existed): the rollup does not hold those hours completely."""
    derived_gaps = getattr(lake, "derived_gaps", None)
    if derived_gaps is None:
        return []
    gaps = []
    for key in derived_gaps(NAME):
        folder = owning_folder(key)
        if folder is None:
            continue
        partition = folder[0]
        hour = datetime.fromisoformat(f"{partition.day}T{partition.hour}:00:00+00:00")
        if window.baseline_start - timedelta(hours=1) < hour < window.end:
            gaps.append(key)
    return gaps


@contextmanager
def local_sql(lake: Lake, scope: Scope = EVERYTHING) -> Iterator[RunSql]:
    """A function that runs triage SQL over the lake (its part ``scope``) with DuckDB (closed on exit)."""
    con = connect(lake, scope)

    def run(sql: str) -> pa.Table:
        return execute(con, sql)

    try:
        yield run
    finally:
        con.close()
