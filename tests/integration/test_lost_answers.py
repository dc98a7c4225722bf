"""Lost acknowledgements against a real HTTP endpoint: writes that take effect while their answer never reaches
the client, so botocore retries them (``tests/fault_proxy.py`` between the CLI and moto_server).

The scenario: an S3 lake with its Glue table, 48 objects ingested and compacted, 16 late objects of the same
hours, then one ``alblake compact`` whose conditional writes of partition states (and Glue partition writes)
succeed but are not answered. The SDK's retry of a state write that succeeded is answered 412: the lake must
tell its own write from another writer's, and every reader must still see every row once, before and after
the grace period.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alblake.aws.session import forget_clients
from alblake.cli import main
from alblake.schema import glue_table_input
from tests.fault_proxy import FORWARD, LOSE_ANSWER, Action, FaultProxy, Request, fault_proxy
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url
from tests.log_objects import write_objects

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures

LAKE = "s3://lake/x"
def athena_rows(glue: Any) -> int:
    """What Athena reads: every Parquet object under each Glue partition's Location."""
    s3: Any = boto3.client("s3")
    rows = 0
    for partition in glue.get_partitions(DatabaseName="alblake", TableName="alb_logs")["Partitions"]:
        bucket, prefix = partition["StorageDescriptor"]["Location"].removeprefix("s3://").split("/", 1)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            rows += pq.read_metadata(pa.BufferReader(body)).num_rows
    return rows


def local_rows(capsys: pytest.CaptureFixture[str]) -> int:
    assert main(["query", "overview", "--lake", LAKE, "--csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    return int(dict(zip(header.replace('"', "").split(","), row.split(","), strict=True))["requests"])


def lose_first_answers(request: Request, seen: set[tuple[str, str, bytes]]) -> Action:
    """The first attempt of every conditional write of a partition state, and of every Glue partition write,
    takes effect unanswered; the SDK's retry is answered."""
    state_write = request.method == "PUT" and request.conditional and "/compaction/state/" in request.path
    glue_write = request.target in ("AWSGlue.BatchCreatePartition", "AWSGlue.BatchUpdatePartition")
    attempt = (request.path, request.target, request.body)
    if (state_write or glue_write) and attempt not in seen:
        seen.add(attempt)
        return LOSE_ANSWER
    return FORWARD


@pytest.fixture
def lossy_endpoint(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The AWS endpoint behind a proxy that loses answers only while ``proxy.decide`` says so."""
    boto3.client("s3").create_bucket(Bucket="lake")
    glue: Any = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "alblake"})
    glue.create_table(DatabaseName="alblake", TableInput=glue_table_input(f"{LAKE}/alb_logs/"))
    with fault_proxy(aws_endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        forget_clients()
        yield proxy
    forget_clients()


def test_a_compaction_whose_state_writes_are_not_answered_keeps_every_row(
    lossy_endpoint: FaultProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = write_objects(tmp_path / "first", range(1, 25), (21, 22), 50)  # 48 objects
    glue: Any = boto3.client("glue")
    ingest = ["--lake", LAKE, "--glue-database", "alblake", "--quiet", "--no-batch"]
    assert main(["ingest", str(tmp_path / "first"), *ingest]) == 0
    assert main(["compact", "--lake", LAKE, "--glue-database", "alblake", "--older-than", "0"]) == 0
    lines += write_objects(tmp_path / "late", range(25, 33), (21, 22), 50)  # 16 late objects
    assert main(["ingest", str(tmp_path / "late"), *ingest]) == 0
    capsys.readouterr()
    assert local_rows(capsys) == athena_rows(glue) == lines

    seen: set[tuple[str, str, bytes]] = set()
    lossy_endpoint.decide = lambda request: lose_first_answers(request, seen)
    assert main(["compact", "--lake", LAKE, "--glue-database", "alblake", "--older-than", "0"]) == 0
    lossy_endpoint.decide = lambda request: FORWARD
    out = capsys.readouterr().out
    assert local_rows(capsys) == athena_rows(glue) == lines
    assert "conflicts             0" in out, out  # its own writes were not taken for another writer's
    assert lossy_endpoint.injected[LOSE_ANSWER] == 4, lossy_endpoint.injected  # a state swap and a Glue move per hour
    assert main(["status", "--lake", LAKE, "--verify"]) == 0
    capsys.readouterr()

    assert main(["compact", "--lake", LAKE, "--glue-database", "alblake", "--older-than", "0", "--grace", "0"]) == 0
    capsys.readouterr()
    assert local_rows(capsys) == athena_rows(glue) == lines


def lose_first_answer_of_every_write(request: Request, seen: set[tuple[str, str, str, bytes]]) -> Action:
    """The first attempt of every write (S3 PUT/DELETE, Glue partition writes) takes effect unanswered."""
    writes = request.method in ("PUT", "DELETE") or request.target.startswith("AWSGlue.Batch")
    reads = request.target in ("AWSGlue.BatchGetPartition",)
    attempt = (request.method, request.path, request.target, request.body)
    if writes and not reads and attempt not in seen:
        seen.add(attempt)
        return LOSE_ANSWER
    return FORWARD


def test_ingest_and_compaction_whose_every_write_is_answered_late_keep_every_row_once(
    lossy_endpoint: FaultProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every write's first answer is lost (the SDK retries each): Glue's answer to a retried BatchCreatePartition
    is "already exists", a retried state swap "condition failed", a retried PUT or DELETE succeeds again."""
    lines = write_objects(tmp_path / "first", range(1, 5), (21, 22), 30)
    late = write_objects(tmp_path / "late", range(5, 7), (22,), 30)
    glue: Any = boto3.client("glue")
    ingest = ["--lake", LAKE, "--glue-database", "alblake", "--quiet", "--no-batch"]
    seen: set[tuple[str, str, str, bytes]] = set()
    lossy_endpoint.decide = lambda request: lose_first_answer_of_every_write(request, seen)
    assert main(["ingest", str(tmp_path / "first"), *ingest]) == 0
    assert main(["compact", "--lake", LAKE, "--glue-database", "alblake", "--older-than", "0"]) == 0
    assert main(["ingest", str(tmp_path / "late"), *ingest]) == 0
    assert main(["compact", "--lake", LAKE, "--glue-database", "alblake", "--older-than", "0", "--grace", "0"]) == 0
    lossy_endpoint.decide = lambda request: FORWARD
    capsys.readouterr()
    assert local_rows(capsys) == athena_rows(glue) == lines + late
    assert lossy_endpoint.injected[LOSE_ANSWER] > 40, lossy_endpoint.injected
    assert main(["status", "--lake", LAKE]) == 0
