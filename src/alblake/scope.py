"""Which part of a lake a command reads: one load balancer and a time window, chosen by partition first (pure).

``alblake.analysis`` reads only the files of the partitions a scope accepts and keeps the rows of its exact
window; ``scoped_for_catalog`` gives Athena the same narrowing in SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from alblake.lake.layout import Partition
from alblake.schema import TABLE_NAME

__all__ = [
    "EVERYTHING",
    "WHEN_HELP",
    "Moment",
    "Scope",
    "parse_age",
    "parse_moment",
    "scoped_for_catalog",
    "window_end",
]

WHEN_HELP = "2h, 30m, 45s, 7d (ago), a UTC day 2026-11-24, or a time 2026-11-24T08:00[:00][Z]"


@dataclass(frozen=True)
class Scope:
    """Which part of a lake a reader reads: one load balancer, a time window ``[since, until)`` (UTC).

    Files are chosen by their partition (load balancer, day, hour) before anything is read, so a one-hour question
    reads one hour's files; the view then keeps the rows of the exact window."""

    elb: str | None = None  # the load balancer's name, or 'app/NAME/ID' as logged
    since: datetime | None = None
    until: datetime | None = None

    @property
    def elb_name(self) -> str | None:
        """The partition value (``elb_name``) of ``elb``."""
        if self.elb is None:
            return None
        parts = self.elb.split("/")
        return parts[1] if len(parts) == 3 and parts[0] in {"app", "net", "gwy"} else self.elb

    def accepts(self, partition: Partition) -> bool:
        """Whether any row of the partition-hour can fall in the scope."""
        if self.elb_name is not None and partition.elb_name != self.elb_name:
            return False
        if self.since is None and self.until is None:
            return True
        try:
            start = datetime.fromisoformat(f"{partition.day}T{partition.hour}:00:00+00:00")
        except ValueError:  # not a partition this build writes: keep it (the row filter decides)
            return True
        return (self.since is None or start + timedelta(hours=1) > self.since) and (
            self.until is None or start < self.until
        )

    def row_filter(self, time_column: str) -> str:
        """SQL keeping the scope's rows (TRUE when it has no window); partitions are chosen already."""
        terms = []
        if self.since is not None:
            terms.append(f"{time_column} >= {_timestamp_literal(self.since)}")
        if self.until is not None:
            terms.append(f"{time_column} < {_timestamp_literal(self.until)}")
        return " AND ".join(terms) or "TRUE"


EVERYTHING = Scope()


def scoped_for_catalog(sql: str, scope: Scope, database: str, table: str = TABLE_NAME) -> str:
    """``sql`` for Athena with ``table`` narrowed to the scope: a ``WITH`` of that name over the catalog's table,
    filtering the partition columns (which Athena prunes by) and the exact time window."""
    if scope == EVERYTHING:
        return sql
    terms = []
    if scope.elb_name is not None:
        terms.append(f"elb_name = {_string_literal(scope.elb_name)}")
    if scope.since is not None:
        terms.append(f"day >= '{scope.since.astimezone(UTC):%Y-%m-%d}'")
        terms.append(f"\"time\" >= TIMESTAMP '{scope.since.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}'")
    if scope.until is not None:
        last = scope.until.astimezone(UTC) - timedelta(microseconds=1)
        terms.append(f"day <= '{last:%Y-%m-%d}'")
        terms.append(f"\"time\" < TIMESTAMP '{scope.until.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}'")
    narrowed = f'{table} AS (SELECT * FROM "{database}"."{table}" WHERE {" AND ".join(terms)})'
    head = sql.lstrip()
    if head[:4].upper() == "WITH" and head[4:5].isspace():
        return f"WITH {narrowed},\n{head[5:].lstrip()}"
    return f"WITH {narrowed}\n{sql}"


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _timestamp_literal(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return f"TIMESTAMPTZ '{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}+00'"


# ---------------------------------------------------------------------------------------- times users give

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Moment:
    """A point in time a user gave, whether it was a bare day (``--until DAY`` then means the day's end), and whether
    it was relative to now (``2h`` ago, ``now``: the same text given later is another time)."""

    at: datetime
    whole_day: bool
    relative: bool = False


def parse_age(text: str) -> timedelta:
    """``2h``, ``30m``, ``45s``, ``7d``, ``1w`` (a number, maybe with decimals, and a unit). ``ValueError``
    otherwise."""
    age = _age(text)
    if age is None:
        raise ValueError(f"{text!r} is not an age: a number and a unit (s, m, h, d, w), like 2h or 7d")
    return age


def _age(text: str) -> timedelta | None:
    found = _AGO.match(text)
    if found is None:
        return None
    try:
        return timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    except OverflowError:
        raise ValueError(f"{text!r} is too long an age (at most {timedelta.max.days:,} days)") from None


def parse_moment(text: str, now: datetime | None = None) -> Moment:
    """``2h``/``30m``/``45s``/``7d``/``1w`` ago, ``now``, a UTC day, or an ISO 8601 time (UTC unless it has an
    offset; ``Z`` accepted). ``ValueError`` naming the accepted forms otherwise."""
    now = now or datetime.now(UTC)
    age = _age(text)
    if age is not None:
        try:
            return Moment(now - age, False, relative=True)
        except OverflowError:
            raise ValueError(f"{text!r} ago is before the year 1: {WHEN_HELP}") from None
    if text.strip().lower() == "now":
        return Moment(now, False, relative=True)
    stripped = text.strip()
    zulu = stripped[-1:] in ("Z", "z")
    try:
        if len(stripped) == 10:
            return Moment(datetime.combine(date.fromisoformat(stripped), datetime.min.time(), UTC), True)
        value = datetime.fromisoformat(stripped[:-1] + "+00:00" if zulu else stripped)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: {WHEN_HELP}") from None
    try:
        return Moment(value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC), False)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None


def window_start(since: Moment | None) -> datetime | None:
    return None if since is None else since.at


def window_end(until: Moment | None) -> datetime | None:
    """The end of the window, exclusive: a bare day means the end of that day (none for 9999-12-31, the last day a
    time can hold: nothing comes after it)."""
    if until is None:
        return None
    if not until.whole_day:
        return until.at
    try:
        return until.at + timedelta(days=1)
    except OverflowError:
        return None
