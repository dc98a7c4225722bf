"""What the commands share: the ``--lake``/``--stack`` options and their resolution (``alblake.settings``), the
time window (``--since``/``--until``/``--elb``/``--limit``), output formats, ``--jobs``, the one way to print an
error, and the exit statuses."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from typing import Any

from alblake.display import printable
from alblake.errors import AlblakeError, InputError, LocationError
from alblake.ingest.filters import ObjectFilter, parse_day
from alblake.scope import WHEN_HELP, Moment, Scope, parse_moment, window_end, window_start
from alblake.service.config import parse_minutes
from alblake.settings import Settings, resolve

EXIT_FAILED = 1  # the command ran and something failed (an object, a query, a request)
EXIT_USAGE = 2  # the command could not run on what it was given (argparse exits with 2 too)
LAKE_HELP = (
    "lake directory or s3://bucket/prefix (default: ALBLAKE_LAKE, then lake in alblake.toml, then --stack's lake)"
)
STACK_HELP = (
    "a deployed alblake stack: its outputs give the lake, Glue database and Athena workgroup that no flag, "
    "ALBLAKE_* variable or alblake.toml gives"
)
JOBS_HELP = "processes (default: one per core when there are many objects or bytes)"
FORMATS = ("table", "csv", "json", "jsonl")


def print_error(message: str) -> None:
    """``error: message`` on stderr, on one line of printable text (names can hold control characters)."""
    print(f"error: {printable(message)}", file=sys.stderr)


def print_failures(failures: list[tuple[str, str]]) -> None:
    """One line per failed object; a reason shared by many (say, "give --source-root") is said once, with the
    count and the first few names."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in failures:
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        if len(names) == 1:
            print_error(f"{names[0]}: {reason}")
            continue
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        print_error(f"{len(names)} objects ({shown}): {reason}")


def exit_status(error: AlblakeError) -> int:
    """``EXIT_USAGE`` for a location or an input the command cannot use, ``EXIT_FAILED`` otherwise."""
    return EXIT_USAGE if isinstance(error, LocationError | InputError) else EXIT_FAILED


# --------------------------------------------------------------------------------------------- argument types


def day(text: str) -> date:
    """``YYYY-MM-DD`` (an argparse type)."""
    try:
        return parse_day(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def minutes(text: str) -> float:
    """A number of minutes, finite and >= 0 (an argparse type; the functions' settings follow the same rule)."""
    try:
        return parse_minutes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def moment(text: str) -> Moment:
    """``parse_moment`` as an argparse type."""
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive(text: str) -> int:
    """A whole number >= 1 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not >= 1")
    return value


# ----------------------------------------------------------------------------------------------- options


def add_lake(
    parser: argparse.ArgumentParser, *, required: bool = True, help_text: str = LAKE_HELP, stack: bool = True
) -> None:
    """``--lake`` (resolved with ``lake_of``: flag, ALBLAKE_LAKE, alblake.toml, the stack) and ``--stack``.
    ``required`` is kept for callers of the earlier signature: a lake is never an argparse requirement now,
    ``lake_of`` says every way to give one when none is given."""
    del required
    parser.add_argument("--lake", metavar="DIR|s3://BUCKET/PREFIX", help=help_text)
    if stack:
        add_stack(parser)


def add_stack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", metavar="NAME", help=STACK_HELP)


def settings_of(args: argparse.Namespace) -> Settings:
    """The command's settings (resolved once per command)."""
    found = getattr(args, "_settings", None)
    if found is None:
        flags = {
            "lake": getattr(args, "lake", None),
            "glue_database": getattr(args, "glue_database", None) or getattr(args, "database", None),
            "workgroup": getattr(args, "workgroup", None),
            "stack": getattr(args, "stack", None),
        }
        found = resolve(flags)
        args._settings = found
    assert isinstance(found, Settings)
    return found


def lake_of(args: argparse.Namespace) -> str:
    """The lake the command works on (``NoLakeError`` saying every way to give one when none is given). When
    ``--stack`` is given but the lake comes from ALBLAKE_LAKE or alblake.toml (which rank above a stack), a note
    says so once."""
    settings = settings_of(args)
    lake = settings.lake()
    origin = settings.origin.get("lake", "")
    if getattr(args, "stack", None) and not origin.startswith(("--", "stack")) and not getattr(args, "_noted", False):
        args._noted = True
        print(f"note: the lake is {printable(lake)} from {printable(origin)}, which ranks above --stack; give --lake "
              "to choose", file=sys.stderr)
    return lake


def glue_database_of(args: argparse.Namespace) -> str | None:
    """The Glue database an ``s3://`` lake registers its partitions in (flag, env, alblake.toml, stack): None for
    a local lake, whose commits have no catalog."""
    from alblake.locations import scheme_of

    settings = settings_of(args)
    lake = settings.optional_lake()
    if lake is None or scheme_of(lake) is None:
        given = getattr(args, "glue_database", None)
        return str(given) if given else None
    return settings.glue_database()


def add_dates(parser: argparse.ArgumentParser) -> None:
    """``--since`` and ``--until`` for commands that select log objects by their names (ALB names each object
    after the end of its 5-minute interval): days or times."""
    parser.add_argument(
        "--since", type=moment, metavar="WHEN", help=f"only objects delivered from this time on: {WHEN_HELP}"
    )
    parser.add_argument(
        "--until", type=moment, metavar="WHEN", help="only objects delivered before this time (a day: up to its end)"
    )


def add_elb(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--elb", metavar="NAME", help="only this load balancer (its name, or app/NAME/ID)")


def add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, metavar="N", help=JOBS_HELP)


def add_window(parser: argparse.ArgumentParser, *, limit: bool = True) -> None:
    """``--elb``, ``--since``, ``--until`` (and ``--limit``) for commands that read the lake: only the partitions
    of that load balancer and window are read."""
    add_elb(parser)
    parser.add_argument(
        "--since", type=moment, metavar="WHEN", help=f"only rows logged from this time on: {WHEN_HELP}"
    )
    parser.add_argument(
        "--until", type=moment, metavar="WHEN", help="only rows logged before this time (a day: up to its end)"
    )
    if limit:
        parser.add_argument("--limit", type=positive, metavar="N", help="print at most N rows")


def scope_of(args: argparse.Namespace) -> Scope:
    """The part of the lake ``--elb``/``--since``/``--until`` choose."""
    since, until = window_start(args.since), window_end(args.until)
    if since is not None and until is not None and until <= since:
        raise InputError(f"--until ({until.isoformat()}) is not after --since ({since.isoformat()})")
    return Scope(elb=args.elb, since=since, until=until)


def object_filter(args: argparse.Namespace) -> ObjectFilter:
    """The filter of ``--since``, ``--until`` and ``--elb`` (a command without ``--elb`` takes every one)."""
    since: Moment | None = args.since
    until: Moment | None = args.until
    start, end = window_start(since), window_end(until)
    if start is not None and end is not None and end <= start:
        raise InputError(f"--until ({end.isoformat()}) is not after --since ({start.isoformat()})")
    last_day = None
    if until is not None:  # an object ending up to 5 minutes after the window's end still holds some of it
        last_day = until.at.date() if until.whole_day else (until.at + timedelta(minutes=5)).date()
    return ObjectFilter(
        since=None if since is None else since.at.date(),
        until=last_day,
        elb=getattr(args, "elb", None),
        start=None if since is None or since.whole_day else since.at,
        end=None if until is None or until.whole_day else until.at,
    )


def add_format(parser: argparse.ArgumentParser, *, csv_raw: bool = True) -> None:
    """``--format table|csv|json|jsonl`` with ``--csv`` and ``--json`` as short forms."""
    parser.add_argument(
        "--format", choices=FORMATS, default="table",
        help="table: aligned text for people (default); csv; json: one array; jsonl: one object per line",
    )
    parser.add_argument("--csv", dest="format", action="store_const", const="csv", help="same as --format csv")
    parser.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    if csv_raw:
        parser.add_argument(
            "--raw", action="store_true",
            help="CSV cells exactly as stored; by default a text cell starting with = + - @ tab or CR gets a ' in "
            "front, so a spreadsheet shows it instead of running it as a formula",
        )


def examples(*lines: str) -> dict[str, Any]:
    """``add_parser`` keywords for an examples epilog (kept as written)."""
    return {
        "epilog": "examples:\n" + "\n".join(f"  {line}" for line in lines),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
