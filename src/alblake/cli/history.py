"""History commands: ``alblake backfill`` (log bucket -> the ingest queue) and ``alblake replay`` (re-ingest
the sources of quarantined lines). Registered by ``alblake.cli``."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from alblake.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    add_dates,
    add_elb,
    add_jobs,
    add_lake,
    object_filter,
    print_error,
)
from alblake.cli.progress import progress_callback
from alblake.display import printable
from alblake.errors import AlblakeError
from alblake.ingest.runner import ingest_objects
from alblake.ingest.selection import Failure, LogObject
from alblake.locations import open_lake_at, open_store_at, remote_object
from alblake.replay import QuarantinedSource, local_source, quarantine_index, select_for_replay
from alblake.s3_urls import bucket_and_key

# ----------------------------------------------------------------------------------------------- backfill


def _cmd_backfill(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from alblake.aws.s3_listing import inventory_objects, list_selected
    from alblake.aws.s3_location import open_s3_store
    from alblake.aws.session import client
    from alblake.aws.sqs import QueueSender, queue_url
    from alblake.s3_urls import parse_s3_url
    from alblake.service.backfill import BackfillState, run_backfill, stems_in_lake

    _from_stack(args)
    if args.lake is None and not args.force:
        print_error("--lake s3://bucket/prefix is needed to skip the objects the lake has (or --force, or --stack)")
        return EXIT_USAGE
    if args.queue is None and not args.dry_run:
        print_error("--stack NAME or --queue URL|NAME is required (or --dry-run)")
        return EXIT_USAGE
    source = args.inventory or args.source
    selected = object_filter(args)
    if source is None or (args.inventory and args.source):
        print_error("give either a source s3://bucket/prefix or --inventory s3://.../manifest.json")
        return EXIT_USAGE
    try:
        state_path = args.state or _default_state_path(args, source)
        if args.fresh and not args.dry_run:
            state_path.unlink(missing_ok=True)
        state = None if args.dry_run else BackfillState.load(state_path, source)
        s3 = client("s3")
        in_lake = set() if args.force else stems_in_lake(open_s3_store(args.lake))
        if args.inventory:
            objects = inventory_objects(s3, args.inventory)
            skip = state.position if state else 0
        else:
            bucket, prefix = parse_s3_url(args.source)
            objects = list_selected(s3, bucket, prefix, selected, start_after=state.last_key if state else "")
            skip = 0
        sender = None if args.dry_run else QueueSender(client("sqs"), queue_url(client("sqs"), args.queue))
        summary = run_backfill(
            objects, object_filter=selected, in_lake=in_lake, sender=sender, state=state, skip_rows=skip
        )
    except (AlblakeError, ClientError, BotoCoreError, ValueError) as exc:
        print_error(str(exc))
        if not args.dry_run:
            print(f"re-run the same command to resume (state: {printable(str(state_path))})", file=sys.stderr)
        return EXIT_FAILED
    print("\n".join(summary.lines(dry_run=args.dry_run)))
    if not args.dry_run:
        print(f"state           {printable(str(state_path))} (an unfinished run resumes from it; --fresh starts over)")
    return 0


def _from_stack(args: argparse.Namespace) -> None:
    """``--stack NAME``: the stack's ingest queue, and its lake unless ``--lake`` names one."""
    if getattr(args, "stack", None):
        from alblake.cli.ops import stack

        outputs = stack(args.stack)
        args.queue = args.queue or outputs.ingest_queue_url or None
        args.lake = args.lake or outputs.lake


def _default_state_path(args: argparse.Namespace, source: str) -> Path:
    """A state file per source, queue and filter in the current directory, so a re-run resumes by default."""
    identity = "|".join(str(v) for v in (source, args.queue, args.lake, args.since, args.until, args.elb, args.force))
    return Path(f".alblake-backfill-{hashlib.sha256(identity.encode()).hexdigest()[:12]}.json")


# ------------------------------------------------------------------------------------------------- replay


def _print_index(title: str, sources: list[QuarantinedSource]) -> None:
    total = sum(s.lines for s in sources)
    print(f"{title:24s} {total:,} lines in {len(sources):,} source objects")


def _by_reason(sources: list[QuarantinedSource]) -> list[str]:
    counts: dict[str, int] = {}
    for source in sources:
        for reason, count in source.reasons.items():
            counts[reason] = counts.get(reason, 0) + count
    return [f"  {count:>10,}  {printable(reason)}" for reason, count in sorted(counts.items(), key=lambda i: -i[1])]


def _replay_through_queue(args: argparse.Namespace, chosen: list[QuarantinedSource]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from alblake.aws.events import notification_body
    from alblake.aws.session import client
    from alblake.aws.sqs import QueueSender, queue_url

    s3_objects = [found for s in chosen if (found := bucket_and_key(s.source_id)) is not None]
    bodies = [notification_body(bucket, key, 0) for bucket, key in s3_objects]
    try:
        QueueSender(client("sqs"), queue_url(client("sqs"), args.queue)).send(bodies)
    except (ClientError, BotoCoreError) as exc:
        print_error(str(exc))
        return EXIT_FAILED
    print(f"enqueued                 {len(bodies):,} source objects for the ingest function")
    print("quarantined after        (when the queue is drained: alblake replay --dry-run --lake ... again)")
    skipped = len(chosen) - len(s3_objects)
    if skipped:
        print_error(f"{skipped} sources are not s3:// objects and cannot go through the queue")
        return EXIT_FAILED
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    _from_stack(args)
    if args.lake is None:
        print_error("--lake DIR|s3://bucket/prefix or --stack NAME is required")
        return EXIT_USAGE
    try:
        open_lake_at(args.lake, glue_database=args.glue_database)
        store = open_store_at(args.lake)
        chosen = select_for_replay(quarantine_index(store), reason=args.reason, object_filter=object_filter(args))
    except OSError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    _print_index("quarantined before", chosen)
    print("\n".join(_by_reason(chosen)))
    if args.dry_run or not chosen:
        return 0
    if args.queue:
        return _replay_through_queue(args, chosen)
    sources: list[LogObject] = []
    failures: list[Failure] = []
    for entry in chosen:
        found = _source_for(entry.source_id, args.source_root)
        (failures if isinstance(found, Failure) else sources).append(found)  # type: ignore[arg-type]
    summary = ingest_objects(
        sources, args.lake, jobs=args.jobs, glue_database=args.glue_database, progress=progress_callback(args.quiet)
    )
    after = quarantine_index(store)
    replayed = {s.source_id for s in sources} - {name for name, _ in summary.failures}
    _print_index("quarantined after", [after[sid] for sid in sorted(replayed) if sid in after])
    print(f"re-ingested              {summary.files:,} source objects, {summary.rows:,} rows")
    for name, reason in [(f.name, f.reason) for f in failures] + summary.failures:
        print_error(f"{name}: {reason}")
    return EXIT_FAILED if failures or summary.failures else 0


def _source_for(source_id: str, source_root: Path | None) -> LogObject | Failure:
    remote = remote_object(source_id)
    return remote if remote is not None else local_source(source_id, source_root)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``backfill`` and ``replay`` to the ``alblake`` command line."""
    backfill = subparsers.add_parser(
        "backfill", help="enqueue history from the log bucket for the deployed ingest function (SQS)"
    )
    backfill.add_argument("source", nargs="?", help="s3://log-bucket/prefix to list (ListObjectsV2)")
    backfill.add_argument("--inventory", help="s3://.../manifest.json of an S3 Inventory run, instead of listing")
    backfill.add_argument("--stack", metavar="NAME", help="the deployed stack: its ingest queue and lake")
    backfill.add_argument("--queue", help="the stack's ingest queue (URL or name), instead of --stack")
    add_lake(backfill, required=False, help_text="the lake (s3://bucket/prefix): objects it already has are skipped")
    backfill.add_argument("--force", action="store_true", help="enqueue objects the lake already has too")
    backfill.add_argument("--dry-run", action="store_true", help="only count the objects and bytes")
    backfill.add_argument(
        "--state", type=Path, help="state file (default: one per source, queue and filter in the current directory)"
    )
    backfill.add_argument("--fresh", action="store_true", help="start from the beginning (forget the state file)")
    add_dates(backfill)
    add_elb(backfill)
    backfill.set_defaults(func=_cmd_backfill)

    replay = subparsers.add_parser("replay", help="re-ingest the source objects that have quarantined lines")
    add_lake(replay, required=False)
    replay.add_argument("--reason", help="only sources with a quarantine reason containing this text")
    replay.add_argument("--stack", metavar="NAME", help="the deployed stack: its lake, through its ingest queue")
    replay.add_argument("--queue", help="send s3:// sources to the ingest queue (an AWS lake) instead")
    replay.add_argument("--glue-database", help="register new partitions in this database's alb_logs table")
    replay.add_argument("--source-root", type=Path, help="directory holding AWSLogs/ for sources ingested from one")
    replay.add_argument("--dry-run", action="store_true", help="only show what is quarantined")
    add_jobs(replay)
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dates(replay)
    replay.set_defaults(func=_cmd_replay)

