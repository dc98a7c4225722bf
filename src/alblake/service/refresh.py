"""What a dashboard refresh request comes to (the ``alblake.ports.Refresher`` port's results), and the limit
QuickSight puts on refreshes. The ingest pipeline asks for a refresh after it wrote rows; the adapter
(``alblake.aws.quicksight.SpiceRefresher``) decides whether one is due and says what happened."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# 32 refreshes per 24 h (Enterprise): an interval below 1440 / 32 = 45 minutes could exhaust the quota.
DAILY_REFRESH_LIMIT = 32
MIN_REFRESH_MINUTES = 24 * 60 / DAILY_REFRESH_LIMIT


class RefreshStatus(StrEnum):
    DISABLED = "disabled"  # no dataset configured
    NOT_NEEDED = "not-needed"  # nothing new was written
    REQUESTED = "requested"
    SKIPPED_IN_PROGRESS = "skipped-in-progress"
    SKIPPED_RECENT = "skipped-recent"
    ALREADY_REQUESTED = "already-requested"  # another invocation created this window's ingestion
    THROTTLED = "throttled"
    LIMIT_EXCEEDED = "limit-exceeded"
    NOT_FOUND = "not-found"
    ACCESS_DENIED = "access-denied"
    ERROR = "error"


@dataclass(frozen=True)
class RefreshOutcome:
    status: RefreshStatus
    ingestion_id: str | None = None
    detail: str = ""
    ingestion_type: str | None = None
