"""Command line: ``alblake compact``, ``alblake status`` and ``alblake repair`` (registered by ``alblake.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from alblake.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    add_jobs,
    add_lake,
    add_window,
    examples,
    glue_database_of,
    lake_of,
    minutes,
    print_error,
    print_failures,
    scope_of,
)
from alblake.cli.output import render
from alblake.display import printable
from alblake.ingest.selection import Failure, LogObject
from alblake.lake.generational import GenerationalLake
from alblake.lake.generations import PartitionState
from alblake.lake.layout import Partition
from alblake.locations import LakeLocationError, existing_object, open_existing_lake_at, scheme_of
from alblake.replay import SourceRoots
from alblake.scope import Scope

if TYPE_CHECKING:
    from alblake.lake.compaction import CompactionReport
    from alblake.lake.status import LakeStatus
    from alblake.rollup.check import RollupCheck


def _open(location: str, glue_database: str | None = None) -> GenerationalLake:
    """The lake to compact, check or repair; it must exist (and be reachable: one clear error otherwise)."""
    lake = open_existing_lake_at(location, glue_database=glue_database)
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
    location, glue_database = lake_of(args), glue_database_of(args)
    if scheme_of(location) is not None and not glue_database:
        print_error(
            f"{location}: compacting an S3 lake moves its Glue partition Locations; give --glue-database "
            "(the stack's GlueDatabaseName) or --stack NAME, or leave it to the deployed CompactFunction"
        )
        return EXIT_USAGE
    from alblake.lake.compaction import CompactionOptions, compact

    lake = _open(location, glue_database)
    started = datetime.now(UTC)
    options = CompactionOptions(
        now=started, older_than=timedelta(minutes=args.older_than), grace=timedelta(minutes=args.grace)
    )
    report = compact(lake, options)
    print(format_report(report, (datetime.now(UTC) - started).total_seconds()))
    if report.files_removed:
        gone = started + timedelta(minutes=args.grace)
        print(
            f"note: the {report.files_removed} replaced files stay on disk until {gone:%Y-%m-%dT%H:%MZ} (--grace "
            f"{args.grace:g} minutes, so running queries finish); until then the folder holds them besides the "
            "new files. Readers see each row once; a later 'alblake compact' deletes them"
        )
    for partition, message in report.errors:
        print_error(f"{partition}: {message}")
    return EXIT_FAILED if report.errors else 0


def _cmd_status(args: argparse.Namespace) -> int:
    from alblake.lake.status import format_status, lake_status, stale_balancers

    location = lake_of(args)
    lake = _open(location)
    scope = scope_of(args)
    seen = _ScopedLake(lake, scope) if scope != Scope() else lake
    status = lake_status(seen, verify=args.verify)
    status = _narrowed(status, scope, args.limit)
    rollup = _rollup_check(seen, status, args)
    # Staleness is about now: a window that ends in the past says nothing about it.
    stale_after = timedelta(minutes=args.stale_after)
    stale = [] if scope.until is not None else stale_balancers(status, datetime.now(UTC), stale_after)
    if args.format == "json":
        body: dict[str, Any] = status.as_dict()
        body["stale_load_balancers"] = [s.as_dict() for s in stale]
        body["rollup"] = None if rollup is None else rollup.as_dict()
        print(json.dumps(body, indent=1))
    elif args.format in {"jsonl", "csv"}:
        rows = [{"load_balancer": name, **body} for name, body in status.as_dict()["load_balancers"].items()]
        sys.stdout.write(render(pa.Table.from_pylist(_flat(rows)), args.format, raw=args.raw))
    else:
        print(format_status(status))
        if rollup is not None:
            print(
                f"\nrollup rows {rollup.rows:,}  requests {rollup.requests:,}  mismatched partition-hours "
                f"{rollup.mismatches:,}"
            )
        for found in stale:
            print(f"stale: {printable(found.describe())}")
    if stale:
        print(
            f"warning: {len(stale)} load balancer(s) delivered nothing for over {args.stale_after:g} minutes: an "
            "idle load balancer writes no logs; otherwise check the log wiring with 'alblake doctor --stack NAME' "
            "(docs/OPERATIONS.md)",
            file=sys.stderr,
        )
    if status.damage or status.duplicates:
        print_error(
            f"{len(status.damage)} damaged partition(s), {len(status.duplicates)} object(s) in the lake more than "
            f"once: 'alblake repair --lake {location}' rebuilds unreadable states, ingests the objects whose files "
            "are missing again from their sources and keeps one copy of each object"
        )
    if rollup is not None and rollup.mismatches:
        print_error(
            f"the rollup table disagrees with the curated table in {rollup.mismatches} partition-hour(s) "
            f"({printable(', '.join(rollup.mismatched[:3]))}{', ...' if rollup.mismatches > 3 else ''}): "
            f"'alblake repair --lake {location}' writes their rollup files again from their data files"
        )
    failed = status.unreadable or status.damage or status.duplicates or (stale and args.fail_if_stale)
    return EXIT_FAILED if failed or (rollup is not None and rollup.mismatches) else 0


def _rollup_check(lake: GenerationalLake, status: LakeStatus, args: argparse.Namespace) -> RollupCheck | None:
    """The rollup against the curated table within the status scope; None with ``--no-rollup``, for a lake without
    the rollup table, or when files are unreadable or missing (the damage is reported; repair it first)."""
    if args.no_rollup or not lake.derived or status.unreadable or status.damage:
        return None
    from alblake.rollup.check import rollup_check

    return rollup_check(lake)


class _ScopedLake(GenerationalLake):
    """The lake as ``status`` sees it within ``--elb/--since/--until``: the partitions of that load balancer and
    window (files, rows, partitions, late objects); objects and delivery gaps are those of the chosen load
    balancers, gaps cut to the window."""

    def __init__(self, lake: GenerationalLake, scope: Scope) -> None:
        super().__init__(lake.store, lake.registrar, clock=lake.clock, derived=lake.derived)
        self.scope = scope

    def visible_keys(self) -> list[tuple[str, Partition]]:
        return [(key, partition) for key, partition in super().visible_keys() if self.scope.accepts(partition)]

    def states(self) -> list[PartitionState]:
        return [state for state in super().states() if self.scope.accepts(state.partition)]


def _narrowed(status: LakeStatus, scope: Scope, limit: int | None) -> LakeStatus:
    if scope.elb_name is not None:
        status.balancers = {n: b for n, b in status.balancers.items() if n == scope.elb_name}
    for balancer in status.balancers.values():
        balancer.gaps = [
            gap for gap in balancer.gaps
            if (scope.until is None or gap.after < scope.until) and (scope.since is None or gap.before > scope.since)
        ]
    if limit is not None:
        status.balancers = dict(sorted(status.balancers.items())[:limit])
    return status


def _flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for CSV and JSON lines: nested values (reasons, gap intervals) as JSON text."""
    return [{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()} for row in rows]


def _cmd_repair(args: argparse.Namespace) -> int:
    location, glue_database = lake_of(args), glue_database_of(args)
    lake = _open(location, glue_database)
    code = _repair_files(args, lake, location, glue_database)
    if code == 0 and lake.derived:
        code = _repair_rollup(lake, dry_run=args.dry_run)
    return code


def _repair_rollup(lake: GenerationalLake, *, dry_run: bool) -> int:
    """Write the rollup files of the partition-hours whose rollup sums disagree with the curated table again, from
    their data files (``alblake.lake.repair.rederive_siblings``), then check again."""
    from alblake.lake.repair import rederive_siblings
    from alblake.rollup.check import rollup_check

    check = rollup_check(lake)
    if not check.mismatches:
        print("nothing to repair in the rollup: it agrees with the curated table in every partition-hour")
        return 0
    print(f"rollup: {check.mismatches} partition-hour(s) disagree with the curated table")
    if dry_run:
        return 0
    for partition, files in sorted(rederive_siblings(lake, check.mismatched_partitions).items()):
        print(f"{printable(partition.elb_name)}/{partition.day}/{partition.hour}: rollup files re-derived from "
              f"{files} data file(s)")
    left = rollup_check(lake).mismatches
    if left:
        print_error(
            f"the rollup still disagrees in {left} partition-hour(s): a compaction moved their files meanwhile; run "
            "'alblake repair' again"
        )
    return EXIT_FAILED if left else 0


def _repair_files(args: argparse.Namespace, lake: GenerationalLake, location: str, glue_database: str | None) -> int:
    """Damaged partitions and objects in the lake twice (see ``alblake.lake.repair``)."""
    from alblake.ingest.runner import ingest_objects
    from alblake.lake.repair import (
        find_damage,
        find_duplicates,
        forget_lost_files,
        forget_missing,
        read_manifests,
        rebuild_state,
        remove_duplicate,
        sources_of,
    )

    manifests = read_manifests(lake)
    damage = find_damage(lake, manifests)
    duplicates = find_duplicates(manifests)
    for found in damage:
        print(printable(found.describe()))
    for duplicate in duplicates:
        print(f"{printable(duplicate.identity.removeprefix('alb:'))}: in the lake {len(duplicate.stems)} times")
    if not damage and not duplicates:
        print(
            "nothing to repair in the files: every state is readable, every file the lake names is there, no object "
            "twice"
        )
        return 0
    if args.dry_run:
        return 0
    for duplicate in duplicates:
        changed = remove_duplicate(lake, duplicate, manifests)
        print(
            f"{printable(duplicate.identity.removeprefix('alb:'))}: {len(duplicate.stems) - 1} extra cop(ies) "
            f"removed from {changed} partition(s)"
        )
    if not damage:
        return 0
    for found in damage:
        if found.state_error is not None:
            rebuild_state(lake, found.partition)
            print(f"{printable(found.partition.path)}: state rebuilt from its folders")
    damage = find_damage(lake)
    stems = sorted({stem for found in damage for stem in found.stems})
    source_ids = sources_of(lake, stems)
    failures = [Failure(stem, "no manifest names its source") for stem in stems if stem not in source_ids]
    readable: dict[str, LogObject] = {}
    roots = SourceRoots.of(args.source_root or [], any_bucket=True)
    for source_id in sorted(set(source_ids.values())):
        found_source = existing_object(source_id, roots)
        if isinstance(found_source, Failure):
            failures.append(found_source)
        else:
            readable[source_id] = found_source
    recoverable = {stem for stem, source_id in source_ids.items() if source_id in readable}
    for found in damage:
        forget_missing(lake, found.partition, recoverable)
        if args.accept_loss:
            forget_lost_files(lake, found, set(found.stems) - recoverable)
    summary = ingest_objects(list(readable.values()), location, jobs=args.jobs, glue_database=glue_database)
    print(f"re-ingested              {summary.files:,} source objects, {summary.rows:,} rows")
    print_failures([(f.name, f.reason) for f in failures] + summary.failures)
    left = find_damage(lake)
    if left:
        print_error(
            f"{len(left)} partition(s) still miss rows whose sources cannot be read (see above); restore those "
            f"sources (--source-root) and run 'alblake repair' again, or accept the loss: 'alblake repair --lake "
            f"{location} --accept-loss'"
        )
    return EXIT_FAILED if summary.failures or left or (failures and not args.accept_loss) else 0


def registrars() -> dict[str, Any]:
    """This module's commands by name (``alblake.cli`` lists them in workflow order)."""
    return {"status": _register_status, "compact": _register_compact, "repair": _register_repair}


def _register_compact(commands: Any) -> None:
    compact = commands.add_parser(
        "compact", help="compact closed partition-hours into one sorted file each",
        description="Rewrite each closed partition-hour into one time-sorted file (readers see every row once at "
        "every step). Replaced files stay on disk for --grace minutes, so the folder briefly holds both.",
        **examples(
            "alblake compact --lake lake/",
            "alblake compact --lake lake/ --older-than 0 --grace 0   # everything, now (no reader running)",
            "alblake compact --stack prod",
        ),
    )
    add_lake(compact)
    compact.add_argument(
        "--glue-database", metavar="NAME",
        help="an s3:// lake's Glue database (its alb_logs partitions follow the compaction; default with --stack: "
        "its GlueDatabaseName)",
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


def _register_status(commands: Any) -> None:
    status = commands.add_parser(
        "status", help="what the lake holds per load balancer: objects, rows, quarantine, delivery gaps",
        description="Per load balancer: objects, log time range, partitions, visible files, rows, quarantined "
        "lines by reason, 5-minute delivery gaps and late objects; damaged partitions are named (exit 1).",
        **examples(
            "alblake status --lake lake/",
            "alblake status --elb web-prod --since 24h",
            "alblake status --format json | jq .load_balancers",
            "alblake status --verify   # also read every file whole",
        ),
    )
    add_lake(status)
    add_window(status)
    status.add_argument(
        "--format", choices=("table", "csv", "json", "jsonl"), default="table",
        help="table (default, fits 120 columns); json: the whole status; csv, jsonl: one row per load balancer",
    )
    status.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    status.add_argument("--csv", dest="format", action="store_const", const="csv", help="same as --format csv")
    status.add_argument("--raw", action="store_true", help="CSV cells as stored (no formula neutralising)")
    status.add_argument(
        "--verify", action="store_true", help="also read every visible file whole (slower: reads all the data)"
    )
    status.add_argument(
        "--stale-after", type=minutes, default=60.0, metavar="MINUTES",
        help="name load balancers whose newest delivered object is older than this (default 60)",
    )
    status.add_argument("--fail-if-stale", action="store_true", help="exit 1 when a load balancer is stale")
    status.add_argument(
        "--no-rollup", action="store_true",
        help="skip the rollup check (it reads 6 columns of every visible file in the scope, not only footers)",
    )
    status.set_defaults(func=_cmd_status)


def _register_repair(commands: Any) -> None:
    repair = commands.add_parser(
        "repair", help="rebuild unreadable partition states; bring back rows of files the lake names but lost; "
        "write rollup files that disagree with their data files again",
        **examples("alblake repair --lake lake/ --dry-run", "alblake repair --lake lake/ --source-root logs/"),
    )
    add_lake(repair)
    repair.add_argument(
        "--glue-database", metavar="NAME", help="an s3:// lake's Glue database (its partitions follow the repair)"
    )
    repair.add_argument(
        "--source-root", action="append", metavar="DIR",
        help="a folder the objects were ingested from (repeatable): only files under these are read again",
    )
    repair.add_argument("--dry-run", action="store_true", help="only list the damaged partitions")
    repair.add_argument(
        "--accept-loss",
        action="store_true",
        help="objects whose source is gone: stop naming their missing files (their rows are lost for good)",
    )
    add_jobs(repair)
    repair.set_defaults(func=_cmd_repair)
