"""Request a SPICE refresh of the QuickSight dataset, within QuickSight's limits, never failing the pipeline.

QuickSight Enterprise allows 32 scheduled/API refreshes of a SPICE dataset per 24 h, and one at a time. So:
- skip when an ingestion is INITIALIZED/QUEUED/RUNNING (it will pick up the new partitions, or the next one
  will);
- skip when any ingestion was created within ``min_interval`` (default 60 min: at most 24 refreshes a day
  from this pipeline, leaving headroom for manual ones);
- otherwise ``create_ingestion`` with an IngestionId derived from the current time window, so two
  invocations racing in the same window collide (``ResourceExistsException``) instead of both refreshing.

Each refresh is a FULL_REFRESH of the dataset's query, which template.yaml bounds to the last SpiceWindowDays
days (a partition-pruned predicate on ``day``), so its Athena scan and SPICE size do not grow with the lake.

Every error (throttling, limit exceeded, missing dataset, access denied, anything else) is logged and turned
into a status: QuickSight is a downstream nicety, the lake and Glue are the source of truth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

ACTIVE_STATUSES = frozenset({"INITIALIZED", "QUEUED", "RUNNING"})
# 32 refreshes per 24 h (Enterprise): an interval below 1440 / 32 = 45 minutes could exhaust the quota.
DAILY_REFRESH_LIMIT = 32
MIN_REFRESH_MINUTES = 24 * 60 / DAILY_REFRESH_LIMIT
MAX_PAGES = 5

_log = logging.getLogger(__name__)


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


_ERROR_STATUS = {
    "ThrottlingException": RefreshStatus.THROTTLED,
    "LimitExceededException": RefreshStatus.LIMIT_EXCEEDED,
    "ResourceNotFoundException": RefreshStatus.NOT_FOUND,
    "AccessDeniedException": RefreshStatus.ACCESS_DENIED,
    "ResourceExistsException": RefreshStatus.ALREADY_REQUESTED,
}


@dataclass(frozen=True)
class RefreshOutcome:
    status: RefreshStatus
    ingestion_id: str | None = None
    detail: str = ""


class Refresher(Protocol):
    def request_refresh(self, account_id: str | None = None) -> RefreshOutcome: ...


def account_id_from_arn(arn: str | None) -> str | None:
    """'arn:aws:lambda:us-east-1:123456789012:function:f' -> '123456789012'."""
    if not arn:
        return None
    parts = arn.split(":")
    if len(parts) > 4 and parts[4].isdigit() and len(parts[4]) == 12:
        return parts[4]
    return None


def ingestion_id_for(now: datetime, min_interval: timedelta) -> str:
    """A deterministic id per refresh window: concurrent requests in one window share it."""
    window = max(int(min_interval.total_seconds()), 60)
    epoch = int(now.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % window, tz=UTC)
    return f"alblake-{start:%Y%m%dT%H%M%SZ}"


class SpiceRefresher:
    def __init__(
        self,
        client: Any,
        dataset_id: str,
        *,
        min_interval: timedelta = timedelta(minutes=60),
        sts_client: Any = None,
        account_id: str | None = None,
        ingestion_type: str = "FULL_REFRESH",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        logger: logging.Logger | Any = None,
    ) -> None:
        self._client = client
        self.dataset_id = dataset_id
        self.min_interval = min_interval
        self._sts = sts_client
        self._account_id = account_id
        self.ingestion_type = ingestion_type
        self._clock = clock
        self._log = logger if logger is not None else _log

    def _resolve_account(self, account_id: str | None) -> str:
        if account_id:
            return account_id
        if self._account_id is None:
            if self._sts is None:
                raise RuntimeError("no account id: pass the Lambda context ARN or an STS client")
            self._account_id = str(self._sts.get_caller_identity()["Account"])
        return self._account_id

    def request_refresh(self, account_id: str | None = None) -> RefreshOutcome:
        if not self.dataset_id or self._client is None:
            return RefreshOutcome(RefreshStatus.DISABLED, detail="QUICKSIGHT_DATASET_ID not set")
        try:
            outcome = self._request(self._resolve_account(account_id))
        except ClientError as e:
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = _ERROR_STATUS.get(code, RefreshStatus.ERROR)
            outcome = RefreshOutcome(status, detail=f"{code}: {err.get('Message', '')}"[:300])
        except (BotoCoreError, RuntimeError, KeyError, ValueError, TypeError) as e:
            outcome = RefreshOutcome(RefreshStatus.ERROR, detail=f"{type(e).__name__}: {e}")
        log = self._log.warning if outcome.status in _WARN else self._log.info
        log(
            "SPICE refresh %s",
            outcome.status.value,
            extra={
                "dataset_id": self.dataset_id,
                "ingestion_id": outcome.ingestion_id,
                "detail": outcome.detail,
            },
        )
        return outcome

    def _request(self, account: str) -> RefreshOutcome:
        now = self._clock()
        cutoff = now - self.min_interval
        token: str | None = None
        for _ in range(MAX_PAGES):
            kwargs: dict[str, Any] = {
                "AwsAccountId": account,
                "DataSetId": self.dataset_id,
                "MaxResults": 100,
            }
            if token:
                kwargs["NextToken"] = token
            page = self._client.list_ingestions(**kwargs)
            for ing in page.get("Ingestions", []):
                status = ing.get("IngestionStatus", "")
                if status in ACTIVE_STATUSES:
                    return RefreshOutcome(
                        RefreshStatus.SKIPPED_IN_PROGRESS,
                        ing.get("IngestionId"),
                        f"ingestion is {status}",
                    )
                created = ing.get("CreatedTime")
                if isinstance(created, datetime) and created >= cutoff:
                    return RefreshOutcome(
                        RefreshStatus.SKIPPED_RECENT,
                        ing.get("IngestionId"),
                        f"last ingestion created {created.isoformat()} (< {self.min_interval})",
                    )
            token = page.get("NextToken")
            if not token:
                break
        ingestion_id = ingestion_id_for(now, self.min_interval)
        self._client.create_ingestion(
            AwsAccountId=account,
            DataSetId=self.dataset_id,
            IngestionId=ingestion_id,
            IngestionType=self.ingestion_type,
        )
        return RefreshOutcome(RefreshStatus.REQUESTED, ingestion_id)


_WARN = frozenset(
    {
        RefreshStatus.THROTTLED,
        RefreshStatus.LIMIT_EXCEEDED,
        RefreshStatus.NOT_FOUND,
        RefreshStatus.ACCESS_DENIED,
        RefreshStatus.ERROR,
    }
)
