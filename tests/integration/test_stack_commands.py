"""``--stack NAME`` for backfill and replay (moto_server): the README's backfill of another bucket works as
written: the stack's outputs name the queue and the lake, so no queue name or URL is copied by hand."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pyarrow.csv as pa_csv
import pytest

from alblake.aws.quicksight import SpiceRefresher
from alblake.aws.s3 import S3ObjectReader
from alblake.aws.s3_location import open_s3_lake
from alblake.cli import main
from alblake.ingest.runner import ingest_paths
from alblake.sample import write_sample_logs
from alblake.service.ingest import IngestPipeline, LambdaConfig
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudFormation..WaitConditionHandle")

OTHER, LAKE_BUCKET = "my-alb-logs", "prod-lake"


class _Quiet:
    def info(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def warning(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def error(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def exception(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def append_keys(self, **additional_keys: object) -> None: ...
    def remove_keys(self, keys: object) -> None: ...
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


def deploy(aws_endpoint: str) -> str:
    """The buckets and queue of a stack named prod, and the stack's outputs (moto's CloudFormation)."""
    s3: Any = boto3.client("s3")
    for bucket in (OTHER, LAKE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    url = str(boto3.client("sqs").create_queue(QueueName="prod-IngestQueue-1A2B3C")["QueueUrl"])
    outputs = {"LakeBucketName": LAKE_BUCKET, "GlueDatabaseName": "prod_alblake", "IngestQueueUrl": url}
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName="prod", TemplateBody=json.dumps(template))
    return url


def drain(url: str) -> int:
    """The stack's consumer: SQS batches handed to the real pipeline (no catalog here)."""
    sqs: Any = boto3.client("sqs")
    pipeline = IngestPipeline(
        config=LambdaConfig(lake_bucket=LAKE_BUCKET, glue_database="unused"),
        reader=S3ObjectReader(boto3.client("s3")),
        lake=open_s3_lake(f"s3://{LAKE_BUCKET}"),
        refresher=SpiceRefresher(None, ""),
        logger=_Quiet(),
        metrics=_Quiet(),
    )
    consumed = 0
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        records = [{"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"} for m in batch]
        assert pipeline.handle_event({"Records": records}) == {"batchItemFailures": []}
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            consumed += 1
    return consumed


def requests(capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert main(["query", "overview", "--lake", f"s3://{LAKE_BUCKET}", "--csv"]) == 0
    return int(pa_csv.read_csv(io.BytesIO(capsys.readouterr().out.encode())).to_pylist()[0]["requests"])


def test_backfill_of_another_bucket_by_stack_name_then_replay_by_stack_name(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the backfill's state file
    url = deploy(aws_endpoint)
    root = tmp_path / "logs"
    paths = write_sample_logs(root, files=4, lines_per_file=80, malformed_every=37)
    for path in paths:
        boto3.client("s3").upload_file(str(path), OTHER, path.relative_to(root).as_posix())
    expected = ingest_paths([str(root)], tmp_path / "oracle", jobs=1)

    # as README shows it: the source bucket and the stack, nothing else
    assert main(["backfill", f"s3://{OTHER}/AWSLogs/", "--stack", "prod"]) == 0
    assert "enqueued        4 objects" in capsys.readouterr().out
    assert drain(url) == 4
    assert requests(capsys) == expected.rows
    assert main(["backfill", f"s3://{OTHER}/AWSLogs/", "--stack", "prod"]) == 0
    assert "already in lake 4" in capsys.readouterr().out  # the stack's lake was read: nothing twice

    assert main(["replay", "--stack", "prod", "--dry-run"]) == 0
    assert f"{expected.quarantined:,} lines in 4 source objects" in capsys.readouterr().out
    assert main(["replay", "--stack", "prod"]) == 0
    assert "enqueued                 4 source objects" in capsys.readouterr().out
    assert drain(url) == 4
    assert requests(capsys) == expected.rows  # replayed: replaced, not added


def test_a_stack_that_does_not_exist_is_one_clear_error(aws_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backfill", "s3://x/AWSLogs/", "--stack", "nope"]) == 1
    assert "error: stack 'nope' does not exist" in capsys.readouterr().err
