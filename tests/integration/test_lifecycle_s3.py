"""``alblake privacy``, ``erase`` and ``expire`` on an ``s3://`` lake with its Glue table, against a real
moto_server: the key from SSM Parameter Store (a SecureString), hashed addresses in the lake, erased rows gone with
their partitions' Locations moved forward, expired hours emptied and then dropped from S3 and from Glue."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alblake.cli import main
from alblake.convert.privacy import keyed_address
from alblake.lake.settings import forget_keys
from alblake.schema import glue_table_input
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url
from tests.lifecycle_helpers import line, object_name

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures

BUCKET = "lake"
LAKE = f"s3://{BUCKET}/x"
DATABASE = "alblake"
KEY = "0123456789abcdef0123456789abcdef"
VICTIM = "203.0.113.7"


@pytest.fixture
def s3_lake(aws_endpoint: str, tmp_path: Path) -> Path:
    """An S3 lake with its Glue table and a key in SSM; log objects on disk (two objects, hours 21 and 22)."""
    forget_keys()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    glue: Any = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    glue.create_table(DatabaseName=DATABASE, TableInput=glue_table_input(f"{LAKE}/alb_logs/"))
    boto3.client("ssm").put_parameter(Name="/alblake/key", Value=KEY, Type="SecureString")
    logs = tmp_path / "logs"
    for name, lines in (
        (object_name("2120", "a"), [line(VICTIM, hour="21"), line("198.51.100.1", hour="21", minute=1, path="/?u=1")]),
        (object_name("2225", "b"), [line(VICTIM, hour="22"), line("198.51.100.2", hour="22", minute=1), "junk"]),
    ):
        path = logs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return logs


def visible(column: str) -> list[Any]:
    """The values of a column in every file under each Glue partition's Location (what Athena reads)."""
    s3 = boto3.client("s3")
    values: list[Any] = []
    for partition in partitions().values():
        prefix = partition.removeprefix(f"s3://{BUCKET}/")
        for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
            body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            values += pq.read_table(io.BytesIO(body), columns=[column]).column(column).to_pylist()
    return sorted(values, key=str)


def partitions() -> dict[str, str]:
    """hour -> Location of the curated table's partitions."""
    found = boto3.client("glue").get_partitions(DatabaseName=DATABASE, TableName="alb_logs")["Partitions"]
    return {p["Values"][2]: p["StorageDescriptor"]["Location"] for p in found}


def lake_keys(prefix: str = "") -> list[str]:
    contents = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"x/{prefix}").get("Contents", [])
    return [item["Key"] for item in contents]


def test_privacy_erase_and_expire_on_an_s3_lake(
    s3_lake: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    glue = ["--glue-database", DATABASE]
    assert main(["privacy", "--lake", LAKE, "--client-ip", "hmac", "--query-strings", "drop",
                 "--key", "ssm:/alblake/key"]) == 0
    assert main(["ingest", str(s3_lake), "--lake", LAKE, *glue, "--quiet"]) == 0
    assert "rows         4" in capsys.readouterr().out
    hashed = keyed_address(KEY.encode(), VICTIM)
    assert visible("client_ip").count(hashed) == 2 and VICTIM not in visible("client_ip")
    assert not [url for url in visible("request_url") if "?" in url]
    policy = boto3.client("s3").get_object(Bucket=BUCKET, Key="x/lifecycle/policy.json")["Body"].read()
    assert KEY.encode() not in policy and b"ssm:/alblake/key" in policy

    before = partitions()
    assert main(["erase", "--lake", LAKE, "--client-ip", VICTIM, *glue]) == 0
    out = capsys.readouterr().out
    assert "erased 2 rows in 2 partition-hour(s)" in out
    assert hashed not in visible("client_ip") and len(visible("client_ip")) == 2
    after = partitions()
    assert all(after[hour] != before[hour] and "/compacted/" in after[hour] for hour in ("21", "22"))

    assert main(["ingest", str(s3_lake), "--lake", LAKE, *glue, "--quiet"]) == 0  # a replay: nothing comes back
    capsys.readouterr()
    assert hashed not in visible("client_ip") and len(visible("client_ip")) == 2

    assert main(["expire", "--lake", LAKE, "--older-than", "1d", "--dry-run"]) == 0  # read only: no Glue needed
    assert "2 partition-hour(s) would be emptied" in capsys.readouterr().out
    assert main(["expire", "--lake", LAKE, "--older-than", "1d"]) == 2  # changes Locations: needs Glue
    assert "give --glue-database" in capsys.readouterr().err
    assert main(["expire", "--lake", LAKE, "--older-than", "1d", *glue]) == 0
    assert visible("client_ip") == [] and sorted(partitions()) == ["21", "22"]  # empty, their Locations moved
    later = datetime.now(UTC) + timedelta(minutes=61)  # a grace period later (the default, 60 minutes)
    monkeypatch.setattr("alblake.cli.lifecycle._now", lambda: later)
    assert main(["expire", "--lake", LAKE, "--older-than", "1d", *glue]) == 0
    assert "dropped               2 partition-hour(s) dropped" in capsys.readouterr().out
    assert partitions() == {}
    assert not [k for k in lake_keys() if "hour=2" in k]
    assert lake_keys("manifests/") == [] and lake_keys("quarantine/") == []
    assert main(["ingest", str(s3_lake), "--lake", LAKE, *glue, "--quiet"]) == 0  # the expired hours stay gone
    assert partitions() == {} and pa.array(visible("client_ip")).to_pylist() == []
