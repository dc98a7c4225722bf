"""What the commands share: the ``--lake``, ``--since``/``--until``, ``--elb`` and ``--jobs`` options, the one
way to print an error, and the exit statuses."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from alblake.display import printable
from alblake.errors import AlblakeError, InputError, LocationError
from alblake.ingest.filters import ObjectFilter, parse_day
from alblake.service.config import parse_minutes

EXIT_FAILED = 1  # the command ran and something failed (an object, a query, a request)
EXIT_USAGE = 2  # the command could not run on what it was given (argparse exits with 2 too)
LAKE_HELP = "lake directory or s3://bucket/prefix"
JOBS_HELP = "processes (default: one per core when there are many objects or bytes)"


def print_error(message: str) -> None:
    """``error: message`` on stderr, on one line of printable text (names can hold control characters)."""
    print(f"error: {printable(message)}", file=sys.stderr)


def exit_status(error: AlblakeError) -> int:
    """``EXIT_USAGE`` for a location or an input the command cannot use, ``EXIT_FAILED`` otherwise."""
    return EXIT_USAGE if isinstance(error, LocationError | InputError) else EXIT_FAILED


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


def add_lake(parser: argparse.ArgumentParser, *, required: bool = True, help_text: str = LAKE_HELP) -> None:
    parser.add_argument("--lake", required=required, help=help_text)


def add_dates(parser: argparse.ArgumentParser) -> None:
    """``--since`` and ``--until``: objects delivered on those UTC days (ALB names each object after the end of
    its 5-minute interval)."""
    parser.add_argument("--since", type=day, help="only objects delivered on or after this UTC day (YYYY-MM-DD)")
    parser.add_argument("--until", type=day, help="only objects delivered on or before this UTC day")


def add_elb(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--elb", help="only objects of this load balancer (name, or app/NAME/ID)")


def add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, help=JOBS_HELP)


def object_filter(args: argparse.Namespace) -> ObjectFilter:
    """The filter of ``--since``, ``--until`` and ``--elb`` (a command without ``--elb`` takes every one)."""
    return ObjectFilter(since=args.since, until=args.until, elb=getattr(args, "elb", None))
