"""Command line: ``alblake erase``, ``alblake expire`` and ``alblake privacy`` (registered by ``alblake.cli``).

Each works on a local lake or an ``s3://`` one; on S3, ``--glue-database`` keeps the Glue catalog in step (an
erasure moves Locations forward, an expiry drops partitions). The steps and their guarantees:
docs/COMPACTION.md, "Retention and erasure"; what the privacy settings keep and break: README.
"""

from __future__ import annotations

import argparse
import getpass
import re
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from alblake.cli.common import EXIT_FAILED, EXIT_USAGE, add_lake, minutes, print_error
from alblake.convert.privacy import CLIENT_IP_MODES, QUARANTINE_MODES, QUERY_MODES
from alblake.display import printable
from alblake.lake.generational import GenerationalLake
from alblake.lake.lifecycle import (
    ErasureReport,
    ErasureRequest,
    ExpiryOptions,
    ExpiryReport,
    PartitionCatalog,
    erase,
    expire,
    settle,
)
from alblake.lake.settings import LakePolicy, read_policy, set_privacy
from alblake.locations import LakeLocationError, open_existing_lake_at, open_lake_at, scheme_of
from alblake.secrets import install_key_sources

install_key_sources()  # every command of this process reads a lake's key from where its policy says

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dh])\s*$")


def duration(text: str) -> timedelta:
    """``400d`` or ``36h`` (an argparse type)."""
    found = _DURATION.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of days or hours, like 400d or 36h")
    amount = float(found.group(1))
    return timedelta(days=amount) if found.group(2) == "d" else timedelta(hours=amount)


def moment(text: str) -> datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]``, UTC unless it says otherwise (an argparse type)."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _requester() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "unknown"


def _open(args: argparse.Namespace) -> GenerationalLake | None:
    """The lake (with its Glue table on S3); None after printing why it cannot be used as given."""
    if scheme_of(args.lake) is not None and not args.glue_database and not getattr(args, "dry_run", False):
        print_error(
            f"{args.lake}: this changes partitions of an S3 lake, whose Glue Locations must follow; give "
            "--glue-database (the stack's GlueDatabaseName)"
        )
        return None
    glue = getattr(args, "glue_database", None)
    lake = open_lake_at(args.lake, glue_database=glue) if glue else open_existing_lake_at(args.lake)
    if not isinstance(lake, GenerationalLake):
        raise LakeLocationError(f"{args.lake}: this lake has no partition states ({type(lake).__name__})")
    return lake


def _catalog(args: argparse.Namespace) -> PartitionCatalog | None:
    if not getattr(args, "glue_database", None):
        return None
    from alblake.aws.glue_partitions import GluePartitionCatalog  # the adapter: wiring only
    from alblake.aws.session import client

    return GluePartitionCatalog(client("glue"), args.glue_database)


# ------------------------------------------------------------------------------------------------------ erase


def _cmd_erase(args: argparse.Namespace) -> int:
    lake = _open(args)
    if lake is None:
        return EXIT_USAGE
    request = ErasureRequest(args.client_ip, args.trace_id, args.domain, args.start, args.end, args.whole_network)
    now = datetime.now(UTC)
    grace = timedelta(minutes=args.grace)
    settled = [] if args.dry_run else settle(lake, now=now, grace=grace)
    report = erase(lake, request, by=args.by or _requester(), now=now, dry_run=args.dry_run, reason=args.reason)
    print(format_erasure(report))
    for earlier in settled:
        if earlier.rows or earlier.lines:
            print(f"settled {earlier.id}: {earlier.rows:,} more rows, {earlier.lines:,} more quarantined lines")
    failures = report.errors + [error for earlier in settled for error in earlier.errors]
    for where, message in failures:
        print_error(f"{where}: {message}")
    if failures:
        print_error(f"run 'alblake erase --lake {args.lake} ...' again with the same criteria: it reuses them")
    return EXIT_FAILED if failures else 0


def format_erasure(report: ErasureReport) -> str:
    verb = "would erase" if report.dry_run else "erased"
    lines = [f"{verb} {count:>9,} rows    {path}" for path, count in sorted(report.partitions.items())]
    lines += [f"{verb} {count:>9,} lines   {key}" for key, count in sorted(report.quarantine.items())]
    lines.append(
        f"{verb} {report.rows:,} rows in {len(report.partitions)} partition-hour(s) and {report.lines:,} "
        f"quarantined lines in {len(report.quarantine)} file(s); {len(report.scanned)} partition-hour(s) scanned"
    )
    if report.dry_run:
        lines.append("dry run: nothing changed")
    else:
        again = " (these criteria were there already: rescanned)" if report.reused else ""
        lines.append(f"criteria {report.id} kept in the lake's policy: later ingests drop such rows{again}")
        lines.append(f"audit record {report.record}")
        lines.append("old files are deleted by compaction after its grace period (alblake compact)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- expire


def _cmd_expire(args: argparse.Namespace) -> int:
    if args.older_than is None and args.quarantine_older_than is None:
        print_error("give --older-than (the lake's horizon) and/or --quarantine-older-than")
        return EXIT_USAGE
    lake = _open(args)
    if lake is None:
        return EXIT_USAGE
    now = datetime.now(UTC)
    options = ExpiryOptions(
        now=now,
        older_than=args.older_than,
        quarantine_older_than=args.quarantine_older_than,
        grace=timedelta(minutes=args.grace),
        dry_run=args.dry_run,
    )
    settled = [] if args.dry_run else settle(lake, now=now, grace=options.grace)
    report = expire(lake, options, _catalog(args))
    print(format_expiry(report, args.dry_run))
    failures = report.errors + [error for earlier in settled for error in earlier.errors]
    for where, message in failures:
        print_error(f"{where}: {message}")
    return EXIT_FAILED if failures else 0


def format_expiry(report: ExpiryReport, dry_run: bool) -> str:
    would = "would be " if dry_run else ""
    lines = []
    if report.expired_before is not None:
        lines.append(f"horizon               hours before {report.expired_before}:00 UTC")
        lines.append(f"emptied               {len(report.emptied)} partition-hour(s) {would}emptied")
        lines.append(f"dropped               {len(report.dropped)} partition-hour(s) {would}dropped")
        if report.waiting:
            lines.append(
                f"waiting               {len(report.waiting)} emptied less than the grace period ago: dropped by a "
                "later run"
            )
        lines.append(f"manifests             {report.manifests_updated} updated, {report.manifests_deleted} deleted")
        lines.append(f"catalog partitions    {report.catalog_dropped} dropped")
    lines.append(f"quarantine files      {len(report.quarantine_deleted)} {would}deleted")
    if report.stopped_early:
        lines.append("stopped before the end: run again")
    if dry_run:
        lines.append("dry run: nothing changed")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- privacy


def _cmd_privacy(args: argparse.Namespace) -> int:
    changes = {k: v for k, v in (("client_ip", args.client_ip), ("query_strings", args.query_strings),
                                 ("quarantine", args.quarantine)) if v is not None}
    if not changes and args.key is None:
        lake = open_existing_lake_at(args.lake)
        if not isinstance(lake, GenerationalLake):
            raise LakeLocationError(f"{args.lake}: this lake has no lifecycle policy")
        print(format_policy(read_policy(lake.store).policy))
        return 0
    lake = open_lake_at(args.lake)
    if not isinstance(lake, GenerationalLake):
        raise LakeLocationError(f"{args.lake}: this lake has no lifecycle policy")
    policy = set_privacy(lake.store, changes, args.key)
    print(format_policy(policy))
    return 0


def format_policy(policy: LakePolicy) -> str:
    privacy = policy.privacy
    lines = [
        f"client_ip         {privacy.client_ip}",
        f"query_strings     {privacy.query_strings}",
        f"quarantine        {privacy.quarantine} (applies when client_ip or query_strings is not 'keep')",
        f"key               {printable(policy.key) if policy.key else '-'}"
        + (f" (fingerprint {policy.key_check})" if policy.key_check else ""),
        f"expired before    {policy.expired_before + ':00 UTC' if policy.expired_before else '-'}",
        f"erasures          {len(policy.erasures)}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- register


def _grace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grace",
        type=minutes,
        default=60.0,
        metavar="MINUTES",
        help="the lake's grace period (as for compact): erasures are settled, emptied hours dropped this long after",
    )


def register(commands: Any) -> None:
    """Add ``erase``, ``expire`` and ``privacy`` to the ``alblake`` sub-commands."""
    erase_parser = commands.add_parser(
        "erase", help="remove the rows of a client address, trace id or domain, and keep them from coming back"
    )
    add_lake(erase_parser)
    erase_parser.add_argument("--client-ip", help="an IPv4 or IPv6 client address")
    erase_parser.add_argument("--trace-id", help="an X-Amzn-Trace-Id value as logged (Root=1-...)")
    erase_parser.add_argument("--domain", help="an SNI domain name")
    erase_parser.add_argument("--from", dest="start", type=moment, help="only rows at or after this time (UTC)")
    erase_parser.add_argument("--to", dest="end", type=moment, help="only rows before this time (UTC)")
    erase_parser.add_argument(
        "--whole-network", action="store_true",
        help="in a lake that truncates client addresses: erase the address's whole /24 (IPv6: /48)",
    )
    erase_parser.add_argument("--glue-database", help="an s3:// lake's Glue database (its Locations follow)")
    erase_parser.add_argument("--by", help="who asks (default: user@host); kept in the audit record")
    erase_parser.add_argument("--reason", help="a ticket or reference for the audit record (not the erased value)")
    erase_parser.add_argument("--dry-run", action="store_true", help="only count what would be erased")
    _grace(erase_parser)
    erase_parser.set_defaults(func=_cmd_erase)

    expire_parser = commands.add_parser("expire", help="remove whole partition-hours older than a horizon")
    add_lake(expire_parser)
    expire_parser.add_argument("--older-than", type=duration, metavar="AGE", help="e.g. 400d: hours that ended before")
    expire_parser.add_argument(
        "--quarantine-older-than", type=duration, metavar="AGE", help="quarantine files of objects older than this"
    )
    expire_parser.add_argument("--glue-database", help="an s3:// lake's Glue database (its partitions are dropped)")
    expire_parser.add_argument("--dry-run", action="store_true", help="only say what would go")
    _grace(expire_parser)
    expire_parser.set_defaults(func=_cmd_expire)

    privacy_parser = commands.add_parser(
        "privacy", help="show or set what the lake keeps of client addresses and query strings"
    )
    add_lake(privacy_parser)
    privacy_parser.add_argument("--client-ip", choices=CLIENT_IP_MODES, help="keep, truncate (/24, /48) or hmac")
    privacy_parser.add_argument("--query-strings", choices=QUERY_MODES, help="keep, drop or mask (names kept)")
    privacy_parser.add_argument("--quarantine", choices=QUARANTINE_MODES, help="store quarantined lines masked, or not")
    privacy_parser.add_argument(
        "--key", help="where the lake's key is: ssm:NAME (a SecureString), secretsmanager:ID or file:PATH"
    )
    privacy_parser.set_defaults(func=_cmd_privacy)
