"""The scheduled compaction use case: compact closed partition-hours of the S3 lake within one Lambda run.

- Configuration (environment): LAKE_BUCKET, LAKE_PREFIX, GLUE_DATABASE, GLUE_TABLE,
  COMPACT_OLDER_THAN_MINUTES (default 120), COMPACT_GRACE_MINUTES (default 60).
- Time budget: the run stops between two partitions (or two steps of a large one) when the remaining Lambda time
  falls below a margin (twice the longest so far, at least ``MIN_MARGIN``); where it stopped is saved in
  ``compaction/cursor.json`` and the next scheduled run continues from there (thousands of pending
  partition-hours take several runs; nothing is done twice, a step cut off mid-way is redone whole).
- A run that dies (the time limit, memory, a full /tmp) cannot save anything: the cursor is therefore saved
  before each partition, naming it. The next run counts a death for that partition, visits it after all the
  others, in steps halved per death, and leaves it to an operator after five (an error naming it, every run).
- Metrics: PartitionsCompacted, FilesRemoved, RowsCompacted, BytesWritten, DurationSeconds, FoldersDeleted,
  CompactionConflicts, CompactionErrors.
- A partition that cannot be compacted (any error: a foreign or corrupt file, S3 or /tmp failing; named in the
  log) is skipped; the others are compacted; at the end the run raises ``CompactionFailedError`` so the
  function's Errors alarm fires.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from alblake.errors import PartialFailureError
from alblake.lake.compaction import CompactionOptions, CompactionReport, compact
from alblake.lake.generational import GenerationalLake
from alblake.lake.generations import CURSOR_KEY
from alblake.lake.layout import Partition
from alblake.ports import LoggerLike, MetricsSink
from alblake.service.config import LakeConfig, WarningLogger, minutes_setting, open_deployed_lake

MIN_MARGIN = timedelta(seconds=90)


class CompactionFailedError(PartialFailureError):
    """Some partitions could not be compacted (the message names them and why); the rest were."""


@dataclass(frozen=True)
class CompactConfig(LakeConfig):
    """The compaction function's configuration: the lake's (``LakeConfig``), COMPACT_OLDER_THAN_MINUTES
    (default 120) and COMPACT_GRACE_MINUTES (default 60)."""

    older_than: timedelta = timedelta(minutes=120)
    grace: timedelta = timedelta(minutes=60)

    @classmethod
    def settings_from_env(cls, env: Mapping[str, str], logger: WarningLogger) -> dict[str, Any]:
        return {
            "older_than": timedelta(minutes=minutes_setting(env, "COMPACT_OLDER_THAN_MINUTES", 120)),
            "grace": timedelta(minutes=minutes_setting(env, "COMPACT_GRACE_MINUTES", 60)),
        }


class _Budget:
    """Says when to stop: the remaining time is below twice the longest partition so far (at least MIN_MARGIN)."""

    def __init__(self, remaining_ms: Callable[[], int]) -> None:
        self.remaining_ms = remaining_ms
        self.longest = 0.0
        self._last = time.monotonic()

    def should_stop(self) -> bool:
        now = time.monotonic()
        self.longest = max(self.longest, now - self._last)
        self._last = now
        margin = max(MIN_MARGIN.total_seconds(), 2 * self.longest)
        return self.remaining_ms() / 1000 < margin


@dataclass(frozen=True)
class RunCursor:
    """``compaction/cursor.json``: where the next run goes on (a listing cursor), the partition a run was inside
    when it saved this (if the next run finds it set, that run died there), and how many runs in a row died
    inside each partition. An unreadable cursor starts from the beginning."""

    start_after: str = ""
    in_progress: str = ""
    deaths: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {"start_after": self.start_after, "in_progress": self.in_progress, "deaths": dict(self.deaths)}
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, content: bytes | None) -> RunCursor:
        try:
            body = json.loads(content) if content else {}
            start_after, in_progress = body.get("start_after", ""), body.get("in_progress", "")
            deaths = {str(p): int(n) for p, n in body.get("deaths", {}).items()}
        except (ValueError, TypeError, AttributeError):
            return cls()
        if not isinstance(start_after, str) or not isinstance(in_progress, str):
            return cls()
        return cls(start_after, in_progress, deaths)


class CompactionPipeline:
    def __init__(
        self,
        *,
        config: CompactConfig,
        lake: GenerationalLake,
        logger: LoggerLike,
        metrics: MetricsSink,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.lake = lake
        self.logger = logger
        self.metrics = metrics
        self._clock = clock or (lambda: datetime.now(UTC))

    def run(self, remaining_ms: Callable[[], int]) -> CompactionReport:
        started = time.monotonic()
        cursor = self._read_cursor()
        deaths = dict(cursor.deaths)
        if cursor.in_progress:  # the last run died inside this partition (killed for time, memory or disk)
            deaths[cursor.in_progress] = deaths.get(cursor.in_progress, 0) + 1
            self.logger.warning(
                "the last run died while compacting a partition: it goes last, in smaller steps",
                extra={"partition": cursor.in_progress, "deaths": deaths[cursor.in_progress]},
            )

        def before_partition(partition: Partition, at: str) -> None:
            # saved before the work: if this run dies there, the next one knows where and why it stopped
            self._save_cursor(RunCursor(at, partition.path, deaths))

        options = CompactionOptions(
            now=self._clock(),
            older_than=self.config.older_than,
            grace=self.config.grace,
            should_stop=_Budget(remaining_ms).should_stop,
            start_after=cursor.start_after,
            deaths=deaths,
            on_partition=before_partition,
        )
        report = compact(self.lake, options)
        finished = set(report.finished) - {path for path, _ in report.errors}
        self._save_cursor(RunCursor(report.next_cursor, "", {p: n for p, n in deaths.items() if p not in finished}))
        seconds = time.monotonic() - started
        self._emit(report, seconds)
        self.logger.info(
            "compaction run finished" if not report.stopped_early else "compaction run stopped before the time limit",
            extra={**report_dict(report), "resumed_after": cursor.start_after, "seconds": round(seconds, 3)},
        )
        for partition, message in report.errors:
            self.logger.error("partition not compacted", extra={"partition": partition, "error": message})
        if report.errors:
            lines = " | ".join(f"{partition}: {message}" for partition, message in report.errors)
            raise CompactionFailedError(f"{len(report.errors)} partition(s) not compacted: {lines}")
        return report

    def _read_cursor(self) -> RunCursor:
        return RunCursor.from_json(self.lake.store.get(CURSOR_KEY))

    def _save_cursor(self, cursor: RunCursor) -> None:
        self.lake.store.put_bytes(CURSOR_KEY, cursor.to_json())

    def _emit(self, report: CompactionReport, seconds: float) -> None:
        self.metrics.add_metric("PartitionsCompacted", "Count", report.partitions_compacted)
        self.metrics.add_metric("FilesRemoved", "Count", report.files_removed)
        self.metrics.add_metric("RowsCompacted", "Count", report.rows_compacted)
        self.metrics.add_metric("BytesWritten", "Bytes", report.bytes_written)
        self.metrics.add_metric("DurationSeconds", "Seconds", seconds)
        self.metrics.add_metric("FoldersDeleted", "Count", report.folders_deleted)
        self.metrics.add_metric("OrphanFoldersDeleted", "Count", report.orphans_deleted)
        self.metrics.add_metric("CompactionConflicts", "Count", report.conflicts)
        self.metrics.add_metric("CompactionErrors", "Count", len(report.errors))


def report_dict(report: CompactionReport) -> dict[str, Any]:
    return {
        "partitions_compacted": report.partitions_compacted,
        "files_removed": report.files_removed,
        "rows_compacted": report.rows_compacted,
        "bytes_written": report.bytes_written,
        "folders_deleted": report.folders_deleted,
        "orphans_deleted": report.orphans_deleted,
        "conflicts": report.conflicts,
        "stopped_early": report.stopped_early,
        "next_cursor": report.next_cursor,
    }


def build_compaction_pipeline(
    config: CompactConfig,
    *,
    s3: Any,
    glue: Any,
    logger: LoggerLike,
    metrics: MetricsSink,
    clock: Callable[[], datetime] | None = None,
) -> CompactionPipeline:
    """Wire the adapters around boto3 clients (one set per container); checks the Glue table's Location."""
    lake = open_deployed_lake(config, s3=s3, glue=glue, clock=clock)
    return CompactionPipeline(config=config, lake=lake, logger=logger, metrics=metrics, clock=clock)
