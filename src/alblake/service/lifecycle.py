"""The scheduled lifecycle use case of the deployed lake, and the stack's privacy settings published into it.

- Scheduled run (``LifecyclePipeline.run``): settle the erasures at least a grace period old (docs/COMPACTION.md
  X5), expire the hours older than LAKE_RETENTION_DAYS (0: none) and the quarantine files older than
  QUARANTINE_RETENTION_DAYS (0: none), within the Lambda's time: settling and expiry both stop between two
  partitions when less than a minute is left, and the next run goes on (expiry has no cursor, every step is
  idempotent; an erasure whose settling stopped stays unsettled, its audit record holding the partitions rescanned
  so far, so the next run rescans only the rest and what changed since). A partition that fails stays with its
  error; the run then raises ``LifecycleFailedError`` so the function's Errors alarm fires.
- Publishing (``LifecyclePipeline.publish``, a CloudFormation custom resource): the stack's privacy parameters
  (client addresses, query strings, quarantine, key reference) written into the lake's policy, which every ingest
  reads (the ingest function and ``alblake ingest`` apply the same). The key is read once, to fingerprint it; it
  is never logged.
- Configuration: the lake's (``LakeConfig``), LAKE_RETENTION_DAYS, QUARANTINE_RETENTION_DAYS (days, >= 0) and
  LIFECYCLE_GRACE_MINUTES (default 60: the compaction grace period).
- Metrics: PartitionsEmptied, PartitionsDropped, CatalogPartitionsDropped, QuarantineFilesExpired,
  ErasuresSettled, RowsErasedWhenSettling, LifecycleErrors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alblake.errors import ConfigError, PartialFailureError
from alblake.lake.generational import GenerationalLake
from alblake.lake.lifecycle import ExpiryOptions, ExpiryReport, PartitionCatalog, expire, settle
from alblake.lake.settings import LakePolicy, set_privacy
from alblake.ports import LoggerLike, MetricsSink
from alblake.service.config import LakeConfig, WarningLogger, minutes_setting, open_deployed_lake

MIN_MARGIN = timedelta(seconds=60)
PRIVACY_PROPERTIES = {"ClientAddresses": "client_ip", "QueryStrings": "query_strings", "Quarantine": "quarantine"}


class LifecycleFailedError(PartialFailureError):
    """Some partitions could not be expired or settled (the message names them and why); the rest were."""


def days_setting(env: Mapping[str, str], name: str) -> float:
    """Days in an environment variable: finite and >= 0 (0 or unset: off)."""
    raw = env.get(name) or "0"
    try:
        days = float(raw)
    except ValueError:
        raise ConfigError(f"{name} is not a number of days: {raw!r}") from None
    if not 0 <= days < math.inf:
        raise ConfigError(f"{name} is not a finite number of days >= 0: {raw!r}")
    return days


@dataclass(frozen=True)
class LifecycleConfig(LakeConfig):
    """The lifecycle function's configuration (see the module docstring)."""

    retention_days: float = 0.0
    quarantine_retention_days: float = 0.0
    grace: timedelta = timedelta(minutes=60)

    @classmethod
    def settings_from_env(cls, env: Mapping[str, str], logger: WarningLogger) -> dict[str, Any]:
        return {
            "retention_days": days_setting(env, "LAKE_RETENTION_DAYS"),
            "quarantine_retention_days": days_setting(env, "QUARANTINE_RETENTION_DAYS"),
            "grace": timedelta(minutes=minutes_setting(env, "LIFECYCLE_GRACE_MINUTES", 60)),
        }


def _days(days: float) -> timedelta | None:
    return timedelta(days=days) if days > 0 else None


class LifecyclePipeline:
    def __init__(
        self,
        *,
        config: LifecycleConfig,
        lake: GenerationalLake,
        catalog: PartitionCatalog | None,
        logger: LoggerLike,
        metrics: MetricsSink,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.lake = lake
        self.catalog = catalog
        self.logger = logger
        self.metrics = metrics
        self._clock = clock or (lambda: datetime.now(UTC))

    def run(self, remaining_ms: Callable[[], int]) -> dict[str, Any]:
        """One scheduled run (see the module docstring); what it did."""
        now = self._clock()
        started = time.monotonic()

        def should_stop() -> bool:  # the Lambda's time, for settling and expiry alike
            return remaining_ms() / 1000 < MIN_MARGIN.total_seconds()

        settled = settle(self.lake, now=now, grace=self.config.grace, should_stop=should_stop)
        options = ExpiryOptions(
            now=now,
            older_than=_days(self.config.retention_days),
            quarantine_older_than=_days(self.config.quarantine_retention_days),
            grace=self.config.grace,
            should_stop=should_stop,
            table=self.config.glue_table,
        )
        report = expire(self.lake, options, self.catalog)
        errors = report.errors + [error for erasure in settled for error in erasure.errors]
        settling_stopped = any(erasure.stopped_early for erasure in settled)
        summary = {
            **expiry_dict(report),
            "settling_stopped_early": settling_stopped,
            "erasures_settled": sum(not erasure.stopped_early for erasure in settled),
            "rows_erased_when_settling": sum(erasure.rows for erasure in settled),
            "quarantined_lines_erased_when_settling": sum(erasure.lines for erasure in settled),
            "seconds": round(time.monotonic() - started, 3),
        }
        self._emit(report, summary, len(errors))
        self.logger.info("lifecycle run finished", extra=summary)
        for where, message in errors:
            self.logger.error("lifecycle step failed", extra={"where": where, "error": message})
        if errors:
            lines = " | ".join(f"{where}: {message}" for where, message in errors)
            raise LifecycleFailedError(f"{len(errors)} lifecycle step(s) failed: {lines}")
        return summary

    def publish(self, properties: Mapping[str, Any]) -> LakePolicy:
        """The stack's privacy parameters into the lake's policy (``Key``: a reference, or "" for none)."""
        changes = {field: str(properties[name]) for name, field in PRIVACY_PROPERTIES.items() if name in properties}
        key = str(properties.get("Key") or "") or None
        policy = set_privacy(self.lake.store, changes, key)
        self.logger.info(
            "lake privacy settings published",
            extra={**policy.privacy.as_dict(), "key": policy.key or "", "key_fingerprint": policy.key_check or ""},
        )
        return policy

    def _emit(self, report: ExpiryReport, summary: Mapping[str, Any], errors: int) -> None:
        self.metrics.add_metric("PartitionsEmptied", "Count", len(report.emptied))
        self.metrics.add_metric("PartitionsDropped", "Count", len(report.dropped))
        self.metrics.add_metric("CatalogPartitionsDropped", "Count", report.catalog_dropped)
        self.metrics.add_metric("QuarantineFilesExpired", "Count", len(report.quarantine_deleted))
        self.metrics.add_metric("ErasuresSettled", "Count", summary["erasures_settled"])
        self.metrics.add_metric("RowsErasedWhenSettling", "Count", summary["rows_erased_when_settling"])
        self.metrics.add_metric("LifecycleErrors", "Count", errors)


def expiry_dict(report: ExpiryReport) -> dict[str, Any]:
    return {
        "expired_before": report.expired_before,
        "partitions_emptied": len(report.emptied),
        "partitions_dropped": len(report.dropped),
        "partitions_waiting": len(report.waiting),
        "manifests_updated": report.manifests_updated,
        "manifests_deleted": report.manifests_deleted,
        "catalog_partitions_dropped": report.catalog_dropped,
        "quarantine_files_expired": len(report.quarantine_deleted),
        "erasure_criteria_pruned": len(report.criteria_pruned),
        "stopped_early": report.stopped_early,
    }


def build_lifecycle_pipeline(
    config: LifecycleConfig,
    *,
    s3: Any,
    glue: Any,
    logger: LoggerLike,
    metrics: MetricsSink,
    clock: Callable[[], datetime] | None = None,
) -> LifecyclePipeline:
    """Wire the adapters around boto3 clients (one set per container); the lake's key, if any, is read through
    ``alblake.secrets`` once per container."""
    from alblake.aws.glue_partitions import GluePartitionCatalog  # the adapters: wiring only
    from alblake.secrets import install_key_sources

    install_key_sources()
    lake = open_deployed_lake(config, s3=s3, glue=glue, clock=clock)
    catalog = GluePartitionCatalog(glue, config.glue_database)
    return LifecyclePipeline(config=config, lake=lake, catalog=catalog, logger=logger, metrics=metrics, clock=clock)
