"""GluePartitionRegistrar against moto (and botocore's Stubber for errors moto cannot produce)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from alblake.aws.events import S3Record
from alblake.aws.glue import GluePartitionError, GluePartitionRegistrar, GlueTableLocationError
from alblake.lake.layout import Partition
from alblake.ports import PartitionTarget
from alblake.service.ingest import LambdaConfig, build_pipeline
from tests.integration.conftest import (
    ALB_KEY,
    AWS_EXAMPLE_LINES,
    DATABASE,
    LAKE_BUCKET,
    LOG_BUCKET,
    REGION,
    TABLE,
    Aws,
    RecordingMetrics,
    gz,
)

P1 = Partition("my-loadbalancer", "2018-07-02", "22")


def at_generation_0(partition: Partition, root: str = f"s3://{LAKE_BUCKET}/alb_logs") -> PartitionTarget:
    """Where a partition that was never compacted must point: its Hive folder under the table's location."""
    return PartitionTarget(partition, f"{root}/{partition.path}/", 0)


def test_point_creates_with_table_storage_descriptor(aws: Aws) -> None:
    reg = GluePartitionRegistrar(aws.glue, DATABASE, TABLE)
    assert reg.point([at_generation_0(P1)]) == 1
    [part] = aws.partitions()
    assert part["Values"] == ["my-loadbalancer", "2018-07-02", "22"]
    sd = part["StorageDescriptor"]
    table_sd = aws.glue.get_table(DatabaseName=DATABASE, Name=TABLE)["Table"]["StorageDescriptor"]
    assert sd["Location"] == f"s3://{LAKE_BUCKET}/alb_logs/elb_name=my-loadbalancer/day=2018-07-02/hour=22/"
    for k in ("Columns", "InputFormat", "OutputFormat", "SerdeInfo"):
        assert sd[k] == table_sd[k]


def test_expected_location_mismatch_raises_before_any_partition(aws: Aws) -> None:
    reg = GluePartitionRegistrar(aws.glue, DATABASE, TABLE, expected_location=f"s3://{LAKE_BUCKET}/lake/alb_logs/")
    with pytest.raises(GlueTableLocationError, match=f"s3://{LAKE_BUCKET}/alb_logs/"):
        reg.verify()
    with pytest.raises(GlueTableLocationError):
        reg.point([at_generation_0(P1)])
    assert aws.partitions() == []
    ok = GluePartitionRegistrar(aws.glue, DATABASE, TABLE, expected_location=f"s3://{LAKE_BUCKET}/alb_logs/")
    ok.verify()
    assert ok.point([at_generation_0(P1)]) == 1


def test_an_existing_partition_is_left_alone(aws: Aws) -> None:
    GluePartitionRegistrar(aws.glue, DATABASE, TABLE).point([at_generation_0(P1)])
    other_container = GluePartitionRegistrar(aws.glue, DATABASE, TABLE)
    p2 = Partition("my-loadbalancer", "2018-07-02", "23")
    targets = [at_generation_0(P1), at_generation_0(p2), at_generation_0(P1)]
    assert other_container.point(targets) == 1  # P1 exists where it should, P2 is new
    assert sorted(p["Values"][2] for p in aws.partitions()) == ["22", "23"]


def test_more_than_one_batch(aws: Aws) -> None:
    parts = [at_generation_0(Partition(f"lb-{i // 24}", "2026-11-24", f"{i % 24:02d}")) for i in range(250)]
    reg = GluePartitionRegistrar(aws.glue, DATABASE, TABLE)
    assert reg.point(parts[:120]) == 120
    assert GluePartitionRegistrar(aws.glue, DATABASE, TABLE).point(parts) == 130
    assert len(aws.partitions()) == 250


def _stubbed_glue() -> tuple[Any, Stubber]:
    """A Glue client answering (in this order): no such partition, then the table."""
    client = boto3.client("glue", region_name=REGION)
    stubber = Stubber(client)
    _no_partition_yet(stubber)
    stubber.add_response(
        "get_table",
        {
            "Table": {
                "Name": TABLE,
                "StorageDescriptor": {"Location": "s3://lake/alb_logs", "Columns": [{"Name": "type"}]},
            }
        },
        {"DatabaseName": DATABASE, "Name": TABLE},
    )
    return client, stubber


def _no_partition_yet(stubber: Stubber) -> None:
    stubber.add_response("batch_get_partition", {"Partitions": []})


def test_other_entry_errors_raise() -> None:
    client, stubber = _stubbed_glue()
    stubber.add_response(
        "batch_create_partition",
        {
            "Errors": [
                {
                    "PartitionValues": P1.values,
                    "ErrorDetail": {
                        "ErrorCode": "ResourceNumberLimitExceededException",
                        "ErrorMessage": "x",
                    },
                }
            ]
        },
    )
    with stubber, pytest.raises(GluePartitionError, match="ResourceNumberLimitExceededException"):
        GluePartitionRegistrar(client, DATABASE, TABLE).point([at_generation_0(P1, "s3://lake/alb_logs")])


def test_api_error_propagates_the_table_is_read_once_and_glue_is_asked_every_time() -> None:
    """No in-memory cache decides whether a partition exists (a partition dropped from outside comes back)."""
    client, stubber = _stubbed_glue()
    stubber.add_client_error("batch_create_partition", "ThrottlingException", http_status_code=400)
    location = "s3://lake/alb_logs/elb_name=my-loadbalancer/day=2018-07-02/hour=22/"
    _no_partition_yet(stubber)
    stubber.add_response(
        "batch_create_partition",
        {"Errors": []},
        {
            "DatabaseName": DATABASE,
            "TableName": TABLE,
            "PartitionInputList": [
                {"Values": P1.values, "StorageDescriptor": {"Columns": [{"Name": "type"}], "Location": location}}
            ],
        },
    )
    stubber.add_response(
        "batch_get_partition", {"Partitions": [{"Values": P1.values, "StorageDescriptor": {"Location": location}}]}
    )
    reg = GluePartitionRegistrar(client, DATABASE, TABLE)
    target = at_generation_0(P1, "s3://lake/alb_logs")
    with stubber:
        with pytest.raises(ClientError, match="Throttling"):
            reg.point([target])
        assert reg.point([target]) == 1  # retry works; get_table was not called again (none queued)
        assert reg.point([target]) == 0  # exists where it should: one read, nothing written
        stubber.assert_no_pending_responses()


def test_concurrent_invocations_same_partition(aws: Aws, tmp_path: Path) -> None:
    """Eight 'containers' ingest eight node files of the same hour at once."""
    keys = [ALB_KEY.replace("10.0.0.1_5v4k2s0a", f"10.0.0.{i}_node{i}abc") for i in range(8)]
    for key in keys:
        aws.put_log(key, gz(AWS_EXAMPLE_LINES[:2]))  # both lines in hour 22 of 2018-07-02
    config = LambdaConfig(lake_bucket=LAKE_BUCKET, glue_database=DATABASE, staging_root=tmp_path)
    barrier = threading.Barrier(len(keys))

    def run(key: str) -> int:
        pipeline = build_pipeline(  # one per container: own clients, own Glue cache
            config,
            s3=boto3.client("s3", region_name=REGION),
            glue=boto3.client("glue", region_name=REGION),
            quicksight=None,
            sts=None,
            logger=Logger(service="test"),
            metrics=RecordingMetrics(),
        )
        barrier.wait()
        summary = pipeline.handle([S3Record(LOG_BUCKET, key)])
        return summary.records[0].rows

    with ThreadPoolExecutor(len(keys)) as pool:
        rows = list(pool.map(run, keys))
    assert rows == [2] * len(keys)
    assert [p["Values"] for p in aws.partitions()] == [["my-loadbalancer", "2018-07-02", "22"]]
    assert aws.lake_table().num_rows == 2 * len(keys)
    assert len([k for k in aws.lake_keys() if k.endswith(".parquet")]) == len(keys)
