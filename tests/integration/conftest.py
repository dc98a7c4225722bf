"""Shared fixtures for the Lambda/AWS integration tests (moto in-process, no network)."""

from __future__ import annotations

import copy
import gzip
import importlib.util
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from alblake.lake.derived import default_derived_tables
from alblake.schema import ARROW_SCHEMA
from scripts.moto_lake import (
    ACCOUNT,
    DATABASE,
    FUNCTION_ARN,
    REGION,
    TABLE,
    FakeContext,
    create_lake_resources,
    ingest_environment,
)

# Re-exported: the test modules import their constants and helpers from this conftest.
__all__ = ["ACCOUNT", "DATABASE", "FUNCTION_ARN", "REGION", "TABLE", "FakeContext"]

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
LOG_BUCKET = "alblake-logs-123456789012"
LAKE_BUCKET = "alblake-lake-123456789012"

KEY_DIR = f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/2018/07/02/"
ALB_KEY = (
    f"{KEY_DIR}{ACCOUNT}_elasticloadbalancing_{REGION}_app.my-loadbalancer.50dc6c495c0c9188_"
    "20180702T2225Z_10.0.0.1_5v4k2s0a.log.gz"
)

# The AWS-documented example entries (docs/ALB_LOG_FORMAT.md, verbatim in tests/data): exact values to check.
_DOCUMENTED_LINES = (Path(__file__).parents[1] / "data" / "aws_documented_examples.log").read_text().splitlines()
AWS_EXAMPLE_LINES = [_DOCUMENTED_LINES[0], _DOCUMENTED_LINES[1], _DOCUMENTED_LINES[6]]  # http, https, Lambda 502


def gz(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def s3_record(
    bucket: str, key: str, *, size: int = 0, sequencer: str = "0066C5F4A5B1C2D3E4"
) -> dict[str, Any]:
    """One S3 notification record; the key is URL-encoded the way S3 does it (spaces as '+')."""
    template = json.loads((EVENTS / "s3-put.json").read_text())["Records"][0]
    rec: dict[str, Any] = copy.deepcopy(template)
    rec["s3"]["bucket"]["name"] = bucket
    rec["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    rec["s3"]["object"]["key"] = quote_plus(key, safe="/")
    rec["s3"]["object"]["size"] = size
    rec["s3"]["object"]["sequencer"] = sequencer
    return rec


def s3_event(*keys: str, bucket: str = LOG_BUCKET) -> dict[str, Any]:
    return {"Records": [s3_record(bucket, k) for k in keys]}


@dataclass
class RecordingMetrics:
    """A MetricsSink that records metrics (for tests that run several pipelines at once)."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.values.setdefault(name, []).append(value)


@dataclass
class Aws:
    s3: Any
    glue: Any

    def put_log(self, key: str, body: bytes, bucket: str = LOG_BUCKET) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def lake_keys(self, prefix: str = "", *, derived: bool = False) -> list[str]:
        """The lake bucket's keys under ``prefix``; without the derived tables' siblings of the data files unless
        ``derived``."""
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        if not derived:
            tables = [table.prefix for table in default_derived_tables()]
            keys = [k for k in keys if not any(k.startswith(t) or f"/{t}" in k for t in tables)]
        return sorted(keys)

    def read_parquet(self, key: str) -> pa.Table:
        body = self.s3.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read()
        return pq.read_table(io.BytesIO(body))

    def lake_table(self, prefix: str = "alb_logs/") -> pa.Table:
        tables = [self.read_parquet(k) for k in self.lake_keys(prefix) if k.endswith(".parquet")]
        return pa.concat_tables(tables) if tables else ARROW_SCHEMA.empty_table()

    def partitions(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for page in self.glue.get_paginator("get_partitions").paginate(
            DatabaseName=DATABASE, TableName=TABLE
        ):
            parts.extend(page["Partitions"])
        return parts


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {**ingest_environment(LAKE_BUCKET), "TMPDIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("QUICKSIGHT_MIN_REFRESH_MINUTES")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws(aws_env: None) -> Iterator[Aws]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        glue = boto3.client("glue", region_name=REGION)
        create_lake_resources(s3, glue, f"s3://{LAKE_BUCKET}/alb_logs/", [LOG_BUCKET, LAKE_BUCKET])
        yield Aws(s3, glue)


def function_app(function: str) -> ModuleType:
    """functions/<function>/app.py as module ``alblake_<function>_app`` (loaded once per test session)."""
    name = f"alblake_{function}_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app(aws: Aws) -> Iterator[ModuleType]:
    """functions/ingest/app.py, its per-container pipeline rebuilt inside this test's moto."""
    module = function_app("ingest")
    module.pipeline.cache_clear()
    yield module
    clear = getattr(module.pipeline, "cache_clear", None)  # a test may have monkeypatched pipeline()
    if clear is not None:
        clear()


def emf_lines(out: str) -> list[dict[str, Any]]:
    """The EMF metric documents printed by powertools Metrics."""
    docs = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def metric_values(out: str, name: str) -> list[float]:
    values: list[float] = []
    for doc in emf_lines(out):
        if name in doc:
            v = doc[name]
            values.extend(v if isinstance(v, list) else [v])
    return values
