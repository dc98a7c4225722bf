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

import os
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeAlias
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from alblake.display import unknown_name_message
from alblake.errors import InputError, LakeStateError
from alblake.locations import open_lake_at, service_reason
from alblake.ports import Lake
from alblake.rollup.files import visible_rollup
from alblake.rollup.routes import DUCKDB_MACROS as ROUTE_MACROS
from alblake.schema import ARROW_SCHEMA, PARTITION_KEYS, ROLLUP_ARROW_SCHEMA, ROLLUP_TABLE_NAME, TABLE_NAME
from alblake.scope import EVERYTHING, Scope

CHART_KINDS = frozenset({"bar", "grouped_bar", "line", "table", "kpi"})

_HEADER_RE = re.compile(r"^--\s*([a-z_]+):\s*(.*)$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class UnknownQueryError(InputError, KeyError):
    """No ``sql/queries/<name>.sql`` for the requested name."""

    def __str__(self) -> str:  # KeyError's own would quote the message
        return str(self.args[0]) if self.args else ""


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
def _builtin(directory: Path) -> tuple[Query, ...]:
    return _load_dir(directory / "queries")


def _load_dir(directory: Path) -> tuple[Query, ...]:
    queries = []
    for path in sorted(directory.glob("*.sql")):
        if not _NAME_RE.match(path.stem):
            raise QueryFileError(f"{path}: query names are lower_snake_case")
        queries.append(parse_query(path.stem, path.read_text(encoding="utf-8")))
    return tuple(queries)


def user_query_dir() -> Path:
    """Where users keep their own named queries: ``ALBLAKE_QUERY_DIR``, else ``$XDG_CONFIG_HOME/alblake/queries``
    (``~/.config/alblake/queries``). Searched after ``sql/queries/``: a built-in name wins."""
    if os.environ.get("ALBLAKE_QUERY_DIR"):
        return Path(os.environ["ALBLAKE_QUERY_DIR"])
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "alblake" / "queries"


def list_queries() -> list[Query]:
    """All named queries: the built-in ones (``sql/queries/``), then the user's (``user_query_dir``) whose names
    are not built-in; each group sorted by name."""
    builtin = list(_builtin(sql_dir()))
    names = {q.name for q in builtin}
    directory = user_query_dir()
    own = [q for q in _load_dir(directory) if q.name not in names] if directory.is_dir() else []
    return builtin + own


def rollup_queries() -> list[Query]:
    """The named queries of ``sql/rollup/`` (over the rollup, and routes of the curated table): ``alblake query``
    runs them too; the report does not draw them."""
    return list(_load_dir(sql_dir() / "rollup"))


def named_queries() -> list[Query]:
    """Every query ``alblake query`` runs: the built-in ones, the rollup's, then the user's (whose names are
    neither)."""
    builtin = list(_builtin(sql_dir()))
    rollup = [q for q in rollup_queries() if q.name not in {b.name for b in builtin}]
    taken = {q.name for q in builtin + rollup}
    return builtin + rollup + [q for q in list_queries()[len(builtin) :] if q.name not in taken]


def get_query(name: str) -> Query:
    """The named query; ``UnknownQueryError`` naming the closest names when there is none."""
    queries = named_queries()
    for query in queries:
        if query.name == name:
            return query
    raise UnknownQueryError(unknown_name_message("query", name, [q.name for q in queries]))


# --------------------------------------------------------------------------------------------- the views

FileLister = Callable[[Lake, Scope], list[str]]


@dataclass(frozen=True)
class TableView:
    """A table of the lake that readers see as a DuckDB view: its stored columns, partition keys, the column the
    time window applies to, and the lake's visible files of it within a scope."""

    name: str
    schema: pa.Schema
    partition_keys: tuple[str, ...]
    time_column: str
    files: FileLister


def _visible_alb_logs(lake: Lake, scope: Scope) -> list[str]:
    keys = getattr(lake, "visible_keys", None)
    store = getattr(lake, "store", None)
    if keys is None or store is None:  # a Lake without partitions at hand: every visible file
        return list(lake.visible_files())
    return sorted(store.url(key) for key, partition in keys() if scope.accepts(partition))


VIEWS: dict[str, TableView] = {}


def register_view(view: TableView) -> None:
    """Make ``view`` a view of every connection (``connect``), of ``alblake sql`` and ``alblake shell``."""
    VIEWS[view.name] = view


register_view(TableView(TABLE_NAME, ARROW_SCHEMA, tuple(PARTITION_KEYS), '"time"', _visible_alb_logs))
# the per-minute rollup, a derived table of the lake (docs/ROLLUP.md)
register_view(TableView(ROLLUP_TABLE_NAME, ROLLUP_ARROW_SCHEMA, tuple(PARTITION_KEYS), '"minute"', visible_rollup))


def visible_files(lake: Lake, scope: Scope = EVERYTHING, table: str = TABLE_NAME) -> list[str]:
    """The files the view of ``table`` reads within ``scope`` (what ``alblake files`` prints)."""
    try:
        return VIEWS[table].files(lake, scope)
    except LakeReadError:
        raise
    except Exception as exc:  # the store's own error type: OSError for a directory, botocore's for S3
        raise LakeReadError(f"cannot read the lake: cannot list the lake's files: {service_reason(exc)}") from exc


def connect(lake: Lake | Path | str, scope: Scope = EVERYTHING) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per registered table (``alb_logs``, and the others registered
    with ``register_view``) over the lake's visible Parquet files within ``scope``.

    ``lake`` is a ``Lake`` or a location for ``open_lake_at`` (a directory or ``s3://bucket/prefix``); the lake
    decides which files are visible, and the tree is never globbed. Local files are read by DuckDB's own
    ``read_parquet`` from that explicit list (each path's glob characters escaped, so a lake path with ``*``,
    ``?`` or ``[`` reads exactly its own files); S3 files through a pyarrow dataset over pyarrow's S3 filesystem
    (``alblake.aws.session``). Partition columns (``elb_name``, ``day``, ``hour``) come from the Hive-style paths
    and are VARCHAR, as in Glue; columns that older files lack are NULL. A lake without files gives an empty
    view with the full schema. Session time zone is UTC.
    """
    opened = open_lake_at(lake) if isinstance(lake, Path | str) else lake
    con = duckdb.connect(":memory:")
    # each query reads the footers of every file it scans: keep them (the lake's files never change; DuckDB also
    # checks a file's modification time) for the connection's later queries and for the footer pass below
    _session(con, "SET parquet_metadata_cache = true")
    _session(con, "SET TimeZone = 'UTC'")
    # Portability shim, see the module docstring.
    _session(con, "CREATE OR REPLACE TEMP MACRO approx_percentile(x, p) AS quantile_cont(x, p)")
    for macro in ROUTE_MACROS:  # regexp_like (Trino's name) for the route template SQL
        _session(con, macro)
    read: dict[str, list[str]] = {}
    for view in VIEWS.values():
        try:
            files = visible_files(opened, scope, view.name)
        except LakeReadError:
            con.close()
            raise
        read[view.name] = files
        try:
            _create_view(con, view, files, scope)
        except LakeReadError:
            con.close()
            raise
    _FILES[con] = read
    return con


_FILES: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, dict[str, list[str]]] = weakref.WeakKeyDictionary()
# What makes a connection's session, in order (DuckDB keeps it per connection): statements (time zone, macros,
# views) and objects registered by name (the pyarrow datasets of S3 files or of a table without files).
Step: TypeAlias = "str | tuple[str, ds.Dataset]"  # a string: naming ds.Dataset here would import it
_SESSION: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, list[Step]] = weakref.WeakKeyDictionary()


def _session(con: duckdb.DuckDBPyConnection, step: Step) -> None:
    if isinstance(step, str):
        con.execute(step)
    else:
        con.register(*step)
    _SESSION.setdefault(con, []).append(step)


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A second connection to the database of a ``connect`` connection, with the same views, macros and time zone,
    for running a query while another runs on ``con`` (DuckDB runs the queries of different connections at the
    same time, each on its own thread). The caller closes it."""
    other = con.cursor()
    for step in _SESSION.get(con, []):
        _session(other, step)
    _FILES[other] = _FILES.get(con, {})
    return other


def files_read(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The files each view of a ``connect`` connection reads, by view name."""
    return dict(_FILES.get(con, {}))


def _create_view(con: duckdb.DuckDBPyConnection, view: TableView, files: list[str], scope: Scope) -> None:
    where = scope.row_filter(view.time_column)
    if files and _duckdb_reads(files, view.partition_keys[0]):
        source = _read_parquet_sql(con, view, files)
    else:
        dataset = lake_dataset(files, view.schema, view.partition_keys)
        _session(con, (f"{view.name}_files", dataset))
        source = f"{view.name}_files"
    _session(con, f"CREATE TEMP VIEW {view.name} AS SELECT * FROM {source} WHERE {where}")


def _duckdb_reads(files: Sequence[str], first_key: str) -> bool:
    """DuckDB reads local files itself, unless a folder above the partitions has a Hive-looking name (``k=v``)
    that its partition discovery would take for a column."""
    return not any("://" in f or "=" in f.split(f"/{first_key}=", 1)[0] for f in files)


def _glob_escaped(path: str) -> str:
    """``path`` as a pattern that matches only itself (DuckDB globs every path it is given)."""
    return "".join(f"[{c}]" if c in "*?[{" else c for c in path)


def _sql_list(files: Sequence[str]) -> str:
    return "[" + ", ".join("'" + _glob_escaped(str(Path(f).absolute())).replace("'", "''") + "'" for f in files) + "]"


def _scan(files: Sequence[str], *, union_by_name: bool) -> str:
    options = "hive_partitioning = true, hive_types_autocast = false"
    return f"read_parquet({_sql_list(files)}, {options}{', union_by_name = true' if union_by_name else ''})"


def _read_parquet_sql(con: duckdb.DuckDBPyConnection, view: TableView, files: list[str]) -> str:
    """The view's source over local files: one plain ``read_parquet`` of the files that have every column of the
    table (a lake written by one version: all of them), and, for files written before a column existed, a second
    scan matching columns by name with NULL for what they lack. One pass over the footers decides which is which
    (``union_by_name`` on every file would re-read them all at every query)."""
    wanted = {f.name for f in view.schema}
    try:
        found = con.sql(f"SELECT file_name, list(name) FROM parquet_schema({_sql_list(files)}) GROUP BY file_name")
        columns_of = {str(name): set(columns) for name, columns in found.fetchall()}
    except duckdb.Error as exc:
        raise _unreadable(files, _first_line(str(exc))) from exc
    absolute = {f: str(Path(f).absolute()) for f in files}
    complete = [f for f in files if wanted <= columns_of.get(absolute[f], set())]
    partial = [f for f in files if f not in set(complete)]
    parts = [_projected(con, view, complete, union_by_name=False)] if complete else []
    if partial:
        parts.append(_projected(con, view, partial, union_by_name=True))
    return "(" + " UNION ALL ".join(parts) + ")"


def _projected(con: duckdb.DuckDBPyConnection, view: TableView, files: list[str], *, union_by_name: bool) -> str:
    """``SELECT`` of the table's columns, in order, from a scan of ``files`` (NULL for a column none of them has);
    a file whose columns have other types than the table's is named (``LakeReadError``)."""
    scan = _scan(files, union_by_name=union_by_name)
    try:
        present = {row[0]: str(row[1]) for row in con.sql(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    except duckdb.Error as exc:
        raise _unreadable(files, _first_line(str(exc))) from exc
    if any(present.get(f.name, _duckdb_type(f.type)) != _duckdb_type(f.type) for f in view.schema):
        raise _unreadable(files, "a file's columns do not have the table's types")
    columns = [
        f'"{f.name}"' if f.name in present else f'CAST(NULL AS {_duckdb_type(f.type)}) AS "{f.name}"'
        for f in view.schema
    ]
    columns += [f'"{key}"' if key in present else f'CAST(NULL AS VARCHAR) AS "{key}"' for key in view.partition_keys]
    return f"SELECT {', '.join(columns)} FROM {scan}"


def _unreadable(files: Sequence[str], fallback: str) -> LakeReadError:
    culprit = _find_unreadable(files)
    if culprit is None:
        return LakeReadError(f"cannot read the lake: {fallback}")
    return LakeReadError(f"cannot read the lake: {culprit[0]}: {culprit[1]}")


def _duckdb_type(arrow_type: pa.DataType) -> str:
    """The type DuckDB's DESCRIBE names for an Arrow type of the table."""
    kinds = {pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
             pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP WITH TIME ZONE" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_list(arrow_type):  # the rollup's latency sketch
        return _duckdb_type(arrow_type.value_type) + "[]"
    return kinds.get(arrow_type, "VARCHAR")


class LakeReadError(LakeStateError):
    """A file of the lake cannot be read as part of the table (the message names it)."""


def _table_schema(schema: pa.Schema = ARROW_SCHEMA, partition_keys: Sequence[str] = PARTITION_KEYS) -> pa.Schema:
    for key in partition_keys:
        schema = schema.append(pa.field(key, pa.string()))
    return schema


def _partition_expression(path: str, partition_keys: Sequence[str] = PARTITION_KEYS) -> pc.Expression:
    """``key == value`` for each Hive segment ``key=value`` of the path (values %XX-unescaped)."""
    values: dict[str, str] = {}
    for segment in path.split("/")[:-1]:
        key, sep, value = segment.partition("=")
        if sep and key in partition_keys:
            values[key] = unquote(value)
    expression = pc.scalar(True)
    for key in partition_keys:
        field = pc.field(key)
        known = values.get(key)
        expression = expression & (field.is_null() if known is None else field == known)
    return expression


def _filesystem_and_paths(files: Sequence[str]) -> tuple[pafs.FileSystem, list[str]]:
    if any(f.startswith("s3://") for f in files):
        from alblake.aws.session import arrow_s3_filesystem

        return arrow_s3_filesystem(), [f.removeprefix("s3://") for f in files]
    return pafs.LocalFileSystem(), list(files)


def lake_dataset(
    files: Sequence[str], schema: pa.Schema = ARROW_SCHEMA, partition_keys: Sequence[str] = PARTITION_KEYS
) -> ds.Dataset:
    """The files (URLs as ``Lake.visible_files`` gives them) as one dataset with the table's schema."""
    full = _table_schema(schema, partition_keys)
    if not files:
        return ds.dataset(full.empty_table())
    filesystem, paths = _filesystem_and_paths(files)
    return ds.FileSystemDataset.from_paths(
        paths,
        schema=full,
        format=ds.ParquetFileFormat(),
        filesystem=filesystem,
        partitions=[_partition_expression(p, partition_keys) for p in paths],
    )


def _find_unreadable(files: Sequence[str]) -> tuple[str, str] | None:
    """The first file that is not a Parquet file of this table, and why (slow path: after an error)."""
    if not files:
        return None
    filesystem, paths = _filesystem_and_paths(files)
    expected = {f.name: f.type for f in ARROW_SCHEMA}
    for path in paths:
        try:
            schema = pq.read_schema(path, filesystem=filesystem)
        except (OSError, pa.ArrowException) as exc:
            return path, f"not a readable Parquet file ({exc})"
        for field in schema:
            if field.name in expected and field.type != expected[field.name]:
                return path, f"column {field.name} is {field.type}, the table has {expected[field.name]}"
    return None


def _bigint_sums(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """DuckDB's sums of integers are HUGEINT (decimal128(38, 0) in Arrow): cast to BIGINT, like Athena's bigint, by
    DuckDB (a sum beyond BIGINT is then DuckDB's conversion error, which ``execute`` reports as a ``SqlError``).
    Columns that share a name cannot be told apart here: ``_normalise`` casts those in Arrow."""
    types = [str(t) for t in relation.types]
    names = relation.columns
    if "HUGEINT" not in types or len(set(names)) < len(names):
        return relation
    quoted = ['"' + name.replace('"', '""') + '"' for name in names]
    return relation.project(", ".join(f"CAST({q} AS BIGINT) AS {q}" if t == "HUGEINT" else q
                                      for q, t in zip(quoted, types, strict=True)))


def _normalise(table: pa.Table) -> pa.Table:
    """Decimals of scale 0 that ``_bigint_sums`` left (columns of the same name) as int64 like Athena's bigint."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            table = table.set_column(i, pa.field(field.name, pa.int64()), table.column(i).cast(pa.int64()))
    return table


def execute(con: duckdb.DuckDBPyConnection, query: Query | str) -> pa.Table:
    """Run the query (a named one, or SQL); a lake file that cannot be read raises ``LakeReadError`` naming the
    file; SQL DuckDB refuses raises ``SqlError`` with DuckDB's message."""
    sql = query.sql if isinstance(query, Query) else query
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, CREATE ...)
            return pa.table({})
        # DuckDB >= 1.4 has to_arrow_table(); older releases return a Table from arrow().
        relation = _bigint_sums(relation)
        to_table = getattr(relation, "to_arrow_table", None) or relation.arrow
        table = to_table()
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        culprit = None
        if not isinstance(exc, duckdb.ParserException | duckdb.BinderException | duckdb.CatalogException):
            culprit = _find_unreadable([f for files in files_read(con).values() for f in files])
        if culprit is None:
            raise SqlError(_first_line(str(exc))) from exc
        path, reason = culprit
        raise LakeReadError(f"cannot read the lake: {path}: {reason}") from exc
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    assert isinstance(table, pa.Table)
    return _normalise(table)


class SqlError(InputError):
    """SQL that DuckDB cannot run (its message, first line)."""


def _first_line(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[:3] if line.strip())


def run_query(
    name: str, lake: Lake | Path | str, con: duckdb.DuckDBPyConnection | None = None, scope: Scope = EVERYTHING
) -> pa.Table:
    """Run the named query against the lake (or an existing :func:`connect` connection) as an Arrow table."""
    query = get_query(name)
    if con is not None:
        return execute(con, query)
    own = connect(lake, scope)
    try:
        return execute(own, query)
    finally:
        own.close()


def ddl(name: str) -> str:
    """Text of ``sql/ddl/<name>.sql`` (``alb_logs`` or ``alb_logs_raw``)."""
    return (sql_dir() / "ddl" / f"{name}.sql").read_text(encoding="utf-8")
