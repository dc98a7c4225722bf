"""The Lambda ingest pipeline: S3 event records -> Parquet in the lake bucket -> Glue partitions -> SPICE.

Events: the deployed function reads SQS batches of IngestQueue only, whose messages are the log bucket's S3
notifications, EventBridge "Object Created" events, S3 TestEvents (nothing to do), backfill, replay and
redriven messages (``alblake.aws.events``). A direct S3 notification or EventBridge event (``sam local invoke``,
tests) is accepted too; any other shape raises ``UnsupportedEventError``.

Failure semantics (one invocation = one event, usually one record):

- Objects that are not ALB access logs (test file, NLB, connection and health-check logs, other names) are
  skipped with a log line and an ``ObjectsSkipped`` metric.
- Every record is attempted, even after another record of the same event failed.
- An object deleted before it is read (S3 NoSuchKey) is skipped with an ``ObjectsMissing`` metric: there is
  nothing to ingest and nothing to retry.
- A permanently bad object (``alblake.errors.InputError``: corrupt or truncated gzip, empty object) is logged
  with its key and reason and counted in ``ObjectsFailed``; nothing of it is published (the core stages
  locally and publishing only starts after the whole object converted).
- Any other error (S3/Glue API errors, throttling, timeouts: transient) is logged and counted the same way.
- SQS batches: each message whose objects failed (or whose body is not an accepted event) is returned in
  ``batchItemFailures``; SQS redelivers only those, and after the queue's maxReceiveCount keeps them in its
  dead-letter queue. Once the cause is fixed, ``alblake redrive --stack NAME`` moves them back (the log line of
  each failure says so). The invocation itself succeeds.
- A direct event (no SQS): after all records, if any failed, the invocation raises: ``ObjectRejectedError`` when
  every failure is permanent, ``IngestRetryableError`` otherwise, with a message listing each failed key.
  Retrying records that already succeeded is harmless: lake keys are deterministic (the same object always
  produces the same keys, so it overwrites, never duplicates) and Glue registration is idempotent.
- The SPICE refresh is requested once per invocation, after the records, when rows were written; it never
  raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from alblake.aws.events import S3Record, parse_event
from alblake.errors import InputError, ObjectMissingError, PartialFailureError
from alblake.ingest.core import IngestedObject, ingest_object
from alblake.keys import AccessLogKey, classify_key
from alblake.ports import Lake, LoggerLike, MetricsSink, ObjectReader, Refresher, RefreshResult
from alblake.s3_urls import s3_url
from alblake.service.config import LakeConfig, WarningLogger, minutes_setting, open_deployed_lake
from alblake.service.log_metrics import with_log_metrics
from alblake.service.refresh import MIN_REFRESH_MINUTES, RefreshOutcome, RefreshStatus

# Where a failed message goes and how it comes back, in every failure's log line.
WAY_BACK = (
    "its queue message is retried, then kept in the dead-letter queue; once the cause is fixed: "
    "alblake redrive --stack STACK_NAME (docs/OPERATIONS.md)"
)
PERMANENT_WAY_BACK = (
    "a retry reads the same bytes: its message ends in the dead-letter queue with this reason; replace the object "
    "and run alblake redrive --stack STACK_NAME, or drop the message (docs/OPERATIONS.md)"
)


@dataclass(frozen=True)
class LambdaConfig(LakeConfig):
    """The ingest function's configuration: the lake's (``LakeConfig``) and the dashboard refresh's,
    QUICKSIGHT_DATASET_ID (none: no refresh) and QUICKSIGHT_MIN_REFRESH_MINUTES (default 60, at least
    ``MIN_REFRESH_MINUTES``: a lower value is raised to it, with a warning)."""

    quicksight_dataset_id: str = ""
    quicksight_min_refresh_minutes: float = 60.0

    @classmethod
    def settings_from_env(cls, env: Mapping[str, str], logger: WarningLogger) -> dict[str, Any]:
        return {
            "quicksight_dataset_id": env.get("QUICKSIGHT_DATASET_ID", ""),
            "quicksight_min_refresh_minutes": _min_refresh_minutes(env, logger),
        }

    def __post_init__(self) -> None:
        # Direct construction cannot bypass the limit either (from_env clamps first and says so).
        if not self.quicksight_min_refresh_minutes >= MIN_REFRESH_MINUTES:
            object.__setattr__(self, "quicksight_min_refresh_minutes", MIN_REFRESH_MINUTES)

    @property
    def quicksight_min_interval(self) -> timedelta:
        return timedelta(minutes=self.quicksight_min_refresh_minutes)


def _min_refresh_minutes(env: Mapping[str, str], logger: WarningLogger) -> float:
    """QUICKSIGHT_MIN_REFRESH_MINUTES (default 60), at least ``MIN_REFRESH_MINUTES`` (a warning if raised)."""
    minutes = minutes_setting(env, "QUICKSIGHT_MIN_REFRESH_MINUTES", 60)
    if minutes < MIN_REFRESH_MINUTES:
        logger.warning(
            "QUICKSIGHT_MIN_REFRESH_MINUTES=%s is below %s (QuickSight Enterprise allows 32 refreshes per 24 h); "
            "using %s",
            env.get("QUICKSIGHT_MIN_REFRESH_MINUTES"),
            MIN_REFRESH_MINUTES,
            MIN_REFRESH_MINUTES,
        )
        return MIN_REFRESH_MINUTES
    return minutes


class RecordStatus(StrEnum):
    PROCESSED = "processed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class RecordOutcome:
    bucket: str
    key: str
    status: RecordStatus
    detail: str = ""
    permanent: bool = False
    rows: int = 0
    quarantined: int = 0
    published: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    partitions_created: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "status": self.status.value,
            "detail": self.detail,
            "rows": self.rows,
            "quarantined": self.quarantined,
            "published": self.published,
            "partitions": self.partitions,
            "partitions_created": self.partitions_created,
        }


@dataclass
class InvocationSummary:
    records: list[RecordOutcome]
    refresh: RefreshResult | None = None

    @property
    def failures(self) -> list[RecordOutcome]:
        return [r for r in self.records if r.status is RecordStatus.FAILED]

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": [r.as_dict() for r in self.records],
            "refresh": None if self.refresh is None else str(self.refresh.status),
        }


class IngestFailedError(PartialFailureError):
    """Some records of the event failed; the message lists each failed object and why."""

    def __init__(self, summary: InvocationSummary) -> None:
        self.summary = summary
        failures = summary.failures
        lines = [f"{s3_url(f.bucket, f.key)}: {f.detail}" for f in failures]
        super().__init__(f"{len(failures)} of {len(summary.records)} object(s) failed: " + " | ".join(lines))


class ObjectRejectedError(IngestFailedError):
    """Every failed object is permanently unusable (e.g. corrupt gzip): retries will not help (its message ends in
    the dead-letter queue; docs/OPERATIONS.md says what to do with it)."""


class IngestRetryableError(IngestFailedError):
    """At least one object failed for a transient reason (AWS API error); Lambda retries the event."""


class IngestPipeline:
    def __init__(
        self,
        *,
        config: LambdaConfig,
        reader: ObjectReader,
        lake: Lake,
        refresher: Refresher,
        logger: LoggerLike,
        metrics: MetricsSink,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.reader = reader
        self.lake = lake
        self.refresher = refresher
        self.logger = logger
        self.metrics = metrics
        self._clock = clock or (lambda: datetime.now(UTC))

    def handle_event(self, event: object, account_id: str | None = None) -> dict[str, Any]:
        """Ingest what the event names; the Lambda response (SQS: the batch item failures)."""
        parsed = parse_event(event)
        if not parsed.from_sqs:
            return self.handle(parsed.records, account_id).as_dict()
        failed: list[str] = []
        outcomes: list[RecordOutcome] = []
        for item in parsed.items:
            item_outcomes = [self.process(r) for r in item.records]
            outcomes += item_outcomes
            if item.error:
                self.logger.error(
                    "rejecting SQS message: not an accepted event",
                    extra={"error": item.error, "way_back": PERMANENT_WAY_BACK},
                )
                self.metrics.add_metric("MessagesRejected", "Count", 1)
            if item.error or any(o.status is RecordStatus.FAILED for o in item_outcomes):
                failed.append(str(item.item_id))
        self._refresh(InvocationSummary(outcomes), account_id)
        return {"batchItemFailures": [{"itemIdentifier": item_id} for item_id in failed]}

    def handle(self, records: Iterable[S3Record], account_id: str | None = None) -> InvocationSummary:
        summary = self._refresh(InvocationSummary([self.process(r) for r in records]), account_id)
        failures = summary.failures
        if failures:
            if all(f.permanent for f in failures):
                raise ObjectRejectedError(summary)
            raise IngestRetryableError(summary)
        return summary

    def _refresh(self, summary: InvocationSummary, account_id: str | None) -> InvocationSummary:
        if any(r.rows for r in summary.records):
            summary.refresh = self.refresher.request_refresh(account_id)
        else:
            summary.refresh = RefreshOutcome(RefreshStatus.NOT_NEEDED, detail="no new rows")
        return summary

    def process(self, record: S3Record) -> RecordOutcome:
        self.logger.append_keys(bucket=record.bucket, key=record.key)
        try:
            return self._process(record)
        finally:
            self.logger.remove_keys(["bucket", "key"])

    def _process(self, record: S3Record) -> RecordOutcome:
        kind = classify_key(record.key)
        if not isinstance(kind, AccessLogKey):
            reason = kind.reason.value
            self.logger.info("skipping object: not an ALB access log", extra={"skip_reason": reason})
            self.metrics.add_metric("ObjectsSkipped", "Count", 1)
            return RecordOutcome(record.bucket, record.key, RecordStatus.SKIPPED, detail=kind.reason.value)
        try:
            ingested = ingest_object(
                lambda: self.reader.open(record.bucket, record.key), s3_url(record.bucket, record.key), self.lake
            )
        except ObjectMissingError as e:
            self.logger.warning("skipping object: it no longer exists", extra={"error": str(e)})
            self.metrics.add_metric("ObjectsMissing", "Count", 1)
            return RecordOutcome(record.bucket, record.key, RecordStatus.SKIPPED, detail="missing")
        except InputError as e:
            self.logger.error(
                "rejecting object: permanently unreadable, nothing published",
                extra={"error_type": type(e).__name__, "error": str(e), "way_back": PERMANENT_WAY_BACK},
            )
            self.metrics.add_metric("ObjectsFailed", "Count", 1)
            return RecordOutcome(
                record.bucket, record.key, RecordStatus.FAILED, f"{type(e).__name__}: {e}", permanent=True
            )
        except Exception as e:  # transient (AWS API, network, /tmp full): retry the event
            self.logger.exception("object failed (transient: retried)", extra={"way_back": WAY_BACK})
            self.metrics.add_metric("ObjectsFailed", "Count", 1)
            return RecordOutcome(record.bucket, record.key, RecordStatus.FAILED, f"{type(e).__name__}: {e}")
        return self._report(record, kind, ingested)

    def _report(self, record: S3Record, kind: AccessLogKey, ingested: IngestedObject) -> RecordOutcome:
        partitions = sorted(set(ingested.partitions))
        commit = ingested.commit
        # Lag: the key's end time (end of the 5-minute delivery interval); the newest request time otherwise.
        lag_from = kind.end_time or ingested.max_time
        self.metrics.add_metric("RowsWritten", "Count", ingested.rows)
        self.metrics.add_metric("LinesQuarantined", "Count", ingested.quarantined)
        self.metrics.add_metric("BytesRead", "Bytes", ingested.bytes_in)
        self.metrics.add_metric("PartitionsWritten", "Count", len(partitions))
        if lag_from is not None:
            lag = max(0.0, (self._clock() - lag_from).total_seconds())
            self.metrics.add_metric("LogLagSeconds", "Seconds", lag)
        prefix = self.config.key_prefix
        self.logger.info(
            "object converted",
            extra={
                "lines": ingested.lines,
                "rows": ingested.rows,
                "quarantined": ingested.quarantined,
                "erased": ingested.erased,
                "bytes_in": ingested.bytes_in,
                "partitions": [p.path for p in partitions],
                "partitions_created": commit.partitions_created,
                "stale_files_deleted": [prefix + key for key in commit.deleted],
            },
        )
        return RecordOutcome(
            record.bucket,
            record.key,
            RecordStatus.PROCESSED,
            rows=ingested.rows,
            quarantined=ingested.quarantined,
            published=[prefix + key for key in commit.written],
            partitions=[p.path for p in partitions],
            partitions_created=commit.partitions_created,
        )


def build_pipeline(
    config: LambdaConfig,
    *,
    s3: Any,
    glue: Any,
    quicksight: Any,
    sts: Any,
    logger: LoggerLike,
    metrics: MetricsSink,
) -> IngestPipeline:
    """Wire the adapters around boto3 clients (one set per container). Opens the deployed lake
    (``open_deployed_lake``: a ``ConfigError`` when the Glue table does not match it, before anything is written)."""
    from alblake.aws.quicksight import SpiceRefresher  # the adapters: wiring only
    from alblake.aws.s3 import S3ObjectReader
    from alblake.secrets import install_key_sources

    install_key_sources()  # the lake's key, if its policy names one in SSM or Secrets Manager (read once)

    return IngestPipeline(
        config=config,
        reader=S3ObjectReader(s3),
        lake=with_log_metrics(open_deployed_lake(config, s3=s3, glue=glue)),  # EMF metrics when LOG_METRICS is on
        refresher=SpiceRefresher(
            quicksight if config.quicksight_dataset_id else None,
            config.quicksight_dataset_id,
            min_interval=config.quicksight_min_interval,
            sts_client=sts,
            logger=logger,
            metrics=metrics,
        ),
        logger=logger,
        metrics=metrics,
    )
