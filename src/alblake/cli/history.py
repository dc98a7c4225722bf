"""History commands: ``alblake backfill`` (log bucket -> the ingest queue) and ``alblake replay`` (re-ingest
the sources of quarantined lines). Registered by ``alblake.cli``."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from alblake.cli.progress import describe_failure, progress_bar
from alblake.display import printable
from alblake.ingest.filters import ObjectFilter, parse_day
from alblake.ingest.runner import ingest_objects
from alblake.ingest.selection import Failure, LogObject
from alblake.locations import LakeLocationError, open_lake_at, open_store_at, remote_object
from alblake.replay import QuarantinedSource, local_source, quarantine_index, select_for_replay
from alblake.s3_urls import bucket_and_key


def _day(text: str) -> Any:
    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _error(message: str) -> None:
    print(f"error: {printable(message)}", file=sys.stderr)


def _filter(args: argparse.Namespace) -> ObjectFilter:
    return ObjectFilter(since=args.since, until=args.until, elb=getattr(args, "elb", None))


# ----------------------------------------------------------------------------------------------- backfill


def _cmd_backfill(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from alblake.aws.s3_listing import InventoryError, inventory_objects, list_selected
    from alblake.aws.s3_location import open_s3_store
    from alblake.aws.session import client
    from alblake.aws.sqs import EnqueueError, QueueSender, queue_url
    from alblake.s3_urls import S3UrlError, parse_s3_url
    from alblake.service.backfill import BackfillState, run_backfill, stems_in_lake

    if args.lake is None and not args.force:
        _error("--lake s3://bucket/prefix is needed to skip the objects the lake has (or --force)")
        return 2
    if args.queue is None and not args.dry_run:
        _error("--queue URL|NAME is required (or --dry-run)")
        return 2
    source = args.inventory or args.source
    if source is None or (args.inventory and args.source):
        _error("give either a source s3://bucket/prefix or --inventory s3://.../manifest.json")
        return 2
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
            objects = list_selected(s3, bucket, prefix, _filter(args), start_after=state.last_key if state else "")
            skip = 0
        sender = None if args.dry_run else QueueSender(client("sqs"), queue_url(client("sqs"), args.queue))
        summary = run_backfill(
            objects, object_filter=_filter(args), in_lake=in_lake, sender=sender, state=state, skip_rows=skip
        )
    except (ClientError, BotoCoreError, EnqueueError, InventoryError, S3UrlError, ValueError) as exc:
        _error(str(exc))
        if not args.dry_run:
            print(f"re-run the same command to resume (state: {printable(str(state_path))})", file=sys.stderr)
        return 1
    print("\n".join(summary.lines(dry_run=args.dry_run)))
    if not args.dry_run:
        print(f"state           {printable(str(state_path))} (an unfinished run resumes from it; --fresh starts over)")
    return 0


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

    from alblake.aws.session import client
    from alblake.aws.sqs import EnqueueError, QueueSender, notification_body, queue_url

    s3_objects = [found for s in chosen if (found := bucket_and_key(s.source_id)) is not None]
    bodies = [notification_body(bucket, key, 0) for bucket, key in s3_objects]
    try:
        QueueSender(client("sqs"), queue_url(client("sqs"), args.queue)).send(bodies)
    except (ClientError, BotoCoreError, EnqueueError) as exc:
        _error(str(exc))
        return 1
    print(f"enqueued                 {len(bodies):,} source objects for the ingest function")
    print("quarantined after        (when the queue is drained: alblake replay --dry-run --lake ... again)")
    skipped = len(chosen) - len(s3_objects)
    if skipped:
        _error(f"{skipped} sources are not s3:// objects and cannot go through the queue")
        return 1
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    try:
        open_lake_at(args.lake, glue_database=args.glue_database)
        store = open_store_at(args.lake)
        chosen = select_for_replay(quarantine_index(store), reason=args.reason, object_filter=_filter(args))
    except (LakeLocationError, OSError) as exc:
        _error(str(exc))
        return 2
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
    show_progress = sys.stderr.isatty() and not args.quiet
    summary = ingest_objects(
        sources,
        args.lake,
        jobs=args.jobs,
        glue_database=args.glue_database,
        progress=progress_bar if show_progress else None,
    )
    after = quarantine_index(store)
    replayed = {s.source_id for s in sources} - {name for name, _ in summary.failures}
    _print_index("quarantined after", [after[sid] for sid in sorted(replayed) if sid in after])
    print(f"re-ingested              {summary.files:,} source objects, {summary.rows:,} rows")
    for failure in failures:
        print(describe_failure(failure.name, failure.reason), file=sys.stderr)
    for name, reason in summary.failures:
        print(describe_failure(name, reason), file=sys.stderr)
    return 1 if failures or summary.failures else 0


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
    backfill.add_argument("--queue", help="the stack's ingest queue (URL or name)")
    backfill.add_argument("--lake", help="the lake (s3://bucket/prefix): objects it already has are skipped")
    backfill.add_argument("--force", action="store_true", help="enqueue objects the lake already has too")
    backfill.add_argument("--dry-run", action="store_true", help="only count the objects and bytes")
    backfill.add_argument(
        "--state", type=Path, help="state file (default: one per source, queue and filter in the current directory)"
    )
    backfill.add_argument("--fresh", action="store_true", help="start from the beginning (forget the state file)")
    _add_filters(backfill, elb=True)
    backfill.set_defaults(func=_cmd_backfill)

    replay = subparsers.add_parser("replay", help="re-ingest the source objects that have quarantined lines")
    replay.add_argument("--lake", required=True, help="lake directory or s3://bucket/prefix")
    replay.add_argument("--reason", help="only sources with a quarantine reason containing this text")
    replay.add_argument("--queue", help="send s3:// sources to the ingest queue (an AWS lake) instead")
    replay.add_argument("--glue-database", help="register new partitions in this database's alb_logs table")
    replay.add_argument("--source-root", type=Path, help="directory holding AWSLogs/ for sources ingested from one")
    replay.add_argument("--dry-run", action="store_true", help="only show what is quarantined")
    replay.add_argument(
        "--jobs", type=int, help="processes (default: one per core when there are many objects or bytes)"
    )
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_filters(replay, elb=False)
    replay.set_defaults(func=_cmd_replay)


def _add_filters(parser: argparse.ArgumentParser, *, elb: bool) -> None:
    parser.add_argument("--since", type=_day, help="only objects delivered on or after this UTC day (YYYY-MM-DD)")
    parser.add_argument("--until", type=_day, help="only objects delivered on or before this UTC day")
    if elb:
        parser.add_argument("--elb", help="only objects of this load balancer (name, or app/NAME/ID)")
