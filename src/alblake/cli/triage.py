"""``alblake triage``: what is different about the bad traffic of a window (``alblake.triage``).

    alblake triage [--lake DIR|s3://bucket/prefix] (--since 30m | --from TIME --to TIME) [--where EXPR]
                   [--baseline 24h] [--top 10] [--format table|csv|json|jsonl] [--sql] [--no-rollup]
    alblake triage --athena [--workgroup WG] [--database DB] (--since ... | --from ... --to ...) ...

The lake, Glue database and workgroup come from the flags, ALBLAKE_* variables, alblake.toml or ``--stack``
(``alblake.settings``), as for ``alblake query``. ``--format json`` is one object (window, selection, overall,
sources, findings, notes); ``jsonl`` one finding per line; ``csv`` the findings.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from alblake.cli.common import add_format, add_lake, examples, lake_of, settings_of
from alblake.cli.output import csv_text, json_text
from alblake.locations import open_existing_lake_at
from alblake.triage import (
    DEFAULT_BASELINE,
    DEFAULT_TOP,
    TriageResult,
    make_window,
    parse_duration,
    parse_time,
    parse_where,
    run_triage,
)
from alblake.triage.local import local_connection, rollup_gaps, sql_runner
from alblake.triage.predicate import Where
from alblake.triage.query import Window, build_query
from alblake.triage.render import CSV_COLUMNS, as_json, csv_rows, format_text


def _window(args: argparse.Namespace) -> Window:
    baseline = parse_duration(args.baseline) if args.baseline else DEFAULT_BASELINE
    since = parse_duration(args.since) if args.since else None
    start = parse_time(args.start) if args.start else None
    end = parse_time(args.end) if args.end else None
    if (start is None) != (end is None):
        from alblake.triage import TriageInputError

        raise TriageInputError("--from and --to go together")
    now = parse_time(args.now) if args.now else None
    return make_window(since=since, start=start, end=end, baseline=baseline, now=now)


def _local(args: argparse.Namespace, window: Window, where: Where | None) -> TriageResult:
    with local_connection(open_existing_lake_at(lake_of(args))) as con:
        gaps = [] if args.no_rollup else rollup_gaps(con, window)
        notes = []
        if gaps:
            notes.append(f"{len(gaps)} data files of these hours have no rollup file (ingested before the rollup "
                         "existed): every dimension is read from the curated table")
        return run_triage(sql_runner(con), window, where, engine="duckdb", use_rollup=not (args.no_rollup or gaps),
                          top=args.top, notes=notes)


def _athena(args: argparse.Namespace, window: Window, where: Where | None) -> TriageResult:
    from alblake.aws.athena import athena_runner

    settings = settings_of(args)
    runner = athena_runner(workgroup=settings.workgroup(), database=settings.athena_database())
    return run_triage(runner.run, window, where, engine="athena", use_rollup=not args.no_rollup, top=args.top)


def _output(result: TriageResult, form: str, *, raw: bool) -> str:
    if form == "json":
        return json_text(as_json(result)) + "\n"
    if form == "jsonl":
        return "".join(json_text(finding) + "\n" for finding in as_json(result)["findings"])
    if form == "csv":
        return csv_text(CSV_COLUMNS, csv_rows(result), raw=raw)
    return format_text(result)


def _cmd_triage(args: argparse.Namespace) -> int:
    window = _window(args)
    where = parse_where(args.where) if args.where is not None else None
    if args.sql:
        print(build_query(window, where, use_rollup=not args.no_rollup).sql)
        return 0
    result = _athena(args, window, where) if args.athena else _local(args, window, where)
    sys.stdout.write(_output(result, args.format, raw=args.raw))
    return 0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``triage`` to the ``alblake`` command line."""
    parser = subparsers.add_parser(
        "triage",
        help="rank what is different about a window's errors (or --where selection) and latency",
        description="Compare a window's 5xx (or the requests --where selects) and latency with a baseline, by "
        "target, route, client network, user agent, error_reason, classification, TLS protocol, verb, domain and "
        "target group; rank the values by the requests they account for beyond the baseline.",
        **examples(
            "alblake triage --since 30m",
            "alblake triage --from 2026-11-24T02:30 --to 2026-11-24T03:00 --where \"elb_status_code = 502\"",
            "alblake triage --since 2h --where \"target_processing_time > 1\" --json",
            "alblake triage --athena --stack alblake --since 30m",
        ),
    )
    add_lake(parser)
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--since", help="the window: the last DURATION until now (30m, 2h)")
    window.add_argument("--from", dest="start", help="the window's start (2026-11-24T08:00:00, UTC)")
    parser.add_argument("--to", dest="end", help="the window's end (with --from)")
    parser.add_argument("--now", help="with --since: the time the window ends instead of the clock's (replaying an "
                        "incident)")
    parser.add_argument("--where", help="select requests with a predicate over alb_logs' columns "
                        "(\"elb_status_code >= 500\"); default: the load balancer's 5xx")
    parser.add_argument("--baseline", help="how long before the window to compare with (default 24h)")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, help=f"findings to show (default {DEFAULT_TOP})")
    add_format(parser)
    parser.add_argument("--sql", action="store_true", help="print the SQL (the same for DuckDB and Athena)")
    parser.add_argument("--no-rollup", action="store_true",
                        help="read every dimension from the curated table (a lake or stack without the rollup)")
    parser.add_argument("--athena", action="store_true", help="run on Athena (the deployed Glue tables)")
    parser.add_argument("--workgroup", help="Athena workgroup: the stack output AthenaWorkGroupName")
    parser.add_argument("--database", help="Glue database of the tables (default: alblake)")
    parser.set_defaults(func=_cmd_triage)
