"""Every failure-semantics branch of the Lambda use case, on in-memory fakes (no moto: milliseconds each)."""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from alblake.aws.events import S3Record
from alblake.lake.generational import open_lake
from alblake.service.ingest import IngestPipeline, IngestRetryableError, LambdaConfig, ObjectRejectedError
from tests.fakes import CountingRefresher, MemoryReader, RecordingLogger, RecordingMetrics
from tests.lake_fakes import MemoryCatalog, MemoryStore
from tests.parse_helpers import DOC_LINE

BUCKET = "logs"
KEY = (
    "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2018/07/02/"
    "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_20180702T2225Z_10.0.0.1_a.log.gz"
)
OTHER = KEY.replace("_a.log.gz", "_b.log.gz")


@dataclass
class World:
    pipeline: IngestPipeline
    store: MemoryStore
    source: MemoryReader
    catalog: MemoryCatalog
    refresher: CountingRefresher
    metrics: RecordingMetrics
    logger: RecordingLogger

    def rows(self) -> int:
        files = [v for k, v in self.store.objects.items() if k.startswith("alb_logs/") and k.endswith(".parquet")]
        return sum(pq.read_table(io.BytesIO(v)).num_rows for v in files)


@pytest.fixture
def world() -> World:
    store, source, catalog = MemoryStore(), MemoryReader(), MemoryCatalog()
    refresher, metrics, logger = CountingRefresher(), RecordingMetrics(), RecordingLogger()
    pipeline = IngestPipeline(
        config=LambdaConfig(lake_bucket="lake", glue_database="db"),
        reader=source,
        lake=open_lake(store, catalog),
        refresher=refresher,
        logger=logger,
        metrics=metrics,
        clock=lambda: datetime(2018, 7, 2, 22, 30, tzinfo=UTC),
    )
    return World(pipeline, store, source, catalog, refresher, metrics, logger)


def fail_next_put(store: MemoryStore) -> None:
    """The next data-file put fails like a throttled S3 (later ones succeed)."""
    failures = [ConnectionError("S3 503 SlowDown")]

    def before_write(operation: str, key: str) -> None:
        if operation == "put_file" and key.endswith(".parquet") and failures:
            raise failures.pop()

    store.before_write = before_write


def log(lines: int = 3) -> bytes:
    return gzip.compress((DOC_LINE + "\n").encode() * lines, mtime=0)


def test_a_processed_object_lands_registers_its_partition_and_refreshes_once(world: World) -> None:
    world.source.objects[(BUCKET, KEY)] = log(3)
    world.source.objects[(BUCKET, OTHER)] = log(2)
    summary = world.pipeline.handle([S3Record(BUCKET, KEY), S3Record(BUCKET, OTHER)])
    assert [(r.status.value, r.rows) for r in summary.records] == [("processed", 3), ("processed", 2)]
    assert world.rows() == 5
    assert [p.path for p in world.catalog.locations] == ["elb_name=my-loadbalancer/day=2018-07-02/hour=22"]
    assert world.refresher.requests == 1
    assert world.metrics.values["RowsWritten"] == [3, 2]
    assert world.metrics.values["LogLagSeconds"] == [300.0, 300.0]  # key end 22:25, clock 22:30
    assert world.logger.keys == {}  # the per-object keys are removed after each object


def test_not_an_access_log_is_skipped(world: World) -> None:
    [rec] = world.pipeline.handle([S3Record(BUCKET, "AWSLogs/123456789012/ELBAccessLogTestFile")]).records
    assert (rec.status.value, rec.detail) == ("skipped", "test-file")
    assert world.metrics.values == {"ObjectsSkipped": [1]}
    assert world.refresher.requests == 0


def test_a_missing_object_is_skipped_not_failed(world: World) -> None:
    [rec] = world.pipeline.handle([S3Record(BUCKET, KEY)]).records
    assert (rec.status.value, rec.detail) == ("skipped", "missing")
    assert world.metrics.values == {"ObjectsMissing": [1]}


def test_a_corrupt_object_is_permanent_and_publishes_nothing(world: World) -> None:
    world.source.objects[(BUCKET, KEY)] = b"\x1f\x8bnot gzip at all"
    with pytest.raises(ObjectRejectedError, match="CorruptInputError") as info:
        world.pipeline.handle([S3Record(BUCKET, KEY)])
    assert info.value.summary.failures[0].permanent
    assert world.store.objects == {}
    assert world.catalog.locations == {}


def test_a_store_failure_is_transient_and_the_retry_adds_nothing_twice(world: World) -> None:
    world.source.objects[(BUCKET, KEY)] = log(4)
    fail_next_put(world.store)
    with pytest.raises(IngestRetryableError, match="SlowDown"):
        world.pipeline.handle([S3Record(BUCKET, KEY)])
    world.pipeline.handle([S3Record(BUCKET, KEY)])
    world.pipeline.handle([S3Record(BUCKET, KEY)])  # a duplicate delivery after the retry
    assert world.rows() == 4


def test_partial_records_every_record_is_tried_and_the_good_one_lands(world: World) -> None:
    world.source.objects[(BUCKET, KEY)] = b"\x1f\x8bcorrupt"
    world.source.objects[(BUCKET, OTHER)] = log(2)
    with pytest.raises(ObjectRejectedError) as info:
        world.pipeline.handle([S3Record(BUCKET, KEY), S3Record(BUCKET, OTHER)])
    assert [r.status.value for r in info.value.summary.records] == ["failed", "processed"]
    assert KEY in str(info.value) and OTHER not in str(info.value)
    assert world.rows() == 2
    assert world.refresher.requests == 1  # rows were written: the refresh still happens


def test_mixed_permanent_and_transient_failures_are_retryable(world: World) -> None:
    world.source.objects[(BUCKET, KEY)] = b"\x1f\x8bcorrupt"
    world.source.objects[(BUCKET, OTHER)] = log(2)
    fail_next_put(world.store)
    with pytest.raises(IngestRetryableError):
        world.pipeline.handle([S3Record(BUCKET, KEY), S3Record(BUCKET, OTHER)])


def test_a_failed_refresh_never_fails_the_invocation(world: World) -> None:
    world.refresher.status = "error"
    world.source.objects[(BUCKET, KEY)] = log(1)
    summary = world.pipeline.handle([S3Record(BUCKET, KEY)])
    assert summary.as_dict()["refresh"] == "error"
    assert world.rows() == 1


def test_sqs_batch_failures_name_only_the_failed_messages(world: World) -> None:
    world.source.objects[(BUCKET, KEY)] = log(2)
    world.source.objects[(BUCKET, OTHER)] = b"\x1f\x8bcorrupt"

    def message(i: int, body: object) -> dict[str, object]:
        return {"eventSource": "aws:sqs", "messageId": f"m{i}", "body": json.dumps(body)}

    def notification(key: str) -> dict[str, object]:
        return {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}

    event = {"Records": [message(0, notification(KEY)), message(1, notification(OTHER)), message(2, {"x": 1})]}
    response = world.pipeline.handle_event(event)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert world.rows() == 2
    assert world.metrics.values["MessagesRejected"] == [1]
