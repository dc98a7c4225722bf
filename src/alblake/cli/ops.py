"""Day-2 commands against a deployed stack: ``alblake redrive``, ``alblake doctor`` and ``alblake catalog sync``
(registered by ``alblake.cli``). Each takes ``--stack NAME`` (the stack's outputs name its queues, lake and
catalog) or the locations themselves. docs/OPERATIONS.md says when to run which."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from alblake.cli.common import EXIT_FAILED, EXIT_USAGE, add_stack, examples, print_error, settings_of
from alblake.display import printable
from alblake.errors import ConfigError


def stack(args: argparse.Namespace) -> Any:
    """The outputs of the stack named by ``--stack`` (or ALBLAKE_STACK / alblake.toml), None when none is named
    (``alblake.aws.stack.StackOutputs``; the same resolution as every other command's)."""
    return settings_of(args).stack_outputs()


# ------------------------------------------------------------------------------------------------ redrive


def _redrive_queues(args: argparse.Namespace) -> tuple[str, str | None]:
    """The dead-letter queue URL and the destination URL (None: each message's original source queue)."""
    outputs = None if args.dlq else stack(args)
    if outputs is not None:
        if not outputs.dead_letter_queue_url or not outputs.ingest_queue_url:
            raise ConfigError(f"stack {args.stack!r} has no IngestDeadLetterQueueUrl or IngestQueueUrl output")
        # Always the ingest queue: the dead-letter queue also keeps events EventBridge could not deliver, whose
        # source is no queue.
        return str(outputs.dead_letter_queue_url), args.to or str(outputs.ingest_queue_url)
    return str(args.dlq), args.to


def _cmd_redrive(args: argparse.Namespace) -> int:
    from alblake.aws import redrive
    from alblake.aws.session import client

    if args.dlq and args.stack:
        print_error("give either --stack NAME or --dlq URL (the dead-letter queue), not both")
        return EXIT_USAGE
    if not args.dlq and settings_of(args).stack is None:
        print_error("give either --stack NAME or --dlq URL (the dead-letter queue)")
        return EXIT_USAGE
    if args.rate is not None and not 1 <= args.rate <= redrive.MAX_RATE:
        print_error(f"--rate is between 1 and {redrive.MAX_RATE} messages per second (SQS's limit)")
        return EXIT_USAGE
    sqs = client("sqs")
    dlq_url, destination_url = _redrive_queues(args)
    depth = redrive.queue_depth(sqs, dlq_url)
    if not args.status and depth.total == 0:
        print(f"nothing to redrive: the dead-letter queue {printable(dlq_url)} is empty")
        return 0
    move = redrive.Redrive(
        redrive.move_task_client(),
        redrive.queue_arn(sqs, dlq_url),
        redrive.queue_arn(sqs, destination_url) if destination_url else None,
    )
    where = printable(destination_url or "their original source queues")
    if args.status:
        latest = move.latest()
        print(f"last redrive     {latest.describe() if latest else 'none (SQS keeps the 10 newest tasks)'}")
    else:
        handle = move.start(args.rate)
        print(f"started          moving ~{depth.total:,} message(s) from {printable(dlq_url)} to {where}")
        print(f"task             {handle}")
        latest = move.wait(on_progress=_progress) if args.wait else None
    return _report_left(sqs, dlq_url, destination_url, latest, waited=args.wait or args.status)


def _progress(task: Any) -> None:
    print(f"progress         {task.describe()}", file=sys.stderr)


def _report_left(sqs: Any, dlq_url: str, destination_url: str | None, latest: Any, *, waited: bool) -> int:
    from alblake.aws import redrive

    left = redrive.queue_depth(sqs, dlq_url)
    print(f"dead-letter left {left.visible:,} waiting, {left.in_flight:,} in flight")
    if destination_url:
        waiting = redrive.queue_depth(sqs, destination_url)
        print(f"ingest queue     {waiting.visible:,} waiting, {waiting.in_flight:,} being ingested")
    if not waited:
        print("follow it with   the same command and --status (or run it with --wait)")
    if latest is not None and latest.status == "FAILED":
        print_error(f"the redrive failed: {latest.failure or 'SQS gave no reason'}")
        return EXIT_FAILED
    return 0


# ------------------------------------------------------------------------------------------- catalog sync


def _cmd_catalog_sync(args: argparse.Namespace) -> int:
    from alblake.aws.session import client
    from alblake.lake.derived import default_derived_tables
    from alblake.lake.generational import GenerationalLake
    from alblake.lake.layout import DATA_PREFIX
    from alblake.locations import open_store_at, scheme_of

    outputs = None if args.lake and args.glue_database else stack(args)
    if outputs is not None:
        location, database, table = outputs.lake, outputs.glue_database, outputs.table
    elif args.lake and args.glue_database:
        location, database, table = args.lake, args.glue_database, args.table
    else:
        print_error("give --stack NAME, or --lake s3://bucket[/prefix] and --glue-database DB")
        return EXIT_USAGE
    if scheme_of(location) != "s3":
        print_error(f"{location}: catalog sync registers partitions in Glue: the lake must be s3://bucket[/prefix]")
        return EXIT_USAGE
    lake = GenerationalLake(open_store_at(location))
    glue = client("glue")
    sync = _TableSync(lake, glue, database, location, args.dry_run)
    sync.table(table, lake.store.url(DATA_PREFIX), None)
    for derived in default_derived_tables():  # the rollup: the curated table's partitions under its own prefix
        sync.table(derived.name, lake.store.url(derived.prefix), derived)
    return sync.exit_status()


class _TableSync:
    """``catalog sync`` of one table after the other: prints each table's diff and summary, keeps what failed."""

    def __init__(self, lake: Any, glue: Any, database: str, location: str, dry_run: bool) -> None:
        self.lake, self.glue, self.database, self.location, self.dry_run = lake, glue, database, location, dry_run
        self.protected = self.skipped = 0
        self.missing: list[str] = []

    def table(self, name: str, table_location: str, derived: Any) -> None:
        from alblake.aws.glue_catalog import GlueCatalog, table_definitions
        from alblake.lake.catalog import sync_catalog

        catalog = GlueCatalog(self.glue, self.database, name)
        definition = table_definitions().get(name) if derived is not None else None
        if derived is not None and definition is None and not catalog.exists():
            self.missing.append(name)  # a table this version cannot describe: its stack's template can
            print_error(f"{self.database}.{name} does not exist and this alblake cannot define it: 'sam deploy' of "
                        "the stack restores it (the template declares it); then run catalog sync again")
            return
        table_change = catalog.ensure_table(table_location, dry_run=self.dry_run, definition=definition)
        diff = sync_catalog(self.lake, catalog, dry_run=self.dry_run, derived=derived)
        for line in ([table_change] if table_change else []) + diff.lines():
            print(printable(line))
        changes = diff.changes + (1 if table_change else 0)
        verb = "would change" if self.dry_run else "changed"
        print(
            f"{self.database}.{name}: {verb} {changes} ({len(diff.create)} created, {len(diff.move)} moved, "
            f"{len(diff.delete)} deleted), {diff.unchanged} already right"
        )
        self.protected += len(diff.protected)
        self.skipped += len(diff.skipped)

    def exit_status(self) -> int:
        if self.protected:
            print_error(
                f"{self.protected} partition(s) left alone: their state cannot be read; run "
                f"'alblake repair --lake {self.location} --glue-database {self.database}', then sync again"
            )
        if self.skipped:
            print_error(f"{self.skipped} partition(s) changed while syncing: run the same command again")
        return EXIT_FAILED if self.protected or self.skipped or self.missing else 0


# ------------------------------------------------------------------------------------------------- doctor


def _cmd_doctor(args: argparse.Namespace) -> int:
    from alblake.aws.doctor import Clients, run_checks
    from alblake.aws.session import client

    outputs = stack(args)
    if outputs is None:
        print_error("give --stack NAME (or ALBLAKE_STACK, or stack in alblake.toml): doctor checks a deployed stack")
        return EXIT_USAGE
    sqs = client("sqs")
    account = ""
    if outputs.ingest_queue_url:
        from alblake.aws.redrive import queue_arn

        account = queue_arn(sqs, outputs.ingest_queue_url).split(":")[4]
    clients = Clients(
        s3=client("s3"),
        sqs=sqs,
        glue=client("glue"),
        quicksight=client("quicksight") if outputs.dataset_id else None,
        account_id=account,
    )
    checks = run_checks(outputs, clients)
    for check in checks:
        for line in check.lines():
            print(printable(line))
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed")
    return EXIT_FAILED if failed else 0


def registrars() -> dict[str, Any]:
    """This module's commands by name (``alblake.cli`` lists them in workflow order)."""
    return {"redrive": _register_redrive, "doctor": _register_doctor, "catalog": _register_catalog}


def _register_redrive(commands: Any) -> None:
    redrive = commands.add_parser(
        "redrive",
        help="move the dead-letter queue's messages back to the ingest queue (an SQS move task)",
        description="Start an SQS message move task from the stack's dead-letter queue to its ingest queue, "
        "report its progress and what is left (docs/OPERATIONS.md).",
        **examples("alblake redrive --stack prod --wait", "alblake redrive --stack prod --status"),
    )
    add_stack(redrive)
    redrive.add_argument("--dlq", metavar="URL", help="a dead-letter queue, instead of --stack")
    redrive.add_argument(
        "--to",
        metavar="URL",
        help="destination queue (default: the stack's ingest queue; with --dlq, each message's original source queue)",
    )
    redrive.add_argument("--rate", type=int, metavar="N", help="messages per second (default: SQS chooses)")
    redrive.add_argument("--wait", action="store_true", help="follow the move until it ends")
    redrive.add_argument("--status", action="store_true", help="only report the last move and what is left")
    redrive.set_defaults(func=_cmd_redrive)


def _register_doctor(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check what a deploy cannot: notifications, dead letters, lake vs log bucket, catalog, SPICE",
        **examples("alblake doctor --stack prod"),
    )
    add_stack(doctor)
    doctor.set_defaults(func=_cmd_doctor)


def _register_catalog(commands: Any) -> None:
    catalog = commands.add_parser(
        "catalog",
        help="the Glue catalog of an S3 lake",
        **examples(
            "alblake catalog sync --stack prod --dry-run", "alblake catalog sync --lake s3://lake --glue-database db"
        ),
    )
    actions = catalog.add_subparsers(dest="catalog_command", required=True, help="sync: rebuild the partitions")
    sync = actions.add_parser(
        "sync",
        help="create, move and delete the partitions of the curated table and of every derived table (the "
        "rollup) so they match the lake's own state",
    )
    add_stack(sync)
    sync.add_argument("--lake", help="the lake, s3://bucket[/prefix] (instead of --stack)")
    sync.add_argument("--glue-database", help="its Glue database (instead of --stack)")
    sync.add_argument("--table", default="alb_logs", help="the curated table (default alb_logs)")
    sync.add_argument("--dry-run", action="store_true", help="only print what would change")
    sync.set_defaults(func=_cmd_catalog_sync)
