"""Command line: ``alblake erase``, ``alblake expire`` and ``alblake privacy`` (registered by ``alblake.cli``).

Each works on a local lake or an ``s3://`` one; on S3, ``--glue-database`` keeps the Glue catalog in step (an
erasure moves Locations forward, an expiry drops partitions). The steps and their guarantees:
docs/COMPACTION.md, "Retention and erasure"; what the privacy settings keep and break: README.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from alblake.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    add_lake,
    examples,
    glue_database_of,
    lake_of,
    minutes,
    print_error,
)
from alblake.convert.privacy import CLIENT_IP_MODES, QUARANTINE_MODES, QUERY_MODES
from alblake.display import printable
from alblake.locations import LakeLocationError, open_existing_lake_at, open_lake_at, scheme_of
from alblake.scope import parse_age, parse_moment

if TYPE_CHECKING:  # the commands import the lake's lifecycle when they run (reading commands start without it)
    from alblake.lake.generational import GenerationalLake
    from alblake.lake.lifecycle import ErasureReport, ExpiryReport, PartitionCatalog
    from alblake.lake.settings import LakePolicy

# The grace period's floor, as the stack's CompactGraceMinutes (whose value the lifecycle function uses). Nothing
# comes back after an erasure or an expiry because every ingest that read the policy before it changed has finished
# a grace period later (docs/COMPACTION.md, "Retention and erasure"): the ingest function runs at most 15 minutes
# (Lambda's limit), and an ``alblake ingest`` reads the policy again for every object or batch it commits. A
# shorter grace could settle an erasure, or drop an emptied hour, under an ingest still in flight.
MIN_GRACE_MINUTES = 16.0


def duration(text: str) -> timedelta:
    """``400d`` or ``36h`` (an argparse type): an age as ``parse_age`` reads it (the reading commands' ``--since
    2h``), in days or hours only. Expiry's horizons are the stack's retention days or whole partition-hours; an age
    in minutes, seconds or weeks is refused, as it always was."""
    try:
        age = parse_age(text)
    except ValueError:
        age = None
    if age is None or text.strip()[-1:] not in ("d", "h"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of days or hours, like 400d or 36h")
    if age >= datetime.now(UTC) - datetime(1, 1, 2, tzinfo=UTC):  # its horizon would be before the year 1
        raise argparse.ArgumentTypeError(f"{text!r}: reaches back before the year 1; expire takes days or hours "
                                         "such as 400d or 36h")
    return age


def moment(text: str) -> datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]``, UTC unless it says otherwise (an argparse type): a time as
    ``parse_moment`` reads it (the reading commands' ``--since``/``--until``), absolute only. An erasure's criteria
    are known by their values and window, and running the same command again (the way back after a failure) reuses
    them: a time relative to now (``2h``, ``now``) would then be another window, so it is refused."""
    try:
        found = parse_moment(text)
    except ValueError:
        found = None
    if found is None or found.relative:
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")
    return found.at


def grace_minutes(text: str) -> float:
    """A grace period in minutes, at least ``MIN_GRACE_MINUTES`` (an argparse type)."""
    value = minutes(text)
    if value < MIN_GRACE_MINUTES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the grace period must be at least {MIN_GRACE_MINUTES:g} minutes, longer than any ingest can "
            f"run (an ingest that read the policy before the change must have finished); give --grace "
            f"{MIN_GRACE_MINUTES:g} or more"
        )
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _requester() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "unknown"


def _lake_key_sources() -> None:
    """Let this process read a lake's key from where its policy says (SSM, Secrets Manager, a file)."""
    from alblake.secrets import install_key_sources

    install_key_sources()


def _open(args: argparse.Namespace) -> GenerationalLake | None:
    """The lake (with its Glue table on S3); None after printing why it cannot be used as given."""
    from alblake.lake.generational import GenerationalLake

    _lake_key_sources()
    location, glue = lake_of(args), glue_database_of(args)
    if scheme_of(location) is not None and not glue and not getattr(args, "dry_run", False):
        print_error(
            f"{location}: this changes partitions of an S3 lake, whose Glue Locations must follow; give "
            "--glue-database (the stack's GlueDatabaseName) or --stack NAME"
        )
        return None
    lake = open_lake_at(location, glue_database=glue) if glue else open_existing_lake_at(location)
    if not isinstance(lake, GenerationalLake):
        raise LakeLocationError(f"{location}: this lake has no partition states ({type(lake).__name__})")
    return lake


def _catalog(args: argparse.Namespace) -> PartitionCatalog | None:
    glue = glue_database_of(args)
    if not glue:
        return None
    from alblake.aws.glue_partitions import GluePartitionCatalog  # the adapter: wiring only
    from alblake.aws.session import client

    return GluePartitionCatalog(client("glue"), glue)


# ------------------------------------------------------------------------------------------------------ erase


def _cmd_erase(args: argparse.Namespace) -> int:
    from alblake.lake.lifecycle import ErasureRequest, erase, settle

    lake = _open(args)
    if lake is None:
        return EXIT_USAGE
    request = ErasureRequest(args.client_ip, args.trace_id, args.domain, args.start, args.end, args.whole_network)
    _warn_without_key(lake, lake_of(args))
    now = _now()
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
        print_error(f"run 'alblake erase --lake {lake_of(args)} ...' again with the same criteria: it reuses them")
    return EXIT_FAILED if failures else 0


def _warn_without_key(lake: GenerationalLake, location: str) -> None:
    """A lake without a key keeps an erasure's criteria as plain SHA-256 digests: anyone who reads the lake can
    find an IPv4 address again by hashing all 2^32 of them (a domain or a trace id by guessing). Said on stderr,
    with the command that sets a key; the erasure runs as asked."""
    from alblake.lake.settings import read_policy

    if read_policy(lake.store).policy.key is None:
        print(
            "warning: this lake has no key, so the erasure's criteria are kept as plain SHA-256 digests, which anyone "
            "who can read the lake can reverse for an IPv4 address by hashing all 2^32 addresses; set a key first: "
            f"alblake privacy --lake {printable(location)} --key ssm:NAME (or secretsmanager:ID; README, "
            "'Retention and privacy')",
            file=sys.stderr,
        )


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
    from alblake.lake.lifecycle import ExpiryOptions, expire, settle

    lake = _open(args)
    if lake is None:
        return EXIT_USAGE
    now = _now()
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
        if report.criteria_pruned:
            lines.append(
                f"erasure criteria      {len(report.criteria_pruned)} {would}dropped from the lake's policy (their "
                "range ended before the horizon; their audit records stay)"
            )
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
    from alblake.lake.generational import GenerationalLake
    from alblake.lake.settings import read_policy, set_privacy

    _lake_key_sources()
    location = lake_of(args)
    if not changes and args.key is None:
        lake = open_existing_lake_at(location)
        if not isinstance(lake, GenerationalLake):
            raise LakeLocationError(f"{location}: this lake has no lifecycle policy")
        print(format_policy(read_policy(lake.store).policy))
        return 0
    lake = open_lake_at(location)
    if not isinstance(lake, GenerationalLake):
        raise LakeLocationError(f"{location}: this lake has no lifecycle policy")
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


def _glue_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--glue-database", metavar="NAME", help="an s3:// lake's Glue database (default with --stack: the stack's)"
    )


def _grace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grace",
        type=grace_minutes,
        default=60.0,
        metavar="MINUTES",
        help="the lake's grace period (as for compact; at least 16): erasures are settled, emptied hours dropped "
        "this long after",
    )


def registrars() -> dict[str, Any]:
    """This module's commands by name (``alblake.cli`` lists them in workflow order)."""
    return {"erase": _register_erase, "expire": _register_expire, "privacy": _register_privacy}


def _register_erase(commands: Any) -> None:
    erase_parser = commands.add_parser(
        "erase", help="remove the rows of a client address, trace id or domain, and keep them from coming back",
        description="Rewrite exactly the partition-hours that hold matching rows through the lake's own swaps, "
        "erase matching quarantined lines, keep the criteria so re-ingests drop such rows, and leave an audit "
        "record without the erased values (docs/COMPACTION.md, 'Retention and erasure').",
        **examples(
            "alblake erase --lake lake/ --client-ip 203.0.113.7 --dry-run",
            "alblake erase --stack prod --client-ip 203.0.113.7 --from 2026-11-01 --reason TICKET-12",
            "alblake erase --lake lake/ --trace-id Root=1-58337262-36d228ad5d99923122bbe354",
        ),
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
    _glue_database(erase_parser)
    erase_parser.add_argument("--by", help="who asks (default: user@host); kept in the audit record")
    erase_parser.add_argument("--reason", help="a ticket or reference for the audit record (not the erased value)")
    erase_parser.add_argument("--dry-run", action="store_true", help="only count what would be erased")
    _grace(erase_parser)
    erase_parser.set_defaults(func=_cmd_erase)


def _register_expire(commands: Any) -> None:
    expire_parser = commands.add_parser(
        "expire", help="remove whole partition-hours older than a horizon",
        description="Empty, then (after the grace period) drop every partition-hour that ended before the horizon, "
        "from the lake, its catalog and its manifests; quarantine files have their own horizon.",
        **examples(
            "alblake expire --lake lake/ --older-than 400d --dry-run",
            "alblake expire --stack prod --older-than 400d --quarantine-older-than 30d",
        ),
    )
    add_lake(expire_parser)
    expire_parser.add_argument("--older-than", type=duration, metavar="AGE", help="e.g. 400d: hours that ended before")
    expire_parser.add_argument(
        "--quarantine-older-than", type=duration, metavar="AGE", help="quarantine files of objects older than this"
    )
    _glue_database(expire_parser)
    expire_parser.add_argument("--dry-run", action="store_true", help="only say what would go")
    _grace(expire_parser)
    expire_parser.set_defaults(func=_cmd_expire)


def _register_privacy(commands: Any) -> None:
    privacy_parser = commands.add_parser(
        "privacy", help="show or set what the lake keeps of client addresses and query strings",
        description="Without options: the lake's privacy settings. With them: what later ingests store (rows "
        "already in the lake are not rewritten; README, 'Retention and privacy').",
        **examples(
            "alblake privacy --lake lake/",
            "alblake privacy --lake lake/ --client-ip truncate --query-strings mask",
            "alblake privacy --lake s3://my-lake --client-ip hmac --key ssm:/alblake/prod/key",
        ),
    )
    add_lake(privacy_parser)
    privacy_parser.add_argument("--client-ip", choices=CLIENT_IP_MODES, help="keep, truncate (/24, /48) or hmac")
    privacy_parser.add_argument("--query-strings", choices=QUERY_MODES, help="keep, drop or mask (names kept)")
    privacy_parser.add_argument("--quarantine", choices=QUARANTINE_MODES, help="store quarantined lines masked, or not")
    privacy_parser.add_argument(
        "--key", help="where the lake's key is: ssm:NAME (a SecureString), secretsmanager:ID or file:PATH"
    )
    privacy_parser.set_defaults(func=_cmd_privacy)
