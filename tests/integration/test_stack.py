"""``stack_outputs``: a deployed stack's outputs, read with CloudFormation DescribeStacks (moto; its stacks hold
the outputs a template declares, here beside a WaitConditionHandle, the one resource such a template needs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from alblake.aws.stack import StackOutputs, stack_outputs
from alblake.errors import ConfigError

OUTPUTS = {
    "LakeBucketName": "prod-lake-123",
    "GlueDatabaseName": "prod_alblake",
    "CuratedTableName": "alb_logs",
    "AthenaWorkGroupName": "prod-alblake",
    "IngestQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/prod-ingest",
    "IngestDeadLetterQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/prod-ingest-dlq",
    "AccessLogPrefix": "s3://prod-logs-123/alb/AWSLogs/123456789012/",
}


def template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudFormation..WaitConditionHandle")


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("cloudformation", region_name="us-east-1")


def test_the_outputs_of_a_stack_name_its_lake_catalog_workgroup_and_queues(cloudformation: Any) -> None:
    cloudformation.create_stack(StackName="prod", TemplateBody=template(OUTPUTS))
    found = stack_outputs(cloudformation, "prod")
    assert found == StackOutputs(
        name="prod",
        lake_bucket="prod-lake-123",
        glue_database="prod_alblake",
        workgroup="prod-alblake",
        ingest_queue_url=OUTPUTS["IngestQueueUrl"],
        dead_letter_queue_url=OUTPUTS["IngestDeadLetterQueueUrl"],
        log_prefix=OUTPUTS["AccessLogPrefix"],
    )
    assert found.lake == "s3://prod-lake-123"


def test_a_missing_stack_or_one_that_is_not_alblakes_is_a_clear_error(cloudformation: Any) -> None:
    with pytest.raises(ConfigError, match="stack 'nope' does not exist"):
        stack_outputs(cloudformation, "nope")
    cloudformation.create_stack(StackName="other", TemplateBody=template({"Something": "else"}))
    with pytest.raises(ConfigError, match="not an alblake stack"):
        stack_outputs(cloudformation, "other")
