"""``alblake doctor --stack NAME`` against moto: every check passes on a healthy stack, and each broken piece of
wiring fails with the command that fixes it.

moto never returns ``EventBridgeConfiguration`` from GetBucketNotificationConfiguration (it stores it but leaves it
out of the answer): the one test of an existing bucket with EventBridge on answers that call, and only that call,
from a botocore Stubber (labelled STUBBED). QuickSight's DescribeDataSet and ListIngestions do not exist in moto
either: the QuickSight checks run on a Stubber'd QuickSight client (STUBBED).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from alblake.aws.doctor import Clients, check_notifications, check_quicksight, run_checks
from alblake.aws.session import forget_clients
from alblake.aws.stack import stack_outputs
from alblake.cli import main
from alblake.lake.layout import manifest_key, object_stem
from alblake.schema import glue_table_input
from tests.integration.conftest import ACCOUNT, DATABASE, LAKE_BUCKET, LOG_BUCKET, REGION, TABLE, Aws

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudFormation..WaitConditionHandle")

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ingest"
PREFIX = f"alb/AWSLogs/{ACCOUNT}/"


def log_key(end: datetime, node: int = 1) -> str:
    return (
        f"{PREFIX}elasticloadbalancing/{REGION}/{end:%Y/%m/%d}/{ACCOUNT}_elasticloadbalancing_{REGION}_"
        f"app.web.50dc6c495c0c9188_{end:%Y%m%dT%H%MZ}_10.0.0.{node}_abc{node}.log.gz"
    )


def outputs_template(log_bucket: str) -> str:
    outputs = {
        "LakeBucketName": LAKE_BUCKET,
        "GlueDatabaseName": DATABASE,
        "IngestQueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ingest",
        "IngestDeadLetterQueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ingest-dlq",
        "AccessLogPrefix": f"s3://{log_bucket}/{PREFIX}",
        "AccessLogBucketName": log_bucket,
    }
    return json.dumps({
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    })


@pytest.fixture
def healthy(aws: Aws) -> Iterator[Aws]:
    """A stack whose own log bucket notifies the queue, with recent objects that are in the lake."""
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.create_queue(QueueName="ingest-dlq")
    sqs.create_queue(QueueName="ingest")
    aws.s3.put_bucket_notification_configuration(
        Bucket=LOG_BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": QUEUE_ARN, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "alb/AWSLogs/"},
                                               {"Name": "suffix", "Value": ".log.gz"}]}},
        }]},
    )
    for minutes in (30, 35, 40):
        key = log_key(NOW - timedelta(minutes=minutes))
        aws.put_log(key, b"x")
        aws.s3.put_object(Bucket=LAKE_BUCKET, Key=manifest_key(object_stem(f"s3://{LOG_BUCKET}/{key}")), Body=b"{}")
    aws.put_log(log_key(NOW - timedelta(minutes=2), node=2), b"x")  # just delivered: not expected in the lake yet
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="prod", TemplateBody=outputs_template(LOG_BUCKET)
    )
    forget_clients()
    yield aws
    forget_clients()


def clients(aws: Aws, s3: Any = None) -> Clients:
    return Clients(s3=s3 or aws.s3, sqs=boto3.client("sqs", region_name=REGION), glue=aws.glue, account_id=ACCOUNT)


def test_a_healthy_stack_passes_every_check(healthy: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--stack", "prod"]) == 0
    out = capsys.readouterr().out
    assert "ok    log bucket notifications: s3://alblake-logs-123456789012 sends new objects under alb/AWSLogs/" in out
    assert "ok    recent log objects in the lake: 3 of the newest objects checked, all in the lake" in out
    assert "ok    dead-letter queue: empty" in out
    assert "4 of 4 checks passed" in out


def test_each_broken_piece_fails_with_the_command_that_fixes_it(
    healthy: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws = healthy
    aws.s3.put_bucket_notification_configuration(Bucket=LOG_BUCKET, NotificationConfiguration={})
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.get_queue_url(QueueName="ingest-dlq")["QueueUrl"]
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    missing = log_key(NOW - timedelta(hours=3), node=7)
    aws.put_log(missing, b"x")  # delivered three hours ago, never ingested
    aws.glue.delete_table(DatabaseName=DATABASE, Name=TABLE)

    assert main(["doctor", "--stack", "prod"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  log bucket notifications: s3://alblake-logs-123456789012 neither notifies" in out
    assert "fix: sam deploy --stack-name prod (puts the bucket's notification back)" in out
    assert "FAIL  dead-letter queue: 2 message(s) failed" in out
    assert "fix: fix the cause, then: alblake redrive --stack prod --wait" in out
    assert "FAIL  recent log objects in the lake: 1 of the 4 newest objects" in out
    assert f"(first: s3://{LOG_BUCKET}/{missing})" in out
    since = (NOW - timedelta(hours=3)).date()
    assert f"fix: alblake backfill s3://{LOG_BUCKET}/alb/AWSLogs/ --stack prod --since {since}" in out
    assert f"FAIL  Glue table: {DATABASE}.{TABLE} does not exist" in out
    assert "fix: alblake catalog sync --stack prod" in out
    assert "0 of 4 checks passed" in out


def test_a_glue_table_elsewhere_fails(healthy: Aws) -> None:
    healthy.glue.delete_table(DatabaseName=DATABASE, Name=TABLE)
    healthy.glue.create_table(DatabaseName=DATABASE, TableInput=glue_table_input("s3://other/alb_logs/"))
    outputs = stack_outputs(boto3.client("cloudformation", region_name=REGION), "prod")
    table = next(c for c in run_checks(outputs, clients(healthy), now=NOW) if c.name == "Glue table")
    assert not table.ok and "Location is 's3://other/alb_logs/'" in table.detail


class _NotificationsFromStub:
    """The moto S3 client, except GetBucketNotificationConfiguration, which a Stubber'd client answers."""

    def __init__(self, moto_s3: Any, stubbed: Any) -> None:
        self._moto, self._stubbed = moto_s3, stubbed

    def __getattr__(self, name: str) -> Any:
        target = self._stubbed if name == "get_bucket_notification_configuration" else self._moto
        return getattr(target, name)


def test_stubbed_an_existing_bucket_passes_with_eventbridge_on_and_fails_with_a_merged_command_without(
    healthy: Aws,
) -> None:
    outputs = stack_outputs(boto3.client("cloudformation", region_name=REGION), "prod")
    existing = outputs.__class__(**{**outputs.__dict__, "log_prefix": "s3://my-alb-logs/alb/AWSLogs/",
                                    "log_bucket": "my-alb-logs"})
    stubbed = boto3.client("s3", region_name=REGION)
    stub = Stubber(stubbed)
    # STUBBED: moto leaves EventBridgeConfiguration out of this answer
    stub.add_response("get_bucket_notification_configuration", {"EventBridgeConfiguration": {}},
                      {"Bucket": "my-alb-logs"})
    topic = {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Events": ["s3:ObjectRemoved:*"]}
    stub.add_response("get_bucket_notification_configuration", {"TopicConfigurations": [topic]},
                      {"Bucket": "my-alb-logs"})
    with stub:
        on = check_notifications(existing, clients(healthy, _NotificationsFromStub(healthy.s3, stubbed)))
        off = check_notifications(existing, clients(healthy, _NotificationsFromStub(healthy.s3, stubbed)))
    assert on.ok and "EventBridge" in on.detail
    assert not off.ok
    # the fix keeps the bucket's other destinations: a put replaces the whole configuration
    assert off.fix.startswith("aws s3api put-bucket-notification-configuration --bucket my-alb-logs ")
    merged = json.loads(off.fix.split("--notification-configuration ", 1)[1].strip("'"))
    assert merged == {"TopicConfigurations": [topic], "EventBridgeConfiguration": {}}


def test_stubbed_quicksight_missing_in_this_region_and_a_failed_refresh_are_named(healthy: Aws) -> None:
    outputs = stack_outputs(boto3.client("cloudformation", region_name=REGION), "prod")
    with_dataset = outputs.__class__(**{**outputs.__dict__, "dataset_id": "prod-alb-logs"})
    quicksight = boto3.client("quicksight", region_name=REGION)
    stub = Stubber(quicksight)  # STUBBED: moto has no DescribeDataSet or ListIngestions
    expected = {"AwsAccountId": ACCOUNT, "DataSetId": "prod-alb-logs"}
    stub.add_client_error("describe_data_set", "ResourceNotFoundException", "not found", expected_params=expected)
    stub.add_response("describe_data_set", {"Status": 200}, expected)
    failed = {"Arn": "arn", "IngestionStatus": "FAILED", "CreatedTime": NOW,
              "ErrorInfo": {"Type": "PERMISSION_DENIED", "Message": "Lake Formation"}}
    stub.add_response("list_ingestions", {"Ingestions": [failed]}, {**expected, "MaxResults": 5})
    checks = Clients(healthy.s3, None, healthy.glue, quicksight, ACCOUNT)
    with stub:
        missing = check_quicksight(with_dataset, checks)
        refresh = check_quicksight(with_dataset, checks)
    assert not missing.ok and "not found in us-east-1" in missing.detail and "EnableQuickSight=false" in missing.fix
    assert not refresh.ok and "PERMISSION_DENIED: Lake Formation" in refresh.detail
