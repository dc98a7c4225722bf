"""Which log objects a command takes: by the delivery date and load balancer in the object's name (pure).

ALB names each object after its load balancer and the end of its 5-minute interval (``alblake.keys``), so a
date range or a load balancer selects objects without reading them. Dates are UTC days, both ends included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from alblake.keys import AccessLogKey, classify_key


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` -> date (argparse type); a clear error otherwise."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


@dataclass(frozen=True)
class ObjectFilter:
    since: date | None = None
    until: date | None = None
    elb: str | None = None  # the load balancer's name, or 'app/<name>/<id>' as logged

    @property
    def is_empty(self) -> bool:
        return self.since is None and self.until is None and self.elb is None

    def accepts_log_key(self, key: AccessLogKey) -> bool:
        day = key.end_time.date()
        if self.since is not None and day < self.since:
            return False
        if self.until is not None and day > self.until:
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
