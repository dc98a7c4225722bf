"""Request a SPICE refresh of the QuickSight dataset, within QuickSight's limits, never failing the pipeline.

QuickSight Enterprise allows 32 manual (API) refreshes of a SPICE dataset per 24 h, and one at a time
(botocore's CreateIngestion documentation). So:
- skip when an ingestion is INITIALIZED/QUEUED/RUNNING (it will pick up the new partitions, or the next one
  will);
- skip when any ingestion was created within ``min_interval`` (default 60 min: at most 24 refreshes a day
  from this pipeline, leaving headroom for manual ones);
- otherwise ``create_ingestion`` with an IngestionId derived from the current time window, so two
  invocations racing in the same window collide (``ResourceExistsException``) instead of both refreshing;
- ListIngestions is limited to 5 requests per second per user and 25 per account (botocore's documentation of
  ListIngestions), and every warm container of the function asks after each batch that wrote rows. So each
  refresher remembers until when the answer cannot change (the debounce interval after the ingestion it
  found or created; a minute after throttling) and asks nothing before then.

Refresh type (the policy, documented in docs/SCALING.md):
- normally INCREMENTAL_REFRESH: QuickSight re-imports only the rows inside the dataset's lookback window on
  ``time`` (template.yaml: ``DataSetRefreshProperties``, SpiceLookbackHours), counted back from the time the
  refresh runs, so a refresh costs a few hours of rows instead of the whole SpiceWindowDays window. Rows older
  than the window when they arrive (late deliveries, a backfill, a replay) are not picked up by it: they appear
  after the next full refresh;
- FULL_REFRESH when no FULL_REFRESH or initial ingestion has COMPLETED within ``full_refresh_every``
  (default 24 h). Incremental refreshes never drop rows that left the dataset's ``day`` window and never pick
  up objects delivered later than the lookback window; the periodic full refresh does both, so SPICE stays
  bounded to SpiceWindowDays. It takes one of the debounced slots above (not an extra one): the pipeline
  still makes at most 1440 / min_interval requests a day, whatever their type;
- a dataset without incremental refresh properties (InvalidParameterValueException on INCREMENTAL_REFRESH)
  gets a FULL_REFRESH in the same slot, which is what every refresh was before.

Every error (throttling, limit exceeded, missing dataset, access denied, a dropped connection, a malformed
response, anything else) is logged, counted as the ``QuickSightRefreshErrors`` metric and turned into a
status: QuickSight is a downstream nicety, the lake and Glue are the source of truth, so nothing here may
raise after the rows and partitions are written (a raise would make Lambda retry the whole object).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from alblake.errors import ServiceError
from alblake.ports import MetricsSink
from alblake.service.refresh import RefreshOutcome, RefreshStatus

ACTIVE_STATUSES = frozenset({"INITIALIZED", "QUEUED", "RUNNING"})
MAX_PAGES = 5
INCREMENTAL_REFRESH = "INCREMENTAL_REFRESH"
FULL_REFRESH = "FULL_REFRESH"
# Ingestions that reload the whole dataset query (RequestType in the ListIngestions model).
FULL_REQUEST_TYPES = frozenset({"FULL_REFRESH", "INITIAL_INGESTION"})
ERROR_METRIC = "QuickSightRefreshErrors"
THROTTLED_PAUSE = timedelta(minutes=1)  # after a ThrottlingException, ask again no sooner than this

_log = logging.getLogger(__name__)


_ERROR_STATUS = {
    "ThrottlingException": RefreshStatus.THROTTLED,
    "LimitExceededException": RefreshStatus.LIMIT_EXCEEDED,
    "ResourceNotFoundException": RefreshStatus.NOT_FOUND,
    "AccessDeniedException": RefreshStatus.ACCESS_DENIED,
    "ResourceExistsException": RefreshStatus.ALREADY_REQUESTED,
}


class MalformedResponseError(ServiceError, ValueError):
    """ListIngestions answered something that does not follow its model."""


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
        full_refresh_every: timedelta = timedelta(hours=24),
        sts_client: Any = None,
        account_id: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        logger: logging.Logger | Any = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self._client = client
        self.dataset_id = dataset_id
        self.min_interval = min_interval
        self.full_refresh_every = full_refresh_every
        self._sts = sts_client
        self._account_id = account_id
        self._clock = clock
        self._log = logger if logger is not None else _log
        self._metrics = metrics
        # no ListIngestions before this time: its answer cannot allow a refresh earlier (see the module docstring)
        self._quiet_until: datetime | None = None
        self._quiet_reason = ""

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
        now = self._clock()
        if self._quiet_until is not None and now < self._quiet_until:
            return RefreshOutcome(
                RefreshStatus.SKIPPED_RECENT,
                detail=f"{self._quiet_reason}; not asking QuickSight again before {self._quiet_until.isoformat()}",
            )
        try:
            outcome = self._request(self._resolve_account(account_id))
        except ClientError as e:
            outcome = _client_error_outcome(e)
        except Exception as e:  # connection resets, malformed bodies, bugs: never fail ingestion
            outcome = RefreshOutcome(RefreshStatus.ERROR, detail=f"{type(e).__name__}: {e}"[:300])
        if outcome.status in (RefreshStatus.REQUESTED, RefreshStatus.ALREADY_REQUESTED):
            self._quiet(now + self.min_interval, f"{outcome.status.value} at {now.isoformat()}")
        elif outcome.status is RefreshStatus.THROTTLED:
            self._quiet(now + THROTTLED_PAUSE, "ListIngestions or CreateIngestion was throttled")
        self._report(outcome)
        return outcome

    def _quiet(self, until: datetime, reason: str) -> None:
        if until > self._clock():
            self._quiet_until, self._quiet_reason = until, reason

    def _report(self, outcome: RefreshOutcome) -> None:
        failed = outcome.status in _WARN
        (self._log.warning if failed else self._log.info)(
            "SPICE refresh %s",
            outcome.status.value,
            extra={
                "dataset_id": self.dataset_id,
                "ingestion_id": outcome.ingestion_id,
                "ingestion_type": outcome.ingestion_type,
                "detail": outcome.detail,
            },
        )
        if failed and self._metrics is not None:
            try:
                self._metrics.add_metric(ERROR_METRIC, "Count", 1)
            except Exception:  # a metrics failure must not fail ingestion either
                self._log.warning("could not record %s", ERROR_METRIC)

    def _ingestions(self, account: str) -> Iterator[dict[str, Any]]:
        """ListIngestions, page by page (at most MAX_PAGES), each item checked against the model's shape."""
        token: str | None = None
        for _ in range(MAX_PAGES):
            kwargs: dict[str, Any] = {"AwsAccountId": account, "DataSetId": self.dataset_id, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self._client.list_ingestions(**kwargs)
            items = page.get("Ingestions", []) if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise MalformedResponseError(f"ListIngestions returned no Ingestions list: {str(page)[:120]}")
            for item in items:
                if not isinstance(item, dict):
                    raise MalformedResponseError(f"ListIngestions item is not an object: {str(item)[:120]}")
                yield item
            token = page.get("NextToken")
            if not token:
                return

    def _request(self, account: str) -> RefreshOutcome:
        now = self._clock()
        cutoff = now - self.min_interval
        full_cutoff = now - self.full_refresh_every
        recent_full = False
        for ing in self._ingestions(account):
            status = ing.get("IngestionStatus", "")
            created = ing.get("CreatedTime")
            if status in ACTIVE_STATUSES:
                if isinstance(created, datetime):
                    self._quiet(created + self.min_interval, f"ingestion {ing.get('IngestionId')} is {status}")
                return RefreshOutcome(
                    RefreshStatus.SKIPPED_IN_PROGRESS, ing.get("IngestionId"), f"ingestion is {status}"
                )
            if isinstance(created, datetime) and created >= cutoff:
                self._quiet(created + self.min_interval, f"ingestion {ing.get('IngestionId')} created {created}")
                return RefreshOutcome(
                    RefreshStatus.SKIPPED_RECENT,
                    ing.get("IngestionId"),
                    f"last ingestion created {created.isoformat()} (< {self.min_interval})",
                )
            if (
                status == "COMPLETED"
                and ing.get("RequestType") in FULL_REQUEST_TYPES
                and isinstance(created, datetime)
                and created >= full_cutoff
            ):
                recent_full = True
        ingestion_id = ingestion_id_for(now, self.min_interval)
        kind = INCREMENTAL_REFRESH if recent_full else FULL_REFRESH
        try:
            self._create(account, ingestion_id, kind)
        except ClientError as e:
            if kind != INCREMENTAL_REFRESH or _code(e) != "InvalidParameterValueException":
                raise
            # No incremental refresh configuration on the dataset: the full refresh it always supports.
            kind = FULL_REFRESH
            self._create(account, ingestion_id, kind)
        return RefreshOutcome(RefreshStatus.REQUESTED, ingestion_id, ingestion_type=kind)

    def _create(self, account: str, ingestion_id: str, kind: str) -> None:
        self._client.create_ingestion(
            AwsAccountId=account, DataSetId=self.dataset_id, IngestionId=ingestion_id, IngestionType=kind
        )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _client_error_outcome(error: ClientError) -> RefreshOutcome:
    code = _code(error)
    message = error.response.get("Error", {}).get("Message", "")
    return RefreshOutcome(_ERROR_STATUS.get(code, RefreshStatus.ERROR), detail=f"{code}: {message}"[:300])


_WARN = frozenset(
    {
        RefreshStatus.THROTTLED,
        RefreshStatus.LIMIT_EXCEEDED,
        RefreshStatus.NOT_FOUND,
        RefreshStatus.ACCESS_DENIED,
        RefreshStatus.ERROR,
    }
)
