"""alblake: AWS Application Load Balancer access logs -> partitioned Parquet lake.

The Python API for notebooks and scripts::

    import alblake

    con = alblake.connect("lake/")                       # or "s3://bucket/prefix"; None: ALBLAKE_LAKE / alblake.toml
    con.sql("SELECT elb_status_code, count(*) FROM alb_logs GROUP BY 1").df()          # pandas
    con.sql("SELECT * FROM alb_logs WHERE elb_status_code >= 500").to_arrow_table()    # pyarrow
    alblake.connect("lake/", elb="web-prod", since="2h")                               # one LB, the last 2 hours

``connect`` returns a DuckDB connection whose views (``alb_logs``, and every table registered with
``alblake.analysis.register_view``) read exactly the lake's visible files, never a glob of the lake's folders.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__version__ = "0.1.0"
__all__ = ["__version__", "connect"]


def connect(
    lake: str | Path | None = None,
    *,
    elb: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with ``alb_logs`` (and the other registered views) over the lake's visible files.

    ``lake``: a directory or ``s3://bucket/prefix``; None takes the command line's default (``ALBLAKE_LAKE``, then
    ``lake`` in alblake.toml, then ``stack``'s lake). ``elb``, ``since`` and ``until`` read only that load
    balancer's partitions and window, as the command line's ``--elb/--since/--until`` (``since``/``until``: a
    datetime, or text such as ``"2h"``, ``"2026-11-24"``, ``"2026-11-24T08:00Z"``; a bare day for ``until``
    means its end). Needs the analysis extras (duckdb).
    """
    from alblake.analysis import connect as connect_views
    from alblake.locations import open_existing_lake_at
    from alblake.scope import Moment, Scope, parse_moment, window_end
    from alblake.settings import resolve

    def moment(value: str | datetime | None) -> Moment | None:
        if value is None:
            return None
        return Moment(value, False) if isinstance(value, datetime) else parse_moment(value)

    location = str(lake) if lake is not None else resolve({"lake": None}).lake()
    first, last = moment(since), moment(until)
    scope = Scope(elb=elb, since=None if first is None else first.at, until=window_end(last))
    return connect_views(open_existing_lake_at(location), scope)
