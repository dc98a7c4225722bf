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
    examples,
    glue_database_of,
    object_filter,
    print_error,
    print_failures,
    settings_of,
)
from alblake.display import printable
from alblake.errors import AlblakeError
from alblake.ingest.selection import Failure, LogObject
from alblake.locations import existing_object, open_existing_lake_at, open_store_at, scheme_of
from alblake.replay import QuarantinedSource, SourceRoots, quarantine_index, select_for_replay
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

    settings = settings_of(args)
    lake = settings.optional_lake()
    outputs = settings.stack_outputs() if settings.stack else None
    queue = args.queue or (outputs.ingest_queue_url if outputs is not None else None) or None
    if args.source is None and args.inventory is None and outputs is not None and outputs.log_prefix:
        args.source = outputs.log_prefix
    if lake is None and not args.force:
        print_error("--lake s3://bucket/prefix (or --stack NAME) is needed to skip what the lake has (or --force)")
        return EXIT_USAGE
    if queue is None and not args.dry_run:
        print_error("--queue URL|NAME (or --stack NAME) is required (or --dry-run)")
        return EXIT_USAGE
    args.queue, args.lake = queue, lake
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
        if not args.dry_run and state_path.exists():
            print(f"re-run the same command to resume (state: {printable(str(state_path))})", file=sys.stderr)
        elif not args.dry_run:
            print("nothing was enqueued and no state was saved: fix the above and run the command again",
                  file=sys.stderr)
        return EXIT_FAILED
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

    from alblake.aws.events import notification_body
    from alblake.aws.session import client
    from alblake.aws.sqs import QueueSender, queue_url

    roots = _roots(args, any_bucket=not args.source_root)
    s3_objects = [
        found for s in chosen if roots.allows_remote(s.source_id) and (found := bucket_and_key(s.source_id)) is not None
    ]
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
        print_error(f"{skipped} sources are not s3:// objects under the given roots and cannot go through the queue")
        return EXIT_FAILED
    return 0


def _roots(args: argparse.Namespace, *, any_bucket: bool = False) -> SourceRoots:
    """The roots replay may read from: ``--source-root`` (folders and s3:// prefixes) and the stack's log prefix."""
    roots = list(args.source_root or [])
    outputs = settings_of(args).stack_outputs() if settings_of(args).stack else None
    if outputs is not None and outputs.log_prefix:
        roots.append(outputs.log_prefix)
    return SourceRoots.of(roots, any_bucket=any_bucket)


def _cmd_replay(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    location, glue_database = settings.lake(), glue_database_of(args)
    outputs = settings.stack_outputs() if settings.stack else None
    if not args.queue and outputs is not None and outputs.ingest_queue_url and scheme_of(location) == "s3":
        # a deployed stack's lake: its ingest function re-ingests (with its own grants; the operator's policy
        # lets them enqueue, not write the lake)
        args.queue = outputs.ingest_queue_url
    # a lake that is not there: one clear error (the queue's function registers the partitions itself)
    open_existing_lake_at(location, glue_database=None if args.queue else glue_database)
    try:
        store = open_store_at(location)
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
    roots = _roots(args)
    for entry in chosen:
        found = existing_object(entry.source_id, roots)
        (failures if isinstance(found, Failure) else sources).append(found)  # type: ignore[arg-type]
    from alblake.cli.progress import progress_callback
    from alblake.ingest.runner import ingest_objects

    summary = ingest_objects(
        sources, location, jobs=args.jobs, glue_database=glue_database, progress=progress_callback(args.quiet)
    )
    after = quarantine_index(store)
    replayed = {s.source_id for s in sources} - {name for name, _ in summary.failures}
    _print_index("quarantined after", [after[sid] for sid in sorted(replayed) if sid in after])
    print(f"re-ingested              {summary.files:,} source objects, {summary.rows:,} rows")
    print_failures([(f.name, f.reason) for f in failures] + summary.failures)
    return EXIT_FAILED if failures or summary.failures else 0


def registrars() -> dict[str, Any]:
    """This module's commands by name (``alblake.cli`` lists them in workflow order)."""
    return {"replay": _register_replay, "backfill": _register_backfill}


def _register_backfill(subparsers: Any) -> None:
    backfill = subparsers.add_parser(
        "backfill", help="enqueue history from the log bucket for the deployed ingest function (SQS)",
        description="List the log bucket (or an S3 Inventory), skip what the lake has, and send one message per "
        "object to the stack's ingest queue. Resumable: re-running the same command continues.",
        **examples(
            "alblake backfill --stack prod --since 2026-11-01 --dry-run",
            "alblake backfill s3://my-alb-logs/AWSLogs/ --stack prod --since 2026-01-01",
            "alblake backfill --inventory s3://inventory/my-alb-logs/cfg/2026-01-01T00-00Z/manifest.json --stack prod",
        ),
    )
    backfill.add_argument(
        "source", nargs="?", metavar="s3://BUCKET/PREFIX",
        help="the log bucket prefix to list (ListObjectsV2; default with --stack: its AccessLogPrefix)",
    )
    backfill.add_argument(
        "--inventory", metavar="s3://.../manifest.json", help="an S3 Inventory run's manifest, instead of listing"
    )
    backfill.add_argument(
        "--queue", metavar="URL|NAME", help="the stack's ingest queue (default with --stack: its IngestQueueUrl)"
    )
    add_lake(backfill, help_text="the lake (s3://bucket/prefix): objects it already has are skipped")
    backfill.add_argument("--force", action="store_true", help="enqueue objects the lake already has too")
    backfill.add_argument("--dry-run", action="store_true", help="only count the objects and bytes")
    backfill.add_argument(
        "--state", type=Path, metavar="FILE",
        help="state file (default: one per source, queue and filter in the current directory)",
    )
    backfill.add_argument("--fresh", action="store_true", help="start from the beginning (forget the state file)")
    add_dates(backfill)
    add_elb(backfill)
    backfill.set_defaults(func=_cmd_backfill)


def _register_replay(subparsers: Any) -> None:
    replay = subparsers.add_parser(
        "replay", help="re-ingest the source objects that have quarantined lines (after a parser upgrade)",
        description="The lake's quarantine names each source object and why its lines were rejected; replay "
        "ingests those objects again, so lines the new parser accepts become rows exactly once. Only objects "
        "under the --source-root folders or s3:// prefixes you name are read (a lake's records are data, not "
        "instructions).",
        **examples(
            "alblake replay --lake lake/ --dry-run",
            "alblake replay --lake lake/ --reason fields --source-root logs/",
            "alblake replay --lake lake/ --source-root s3://my-alb-logs/AWSLogs/",
            "alblake replay --stack prod --queue https://sqs.eu-west-1.amazonaws.com/123456789012/prod-IngestQueue-AbC",
        ),
    )
    add_lake(replay)
    replay.add_argument("--reason", help="only sources with a quarantine reason containing this text")
    replay.add_argument("--queue", metavar="URL|NAME", help="send s3:// sources to the ingest queue (an AWS lake)")
    replay.add_argument(
        "--glue-database", metavar="NAME", help="register new partitions in this database's alb_logs table"
    )
    replay.add_argument(
        "--source-root", action="append", metavar="DIR|s3://BUCKET/PREFIX",
        help="where the sources were ingested from (repeatable); nothing outside these is read",
    )
    replay.add_argument("--dry-run", action="store_true", help="only show what is quarantined")
    add_jobs(replay)
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dates(replay)
    replay.set_defaults(func=_cmd_replay)
