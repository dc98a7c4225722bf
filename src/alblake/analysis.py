"""Named analysis queries over the lake, run locally with DuckDB.

The queries live in ``sql/queries/<name>.sql`` and are written once for both engines: Athena (Trino) over the
Glue table and DuckDB over the local lake. Each file starts with a header of ``-- key: value`` comment lines::

    -- title: Requests by ELB status code
    -- description: ... (continuation lines are indented comment lines)
    -- chart: bar            (bar | grouped_bar | line | table | kpi)
    -- x: elb_status_code    (charts only: the label / time column)
    -- y: requests           (charts only: one or more comma-separated value columns)

Portability shim: Trino's ``approx_percentile(x, p)`` does not exist in DuckDB, so :func:`connect` defines a
DuckDB macro of that name over ``quantile_cont(x, p)`` (exact, linear interpolation). Athena's result is an
approximation (t-digest), so percentiles computed locally can differ slightly from Athena's. DuckDB returns
HUGEINT for ``sum()`` of integers; :func:`run_query` casts those (Arrow ``decimal128(38, 0)``) to ``int64`` so
results have the same types as Athena's ``bigint``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import pyarrow as pa

from alblake.lake import open_local_lake
from alblake.schema import ARROW_SCHEMA, PARTITION_KEYS, TABLE_NAME

CHART_KINDS = frozenset({"bar", "grouped_bar", "line", "table", "kpi"})

_HEADER_RE = re.compile(r"^--\s*([a-z_]+):\s*(.*)$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class UnknownQueryError(KeyError):
    """No ``sql/queries/<name>.sql`` for the requested name."""


class QueryFileError(ValueError):
    """A query file has a missing or malformed header."""


@dataclass(frozen=True)
class Query:
    name: str
    title: str
    description: str
    chart: str
    sql: str
    x: str | None = None
    y: tuple[str, ...] = ()


def sql_dir() -> Path:
    """The ``sql/`` directory: ``alblake/sql`` (a symlink in the repo, package data when installed)."""
    here = Path(__file__).resolve().parent
    candidates = (Path(__file__).parent / "sql", here / "sql", here.parent.parent / "sql")
    for candidate in candidates:
        if (candidate / "queries").is_dir():
            return candidate
    raise FileNotFoundError(f"sql/queries not found (looked in {', '.join(str(c) for c in candidates)})")


def parse_query(name: str, text: str) -> Query:
    """Parse a query file: the ``-- key: value`` header, then the SQL (comments kept, final ';' dropped)."""
    fields: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        match = _HEADER_RE.match(stripped)
        if match and not line.startswith("--  "):
            key = match.group(1)
            fields[key] = match.group(2).strip()
        elif key is not None:  # indented continuation line
            fields[key] = f"{fields[key]} {stripped[2:].strip()}".strip()
    missing = [k for k in ("title", "description", "chart") if not fields.get(k)]
    if missing:
        raise QueryFileError(f"{name}: header lacks {', '.join(missing)}")
    chart = fields["chart"]
    if chart not in CHART_KINDS:
        raise QueryFileError(f"{name}: unknown chart kind {chart!r} (expected one of {sorted(CHART_KINDS)})")
    y = tuple(c.strip() for c in fields.get("y", "").split(",") if c.strip())
    x = fields.get("x") or None
    if chart in {"bar", "grouped_bar", "line"} and (x is None or not y):
        raise QueryFileError(f"{name}: chart {chart!r} needs '-- x:' and '-- y:' header lines")
    sql = text.strip().rstrip(";").strip()
    return Query(name=name, title=fields["title"], description=fields["description"], chart=chart, sql=sql,
                 x=x, y=y)


@cache
def _load_all(directory: Path) -> tuple[Query, ...]:
    queries = []
    for path in sorted((directory / "queries").glob("*.sql")):
        if not _NAME_RE.match(path.stem):
            raise QueryFileError(f"{path.name}: query names are lower_snake_case")
        queries.append(parse_query(path.stem, path.read_text(encoding="utf-8")))
    return tuple(queries)


def list_queries() -> list[Query]:
    """All named queries, sorted by name."""
    return list(_load_all(sql_dir()))


def get_query(name: str) -> Query:
    for query in _load_all(sql_dir()):
        if query.name == name:
            return query
    raise UnknownQueryError(name)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _empty_table() -> pa.Table:
    schema = ARROW_SCHEMA
    for key in PARTITION_KEYS:
        schema = schema.append(pa.field(key, pa.string()))
    return schema.empty_table()


def connect(lake_dir: Path | str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with view ``alb_logs`` over the lake's visible Parquet files.

    Partition columns (``elb_name``, ``day``, ``hour``) come from the Hive-style paths and are typed VARCHAR,
    as in Glue; files written by older schema versions are read by column name (missing columns are NULL).
    A lake without Parquet files gives an empty view with the full schema. Session time zone is UTC.
    """
    files = open_local_lake(Path(lake_dir)).visible_files()
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # Portability shim, see the module docstring.
    con.execute("CREATE OR REPLACE TEMP MACRO approx_percentile(x, p) AS quantile_cont(x, p)")
    if files:
        hive_types = ", ".join(f"{_sql_string(k)}: VARCHAR" for k in PARTITION_KEYS)
        file_list = "[" + ", ".join(_sql_string(f) for f in files) + "]"
        con.execute(
            f"CREATE TEMP VIEW {TABLE_NAME} AS SELECT * FROM read_parquet({file_list}, "
            f"hive_partitioning = true, hive_types = {{{hive_types}}}, union_by_name = true)"
        )
    else:
        con.register("alb_logs_empty", _empty_table())
        con.execute(f"CREATE TEMP VIEW {TABLE_NAME} AS SELECT * FROM alb_logs_empty")
    return con


def _normalise(table: pa.Table) -> pa.Table:
    """DuckDB's HUGEINT sums arrive as decimal128(38, 0): make them int64 like Athena's bigint."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            table = table.set_column(i, pa.field(field.name, pa.int64()), table.column(i).cast(pa.int64()))
    return table


def execute(con: duckdb.DuckDBPyConnection, query: Query) -> pa.Table:
    relation = con.sql(query.sql)
    # DuckDB >= 1.4 has to_arrow_table(); older releases return a Table from arrow().
    to_table = getattr(relation, "to_arrow_table", None) or relation.arrow
    table = to_table()
    assert isinstance(table, pa.Table)
    return _normalise(table)


def run_query(name: str, lake_dir: Path | str, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """Run the named query against the lake (or an existing :func:`connect` connection) as an Arrow table."""
    query = get_query(name)
    if con is not None:
        return execute(con, query)
    own = connect(lake_dir)
    try:
        return execute(own, query)
    finally:
        own.close()


def ddl(name: str) -> str:
    """Text of ``sql/ddl/<name>.sql`` (``alb_logs`` or ``alb_logs_raw``)."""
    return (sql_dir() / "ddl" / f"{name}.sql").read_text(encoding="utf-8")
