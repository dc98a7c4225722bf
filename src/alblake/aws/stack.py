"""A deployed stack's outputs (CloudFormation ``DescribeStacks``): where its lake, catalog, workgroup and queues
are, so an operator names the stack (``--stack NAME``) instead of copying bucket names and queue URLs.

One implementation for every AWS-facing command (query and sql on Athena, backfill, replay, redrive, doctor,
catalog sync). Needs ``cloudformation:DescribeStacks`` on the stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from alblake.errors import ConfigError, ServiceError
from alblake.s3_urls import s3_url


@dataclass(frozen=True)
class StackOutputs:
    """The outputs of an alblake stack that commands use ('' when the stack does not have one)."""

    name: str
    lake_bucket: str
    glue_database: str
    table: str = "alb_logs"
    workgroup: str = ""
    ingest_queue_url: str = ""
    dead_letter_queue_url: str = ""
    log_prefix: str = ""  # s3://bucket/prefix/AWSLogs/... where the load balancers write
    log_bucket: str = ""
    ingest_function: str = ""
    compact_function: str = ""
    dataset_id: str = ""

    @property
    def lake(self) -> str:
        """The lake's location, as ``--lake`` takes it."""
        return s3_url(self.lake_bucket, "").rstrip("/")


# output key -> StackOutputs field
_FIELDS = {
    "LakeBucketName": "lake_bucket",
    "GlueDatabaseName": "glue_database",
    "CuratedTableName": "table",
    "AthenaWorkGroupName": "workgroup",
    "IngestQueueUrl": "ingest_queue_url",
    "IngestDeadLetterQueueUrl": "dead_letter_queue_url",
    "AccessLogPrefix": "log_prefix",
    "AccessLogBucketName": "log_bucket",
    "IngestFunctionName": "ingest_function",
    "CompactFunctionName": "compact_function",
    "QuickSightDataSetId": "dataset_id",
}
_REQUIRED = ("LakeBucketName", "GlueDatabaseName")


def stack_outputs(cloudformation: Any, name: str) -> StackOutputs:
    """The outputs of stack ``name``. Raises ``ConfigError`` when there is no such stack or it is not an alblake
    stack, ``ServiceError`` when CloudFormation cannot be asked."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", error))
        if "does not exist" in message:
            raise ConfigError(f"stack {name!r} does not exist in this account and region ({message})") from None
        raise ServiceError(f"cannot read stack {name!r}: {message}") from None
    except BotoCoreError as error:
        raise ServiceError(f"cannot read stack {name!r}: {error}") from None
    outputs = {str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in stacks[0].get("Outputs", [])}
    missing = [key for key in _REQUIRED if not outputs.get(key)]
    if missing:
        raise ConfigError(
            f"stack {name!r} has no output {', '.join(missing)}: not an alblake stack, or not fully created "
            f"(status {stacks[0].get('StackStatus', '?')})"
        )
    values = {field: outputs[key] for key, field in _FIELDS.items() if outputs.get(key)}
    return StackOutputs(name=name, **values)
