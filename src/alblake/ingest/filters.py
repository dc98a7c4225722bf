"""Which log objects a command takes: by the delivery date and load balancer in the object's name (pure).

ALB names each object after its load balancer and the end of its 5-minute interval (``alblake.keys``), so a
date range or a load balancer selects objects without reading them. Dates are UTC days, both ends included;
``start``/``end`` narrow them to a window ``[start, end)``: an object is taken when its interval (the 5 minutes
before the end its name gives) overlaps the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from alblake.keys import AccessLogKey, classify_key


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` -> date (argparse type); a clear error otherwise."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


_INTERVAL = timedelta(minutes=5)  # what one ALB object covers, ending at the time its name gives


@dataclass(frozen=True)
class ObjectFilter:
    since: date | None = None
    until: date | None = None
    elb: str | None = None  # the load balancer's name, or 'app/<name>/<id>' as logged
    start: datetime | None = None  # a window within the days (UTC, aware)
    end: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return all(value is None for value in (self.since, self.until, self.elb, self.start, self.end))

    def accepts_log_key(self, key: AccessLogKey) -> bool:
        day = key.end_time.date()
        if self.since is not None and day < self.since:
            return False
        if self.until is not None and day > self.until:
            return False
        if self.start is not None and key.end_time <= self.start:
            return False
        if self.end is not None and key.end_time - _INTERVAL >= self.end:
            return False
        return self.elb is None or self.elb in (key.lb_name, key.elb)

    def accepts_name(self, key: str) -> bool:
        """Whether an object name passes: with no filter every name does; with one, only ALB log names that
        match it (a name without a date and load balancer cannot be placed)."""
        if self.is_empty:
            return True
        kind = classify_key(key)
        return isinstance(kind, AccessLogKey) and self.accepts_log_key(kind)


EVERY_OBJECT = ObjectFilter()
