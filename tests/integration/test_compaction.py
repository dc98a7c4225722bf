"""functions/compact/app.handler end to end against moto, with the ingest handler writing around it.

What Athena reads is modelled as every object under each Glue partition's Location (subfolders included).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest

from alblake.aws.s3 import S3Store
from alblake.ports import ConditionFailedError
from alblake.service.compaction import CompactionFailedError
from tests.integration.conftest import (
    ALB_KEY,
    AWS_EXAMPLE_LINES,
    DATABASE,
    LAKE_BUCKET,
    TABLE,
    Aws,
    FakeContext,
    function_app,
    gz,
    metric_values,
    s3_event,
)

HOUR_22 = ["my-loadbalancer", "2018-07-02", "22"]


def node_key(node: int) -> str:
    return ALB_KEY.replace("10.0.0.1_5v4k2s0a", f"10.0.0.{node}_node{node}abc")


@pytest.fixture
def compact_app(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "alblake-compact")
    module = function_app("compact")
    module.pipeline.cache_clear()
    yield module
    module.pipeline.cache_clear()


def locations(aws: Aws) -> dict[tuple[str, ...], str]:
    return {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for p in aws.partitions()}


def athena_rows(aws: Aws) -> pa.Table:
    """The rows Athena reads: every Parquet object under each partition's Location."""
    tables: list[pa.Table] = []
    for location in locations(aws).values():
        prefix = location.removeprefix(f"s3://{LAKE_BUCKET}/")
        tables.extend(aws.read_parquet(k) for k in aws.lake_keys(prefix) if k.endswith(".parquet"))
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def files_under(aws: Aws, location: str) -> list[str]:
    prefix = location.removeprefix(f"s3://{LAKE_BUCKET}/")
    return [k for k in aws.lake_keys(prefix) if k.endswith(".parquet")]


@dataclass
class ShortContext(FakeContext):
    """A context whose remaining time is always ``remaining`` ms."""

    remaining: int = 0

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining


def test_compaction_swaps_locations_keeps_rows_once_and_deletes_after_grace(
    app: ModuleType, compact_app: ModuleType, aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    keys = [node_key(i) for i in range(1, 5)]
    for key in keys:
        aws.put_log(key, gz(AWS_EXAMPLE_LINES[:2]))  # both lines in hour 22 of 2018-07-02
    app.handler(s3_event(*keys), FakeContext())
    gen0 = locations(aws)[tuple(HOUR_22)]
    assert gen0 == f"s3://{LAKE_BUCKET}/alb_logs/elb_name=my-loadbalancer/day=2018-07-02/hour=22/"
    assert len(files_under(aws, gen0)) == 4 and athena_rows(aws).num_rows == 8

    result = compact_app.handler({}, FakeContext(function_name="alblake-compact"))
    assert result["partitions_compacted"] == 1 and result["files_removed"] == 3 and result["rows_compacted"] == 8
    gen1 = locations(aws)[tuple(HOUR_22)]
    assert gen1.startswith(
        f"s3://{LAKE_BUCKET}/alb_logs/compacted/elb_name=my-loadbalancer/day=2018-07-02/hour=22/g000001-"
    )
    assert len(files_under(aws, gen1)) == 1
    assert athena_rows(aws).num_rows == 8
    assert len(files_under(aws, gen0)) == 4  # kept for the grace period: queries that started before may read them
    out = capsys.readouterr().out
    assert metric_values(out, "PartitionsCompacted") == [1.0]
    assert metric_values(out, "RowsCompacted") == [8.0]
    assert metric_values(out, "FilesRemoved") == [3.0]

    monkeypatch.setenv("COMPACT_GRACE_MINUTES", "0")
    compact_app.pipeline.cache_clear()
    result = compact_app.handler({}, FakeContext(function_name="alblake-compact"))
    assert result["folders_deleted"] == 1 and result["partitions_compacted"] == 0
    assert files_under(aws, gen0) == []
    assert athena_rows(aws).num_rows == 8

    # a late object for the compacted hour: the ingest handler writes it into the live generation
    late = node_key(9)
    aws.put_log(late, gz(AWS_EXAMPLE_LINES[:2]))
    [record] = app.handler(s3_event(late), FakeContext())["records"]
    assert record["published"][0].startswith(
        "alb_logs/compacted/elb_name=my-loadbalancer/day=2018-07-02/hour=22/g000001-"
    )
    assert locations(aws)[tuple(HOUR_22)] == gen1
    assert athena_rows(aws).num_rows == 10

    # the same object delivered again (already compacted): nothing changes; then compaction folds the late file in
    app.handler(s3_event(keys[0]), FakeContext())
    assert athena_rows(aws).num_rows == 10
    compact_app.handler({}, FakeContext(function_name="alblake-compact"))
    gen2 = locations(aws)[tuple(HOUR_22)]
    assert "/g000002-" in gen2 and len(files_under(aws, gen2)) == 1
    assert athena_rows(aws).num_rows == 10


def test_changed_content_of_a_compacted_object_replaces_its_rows(
    app: ModuleType, compact_app: ModuleType, aws: Aws
) -> None:
    keys = [node_key(i) for i in range(1, 3)]
    for key in keys:
        aws.put_log(key, gz(AWS_EXAMPLE_LINES[:2]))
    app.handler(s3_event(*keys), FakeContext())
    compact_app.handler({}, FakeContext(function_name="alblake-compact"))
    aws.put_log(keys[0], gz(AWS_EXAMPLE_LINES[:1]))  # the object now has one line instead of two
    app.handler(s3_event(keys[0]), FakeContext())
    location = locations(aws)[tuple(HOUR_22)]
    assert "/g000002-" in location  # the ingest rewrote the compacted hour
    assert athena_rows(aws).num_rows == 3


def test_foreign_file_names_itself_and_blocks_nothing_else(app: ModuleType, compact_app: ModuleType, aws: Aws) -> None:
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))  # rows in hour 22 of 2018-07-02 and of 2018-11-30
    app.handler(s3_event(ALB_KEY), FakeContext())
    foreign = "alb_logs/elb_name=my-loadbalancer/day=2018-07-02/hour=22/part-0000.parquet"
    aws.s3.put_object(Bucket=LAKE_BUCKET, Key=foreign, Body=b"PAR1 not really parquet")
    with pytest.raises(CompactionFailedError, match=foreign):
        compact_app.handler({}, FakeContext(function_name="alblake-compact"))
    where = locations(aws)
    assert "/compacted/" in where[("my-loadbalancer", "2018-11-30", "22")]
    assert "/compacted/" not in where[tuple(HOUR_22)]


def test_corrupt_per_object_file_is_named(app: ModuleType, compact_app: ModuleType, aws: Aws) -> None:
    keys = [node_key(i) for i in range(1, 3)]
    for key in keys:
        aws.put_log(key, gz(AWS_EXAMPLE_LINES[:2]))
    app.handler(s3_event(*keys), FakeContext())
    [victim, *_] = files_under(aws, locations(aws)[tuple(HOUR_22)])
    aws.s3.put_object(Bucket=LAKE_BUCKET, Key=victim, Body=b"garbage")
    with pytest.raises(CompactionFailedError, match=victim.rsplit("/", 1)[-1]):
        compact_app.handler({}, FakeContext(function_name="alblake-compact"))


def test_partition_dropped_from_outside_is_registered_again_by_a_warm_container(app: ModuleType, aws: Aws) -> None:
    """Registration must not rely on the container's cache alone: a partition dropped from outside is created
    again by the next writer, warm container or not."""
    first, second = node_key(1), node_key(2)
    for key in (first, second):
        aws.put_log(key, gz(AWS_EXAMPLE_LINES[:2]))
    app.handler(s3_event(first), FakeContext())
    aws.glue.delete_partition(DatabaseName=DATABASE, TableName=TABLE, PartitionValues=HOUR_22)
    assert aws.partitions() == []
    app.handler(s3_event(second), FakeContext())  # same container (pipeline cached)
    assert [p["Values"] for p in aws.partitions()] == [HOUR_22]
    assert athena_rows(aws).num_rows == 4


def test_a_run_stops_before_the_time_limit_and_the_next_continues(
    app: ModuleType, compact_app: ModuleType, aws: Aws
) -> None:
    keys = []
    for hour in range(20, 24):
        lines = [line.replace("2018-07-02T22:", f"2018-07-02T{hour}:", 1) for line in AWS_EXAMPLE_LINES[:2]]
        for node in (1, 2):
            key = node_key(node).replace("20180702T2225Z", f"20180702T{hour}25Z")
            aws.put_log(key, gz(lines))
            keys.append(key)
    app.handler(s3_event(*keys), FakeContext())
    assert len(aws.partitions()) == 4
    stopped = compact_app.handler({}, ShortContext(function_name="alblake-compact", remaining=1_000))
    assert stopped["stopped_early"] and stopped["partitions_compacted"] == 0
    result = compact_app.handler({}, FakeContext(function_name="alblake-compact"))
    assert result["partitions_compacted"] == 4 and not result["stopped_early"]
    assert all("/compacted/" in location for location in locations(aws).values())
    assert athena_rows(aws).num_rows == 16


def test_s3_store_compare_and_swap_under_moto(aws: Aws) -> None:
    """S3 conditional writes (If-None-Match '*', If-Match ETag) as the state's compare-and-swap."""
    store = S3Store(aws.s3, LAKE_BUCKET, "lake")
    store.put_bytes_if("compaction/state/x.json", b"one", None)
    with pytest.raises(ConditionFailedError):
        store.put_bytes_if("compaction/state/x.json", b"two", None)  # exists already
    first = store.get_versioned("compaction/state/x.json")
    assert first is not None and first.content == b"one"
    store.put_bytes_if("compaction/state/x.json", b"two", first.tag)
    with pytest.raises(ConditionFailedError):
        store.put_bytes_if("compaction/state/x.json", b"three", first.tag)  # someone wrote after we read
    second = store.get_versioned("compaction/state/x.json")
    assert second is not None and second.content == b"two" and second.tag != first.tag
    with pytest.raises(ConditionFailedError):
        store.put_bytes_if("compaction/state/missing.json", b"x", first.tag)  # If-Match on a missing key
