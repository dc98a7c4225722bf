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
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from alblake.errors import InputError, LakeStateError
from alblake.locations import open_lake_at
from alblake.ports import Lake
from alblake.rollup.views import register_rollup_view
from alblake.schema import ARROW_SCHEMA, PARTITION_KEYS, ROLLUP_TABLE_NAME, TABLE_NAME

CHART_KINDS = frozenset({"bar", "grouped_bar", "line", "table", "kpi"})

_HEADER_RE = re.compile(r"^--\s*([a-z_]+):\s*(.*)$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class UnknownQueryError(InputError, KeyError):
    """No ``sql/queries/<name>.sql`` for the requested name."""


class QueryFileError(InputError, ValueError):
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
def _load_all(directory: Path, folder: str = "queries") -> tuple[Query, ...]:
    queries = []
    for path in sorted((directory / folder).glob("*.sql")):
        if not _NAME_RE.match(path.stem):
            raise QueryFileError(f"{path.name}: query names are lower_snake_case")
        queries.append(parse_query(path.stem, path.read_text(encoding="utf-8")))
    return tuple(queries)


def list_queries() -> list[Query]:
    """All named queries, sorted by name."""
    return list(_load_all(sql_dir()))


def rollup_queries() -> list[Query]:
    """The named queries of ``sql/rollup/`` (most read the rollup table; ``alblake query`` runs them too)."""
    return list(_load_all(sql_dir(), "rollup"))


def get_query(name: str) -> Query:
    for query in (*_load_all(sql_dir()), *_load_all(sql_dir(), "rollup")):
        if query.name == name:
            return query
    raise UnknownQueryError(name)


def connect(lake: Lake | Path | str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with view ``alb_logs`` over the lake's visible Parquet files.

    ``lake`` is a ``Lake`` or a location for ``open_lake_at`` (a directory or ``s3://bucket/prefix``); the lake
    decides which files are visible (the tree is never globbed, so a lake path with ``*``, ``?`` or ``[`` reads
    exactly its own files). DuckDB scans them as a pyarrow dataset with the table's schema: partition columns
    (``elb_name``, ``day``, ``hour``) come from the Hive-style paths and are VARCHAR, as in Glue; columns that
    older files lack are NULL. S3 files are read through pyarrow's S3 filesystem (``alblake.aws.session``).
    A lake without Parquet files gives an empty view with the full schema. Session time zone is UTC.
    """
    opened = open_lake_at(lake) if isinstance(lake, Path | str) else lake
    try:
        files = opened.visible_files()
    except Exception as exc:  # the store's own error type: OSError for a directory, botocore's for S3
        raise LakeReadError(f"cannot list the lake's files: {type(exc).__name__}: {exc}") from exc
    dataset = lake_dataset(files)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # Portability shim, see the module docstring.
    con.execute("CREATE OR REPLACE TEMP MACRO approx_percentile(x, p) AS quantile_cont(x, p)")
    con.register("alb_logs_files", dataset)
    _DATASETS[con] = dataset
    con.execute(f"CREATE TEMP VIEW {TABLE_NAME} AS SELECT * FROM alb_logs_files")
    return con


_DATASETS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, ds.Dataset] = weakref.WeakKeyDictionary()


def _registered_dataset(con: duckdb.DuckDBPyConnection) -> ds.Dataset | None:
    return _DATASETS.get(con)


class LakeReadError(LakeStateError):
    """A file of the lake cannot be read as part of the table (the message names it)."""


def _table_schema() -> pa.Schema:
    schema = ARROW_SCHEMA
    for key in PARTITION_KEYS:
        schema = schema.append(pa.field(key, pa.string()))
    return schema


def _partition_expression(path: str) -> pc.Expression:
    """``key == value`` for each Hive segment ``key=value`` of the path (values %XX-unescaped)."""
    values: dict[str, str] = {}
    for segment in path.split("/")[:-1]:
        key, sep, value = segment.partition("=")
        if sep and key in PARTITION_KEYS:
            values[key] = unquote(value)
    expression = pc.scalar(True)
    for key in PARTITION_KEYS:
        field = pc.field(key)
        known = values.get(key)
        expression = expression & (field.is_null() if known is None else field == known)
    return expression


def _filesystem_and_paths(files: Sequence[str]) -> tuple[pafs.FileSystem, list[str]]:
    if any(f.startswith("s3://") for f in files):
        from alblake.aws.session import arrow_s3_filesystem

        return arrow_s3_filesystem(), [f.removeprefix("s3://") for f in files]
    return pafs.LocalFileSystem(), list(files)


def lake_dataset(files: Sequence[str]) -> ds.Dataset:
    """The files (URLs as ``Lake.visible_files`` gives them) as one dataset with the table's schema."""
    schema = _table_schema()
    if not files:
        return ds.dataset(schema.empty_table())
    filesystem, paths = _filesystem_and_paths(files)
    return ds.FileSystemDataset.from_paths(
        paths,
        schema=schema,
        format=ds.ParquetFileFormat(),
        filesystem=filesystem,
        partitions=[_partition_expression(p) for p in paths],
    )


def _find_unreadable(dataset: ds.Dataset) -> tuple[str, str] | None:
    """The first file of the dataset that is not a Parquet file of this table, and why (slow path: on error)."""
    if not isinstance(dataset, ds.FileSystemDataset):
        return None
    expected = {f.name: f.type for f in ARROW_SCHEMA}
    for path in dataset.files:
        try:
            schema = pq.read_schema(path, filesystem=dataset.filesystem)
        except (OSError, pa.ArrowException) as exc:
            return path, f"not a readable Parquet file ({exc})"
        for field in schema:
            if field.name in expected and field.type != expected[field.name]:
                return path, f"column {field.name} is {field.type}, the table has {expected[field.name]}"
    return None


def _normalise(table: pa.Table) -> pa.Table:
    """DuckDB's HUGEINT sums arrive as decimal128(38, 0): make them int64 like Athena's bigint."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            table = table.set_column(i, pa.field(field.name, pa.int64()), table.column(i).cast(pa.int64()))
    return table


def execute(con: duckdb.DuckDBPyConnection, query: Query) -> pa.Table:
    """Run the query; a lake file that cannot be read raises ``LakeReadError`` naming the file."""
    try:
        relation = con.sql(query.sql)
        # DuckDB >= 1.4 has to_arrow_table(); older releases return a Table from arrow().
        to_table = getattr(relation, "to_arrow_table", None) or relation.arrow
        table = to_table()
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        dataset = _registered_dataset(con)
        culprit = _find_unreadable(dataset) if dataset is not None else None
        if culprit is None:
            raise
        path, reason = culprit
        raise LakeReadError(f"{path}: {reason}") from exc
    assert isinstance(table, pa.Table)
    return _normalise(table)


def run_query(name: str, lake: Lake | Path | str, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """Run the named query against the lake (or an existing :func:`connect` connection) as an Arrow table."""
    query = get_query(name)
    if con is not None:
        return execute(con, query)
    own = connect(lake)
    try:
        if ROLLUP_TABLE_NAME in query.sql or "regexp_like" in query.sql:  # sql/rollup/: the rollup's view, macro
            register_rollup_view(own, open_lake_at(lake) if isinstance(lake, Path | str) else lake)
        return execute(own, query)
    finally:
        own.close()


def ddl(name: str) -> str:
    """Text of ``sql/ddl/<name>.sql`` (``alb_logs`` or ``alb_logs_raw``)."""
    return (sql_dir() / "ddl" / f"{name}.sql").read_text(encoding="utf-8")
