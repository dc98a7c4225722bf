"""Command line: ``alblake compact``, ``alblake status`` and ``alblake repair`` (registered by ``alblake.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alblake.cli.common import EXIT_FAILED, EXIT_USAGE, add_jobs, add_lake, minutes, print_error
from alblake.ingest.runner import ingest_objects
from alblake.ingest.selection import Failure, LogObject
from alblake.lake.compaction import CompactionOptions, CompactionReport, compact
from alblake.lake.generational import GenerationalLake
from alblake.lake.repair import find_damage, forget_lost_files, forget_missing, rebuild_state, sources_of
from alblake.lake.status import format_status, lake_status, stale_balancers
from alblake.locations import LakeLocationError, existing_object, open_existing_lake_at, open_lake_at, scheme_of


def _open(location: str, glue_database: str | None = None) -> GenerationalLake:
    """The lake to compact, check or repair; it must exist."""
    lake = open_lake_at(location, glue_database=glue_database) if glue_database else open_existing_lake_at(location)
    if not isinstance(lake, GenerationalLake):
        raise LakeLocationError(f"{location}: this lake has no partition states ({type(lake).__name__})")
    return lake


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
    if scheme_of(args.lake) is not None and not args.glue_database:
        print_error(
            f"{args.lake}: compacting an S3 lake moves its Glue partition Locations; give --glue-database "
            "(the stack's GlueDatabaseName), or leave it to the deployed CompactFunction"
        )
        return EXIT_USAGE
    lake = _open(args.lake, args.glue_database)
    started = datetime.now(UTC)
    options = CompactionOptions(
        now=started, older_than=timedelta(minutes=args.older_than), grace=timedelta(minutes=args.grace)
    )
    report = compact(lake, options)
    print(format_report(report, (datetime.now(UTC) - started).total_seconds()))
    for partition, message in report.errors:
        print_error(f"{partition}: {message}")
    return EXIT_FAILED if report.errors else 0


def _cmd_status(args: argparse.Namespace) -> int:
    status = lake_status(_open(args.lake), verify=args.verify)
    stale = stale_balancers(status, datetime.now(UTC), timedelta(minutes=args.stale_after))
    if args.json:
        body: dict[str, Any] = status.as_dict()
        body["stale_load_balancers"] = [s.as_dict() for s in stale]
        print(json.dumps(body, indent=1))
    else:
        print(format_status(status))
        for found in stale:
            print(f"stale: {found.describe()}")
    if stale:
        print(
            f"warning: {len(stale)} load balancer(s) delivered nothing for over {args.stale_after:g} minutes: an "
            "idle load balancer writes no logs; otherwise check the log wiring with 'alblake doctor --stack NAME' "
            "(docs/OPERATIONS.md)",
            file=sys.stderr,
        )
    if status.damage:
        print_error(
            f"{len(status.damage)} damaged partition(s): 'alblake repair --lake {args.lake}' rebuilds unreadable "
            "states and ingests the objects whose files are missing again from their sources"
        )
    return EXIT_FAILED if status.unreadable or status.damage or (stale and args.fail_if_stale) else 0


def _cmd_repair(args: argparse.Namespace) -> int:
    lake = _open(args.lake, args.glue_database)
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
            rebuild_state(lake, found.partition)
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
        forget_missing(lake, found.partition, recoverable)
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
    return EXIT_FAILED if summary.failures or left or (failures and not args.accept_loss) else 0


def register(commands: Any) -> None:
    """Add ``compact``, ``status`` and ``repair`` to the ``alblake`` sub-commands."""
    compact = commands.add_parser("compact", help="compact closed partition-hours into one sorted file each")
    add_lake(compact)
    compact.add_argument(
        "--glue-database", help="an s3:// lake's Glue database (its alb_logs partitions follow the compaction)"
    )
    compact.add_argument(
        "--older-than",
        type=minutes,
        default=120.0,
        metavar="MINUTES",
        help="compact hours that ended at least this long ago (default 120: ALB delivers within minutes)",
    )
    compact.add_argument(
        "--grace",
        type=minutes,
        default=60.0,
        metavar="MINUTES",
        help="delete replaced files this long after they stopped being visible (default 60: running queries finish)",
    )
    compact.set_defaults(func=_cmd_compact)

    status = commands.add_parser("status", help="objects, partitions, files, rows, quarantine and gaps per LB")
    add_lake(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--verify", action="store_true", help="also read every visible file whole (slower: reads all the data)"
    )
    status.add_argument(
        "--stale-after", type=minutes, default=60.0, metavar="MINUTES",
        help="name load balancers whose newest delivered object is older than this (default 60)",
    )
    status.add_argument("--fail-if-stale", action="store_true", help="exit 1 when a load balancer is stale")
    status.set_defaults(func=_cmd_status)

    repair = commands.add_parser(
        "repair", help="rebuild unreadable partition states; bring back rows of files the lake names but lost"
    )
    add_lake(repair)
    repair.add_argument("--glue-database", help="an s3:// lake's Glue database (its partitions follow the repair)")
    repair.add_argument("--source-root", type=Path, help="directory holding AWSLogs/ for objects ingested from one")
    repair.add_argument("--dry-run", action="store_true", help="only list the damaged partitions")
    repair.add_argument(
        "--accept-loss",
        action="store_true",
        help="objects whose source is gone: stop naming their missing files (their rows are lost for good)",
    )
    add_jobs(repair)
    repair.set_defaults(func=_cmd_repair)

