"""functions/ingest/app.handler end to end against moto: S3 event -> Parquet in S3 -> Glue partitions."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pyarrow.compute as pc
import pytest

from alblake.errors import ConfigError
from alblake.sample import write_sample_logs
from alblake.schema import glue_table_input
from alblake.service.ingest import ObjectRejectedError
from tests.integration.conftest import (
    ALB_KEY,
    AWS_EXAMPLE_LINES,
    DATABASE,
    KEY_DIR,
    LAKE_BUCKET,
    LOG_BUCKET,
    TABLE,
    Aws,
    FakeContext,
    emf_lines,
    gz,
    metric_values,
    s3_event,
)


def test_put_event_end_to_end(app: ModuleType, aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    result = app.handler(s3_event(ALB_KEY), FakeContext())

    [rec] = result["records"]
    assert rec["status"] == "processed"
    assert rec["rows"] == 3
    keys = aws.lake_keys()
    parquet = [k for k in keys if k.endswith(".parquet")]
    # two hours: 2018-07-02T22 (two lines) and 2018-11-30T22 (one line)
    assert {k.rsplit("/", 1)[0] for k in parquet} == {
        "alb_logs/elb_name=my-loadbalancer/day=2018-07-02/hour=22",
        "alb_logs/elb_name=my-loadbalancer/day=2018-11-30/hour=22",
    }
    assert not [k for k in keys if k.startswith("quarantine/")]

    table = aws.lake_table().sort_by([("type", "ascending"), ("elb_status_code", "ascending")])
    assert table.num_rows == 3
    rows = table.to_pylist()
    https = next(r for r in rows if r["type"] == "https")
    assert https["time"] == datetime(2018, 7, 2, 22, 23, 0, 186641, tzinfo=UTC)
    assert https["elb"] == "app/my-loadbalancer/50dc6c495c0c9188"
    assert https["client_ip"] == "192.168.131.39"
    assert https["client_port"] == 2817
    assert https["target_processing_time"] == pytest.approx(0.048)
    assert https["sent_bytes"] == 57
    assert https["request_url"] == "https://www.example.com:443/"
    assert https["ssl_protocol"] == "TLSv1.2"
    assert https["domain_name"] == "www.example.com"
    assert https["actions_executed"] == "authenticate,forward"
    assert https["transformed_host"] == "m.example.com"
    assert https["request_transform_status"] == "TransformSuccess"
    lambda_err = next(r for r in rows if r["elb_status_code"] == 502)
    assert lambda_err["target_ip"] is None
    assert lambda_err["target_status_code"] is None
    assert lambda_err["lambda_error_reason"] == "LambdaInvalidResponse"

    parts = aws.partitions()
    assert sorted(p["Values"] for p in parts) == [
        ["my-loadbalancer", "2018-07-02", "22"],
        ["my-loadbalancer", "2018-11-30", "22"],
    ]
    p = next(p for p in parts if p["Values"][1] == "2018-07-02")
    sd = p["StorageDescriptor"]
    assert sd["Location"] == (
        f"s3://{LAKE_BUCKET}/alb_logs/elb_name=my-loadbalancer/day=2018-07-02/hour=22/"
    )
    assert sd["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert [c["Name"] for c in sd["Columns"]][:3] == ["type", "time", "elb"]

    out = capsys.readouterr().out
    assert metric_values(out, "RowsWritten") == [3]
    assert metric_values(out, "PartitionsWritten") == [2]
    assert metric_values(out, "LinesQuarantined") == [0]
    assert metric_values(out, "BytesRead") == [len(gz(AWS_EXAMPLE_LINES))]
    [lag] = metric_values(out, "LogLagSeconds")
    expected_lag = (datetime.now(UTC) - datetime(2018, 7, 2, 22, 25, tzinfo=UTC)).total_seconds()
    assert abs(lag - expected_lag) < 120
    [doc] = emf_lines(out)
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "AlbLake"
    assert directive["Dimensions"] == [["service"]]
    assert doc["service"] == "alblake-ingest"


def test_sample_log_rows_match_input(app: ModuleType, aws: Aws, tmp_path: Path) -> None:
    [path] = write_sample_logs(tmp_path / "in", files=1, lines_per_file=3000, seed=3, malformed_every=500)
    key = path.relative_to(tmp_path / "in").as_posix()
    aws.put_log(key, path.read_bytes())
    [rec] = app.handler(s3_event(key), FakeContext())["records"]
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert rec["rows"] + rec["quarantined"] == len(lines)
    assert rec["quarantined"] == 6
    assert aws.lake_table().num_rows == rec["rows"]
    [qkey] = aws.lake_keys("quarantine/")
    assert qkey.endswith(".jsonl")


def test_duplicate_delivery_writes_rows_once(app: ModuleType, aws: Aws) -> None:
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    event = s3_event(ALB_KEY)
    app.handler(event, FakeContext())
    first = aws.lake_keys()
    app.handler(event, FakeContext())
    app.handler(s3_event(ALB_KEY, ALB_KEY), FakeContext())  # duplicate inside one event too
    assert aws.lake_keys() == first
    assert aws.lake_table().num_rows == 3
    assert len(aws.partitions()) == 2


def test_reprocessing_after_a_change_leaves_no_stale_files(app: ModuleType, aws: Aws) -> None:
    """The same object processed again with another outcome (here its content changed; in life, a parser fix):
    the files of the first run that the second does not write are deleted from S3, after the new ones."""
    aws.put_log(ALB_KEY, gz([*AWS_EXAMPLE_LINES, "garbage line"]))
    [first] = app.handler(s3_event(ALB_KEY), FakeContext())["records"]
    assert any(k.startswith("quarantine/") for k in first["published"])
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES[:1]))
    [second] = app.handler(s3_event(ALB_KEY), FakeContext())["records"]
    data_keys = [k for k in aws.lake_keys() if not k.startswith("manifests/")]
    assert data_keys == sorted(second["published"])
    assert set(first["published"]) - set(second["published"])  # something became stale ...
    assert not set(first["published"]) - set(second["published"]) & set(aws.lake_keys())  # ... and is gone
    assert aws.lake_table().num_rows == 1


def test_url_encoded_key(app: ModuleType, aws: Aws) -> None:
    key = "alb logs/prod:eu/" + ALB_KEY
    aws.put_log(key, gz(AWS_EXAMPLE_LINES))
    event = s3_event(key)
    raw = event["Records"][0]["s3"]["object"]["key"]
    assert raw.startswith("alb+logs/prod%3Aeu/")
    [rec] = app.handler(event, FakeContext())["records"]
    assert rec["key"] == key
    assert rec["rows"] == 3
    assert aws.lake_table().num_rows == 3


@pytest.mark.parametrize(
    "key",
    [
        "AWSLogs/123456789012/ELBAccessLogTestFile",
        f"{KEY_DIR}123456789012_elasticloadbalancing_us-east-1_net.my-nlb.1234567890abcdef_"
        "20180702T2225Z_10.0.0.1_abcdefgh.log.gz",
        f"{KEY_DIR}conn_log_123456789012_elasticloadbalancing_us-east-1_app.my-loadbalancer."
        "50dc6c495c0c9188_20180702T2225Z_10.0.0.1_5v4k2s0a.log.gz",
        f"{KEY_DIR}health_check_log_123456789012_elasticloadbalancing_us-east-1_app.my-loadbalancer."
        "50dc6c495c0c9188_20180702T2225Z_10.0.0.1_5v4k2s0a.log.gz",
    ],
)
def test_skipped_objects(
    app: ModuleType, aws: Aws, key: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    aws.put_log(key, b"not an access log")  # never read: skipping is decided on the key
    [rec] = app.handler(s3_event(key), FakeContext())["records"]
    assert rec["status"] == "skipped"
    assert aws.lake_keys() == []
    assert aws.partitions() == []
    out = capsys.readouterr().out
    assert "skipping object: not an ALB access log" in caplog.messages
    assert metric_values(out, "ObjectsSkipped") == [1]


def test_test_file_event_file(app: ModuleType, aws: Aws) -> None:
    import json

    from tests.integration.conftest import EVENTS

    event = json.loads((EVENTS / "s3-test-file.json").read_text())
    event["Records"][0]["s3"]["bucket"]["name"] = LOG_BUCKET
    [rec] = app.handler(event, FakeContext())["records"]
    assert rec["status"] == "skipped"
    assert rec["detail"] == "test-file"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (gz(AWS_EXAMPLE_LINES)[:-40], "truncated"),
        (b"\x1f\x8b" + b"\x00" * 200, "not a valid gzip"),
        (b"plain text, not gzip\n", "not gzip"),
        (b"", "empty"),
    ],
)
def test_corrupt_object_is_rejected_and_nothing_published(
    app: ModuleType,
    aws: Aws,
    body: bytes,
    reason: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    aws.put_log(ALB_KEY, body)
    with pytest.raises(ObjectRejectedError) as info:
        app.handler(s3_event(ALB_KEY), FakeContext())
    message = str(info.value)
    assert ALB_KEY in message
    assert reason in message.lower()
    assert aws.lake_keys() == []
    assert aws.partitions() == []
    out = capsys.readouterr().out
    assert metric_values(out, "ObjectsFailed") == [1]
    assert "rejecting object: permanently unreadable, nothing published" in caplog.messages


def test_multi_record_processes_all_then_raises(app: ModuleType, aws: Aws) -> None:
    good = ALB_KEY
    bad = ALB_KEY.replace("5v4k2s0a", "badbadba")
    aws.put_log(good, gz(AWS_EXAMPLE_LINES))
    aws.put_log(bad, b"\x1f\x8bgarbage")
    with pytest.raises(ObjectRejectedError) as info:
        app.handler(s3_event(bad, good, "AWSLogs/123456789012/ELBAccessLogTestFile"), FakeContext())
    summary = info.value.summary
    assert [r.status.value for r in summary.records] == ["failed", "processed", "skipped"]
    assert bad in str(info.value) and good not in str(info.value)
    # the good object landed despite the bad one before it
    assert aws.lake_table().num_rows == 3


def test_a_missing_object_is_skipped_with_a_metric_not_retried(
    app: ModuleType, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleted between its event and the read (S3 NoSuchKey): nothing to ingest, nothing to retry."""
    [rec] = app.handler(s3_event(ALB_KEY), FakeContext())["records"]
    assert (rec["status"], rec["detail"]) == ("skipped", "missing")
    assert aws.lake_keys() == []
    assert metric_values(capsys.readouterr().out, "ObjectsMissing") == [1.0]


def _use_table_location(aws: Aws, location: str) -> None:
    aws.glue.delete_table(DatabaseName=DATABASE, Name=TABLE)
    aws.glue.create_table(DatabaseName=DATABASE, TableInput=glue_table_input(location))


def test_lake_prefix(app: ModuleType, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_PREFIX", "curated/")
    _use_table_location(aws, f"s3://{LAKE_BUCKET}/curated/alb_logs/")
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    [rec] = app.handler(s3_event(ALB_KEY), FakeContext())["records"]
    assert all(k.startswith("curated/alb_logs/") for k in rec["published"])
    assert [k for k in aws.lake_keys() if not k.startswith("curated/manifests/")] == sorted(rec["published"])
    assert len(aws.lake_keys("curated/manifests/")) == 1  # the object's manifest, under the prefix too
    assert pc.sum(aws.lake_table("curated/alb_logs/").column("sent_bytes")).as_py() == 366 + 57 + 366
    # Every partition points at the prefix where its Parquet files landed, and every file has its partition.
    parquet_dirs = {f"s3://{LAKE_BUCKET}/{k.rsplit('/', 1)[0]}/" for k in rec["published"] if k.endswith(".parquet")}
    assert len(parquet_dirs) == 2
    assert {p["StorageDescriptor"]["Location"] for p in aws.partitions()} == parquet_dirs


def test_table_location_disagreeing_with_the_lake_prefix_is_a_config_error(
    app: ModuleType, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKE_PREFIX", "curated/")  # the table (conftest) stays at s3://LAKE_BUCKET/alb_logs/
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    with pytest.raises(ConfigError) as err:
        app.handler(s3_event(ALB_KEY), FakeContext())
    message = str(err.value)
    assert f"Location 's3://{LAKE_BUCKET}/alb_logs/'" in message
    assert f"'s3://{LAKE_BUCKET}/curated/alb_logs/'" in message
    assert aws.lake_keys() == []  # checked at cold start: nothing was written
    assert aws.partitions() == []


def test_table_location_check_ignores_a_trailing_slash(app: ModuleType, aws: Aws) -> None:
    _use_table_location(aws, f"s3://{LAKE_BUCKET}/alb_logs")
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    [rec] = app.handler(s3_event(ALB_KEY), FakeContext())["records"]
    assert rec["status"] == "processed"
    assert {p["StorageDescriptor"]["Location"] for p in aws.partitions()} == {
        f"s3://{LAKE_BUCKET}/{k.rsplit('/', 1)[0]}/" for k in rec["published"] if k.endswith(".parquet")
    }
