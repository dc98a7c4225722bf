"""Analysis commands: ``alblake report`` and ``alblake query`` (registered by ``alblake.cli``).

Both read a local lake directory or an ``s3://bucket/prefix`` lake; ``query --athena`` runs the same named
SQL on Athena instead (``alblake.aws.athena``) and prints the same table or CSV.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from alblake.analysis import (
    LakeReadError,
    Query,
    UnknownQueryError,
    get_query,
    list_queries,
    rollup_queries,
    run_query,
)
from alblake.cli.common import EXIT_FAILED, EXIT_USAGE, add_lake, print_error
from alblake.display import fmt, printable
from alblake.locations import open_existing_lake_at
from alblake.report import render_report


def format_table(table: pa.Table) -> str:
    """The table as aligned text: a header, a rule, one line per row; numbers right-aligned.

    Cells are terminal-safe: control characters from the logs are shown as escapes (``printable``), so a
    value can neither start a new row nor send escape sequences to the terminal.
    """
    columns = table.column_names
    rows = table.to_pylist()
    cells = [[printable(fmt(c, row[c])) for c in columns] for row in rows]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]
    header = [printable(c) for c in columns]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(header)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def format_csv(table: pa.Table) -> str:
    """Raw values as CSV (RFC 4180 quoting keeps values with newlines or quotes in one field)."""
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer)
    return buffer.getvalue().decode("utf-8")


def _cmd_report(args: argparse.Namespace) -> int:
    lake = open_existing_lake_at(args.lake)
    try:
        out = render_report(lake, args.out, source=args.lake)
    except LakeReadError as exc:
        print_error(f"cannot read the lake: {exc}")
        return EXIT_FAILED
    print(f"wrote {printable(str(out))} ({out.stat().st_size:,} bytes, {len(list_queries())} queries)")
    return 0


def _run_local(query: Query, args: argparse.Namespace) -> pa.Table | int:
    """The query's result over the lake, or the exit status after printing why there is none."""
    if args.lake is None:
        print_error("--lake DIR|s3://bucket/prefix is required to run a query (or --athena)")
        return EXIT_USAGE
    lake = open_existing_lake_at(args.lake)
    try:
        return run_query(query.name, lake)
    except LakeReadError as exc:
        print_error(f"cannot read the lake: {exc}")
        return EXIT_FAILED


def _run_athena(query: Query, args: argparse.Namespace) -> pa.Table:
    from alblake.aws.athena import athena_runner

    return athena_runner(workgroup=args.workgroup, database=args.database).run(query.sql)


def _cmd_query(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        named = [*list_queries(), *rollup_queries()]
        width = max(len(q.name) for q in named)
        for q in named:
            print(f"{q.name.ljust(width)}  {q.title}")
        return 0 if args.list else EXIT_USAGE
    try:
        query = get_query(args.name)
    except UnknownQueryError:
        names = ", ".join(q.name for q in [*list_queries(), *rollup_queries()])
        print_error(f"unknown query {args.name!r}; known: {names}")
        return EXIT_USAGE
    if args.sql:
        print(query.sql)
        return 0
    result = _run_athena(query, args) if args.athena else _run_local(query, args)
    if isinstance(result, int):
        return result
    sys.stdout.write(format_csv(result) if args.csv else format_table(result) + "\n")
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``report`` and ``query`` to the ``alblake`` command line."""
    report = subparsers.add_parser("report", help="write a self-contained HTML dashboard of the lake")
    add_lake(report)
    report.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write")
    report.set_defaults(func=_cmd_report)

    query = subparsers.add_parser("query", help="run one named query (sql/queries/NAME.sql) and print it")
    query.add_argument("name", nargs="?", help="query name (see --list)")
    add_lake(query, required=False)
    query.add_argument("--list", action="store_true", help="list the named queries")
    query.add_argument("--sql", action="store_true", help="print the query's SQL instead of running it")
    query.add_argument("--csv", action="store_true", help="print raw values as CSV instead of a text table")
    query.add_argument("--athena", action="store_true", help="run the query on Athena (the deployed Glue table)")
    query.add_argument("--workgroup", help="Athena workgroup: the stack output AthenaWorkGroupName (it holds the "
                       "results location)")
    query.add_argument("--database", help="Glue database of the alb_logs table (default: alblake)")
    query.set_defaults(func=_cmd_query)
