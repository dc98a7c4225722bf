"""Reading commands: ``alblake query``, ``sql``, ``report``, ``files`` and ``shell`` (registered by ``alblake.cli``).

Each reads a local lake directory or an ``s3://bucket/prefix`` lake through the same views (``alblake.analysis``):
the lake's visible files, chosen by partition when ``--elb``/``--since``/``--until`` narrow it. ``query`` and
``sql`` with ``--athena`` run the same SQL on Athena instead (``alblake.aws.athena``) and print the same formats.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from alblake.analysis import (
    VIEWS,
    Query,
    connect,
    execute,
    get_query,
    list_queries,
    named_queries,
    user_query_dir,
    visible_files,
)
from alblake.cli.common import (
    EXIT_USAGE,
    add_format,
    add_lake,
    add_window,
    examples,
    lake_of,
    print_error,
    scope_of,
    settings_of,
)
from alblake.cli.output import json_text, render
from alblake.display import printable
from alblake.errors import InputError
from alblake.locations import open_existing_lake_at
from alblake.report import render_report
from alblake.scope import scoped_for_catalog


class OutputPathError(InputError):
    """An output path the command cannot write (a directory, or in a directory that does not exist)."""


def _print_table(table: pa.Table, args: argparse.Namespace) -> None:
    if args.limit is not None:
        table = table.slice(0, args.limit)
    sys.stdout.write(render(table, args.format, raw=getattr(args, "raw", False)))


def _run_local(sql: str | Query, args: argparse.Namespace) -> pa.Table:
    lake = open_existing_lake_at(lake_of(args))
    con = connect(lake, scope_of(args))
    try:
        return execute(con, sql)
    finally:
        con.close()


def _run_athena(sql: str, args: argparse.Namespace) -> pa.Table:
    from alblake.aws.athena import athena_runner

    settings = settings_of(args)
    database = settings.athena_database()
    runner = athena_runner(workgroup=settings.workgroup(), database=database)
    return runner.run(scoped_for_catalog(sql, scope_of(args), database))


# -------------------------------------------------------------------------------------------------- query


def _cmd_query(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        queries = named_queries()
        width = max(len(q.name) for q in queries)
        for q in queries:
            print(f"{q.name.ljust(width)}  {printable(q.title)}")
        if not args.list:
            print_error("name a query to run (the list above; your own go in " + str(user_query_dir()) + ")")
        return 0 if args.list else EXIT_USAGE
    query = get_query(args.name)  # an unknown name: UnknownQueryError with the closest names
    if args.sql:
        print(query.sql)
        return 0
    table = _run_athena(query.sql, args) if args.athena else _run_local(query, args)
    _print_table(table, args)
    return 0


# ---------------------------------------------------------------------------------------------------- sql


def _statement(args: argparse.Namespace) -> str:
    if args.file is not None and args.statement is not None:
        raise InputError("give the SQL as an argument or with -f FILE, not both")
    if args.file is None:
        if args.statement is None:
            raise InputError("give a SELECT statement (alblake sql \"SELECT ...\") or -f FILE")
        return str(args.statement)
    if args.file == "-":
        return sys.stdin.read()
    try:
        return Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{args.file}: cannot read the SQL file ({exc})") from None


def _cmd_sql(args: argparse.Namespace) -> int:
    sql = _statement(args).strip().rstrip(";").strip()
    if not sql:
        raise InputError("the SQL is empty")
    table = _run_athena(sql, args) if args.athena else _run_local(sql, args)
    _print_table(table, args)
    return 0


# ------------------------------------------------------------------------------------------------- report


def checked_output(path: Path, option: str = "--out") -> Path:
    """``path`` if a file can be written there: not a directory; its folder is created when missing."""
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a directory: name a file, e.g. {path / 'report.html'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputPathError(f"{option} {path}: cannot create its folder {path.parent} ({reason})") from None
    return path


def _cmd_report(args: argparse.Namespace) -> int:
    out = checked_output(args.out)
    location = lake_of(args)
    lake = open_existing_lake_at(location)
    written = render_report(lake, out, source=location, scope=scope_of(args))
    print(f"wrote {printable(str(written))} ({written.stat().st_size:,} bytes, {len(list_queries())} queries)")
    return 0


# -------------------------------------------------------------------------------------------------- files


def _cmd_files(args: argparse.Namespace) -> int:
    lake = open_existing_lake_at(lake_of(args))
    files = visible_files(lake, scope_of(args), args.table)  # what the view of that table would read
    if args.json:
        print(json_text(files))
    else:
        for path in files:
            print(printable(path))
    return 0


# -------------------------------------------------------------------------------------------------- shell

SHELL_HELP = """Type SQL ending with ';' (several lines are fine). Views: {views}.
  .format table|csv|json|jsonl   how results print (now: {form})
  .tables                        the views
  .help                          this text
  .quit                          leave (or Ctrl-D)"""


def _shell_command(line: str, state: dict[str, str]) -> bool:
    """Run a dot command; False when it asks to leave."""
    word, _, rest = line.strip().partition(" ")
    if word in {".quit", ".exit"}:
        return False
    if word == ".format" and rest.strip() in {"table", "csv", "json", "jsonl"}:
        state["format"] = rest.strip()
    elif word == ".tables":
        print("\n".join(VIEWS))
    else:
        print(SHELL_HELP.format(views=", ".join(VIEWS), form=state["format"]))
    return True


def _cmd_shell(args: argparse.Namespace) -> int:
    lake = open_existing_lake_at(lake_of(args))
    con = connect(lake, scope_of(args))
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):  # not on every platform
            import readline  # noqa: F401 (line editing and history for input())
    state = {"format": args.format}
    if interactive:
        print(f"alblake shell: DuckDB over {printable(lake_of(args))}. " + SHELL_HELP.split("\n", 1)[0])
        print("  .help for the commands, .quit to leave")
    buffer: list[str] = []
    failed = False
    try:
        while True:
            try:
                line = input("alblake> " if not buffer else "    ...> ") if interactive else sys.stdin.readline()
            except EOFError:
                break
            if not interactive and line == "":
                break
            if not buffer and line.strip().startswith("."):
                if not _shell_command(line, state):
                    break
                continue
            buffer.append(line.rstrip("\n"))
            if not line.rstrip().endswith(";"):
                continue
            sql, buffer = "\n".join(buffer).strip().rstrip(";"), []
            failed = not _shell_statement(con, sql, state["format"]) or failed
        if buffer and "".join(buffer).strip():
            failed = not _shell_statement(con, "\n".join(buffer).strip().rstrip(";"), state["format"]) or failed
    finally:
        con.close()
    return 1 if failed and not interactive else 0


def _shell_statement(con: Any, sql: str, form: str) -> bool:
    if not sql:
        return True
    try:
        table = execute(con, sql)
    except InputError as exc:
        print_error(str(exc))
        return False
    if table.num_columns:
        sys.stdout.write(render(table, form))
    return True


# ----------------------------------------------------------------------------------------------- register


def _add_athena(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--athena", action="store_true", help="run on Athena over the deployed Glue table instead of the lake's files"
    )
    parser.add_argument(
        "--workgroup", metavar="NAME",
        help="Athena workgroup (it holds the results location; default: ALBLAKE_WORKGROUP, alblake.toml, the "
        "stack's AthenaWorkGroupName, else alblake-alblake: the workgroup of a stack named alblake)",
    )
    parser.add_argument(
        "--database", metavar="NAME",
        help="Glue database of the alb_logs table (default: ALBLAKE_GLUE_DATABASE, alblake.toml, the stack's "
        "GlueDatabaseName, else alblake_alblake: the database of a stack named alblake)",
    )


def register_query(subparsers: argparse._SubParsersAction[Any]) -> None:
    query = subparsers.add_parser(
        "query", help="run a named query (sql/queries/, then your own) and print it",
        description="Run a named query over the lake (or on Athena) and print the result.",
        **examples(
            "alblake query --list",
            "alblake query error_rate_by_hour --since 6h",
            "alblake query failing_urls --elb web-prod --since 2026-11-24T08:00 --until 2026-11-24T09:00",
            "alblake query top_clients --format json | jq .",
            "alblake query latency_by_target --athena --stack prod",
            f"your own queries: NAME.sql files (same header) in ALBLAKE_QUERY_DIR or {user_query_dir()}",
        ),
    )
    query.add_argument("name", nargs="?", help="query name (see --list)")
    add_lake(query)
    query.add_argument("--list", action="store_true", help="list the named queries")
    query.add_argument("--sql", action="store_true", help="print the query's SQL instead of running it")
    add_window(query)
    add_format(query)
    _add_athena(query)
    query.set_defaults(func=_cmd_query)


def register_sql(subparsers: argparse._SubParsersAction[Any]) -> None:
    sql = subparsers.add_parser(
        "sql", help="run your own SQL over the alb_logs view",
        description="Run SQL over the same views the named queries use (alb_logs: every column of the table plus "
        "elb_name, day, hour), locally with DuckDB or on Athena.",
        **examples(
            "alblake sql \"SELECT elb_status_code, count(*) AS n FROM alb_logs GROUP BY 1 ORDER BY 2 DESC\"",
            "alblake sql \"SELECT request_url, count(*) FROM alb_logs WHERE elb_status_code >= 500 "
            "GROUP BY 1 ORDER BY 2 DESC\" --elb web-prod --since 1h",
            "alblake sql -f checkout_errors.sql --since 2026-11-24T08:00 --until 2026-11-24T09:00 --csv",
            "alblake sql \"SELECT count(*) FROM alb_logs\" --athena --stack prod",
        ),
    )
    sql.add_argument("statement", nargs="?", metavar="SQL", help="the statement (or -f FILE)")
    sql.add_argument("-f", "--file", metavar="FILE", help="read the SQL from FILE ('-': standard input)")
    add_lake(sql)
    add_window(sql)
    add_format(sql)
    _add_athena(sql)
    sql.set_defaults(func=_cmd_sql)


def register_report(subparsers: argparse._SubParsersAction[Any]) -> None:
    report = subparsers.add_parser(
        "report", help="write a self-contained HTML dashboard of the lake",
        description="Run every named query and write one HTML file (charts and tables, no network needed).",
        **examples(
            "alblake report --lake lake/",
            "alblake report --since 24h --out /tmp/last-day.html",
            "alblake report --elb web-prod --since 2026-11-24 --until 2026-11-24",
        ),
    )
    add_lake(report)
    report.add_argument(
        "--out", type=Path, default=Path("report.html"), metavar="FILE",
        help="HTML file to write (default: report.html in the current directory)",
    )
    add_window(report, limit=False)
    report.set_defaults(func=_cmd_report)


def register_files(subparsers: argparse._SubParsersAction[Any]) -> None:
    files = subparsers.add_parser(
        "files", help="list the lake's visible Parquet files (what other tools should read)",
        description="The files readers see now, one per line: hand exactly these to DuckDB, Spark or pandas. "
        "Never glob the lake: after a compaction its replaced files stay for a grace period, and a glob "
        "reads their rows twice.",
        **examples(
            "alblake files --lake lake/",
            "alblake files --since 2h --json",
            "duckdb -c \"SELECT count(*) FROM read_parquet([$(alblake files --lake lake/ | sed \"s/.*/'&'/\" "
            "| paste -sd,)])\"",
        ),
    )
    add_lake(files)
    add_window(files, limit=False)
    files.add_argument("--json", action="store_true", help="one JSON array instead of one path per line")
    files.add_argument("--table", choices=sorted(VIEWS), default="alb_logs", help="which table's files")
    files.set_defaults(func=_cmd_files)


def register_shell(subparsers: argparse._SubParsersAction[Any]) -> None:
    shell = subparsers.add_parser(
        "shell", help="an interactive SQL prompt (DuckDB) with the lake's views",
        description="DuckDB with alb_logs (and every other registered view) over the lake's visible files. "
        "Reads SQL from standard input when it is not a terminal.",
        **examples(
            "alblake shell --lake lake/",
            "echo \"SELECT count(*) FROM alb_logs;\" | alblake shell --since 1h",
        ),
    )
    add_lake(shell)
    add_window(shell, limit=False)
    shell.add_argument("--format", choices=("table", "csv", "json", "jsonl"), default="table",
                       help="how results print (.format changes it in the shell)")
    shell.set_defaults(func=_cmd_shell)
