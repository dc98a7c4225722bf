"""Analysis commands: ``alblake report`` and ``alblake query`` (registered by ``alblake.cli``)."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from alblake.analysis import UnknownQueryError, get_query, list_queries, run_query
from alblake.report import fmt, render_report


def format_table(table: pa.Table) -> str:
    """The table as aligned text: a header, a rule, one line per row; numbers right-aligned."""
    columns = table.column_names
    rows = table.to_pylist()
    cells = [[fmt(c, row[c]) for c in columns] for row in rows]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(list(columns)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def _cmd_report(args: argparse.Namespace) -> int:
    if not Path(args.lake).is_dir():
        print(f"error: lake directory {args.lake} does not exist", file=sys.stderr)
        return 2
    out = render_report(args.lake, args.out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, {len(list_queries())} queries)")
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        width = max(len(q.name) for q in list_queries())
        for q in list_queries():
            print(f"{q.name.ljust(width)}  {q.title}")
        return 0 if args.list else 2
    try:
        query = get_query(args.name)
    except UnknownQueryError:
        names = ", ".join(q.name for q in list_queries())
        print(f"error: unknown query {args.name!r}; known: {names}", file=sys.stderr)
        return 2
    if args.sql:
        print(query.sql)
        return 0
    if args.lake is None:
        print("error: --lake DIR is required to run a query", file=sys.stderr)
        return 2
    if not Path(args.lake).is_dir():
        print(f"error: lake directory {args.lake} does not exist", file=sys.stderr)
        return 2
    table = run_query(query.name, args.lake)
    if args.csv:
        buffer = io.BytesIO()
        pa_csv.write_csv(table, buffer)
        sys.stdout.write(buffer.getvalue().decode("utf-8"))
    else:
        print(format_table(table))
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``report`` and ``query`` to the ``alblake`` command line."""
    report = subparsers.add_parser("report", help="write a self-contained HTML dashboard of the lake")
    report.add_argument("--lake", type=Path, required=True, help="lake directory")
    report.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write")
    report.set_defaults(func=_cmd_report)

    query = subparsers.add_parser("query", help="run one named query (sql/queries/NAME.sql) and print it")
    query.add_argument("name", nargs="?", help="query name (see --list)")
    query.add_argument("--lake", type=Path, help="lake directory")
    query.add_argument("--list", action="store_true", help="list the named queries")
    query.add_argument("--sql", action="store_true", help="print the query's SQL instead of running it")
    query.add_argument("--csv", action="store_true", help="print raw values as CSV instead of a text table")
    query.set_defaults(func=_cmd_query)
