"""The CLI with s3:// paths against a real moto_server endpoint: S3 -> local lake, S3 -> S3 lake, query and
report over an S3 lake, filters; every ingested row counted once."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from alblake.aws.session import forget_clients
from alblake.cli import main
from alblake.ingest.runner import ingest_paths
from alblake.sample import write_sample_logs
from alblake.schema import glue_table_input
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures

LOG_BUCKET = "logs"
LAKE_BUCKET = "lake"


def upload_sample(tmp_path: Path, *, files: int = 6, lines: int = 200) -> tuple[list[str], int]:
    """Sample ALB logs (one malformed line per 97) uploaded under AWSLogs/; returns the keys and their rows."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=LOG_BUCKET)
    s3.create_bucket(Bucket=LAKE_BUCKET)
    root = tmp_path / "logs"
    paths = write_sample_logs(root, files=files, lines_per_file=lines, malformed_every=97)
    keys = []
    for path in paths:
        key = path.relative_to(root).as_posix()
        s3.upload_file(str(path), LOG_BUCKET, key)
        keys.append(key)
    folder = keys[0].rsplit("/", 1)[0]
    s3.put_object(Bucket=LOG_BUCKET, Key=f"{folder}/ELBAccessLogTestFile", Body=b"Enable AccessLog for ELB: x")
    local = ingest_paths([str(root)], tmp_path / "oracle-lake", jobs=1)  # the same files ingested from disk
    assert local.quarantined == sum(len(gzip.decompress(p.read_bytes()).splitlines()) // 97 for p in paths)
    return keys, local.rows


def overview_requests(lake: str, capsys: pytest.CaptureFixture[str]) -> int:
    assert main(["query", "overview", "--lake", lake, "--csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    return int(dict(zip(header.replace('"', "").split(","), row.split(","), strict=True))["requests"])


def test_s3_logs_into_a_local_lake(aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, valid = upload_sample(tmp_path)
    lake = tmp_path / "lake"
    assert main(["ingest", f"s3://{LOG_BUCKET}/AWSLogs/", "--lake", str(lake), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"files        {len(keys)} converted, 0 failed, 1 left out" in out
    assert ds.dataset(lake / "alb_logs", partitioning="hive").count_rows() == valid
    manifests = [json.loads(p.read_text()) for p in (lake / "manifests").glob("*.json")]
    assert sorted(m["source"] for m in manifests) == sorted(f"s3://{LOG_BUCKET}/{k}" for k in keys)


def test_s3_logs_into_an_s3_lake_then_query_and_report(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, valid = upload_sample(tmp_path)
    lake = f"s3://{LAKE_BUCKET}/x"
    for _ in range(2):  # a re-run replaces, never adds
        assert main(["ingest", f"s3://{LOG_BUCKET}/AWSLogs/", "--lake", lake, "--quiet"]) == 0
    capsys.readouterr()
    assert overview_requests(lake, capsys) == valid
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=LAKE_BUCKET)["Contents"]]
    assert all(k.startswith("x/") for k in keys)
    assert any(k.startswith("x/alb_logs/elb_name=") and k.endswith(".parquet") for k in keys)
    assert not any("/.staging" in k for k in keys)
    out = tmp_path / "report.html"
    assert main(["report", "--lake", lake, "--out", str(out)]) == 0
    assert f"{valid:,}" in out.read_text()


def test_local_logs_into_an_s3_lake(aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("s3").create_bucket(Bucket=LAKE_BUCKET)
    write_sample_logs(tmp_path / "logs", files=3, lines_per_file=100, malformed_every=0)
    assert main(["ingest", str(tmp_path / "logs"), "--lake", f"s3://{LAKE_BUCKET}/", "--quiet", "--jobs", "2"]) == 0
    capsys.readouterr()
    assert overview_requests(f"s3://{LAKE_BUCKET}", capsys) == 300


def test_date_and_load_balancer_filters(aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=LOG_BUCKET)
    for day in (1, 2, 3):
        paths = write_sample_logs(
            tmp_path / f"d{day}", files=2, lines_per_file=10, malformed_every=0,
            start=datetime(2026, 3, day, 9, 0, tzinfo=UTC),
        )
        for path in paths:
            s3.upload_file(str(path), LOG_BUCKET, path.relative_to(tmp_path / f"d{day}").as_posix())
    lake = tmp_path / "lake"
    code = main(["ingest", f"s3://{LOG_BUCKET}", "--lake", str(lake), "--quiet", "--since", "2026-03-02",
                 "--until", "2026-03-02"])
    assert code == 0
    assert "files        2 converted, 0 failed, 4 left out" in capsys.readouterr().out
    days = ds.dataset(lake / "alb_logs", partitioning="hive").to_table(columns=["day"]).column("day").to_pylist()
    assert set(days) == {"2026-03-02"}
    region = f"s3://{LOG_BUCKET}/AWSLogs/123456789012/elasticloadbalancing/us-east-1/"
    code = main(["ingest", region, "--lake", str(tmp_path / "days"), "--quiet", "--since", "2026-03-02",
                 "--until", "2026-03-03"])
    assert code == 0
    assert "files        4 converted, 0 failed\n" in capsys.readouterr().out  # only those days were listed
    first_lb = next((tmp_path / "d1").rglob("*.log.gz")).name.split("_app.")[1].split(".")[0]
    assert main(["ingest", f"s3://{LOG_BUCKET}", "--lake", str(tmp_path / "lb"), "--quiet", "--elb", first_lb]) == 0
    assert "files        3 converted" in capsys.readouterr().out


def test_missing_bucket_is_a_clear_error(aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "s3://no-such-bucket/AWSLogs/", "--lake", str(tmp_path / "lake"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "s3://no-such-bucket/AWSLogs/: cannot list" in err and "NoSuchBucket" in err
    assert "Traceback" not in err
    # every command that reads a lake says the same one line (a location it cannot use: exit 2)
    for argv in (["query", "overview"], ["report", "--out", str(tmp_path / "r.html")], ["status"], ["files"],
                 ["sql", "SELECT 1"], ["replay", "--dry-run"]):
        assert main([*argv, "--lake", "s3://no-such-bucket/x"]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: s3://no-such-bucket/x: cannot list the lake (NoSuchBucket: ")
        assert err.count("\n") == 1
    # ingest into a lake whose bucket is missing: one message before any object is read, not one per object
    write_sample_logs(tmp_path / "logs", files=3, lines_per_file=5)
    assert main(["ingest", str(tmp_path / "logs"), "--lake", "s3://no-such-bucket/x", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "NoSuchBucket" in captured.err


def test_an_s3_lake_with_its_glue_table_gets_its_partitions_registered(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upload_sample(tmp_path, files=3, lines=50)
    glue: Any = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "alblake"})
    glue.create_table(DatabaseName="alblake", TableInput=glue_table_input(f"s3://{LAKE_BUCKET}/x/alb_logs/"))
    lake = f"s3://{LAKE_BUCKET}/x"
    code = main(["ingest", f"s3://{LOG_BUCKET}/AWSLogs/", "--lake", lake, "--glue-database", "alblake", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    partitions = glue.get_partitions(DatabaseName="alblake", TableName="alb_logs")["Partitions"]
    assert len(partitions) == int(out.split("partitions")[1].split()[0]) > 0
    assert all(p["StorageDescriptor"]["Location"].startswith(f"s3://{LAKE_BUCKET}/x/alb_logs/elb_name=")
               for p in partitions)
    code = main(["ingest", f"s3://{LOG_BUCKET}/AWSLogs/", "--lake", f"s3://{LAKE_BUCKET}/other",
                 "--glue-database", "alblake", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Glue table alblake.alb_logs" in err and "Traceback" not in err


def test_a_named_profile_configures_listing_writing_and_reading(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Region, credentials and endpoint from a profile (no AWS_* variables): the S3 client and pyarrow's S3
    filesystem (DuckDB's reader) both follow it."""
    _, valid = upload_sample(tmp_path, files=2, lines=60)
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(f"[profile lake-admin]\nregion = us-east-1\nendpoint_url = {aws_endpoint}\n")
    credentials.write_text("[lake-admin]\naws_access_key_id = profilekey\naws_secret_access_key = profilesecret\n")
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "lake-admin")
    forget_clients()
    lake = f"s3://{LAKE_BUCKET}/by-profile"
    assert main(["ingest", f"s3://{LOG_BUCKET}/AWSLogs/", "--lake", lake, "--quiet", "--jobs", "2"]) == 0
    capsys.readouterr()
    assert overview_requests(lake, capsys) == valid


def athena_rows(glue: Any) -> int:
    """What Athena would count: the rows of every Parquet object under each partition's Location."""
    s3: Any = boto3.client("s3")
    rows = 0
    for partition in glue.get_partitions(DatabaseName="alblake", TableName="alb_logs")["Partitions"]:
        bucket, prefix = partition["StorageDescriptor"]["Location"].removeprefix("s3://").split("/", 1)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            rows += pq.read_metadata(pa.BufferReader(body)).num_rows
    return rows


def test_small_objects_in_batches_into_an_s3_lake_with_glue(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """40 small objects through the pool in batches: one file per partition-hour, every row once for DuckDB and
    for Athena's reading of the Glue Locations, also after a re-run and after some are ingested again alone."""
    keys, valid = upload_sample(tmp_path, files=40, lines=60)
    glue: Any = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "alblake"})
    glue.create_table(DatabaseName="alblake", TableInput=glue_table_input(f"s3://{LAKE_BUCKET}/x/alb_logs/"))
    lake = f"s3://{LAKE_BUCKET}/x"
    source = f"s3://{LOG_BUCKET}/AWSLogs/"
    first_lb = keys[0].rsplit("/", 1)[-1].split("_app.")[1].split(".")[0]
    for run in (["--batch", "--jobs", "2"], ["--batch"], ["--no-batch", "--elb", first_lb]):
        assert main(["ingest", source, "--lake", lake, "--glue-database", "alblake", "--quiet", *run]) == 0
        capsys.readouterr()
        assert overview_requests(lake, capsys) == valid
        assert athena_rows(glue) == valid
    partitions = glue.get_partitions(DatabaseName="alblake", TableName="alb_logs")["Partitions"]
    locations = [p["StorageDescriptor"]["Location"] for p in partitions]
    compacted = [loc for loc in locations if loc.startswith(f"s3://{LAKE_BUCKET}/x/alb_logs/compacted/elb_name=")]
    assert compacted and len(compacted) < len(locations)  # hours of several objects; of one object: its own file
    listing = boto3.client("s3").list_objects_v2(Bucket=LAKE_BUCKET, Prefix="x/manifests/")["Contents"]
    assert len(listing) == len(keys)  # one manifest per object


def test_the_console_script_reads_an_s3_lake_with_its_deferred_imports(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m alblake`` defers pyarrow's dataset and filesystem modules (alblake.deferred); over an s3:// lake
    the views are pyarrow datasets registered in DuckDB, which load them at their first use: the same answers."""
    _, valid = upload_sample(tmp_path, files=3)
    lake = f"s3://{LAKE_BUCKET}/x"
    assert main(["ingest", f"s3://{LOG_BUCKET}/AWSLogs/", "--lake", lake, "--quiet"]) == 0
    capsys.readouterr()

    def script(*argv: str) -> str:
        done = subprocess.run([sys.executable, "-m", "alblake", *argv], capture_output=True, text=True, check=True)
        return done.stdout

    assert main(["query", "overview", "--lake", lake, "--csv"]) == 0
    assert script("query", "overview", "--lake", lake, "--csv") == capsys.readouterr().out
    assert f"{valid:,}" in script("query", "overview", "--lake", lake)
    assert json.loads(script("status", "--lake", lake, "--json"))["rollup"]["requests"] == valid
    script("report", "--lake", lake, "--out", str(tmp_path / "report.html"))
    assert f"{valid:,}" in (tmp_path / "report.html").read_text()
