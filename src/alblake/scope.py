"""Which part of a lake a command reads: one load balancer and a time window, chosen by partition first (pure).

``alblake.analysis`` reads only the files of the partitions a scope accepts and keeps the rows of its exact
window; ``scoped_for_catalog`` gives Athena the same narrowing in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alblake.lake.layout import Partition
from alblake.schema import TABLE_NAME

__all__ = ["EVERYTHING", "Scope", "scoped_for_catalog"]


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
