"""`status` on an S3 lake reads footers through the command's own AWS session (the store's client). It read them
through pyarrow's own S3 setup instead: with a prefix holding a space, 'ü' or '%', or an endpoint set in a
profile, every file showed as unreadable and rows = 0 while `query` was right."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from alblake.aws.session import forget_clients
from alblake.cli import main
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url
from tests.log_objects import write_objects

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures


@pytest.fixture
def endpoint_in_a_profile(aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto_server named only by a profile's endpoint_url (no AWS_ENDPOINT_URL)."""
    config = tmp_path / "aws-config"
    config.write_text(
        f"[profile lake]\nregion = us-east-1\nendpoint_url = {aws_endpoint}\n"
        "aws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "lake")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    forget_clients()
    yield aws_endpoint
    forget_clients()


@pytest.mark.parametrize("prefix", ["my lake", "lake-ü", "50%25off"])
def test_status_on_an_s3_lake_counts_what_query_counts(
    endpoint_in_a_profile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], prefix: str
) -> None:
    boto3.Session(profile_name="lake").client("s3").create_bucket(Bucket="lake")
    lines = write_objects(tmp_path / "logs", range(1, 4), (21, 22), 20)
    lake = f"s3://lake/{prefix}"
    assert main(["ingest", str(tmp_path / "logs"), "--lake", lake, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["status", "--lake", lake, "--json", "--verify"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["unreadable_files"] == [] and body["rows"] == lines
    assert main(["query", "overview", "--lake", lake, "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[0] == str(lines)
