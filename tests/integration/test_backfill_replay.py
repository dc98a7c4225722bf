"""backfill -> SQS -> the ingest pipeline -> rows exactly once; replay after a parser change; against a real
moto_server endpoint (S3 and SQS).

The consumer here hands SQS batches of the messages backfill sent (``alblake.aws.sqs``: S3-notification-shaped
bodies) to the real ``IngestPipeline.handle_event``, as the stack's queue consumer does.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pyarrow.csv as pa_csv
import pytest

import alblake.convert.core
from alblake.aws.quicksight import SpiceRefresher
from alblake.aws.s3 import S3ObjectReader
from alblake.aws.s3_listing import S3Object, list_objects
from alblake.aws.s3_location import open_s3_lake
from alblake.aws.sqs import QueueSender
from alblake.cli import main
from alblake.ingest.filters import ObjectFilter
from alblake.ingest.runner import ingest_paths
from alblake.keys import decode_event_key
from alblake.parse import parse_block
from alblake.sample import write_sample_logs
from alblake.service.backfill import BackfillState, run_backfill
from alblake.service.ingest import IngestPipeline, LambdaConfig
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures

LOGS, LAKE_BUCKET, LAKE = "logs", "lake", "s3://lake/x"


class _Log:
    def info(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def warning(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def error(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def exception(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def append_keys(self, **additional_keys: object) -> None: ...
    def remove_keys(self, keys: object) -> None: ...


class _Metrics:
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


def setup_buckets(tmp_path: Path, files: int = 6) -> tuple[list[Path], Path]:
    s3 = boto3.client("s3")
    for bucket in (LOGS, LAKE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    root = tmp_path / "logs"
    paths = write_sample_logs(root, files=files, lines_per_file=120, malformed_every=53)
    for path in paths:
        s3.upload_file(str(path), LOGS, path.relative_to(root).as_posix())
    s3.put_object(Bucket=LOGS, Key=f"{paths[0].relative_to(root).parent.as_posix()}/ELBAccessLogTestFile", Body=b"x")
    return paths, root


def queue() -> str:
    return str(boto3.client("sqs").create_queue(QueueName="alblake-ingest")["QueueUrl"])


def drain(queue_url: str) -> int:
    """Consume the queue through the real pipeline's ``handle_event``, in SQS event batches of up to 10 as the
    event source mapping sends them; messages reported in ``batchItemFailures`` stay in the queue."""
    sqs = boto3.client("sqs")
    pipeline = IngestPipeline(
        config=LambdaConfig(lake_bucket=LAKE_BUCKET, glue_database="unused", lake_prefix="x"),
        reader=S3ObjectReader(boto3.client("s3")),
        lake=open_s3_lake(LAKE),
        refresher=SpiceRefresher(None, ""),
        logger=_Log(),
        metrics=_Metrics(),
    )
    consumed = 0
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return consumed
        event = {"Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:alblake-ingest"}
            for m in batch
        ]}
        response = pipeline.handle_event(event)
        assert response == {"batchItemFailures": []}, response
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            consumed += 1


def lake_requests(capsys: pytest.CaptureFixture[str], lake: str = LAKE) -> int:
    capsys.readouterr()
    assert main(["query", "overview", "--lake", lake, "--csv"]) == 0
    return int(pa_csv.read_csv(io.BytesIO(capsys.readouterr().out.encode())).to_pylist()[0]["requests"])


def test_backfill_enqueues_once_and_the_pipeline_writes_every_row_once(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default state files
    paths, root = setup_buckets(tmp_path)
    expected = ingest_paths([str(root)], tmp_path / "oracle", jobs=1).rows
    url = queue()
    assert main(["backfill", f"s3://{LOGS}/AWSLogs/", "--lake", LAKE, "--queue", "alblake-ingest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    size = sum(p.stat().st_size for p in paths)
    assert "not ALB logs    1" in out and f"would enqueue   6 objects, {size:,} bytes" in out
    assert drain(url) == 0  # a dry run sends nothing

    assert main(["backfill", f"s3://{LOGS}/AWSLogs/", "--lake", LAKE, "--queue", "alblake-ingest"]) == 0
    out = capsys.readouterr().out
    assert f"enqueued        6 objects, {size:,} bytes" in out
    state = json.loads(next(tmp_path.glob(".alblake-backfill-*.json")).read_text())
    assert state["complete"] and state["position"] == 7
    assert drain(url) == 6
    assert lake_requests(capsys) == expected

    assert main(["backfill", f"s3://{LOGS}/AWSLogs/", "--lake", LAKE, "--queue", url]) == 0
    out = capsys.readouterr().out
    assert "already in lake 6" in out and "enqueued        0 objects" in out  # a finished run starts over
    assert main(["backfill", f"s3://{LOGS}/AWSLogs/", "--lake", LAKE, "--queue", url, "--force"]) == 0
    assert drain(url) == 6  # delivered again: replaced, not added
    assert lake_requests(capsys) == expected


def test_message_body_follows_the_s3_notification_contract(aws_endpoint: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=LOGS)
    key = "old logs/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/01/02/123456789012_" \
          "elasticloadbalancing_us-east-1_app.my-lb.50dc6c495c0c9188_20260102T0005Z_10.0.0.1_abc.log.gz"
    s3.put_object(Bucket=LOGS, Key=key, Body=gzip.compress(b"x\n"))
    url = queue()
    run_backfill(list_objects(s3, LOGS, ""), object_filter=ObjectFilter(), in_lake=set(),
                 sender=QueueSender(boto3.client("sqs"), url))
    body = json.loads(boto3.client("sqs").receive_message(QueueUrl=url)["Messages"][0]["Body"])
    record = body["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == LOGS
    encoded = record["s3"]["object"]["key"]
    assert encoded.startswith("old+logs/AWSLogs/") and decode_event_key(encoded) == key
    assert record["s3"]["object"]["size"] == len(gzip.compress(b"x\n"))


class _FailingSender:
    """Accepts the first ``ok`` sends, then fails like an SQS outage."""

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.sent: list[str] = []

    def send(self, bodies: list[str]) -> None:
        if self.ok == 0:
            raise RuntimeError("SQS unavailable")
        self.ok -= 1
        self.sent.extend(bodies)


def test_an_interrupted_backfill_resumes_where_it_stopped(aws_endpoint: str, tmp_path: Path) -> None:
    setup_buckets(tmp_path, files=7)
    s3 = boto3.client("s3")
    state_path = tmp_path / "state.json"
    first = _FailingSender(ok=1)
    with pytest.raises(RuntimeError):
        run_backfill(list_objects(s3, LOGS, ""), object_filter=ObjectFilter(), in_lake=set(), sender=first,  # type: ignore[arg-type]
                     state=BackfillState.load(state_path, "src"), flush_every=3)
    assert len(first.sent) == 3
    state = BackfillState.load(state_path, "src")
    second = _FailingSender(ok=99)
    summary = run_backfill(list_objects(s3, LOGS, "", start_after=state.last_key), object_filter=ObjectFilter(),
                           in_lake=set(), sender=second, state=state, flush_every=3)  # type: ignore[arg-type]
    sent = [json.loads(b)["Records"][0]["s3"]["object"]["key"] for b in first.sent + second.sent]
    assert len(sent) == len(set(sent)) == 7  # every object once, none twice
    assert summary.resumed_after == 3
    with pytest.raises(ValueError, match="not 'other'"):
        BackfillState.load(state_path, "other")
    assert BackfillState.load(state_path, "src").position == 0  # finished: the next run starts over


def test_backfill_from_an_s3_inventory(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    paths, _ = setup_buckets(tmp_path)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="inventory")
    rows = [f'"{LOGS}","{o.key.replace(" ", "%20")}","{o.size}"' for o in list_objects(s3, LOGS, "")]
    s3.put_object(Bucket="inventory", Key="inv/data/part-0.csv.gz", Body=gzip.compress("\n".join(rows).encode()))
    manifest = {"sourceBucket": LOGS, "destinationBucket": "arn:aws:s3:::inventory", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, Size", "files": [{"key": "inv/data/part-0.csv.gz", "size": 1}]}
    s3.put_object(Bucket="inventory", Key="inv/2026-01-01T00-00Z/manifest.json", Body=json.dumps(manifest).encode())
    code = main(["backfill", "--inventory", "s3://inventory/inv/2026-01-01T00-00Z/manifest.json", "--lake", LAKE,
                 "--dry-run"])
    assert code == 0
    out = capsys.readouterr().out
    assert "listed          7 objects" in out
    assert f"would enqueue   6 objects, {sum(p.stat().st_size for p in paths):,} bytes" in out


def _old_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 'parser before the upgrade': it rejects every POST line (its request field is glued to the next)."""

    def parse_like_before(block: bytes | memoryview, first_line_number: int, **options: Any) -> Any:
        return parse_block(re.sub(rb'("POST [^"]*") ', rb"\1", bytes(block)), first_line_number, **options)

    monkeypatch.setattr(alblake.convert.core, "parse_block", parse_like_before)


def _quarantined(out: str, when: str) -> int:
    match = re.search(rf"quarantined {when}\s+([\d,]+) lines", out)
    assert match, out
    return int(match.group(1).replace(",", ""))


def test_replay_after_a_parser_change_turns_rejected_lines_into_rows_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    write_sample_logs(root, files=4, lines_per_file=150, malformed_every=53)
    oracle = ingest_paths([str(root)], tmp_path / "oracle", jobs=1)
    lake = tmp_path / "lake"
    with monkeypatch.context() as patch:
        _old_parser(patch)
        before = ingest_paths([str(root)], lake, jobs=1)
    assert before.quarantined > oracle.quarantined > 0
    assert main(["replay", "--lake", str(lake), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert _quarantined(out, "before") == before.quarantined
    assert main(["replay", "--lake", str(lake), "--reason", "no such reason", "--jobs", "1"]) == 0
    assert _quarantined(capsys.readouterr().out, "before") == 0
    assert main(["replay", "--lake", str(lake), "--jobs", "1"]) == 1  # the sources were ingested from a copy
    assert "give --source-root DIR" in capsys.readouterr().err
    assert main(["replay", "--lake", str(lake), "--source-root", str(root), "--jobs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert _quarantined(out, "before") == before.quarantined
    assert _quarantined(out, "after") == oracle.quarantined
    assert lake_requests(capsys, str(lake)) == oracle.rows  # every line once: no duplicates


def test_replay_of_an_s3_lake_through_the_queue(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = setup_buckets(tmp_path, files=3)
    oracle = ingest_paths([str(root)], tmp_path / "oracle", jobs=1)
    url = queue()
    with monkeypatch.context() as patch:
        _old_parser(patch)
        assert main(["ingest", f"s3://{LOGS}/", "--lake", LAKE, "--jobs", "1", "--quiet"]) == 0
    assert lake_requests(capsys) < oracle.rows
    assert main(["replay", "--lake", LAKE, "--queue", url]) == 0
    assert "enqueued                 3 source objects" in capsys.readouterr().out
    assert drain(url) == 3
    assert lake_requests(capsys) == oracle.rows
    assert main(["replay", "--lake", LAKE, "--dry-run"]) == 0
    assert _quarantined(capsys.readouterr().out, "before") == oracle.quarantined
    assert S3Object(LOGS, "k", 1).source_id == f"s3://{LOGS}/k"
