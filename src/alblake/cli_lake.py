"""Command line: ``alblake compact`` and ``alblake status`` (registered by ``alblake.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alblake.lake.generations import StateFormatError
from alblake.lake.genlake import CompactionOptions, CompactionReport, GenerationalLake
from alblake.lake.status import format_status, lake_status
from alblake.locations import LakeLocationError, open_lake_at


def _open(location: str, glue_database: str | None = None) -> GenerationalLake | None:
    if "://" not in location and not Path(location).is_dir():
        print(f"error: {location}: no such lake directory", file=sys.stderr)
        return None
    try:
        lake = open_lake_at(location, glue_database=glue_database)
    except LakeLocationError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    if not isinstance(lake, GenerationalLake):
        print(f"error: {location}: this lake cannot be compacted ({type(lake).__name__})", file=sys.stderr)
        return None
    return lake


def _minutes(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of minutes >= 0: {text!r}")
    return value


def format_report(report: CompactionReport, seconds: float) -> str:
    lines = [
        f"partitions compacted  {report.partitions_compacted}",
        f"files removed         {report.files_removed}",
        f"rows compacted        {report.rows_compacted:,}",
        f"bytes written         {report.bytes_written:,}",
        f"old folders deleted   {report.folders_deleted}",
        f"orphans deleted       {report.orphans_deleted} (folders of rewrites that crashed before going live)",
        f"conflicts             {report.conflicts} (another writer changed the partition; the next run retries)",
        f"time                  {seconds:.2f} s",
    ]
    return "\n".join(lines)


def _cmd_compact(args: argparse.Namespace) -> int:
    if "://" in args.lake and not args.glue_database:
        print(
            f"error: {args.lake}: compacting an S3 lake moves its Glue partition Locations; give --glue-database "
            "(the stack's GlueDatabaseName), or leave it to the deployed CompactFunction",
            file=sys.stderr,
        )
        return 2
    lake = _open(args.lake, args.glue_database)
    if lake is None:
        return 2
    started = datetime.now(UTC)
    options = CompactionOptions(
        now=started, older_than=timedelta(minutes=args.older_than), grace=timedelta(minutes=args.grace)
    )
    try:
        report = lake.compact(options)
    except StateFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_report(report, (datetime.now(UTC) - started).total_seconds()))
    for partition, message in report.errors:
        print(f"error: {partition}: {message}", file=sys.stderr)
    return 1 if report.errors else 0


def _cmd_status(args: argparse.Namespace) -> int:
    lake = _open(args.lake)
    if lake is None:
        return 2
    try:
        status = lake_status(lake)
    except StateFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        body: dict[str, Any] = status.as_dict()
        print(json.dumps(body, indent=1))
    else:
        print(format_status(status))
    return 1 if status.unreadable else 0


def register(commands: Any) -> None:
    """Add ``compact`` and ``status`` to the ``alblake`` sub-commands."""
    compact = commands.add_parser("compact", help="compact closed partition-hours into one sorted file each")
    compact.add_argument("--lake", required=True, help="lake directory or s3://bucket/prefix")
    compact.add_argument(
        "--glue-database", help="an s3:// lake's Glue database (its alb_logs partitions follow the compaction)"
    )
    compact.add_argument(
        "--older-than",
        type=_minutes,
        default=120.0,
        metavar="MINUTES",
        help="compact hours that ended at least this long ago (default 120: ALB delivers within minutes)",
    )
    compact.add_argument(
        "--grace",
        type=_minutes,
        default=60.0,
        metavar="MINUTES",
        help="delete replaced files this long after they stopped being visible (default 60: running queries finish)",
    )
    compact.set_defaults(func=_cmd_compact)

    status = commands.add_parser("status", help="objects, partitions, files, rows, quarantine and gaps per LB")
    status.add_argument("--lake", required=True, help="lake directory or s3://bucket/prefix")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_cmd_status)
