"""Command line: ``alblake compact`` and ``alblake status`` (registered by ``alblake.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alblake.display import printable
from alblake.ingest.runner import ingest_objects
from alblake.ingest.selection import Failure, LogObject
from alblake.lake.generations import StateFormatError
from alblake.lake.genlake import CompactionOptions, CompactionReport, GenerationalLake
from alblake.lake.repair import find_damage, forget_lost_files, sources_of
from alblake.lake.status import format_status, lake_status
from alblake.locations import LakeLocationError, existing_object, open_lake_at


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
        status = lake_status(lake, verify=args.verify)
    except StateFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        body: dict[str, Any] = status.as_dict()
        print(json.dumps(body, indent=1))
    else:
        print(format_status(status))
    if status.damage:
        print(
            f"error: {len(status.damage)} damaged partition(s): 'alblake repair --lake {args.lake}' rebuilds "
            "unreadable states and ingests the objects whose files are missing again from their sources",
            file=sys.stderr,
        )
    return 1 if status.unreadable or status.damage else 0


def print_error(message: str) -> None:
    print(f"error: {printable(message)}", file=sys.stderr)


def _cmd_repair(args: argparse.Namespace) -> int:
    lake = _open(args.lake, args.glue_database)
    if lake is None:
        return 2
    damage = find_damage(lake)
    for found in damage:
        print(found.describe())
    if not damage:
        print("nothing to repair: every state is readable and every file the lake names is there")
        return 0
    if args.dry_run:
        return 0
    for found in damage:
        if found.state_error is not None:
            lake.rebuild_state(found.partition)
            print(f"{found.partition.path}: state rebuilt from its folders")
    damage = find_damage(lake)
    stems = sorted({stem for found in damage for stem in found.stems})
    source_ids = sources_of(lake, stems)
    failures = [Failure(stem, "no manifest names its source") for stem in stems if stem not in source_ids]
    readable: dict[str, LogObject] = {}
    for source_id in sorted(set(source_ids.values())):
        found_source = existing_object(source_id, args.source_root)
        if isinstance(found_source, Failure):
            failures.append(found_source)
        else:
            readable[source_id] = found_source
    recoverable = {stem for stem, source_id in source_ids.items() if source_id in readable}
    for found in damage:
        lake.forget_missing(found.partition, recoverable)
        if args.accept_loss:
            forget_lost_files(lake, found, set(found.stems) - recoverable)
    summary = ingest_objects(list(readable.values()), args.lake, jobs=args.jobs, glue_database=args.glue_database)
    print(f"re-ingested              {summary.files:,} source objects, {summary.rows:,} rows")
    for name, reason in [(f.name, f.reason) for f in failures] + summary.failures:
        print_error(f"{name}: {reason}")
    left = find_damage(lake)
    if left:
        print_error(
            f"{len(left)} partition(s) still miss rows whose sources cannot be read (see above); restore those "
            f"sources (--source-root) and run 'alblake repair' again, or accept the loss: 'alblake repair --lake "
            f"{args.lake} --accept-loss'"
        )
    return 1 if summary.failures or left or (failures and not args.accept_loss) else 0


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
    status.add_argument(
        "--verify", action="store_true", help="also read every visible file whole (slower: reads all the data)"
    )
    status.set_defaults(func=_cmd_status)

    repair = commands.add_parser(
        "repair", help="rebuild unreadable partition states; bring back rows of files the lake names but lost"
    )
    repair.add_argument("--lake", required=True, help="lake directory or s3://bucket/prefix")
    repair.add_argument("--glue-database", help="an s3:// lake's Glue database (its partitions follow the repair)")
    repair.add_argument("--source-root", type=Path, help="directory holding AWSLogs/ for objects ingested from one")
    repair.add_argument("--dry-run", action="store_true", help="only list the damaged partitions")
    repair.add_argument(
        "--accept-loss",
        action="store_true",
        help="objects whose source is gone: stop naming their missing files (their rows are lost for good)",
    )
    repair.add_argument("--jobs", type=int, help="processes (default: one per core when there are many objects)")
    repair.set_defaults(func=_cmd_repair)

