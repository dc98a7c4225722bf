"""The rollup as a DuckDB view: ``alb_rollup_1m`` over the lake's rollup files, next to ``alb_logs`` (the view
``alblake.analysis.connect`` makes), with the ``regexp_like`` macro the route SQL needs."""

from __future__ import annotations

import duckdb

from alblake.ports import Lake
from alblake.rollup.files import rollup_dataset, rollup_files
from alblake.rollup.routes import DUCKDB_MACROS
from alblake.rollup.table import NAME


def register_rollup_view(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """Add the view ``alb_rollup_1m`` (the rollup's visible files) and the ``regexp_like`` macro to ``con``."""
    for macro in DUCKDB_MACROS:
        con.execute(macro)
    con.register(f"{NAME}_files", rollup_dataset(rollup_files(lake)))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {NAME} AS SELECT * FROM {NAME}_files")
