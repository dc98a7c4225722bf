"""Every file the lake writes is one its readers list, whatever the source object is called: names that start
with '_' or '.', spaces, brackets, non-ASCII letters. Objects like '_web.log' were ingested into hidden files
(readers skip names starting with '_' or '.'): ingest reported their rows and every reader missed them."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import boto3
import pytest

from alblake.cli import main
from alblake.lake.local import LOCKS_DIR, STAGING_DIR, LocalStore
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url
from tests.log_objects import object_lines

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures

AWKWARD = ["_web.log", ".x.log", " a.log", "(1).log", "éte.log", "__.log", "._.log", "%41.log", "a b.log", "ü.log.gz"]
LINES = 25


def requests(lake: str, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert main(["query", "overview", "--lake", lake, "--csv"]) == 0
    return int(capsys.readouterr().out.splitlines()[1].split(",")[0])


def status_rows(lake: str, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert main(["status", "--lake", lake, "--json"]) == 0
    return int(json.loads(capsys.readouterr().out)["rows"])


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    for node, name in enumerate(AWKWARD, start=1):
        text = ("\n".join(object_lines(node, 21, LINES)) + "\n").encode()
        (folder / name).write_bytes(gzip.compress(text) if name.endswith(".gz") else text)


def test_awkward_object_names_give_files_every_reader_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_corpus(tmp_path / "logs")
    lake = tmp_path / "lake"
    assert main(["ingest", str(tmp_path / "logs"), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    expected = LINES * len(AWKWARD)
    assert requests(str(lake), capsys) == status_rows(str(lake), capsys) == expected
    written = {
        (Path(folder) / name).relative_to(lake).as_posix()
        for folder, _, names in os.walk(lake)
        for name in names
        if Path(folder).relative_to(lake).parts[:1] not in ((STAGING_DIR,), (LOCKS_DIR,))
    }
    assert written == set(LocalStore(lake).list_keys(""))
    assert main(["compact", "--lake", str(lake), "--older-than", "0", "--grace", "0"]) == 0
    assert requests(str(lake), capsys) == status_rows(str(lake), capsys) == expected


def test_awkward_object_names_give_s3_lake_keys_every_reader_lists(
    aws_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    write_corpus(tmp_path / "logs")
    assert main(["ingest", str(tmp_path / "logs"), "--lake", "s3://lake/x", "--quiet", "--no-batch"]) == 0
    expected = LINES * len(AWKWARD)
    assert requests("s3://lake/x", capsys) == status_rows("s3://lake/x", capsys) == expected
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="lake", Prefix="x/")["Contents"]]
    assert not [key for key in keys if any(part.startswith(("_", ".")) for part in key.split("/"))]
