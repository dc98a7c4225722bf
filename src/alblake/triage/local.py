"""Triage over a lake with DuckDB: the views ``alb_logs`` and ``alb_rollup_1m`` over the lake's visible files
(``alblake.rollup.views``), and a check that the rollup covers the window (else the curated table answers all)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pyarrow as pa

from alblake.analysis import connect
from alblake.lake.generational import owning_folder
from alblake.ports import Lake
from alblake.rollup.table import NAME
from alblake.rollup.views import register_rollup_view
from alblake.triage import RunSql, Window


def _normalise(table: pa.Table) -> pa.Table:
    """DuckDB's HUGEINT sums arrive as decimal128(38, 0): int64, as Athena's bigint."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            table = table.set_column(i, pa.field(field.name, pa.int64()), table.column(i).cast(pa.int64()))
    return table


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
def local_sql(lake: Lake) -> Iterator[RunSql]:
    """A function that runs triage SQL over the lake with DuckDB (closed on exit)."""
    con = connect(lake)
    register_rollup_view(con, lake)

    def run(sql: str) -> pa.Table:
        return _normalise(con.sql(sql).to_arrow_table())

    try:
        yield run
    finally:
        con.close()
