"""functions/lifecycle/app.handler against moto: the stack's privacy settings published by the custom resource
(CloudFormation answered at a local HTTP endpoint), the ingest function applying them with the key from SSM, a
scheduled run expiring the lake's old hours (and dropping their Glue partitions) and settling an erasure."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType
from typing import Any

import pytest

from alblake.convert.privacy import keyed_address
from alblake.errors import ConfigError
from alblake.lake.lifecycle import ErasureRequest, erase
from alblake.lake.settings import forget_keys, read_policy
from alblake.service.config import open_deployed_lake
from alblake.service.lifecycle import LifecycleConfig
from tests.integration.conftest import (
    ALB_KEY,
    AWS_EXAMPLE_LINES,
    LOG_BUCKET,
    Aws,
    FakeContext,
    function_app,
    gz,
    metric_values,
    s3_event,
)

KEY = "0123456789abcdef0123456789abcdef"
CLIENT = "192.168.131.39"  # the client of the documented example lines


class CloudFormation:
    """The pre-signed URL a custom resource answers: records each answer."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        answers = self.answers

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                answers.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/answer"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event(self, request: str, **properties: str) -> dict[str, Any]:
        return {
            "RequestType": request,
            "ResponseURL": self.url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/alblake/1",
            "RequestId": f"request-{len(self.answers)}",
            "LogicalResourceId": "LakePolicy",
            "ResourceType": "Custom::AlbLakePolicy",
            "ResourceProperties": {"ServiceToken": "arn:...", **properties},
        }


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    found = CloudFormation()
    yield found
    found.server.shutdown()


@pytest.fixture
def lifecycle_app(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "alblake-lifecycle")
    forget_keys()
    module = function_app("lifecycle")
    module.pipeline.cache_clear()
    yield module
    module.pipeline.cache_clear()


def athena_rows(aws: Aws) -> int:
    """Rows of every Parquet object under each Glue partition's Location (what Athena reads)."""
    rows = 0
    for partition in aws.partitions():
        prefix = partition["StorageDescriptor"]["Location"].removeprefix("s3://alblake-lake-123456789012/")
        rows += sum(aws.read_parquet(k).num_rows for k in aws.lake_keys(prefix) if k.endswith(".parquet"))
    return rows


def ssm_key() -> None:
    import boto3

    boto3.client("ssm", region_name="us-east-1").put_parameter(Name="/alblake/key", Value=KEY, Type="SecureString")


@pytest.mark.parametrize("log_metrics", ["false", "true"])  # with the metrics on, the lake is wrapped: same policy
def test_the_stack_publishes_privacy_and_the_ingest_function_applies_it(
    app: ModuleType,
    lifecycle_app: ModuleType,
    aws: Aws,
    cloudformation: CloudFormation,
    log_metrics: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOG_METRICS", log_metrics)
    monkeypatch.setenv("LOG_METRICS_MAX_AGE_MINUTES", "20160")
    app.pipeline.cache_clear()
    ssm_key()
    create = cloudformation.event("Create", ClientAddresses="hmac", QueryStrings="mask", Quarantine="drop",
                                  Key="ssm:/alblake/key")
    assert lifecycle_app.handler(create, FakeContext(function_name="alblake-lifecycle")) == {"status": "SUCCESS"}
    (answer,) = cloudformation.answers
    assert answer["Status"] == "SUCCESS" and answer["RequestId"] == "request-0"
    assert answer["PhysicalResourceId"].endswith("/lifecycle/policy.json")
    aws.put_log(ALB_KEY, gz([*AWS_EXAMPLE_LINES, f"junk {CLIENT}:2817"]))
    app.handler(s3_event(ALB_KEY), FakeContext())
    table = aws.lake_table()
    assert set(table.column("client_ip").to_pylist()) == {keyed_address(KEY.encode(), CLIENT)}
    assert aws.lake_keys("quarantine/")  # the line is counted...
    stored = aws.s3.get_object(Bucket="alblake-lake-123456789012", Key=aws.lake_keys("quarantine/")[0])
    assert CLIENT.encode() not in stored["Body"].read()  # ...and not stored
    for key in aws.lake_keys():
        assert KEY.encode() not in aws.s3.get_object(Bucket="alblake-lake-123456789012", Key=key)["Body"].read()
    printed = capsys.readouterr().out  # the function's log lines, EMF documents included
    assert CLIENT not in printed and KEY not in printed

    update = cloudformation.event("Update", ClientAddresses="hmac", QueryStrings="mask", Quarantine="drop",
                                  Key="ssm:/alblake/other-key")
    import boto3

    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/alblake/other-key", Value="another key of thirty-two bytes!", Type="SecureString"
    )
    assert lifecycle_app.handler(update, FakeContext(function_name="alblake-lifecycle")) == {"status": "FAILED"}
    assert cloudformation.answers[-1]["Status"] == "FAILED"
    assert "another key could not match them" in cloudformation.answers[-1]["Reason"]
    assert KEY not in json.dumps(cloudformation.answers)
    delete = cloudformation.event("Delete", ClientAddresses="hmac", Key="ssm:/alblake/key")
    assert lifecycle_app.handler(delete, FakeContext(function_name="alblake-lifecycle")) == {"status": "SUCCESS"}


def test_a_scheduled_run_expires_old_hours_and_settles_erasures(
    app: ModuleType,
    lifecycle_app: ModuleType,
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    app.handler(s3_event(ALB_KEY), FakeContext())
    lake = open_deployed_lake(LifecycleConfig.from_env(), s3=aws.s3, glue=aws.glue)
    erase(lake, ErasureRequest(client_ip=CLIENT), by="dpo", now=datetime(2020, 1, 1, tzinfo=UTC))
    assert athena_rows(aws) == 0 and aws.partitions()  # both example lines are that client's
    capsys.readouterr()
    monkeypatch.setenv("LIFECYCLE_GRACE_MINUTES", "0")
    monkeypatch.setenv("LAKE_RETENTION_DAYS", "1")  # the example lines are from 2018
    lifecycle_app.pipeline.cache_clear()
    result = lifecycle_app.handler({}, FakeContext(function_name="alblake-lifecycle"))
    assert result["erasures_settled"] == 1 and result["partitions_emptied"] == 2  # two hours
    assert metric_values(capsys.readouterr().out, "ErasuresSettled") == [1.0]
    result = lifecycle_app.handler({}, FakeContext(function_name="alblake-lifecycle"))
    assert result["partitions_dropped"] == 2 and result["catalog_partitions_dropped"] == 2
    assert aws.partitions() == [] and not aws.lake_keys("alb_logs/") and not aws.lake_keys("manifests/")
    assert read_policy(lake.store).policy.expired_before is not None
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    app.handler(s3_event(ALB_KEY), FakeContext())  # a redelivery of the old object: dropped, counted
    assert aws.partitions() == [] and not aws.lake_keys("alb_logs/")
    manifest = json.loads(aws.s3.get_object(Bucket="alblake-lake-123456789012",
                                            Key=aws.lake_keys("manifests/")[0])["Body"].read())
    assert (manifest["lines"], manifest["rows"], manifest["erased"]) == (3, 0, 3)
    assert LOG_BUCKET


def test_days_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"LAKE_BUCKET": "b", "GLUE_DATABASE": "d", "LAKE_RETENTION_DAYS": "-1"}
    with pytest.raises(ConfigError, match="LAKE_RETENTION_DAYS is not a finite number of days >= 0"):
        LifecycleConfig.from_env(env)
    config = LifecycleConfig.from_env({**env, "LAKE_RETENTION_DAYS": "400", "QUARANTINE_RETENTION_DAYS": ""})
    assert (config.retention_days, config.quarantine_retention_days) == (400.0, 0.0)
