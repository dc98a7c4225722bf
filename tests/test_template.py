"""template.yaml agrees with the schema module, the Lambda contract and botocore's QuickSight model.

The template is read with a YAML loader that turns CloudFormation short-form tags (``!Ref``, ``!Sub``, ...) into
their long form, so no IaC tool is needed: these tests run in the main venv, offline.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from alblake import schema
from alblake.aws.events import parse_event
from alblake.service.refresh import MIN_REFRESH_MINUTES
from tests.template_loader import load_template

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture
def template() -> dict[str, Any]:
    return copy.deepcopy(load_template())


def _resource(template: dict[str, Any], logical_id: str, rtype: str) -> dict[str, Any]:
    resource = template["Resources"][logical_id]
    assert resource["Type"] == rtype
    props = resource["Properties"]
    assert isinstance(props, dict)
    return props


def _resources_of_type(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == rtype}


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


# ---------------------------------------------------------------------------------------------- Glue tables


def test_curated_table_matches_schema(template: dict[str, Any]) -> None:
    table = _resource(template, "CuratedTable", "AWS::Glue::Table")["TableInput"]
    assert table["Name"] == schema.TABLE_NAME
    assert table["TableType"] == "EXTERNAL_TABLE"
    sd = table["StorageDescriptor"]
    # Names, Glue types, comments and order, exactly as the schema module derives them.
    assert sd["Columns"] == schema.glue_columns()
    assert table["PartitionKeys"] == schema.glue_partition_keys()
    assert [k["Name"] for k in table["PartitionKeys"]] == list(schema.PARTITION_KEYS)
    assert not {c["Name"] for c in sd["Columns"]} & set(schema.PARTITION_KEYS)


def test_curated_table_is_parquet_under_the_lake_prefix(template: dict[str, Any]) -> None:
    sd = _resource(template, "CuratedTable", "AWS::Glue::Table")["TableInput"]["StorageDescriptor"]
    assert sd["Location"] == {"Fn::Sub": f"s3://${{LakeBucket}}/{schema.TABLE_NAME}/"}
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def test_curated_table_is_exactly_the_schema_table_input(template: dict[str, Any]) -> None:
    """One definition: template, integration fixtures and local invoke all create the table from
    ``schema.glue_table_input`` (the only intrinsic in the template's TableInput is the Location)."""
    table = _resource(template, "CuratedTable", "AWS::Glue::Table")["TableInput"]
    location = table["StorageDescriptor"]["Location"]
    assert location == {"Fn::Sub": f"s3://${{LakeBucket}}/{schema.TABLE_NAME}/"}
    resolved = _placeholders(table)
    assert resolved["StorageDescriptor"]["Location"] == "placeholder"
    assert resolved == schema.glue_table_input("placeholder")


def test_raw_table_uses_the_schema_regex_and_columns(template: dict[str, Any]) -> None:
    table = _resource(template, "RawTable", "AWS::Glue::Table")["TableInput"]
    sd = table["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.RegexSerDe"
    regex = sd["SerdeInfo"]["Parameters"]["input.regex"]
    assert regex == schema.RAW_LOG_REGEX
    assert re.compile(regex).groups == len(schema.COLUMNS)
    # Names, types and comments as schema.raw_glue_columns (the curated types; timestamps stay ISO 8601 text),
    # the same as sql/ddl/alb_logs_raw.sql: both are generated from the schema.
    assert sd["Columns"] == schema.raw_glue_columns()
    assert [c["Name"] for c in sd["Columns"]] == list(schema.COLUMN_NAMES)
    assert sd["Location"] == {
        "Fn::Sub": [
            "s3://${LogBucket}/${LogPrefix}/AWSLogs/${AWS::AccountId}/elasticloadbalancing/${AWS::Region}/",
            {
                "LogBucket": {
                    "Fn::If": ["CreateLogBucket", {"Ref": "AccessLogBucket"}, {"Ref": "ExistingLogBucketName"}]
                }
            },
        ]
    }


# The documented https example (docs/ALB_LOG_FORMAT.md, verbatim in tests/data).
_DOC_LINE = (Path(__file__).parent / "data" / "aws_documented_examples.log").read_text().splitlines()[1]


def test_raw_table_regex_maps_a_documented_line_onto_the_columns(template: dict[str, Any]) -> None:
    sd = _resource(template, "RawTable", "AWS::Glue::Table")["TableInput"]["StorageDescriptor"]
    match = re.fullmatch(sd["SerdeInfo"]["Parameters"]["input.regex"], _DOC_LINE)
    assert match is not None
    row = dict(zip([c["Name"] for c in sd["Columns"]], match.groups(), strict=True))
    assert row["type"] == "https"
    assert row["client_ip"] == "192.168.131.39"
    assert row["target_port"] == "80"
    assert row["elb_status_code"] == "200"
    assert row["sent_bytes"] == "57"
    assert row["request_verb"] == "GET"
    assert row["request_url"] == "https://www.example.com:443/"
    assert row["conn_trace_id"] == "TID_1234abcd5678ef90"
    assert row["transformed_host"] == "m.example.com"
    assert row["request_transform_status"] == "TransformSuccess"


# ---------------------------------------------------------------------------------------------- logs bucket


def _log_bucket_name_expr(template: dict[str, Any]) -> Any:
    return _resource(template, "AccessLogBucket", "AWS::S3::Bucket")["BucketName"]


def test_log_bucket_is_sse_s3_private_and_expires_raw_logs(template: dict[str, Any]) -> None:
    props = _resource(template, "AccessLogBucket", "AWS::S3::Bucket")
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert [r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules] == ["AES256"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    lifecycle = props["LifecycleConfiguration"]["Rules"]
    assert {"Ref": "RawLogRetentionDays"} in [r.get("ExpirationInDays") for r in lifecycle]


def test_log_bucket_policy_allows_alb_log_delivery_and_denies_plain_http(template: dict[str, Any]) -> None:
    doc = _resource(template, "AccessLogBucketPolicy", "AWS::S3::BucketPolicy")["PolicyDocument"]
    statements = doc["Statement"]
    delivery = [s for s in statements if s["Effect"] == "Allow"]
    assert delivery == [
        {
            "Sid": "AlbLogDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:s3:::${AccessLogBucket}/${LogPrefix}/AWSLogs/${AWS::AccountId}/*"
            },
        }
    ]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert len(deny) == 1
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_bucket_is_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    buckets = _resources_of_type(template, "AWS::S3::Bucket")
    assert set(buckets) == {"AccessLogBucket", "LakeBucket", "AthenaResultsBucket"}
    policies = _resources_of_type(template, "AWS::S3::BucketPolicy")
    tls_only = {
        p["Properties"]["Bucket"]["Ref"]
        for p in policies.values()
        if any(
            s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    }
    assert tls_only == set(buckets)
    for props in (b["Properties"] for b in buckets.values()):
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert all(props["PublicAccessBlockConfiguration"].values())


def test_load_balancer_logs_to_the_bucket_after_its_policy_exists(template: dict[str, Any]) -> None:
    lb = template["Resources"]["LoadBalancer"]
    assert lb["DependsOn"] == "AccessLogBucketPolicy"
    attrs = {a["Key"]: a["Value"] for a in lb["Properties"]["LoadBalancerAttributes"]}
    assert attrs["access_logs.s3.enabled"] == "true"
    assert attrs["access_logs.s3.bucket"] == {"Ref": "AccessLogBucket"}
    assert attrs["access_logs.s3.prefix"] == {"Ref": "LogPrefix"}
    assert template["Outputs"]["AlbUrl"]["Value"] == {"Fn::Sub": "http://${LoadBalancer.DNSName}/"}


def test_log_bucket_notifies_the_ingest_queue_of_new_log_objects_only(template: dict[str, Any]) -> None:
    """One path for every object: the stack's own bucket notifies IngestQueue (whose dead-letter queue a redrive
    empties), never the function directly (an asynchronous invocation's failures cannot be redriven)."""
    props = _resource(template, "AccessLogBucket", "AWS::S3::Bucket")
    notifications = props["NotificationConfiguration"]
    assert set(notifications) == {"QueueConfigurations"}
    (config,) = notifications["QueueConfigurations"]
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    rules = {r["Name"]: r["Value"] for r in config["Filter"]["S3Key"]["Rules"]}
    assert rules == {"prefix": {"Fn::Sub": "${LogPrefix}/AWSLogs/"}, "suffix": ".log.gz"}
    assert not _resources_of_type(template, "AWS::Lambda::Permission")  # nothing invokes the function directly


def test_queue_policy_lets_only_the_log_bucket_send_and_exists_before_the_bucket_without_a_cycle(
    template: dict[str, Any],
) -> None:
    # S3 sends a test message when the notification is put: the policy must exist first, so the bucket waits.
    assert template["Resources"]["AccessLogBucket"]["DependsOn"] == "IngestQueuePolicy"
    statements = _resource(template, "IngestQueuePolicy", "AWS::SQS::QueuePolicy")["PolicyDocument"]["Statement"]
    [own] = [s["Fn::If"] for s in statements if "Fn::If" in s and s["Fn::If"][0] == "CreateLogBucket"]
    allow = own[1]
    assert (allow["Effect"], allow["Principal"], allow["Action"]) == (
        "Allow", {"Service": "s3.amazonaws.com"}, "sqs:SendMessage"
    )
    assert allow["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    name_sub = _log_bucket_name_expr(template)["Fn::Sub"]
    # the bucket's ARN from its computed name, not a Ref/GetAtt of the bucket (that would be circular)
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"] == [
        "arn:${AWS::Partition}:s3:::" + name_sub[0], name_sub[1]
    ]
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    before_bucket = [template["Resources"][k] for k in ("IngestQueuePolicy", "IngestFunctionRole", "IngestFunction")]
    for node in _walk(before_bucket):
        assert node != {"Ref": "AccessLogBucket"}
        assert not (isinstance(node, dict) and "Fn::GetAtt" in node and node["Fn::GetAtt"][0] == "AccessLogBucket")
        assert not (isinstance(node, str) and "${AccessLogBucket" in node)


# ---------------------------------------------------------------------------------------------- ingest


CONTRACT_ENV = {
    "LAKE_BUCKET",
    "LAKE_PREFIX",
    "GLUE_DATABASE",
    "GLUE_TABLE",
    "QUICKSIGHT_DATASET_ID",
    "QUICKSIGHT_MIN_REFRESH_MINUTES",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_METRICS",  # log-derived metrics (alblake.service.log_metrics), opt-in
    "LOG_METRICS_MAX_AGE_MINUTES",
}
METRICS = {
    "RowsWritten",
    "LinesQuarantined",
    "BytesRead",
    "PartitionsWritten",
    "LogLagSeconds",
    "ObjectsSkipped",
    "ObjectsFailed",
}


def test_ingest_function_matches_the_lambda_contract(template: dict[str, Any]) -> None:
    fn = _resource(template, "IngestFunction", "AWS::Serverless::Function")
    assert fn["CodeUri"] == "functions/ingest/"
    assert fn["Handler"] == "app.handler"
    assert fn["Runtime"] == "python3.13"
    assert fn["Architectures"] == ["arm64"]
    # Not in Globals as well: older SAM translators concatenated the two lists into [arm64, arm64].
    assert "Architectures" not in template.get("Globals", {}).get("Function", {})
    assert fn["Layers"] == [{"Ref": "AlbLakeLayer"}]
    env = fn["Environment"]["Variables"]
    assert set(env) == CONTRACT_ENV
    assert env["GLUE_TABLE"] == schema.TABLE_NAME
    assert env["GLUE_DATABASE"] == {"Ref": "GlueDatabase"}
    assert env["LAKE_BUCKET"] == {"Ref": "LakeBucket"}
    assert env["LAKE_PREFIX"] == ""
    assert env["POWERTOOLS_SERVICE_NAME"] == "alblake-ingest"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "AlbLake"
    dataset_id = template["Resources"]["QuickSightDataSet"]["Properties"]["DataSetId"]
    assert env["QUICKSIGHT_DATASET_ID"] == {"Fn::If": ["QuickSightEnabled", dataset_id, ""]}
    assert template["Outputs"]["QuickSightDataSetId"]["Value"] == env["QUICKSIGHT_DATASET_ID"]
    # No asynchronous invocation path: its failures would be Lambda destination records no SQS move task moves.
    assert "EventInvokeConfig" not in fn
    assert fn["Role"] == {"Fn::GetAtt": ["IngestFunctionRole", "Arn"]}
    assert "Policies" not in fn  # a role of its own: SAM attaches no managed policy (see the role test)
    assert _resource(template, "IngestDeadLetterQueue", "AWS::SQS::Queue")["SqsManagedSseEnabled"] is True


def test_refresh_interval_parameter_respects_the_quicksight_daily_limit(template: dict[str, Any]) -> None:
    # QuickSight Enterprise: 32 refreshes per dataset per 24 h, so no interval below 1440 / 32 = 45 minutes.
    param = template["Parameters"]["QuickSightMinRefreshMinutes"]
    assert param["Type"] == "Number"
    assert param["MinValue"] == MIN_REFRESH_MINUTES == 24 * 60 / 32
    assert param["Default"] >= param["MinValue"]
    env = template["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["QUICKSIGHT_MIN_REFRESH_MINUTES"] == {"Ref": "QuickSightMinRefreshMinutes"}


def test_layer_is_built_by_its_makefile_for_arm64(template: dict[str, Any]) -> None:
    layer = template["Resources"]["AlbLakeLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    props = layer["Properties"]
    assert props["ContentUri"] == "layers/alblake/"
    assert props["CompatibleRuntimes"] == ["python3.13"]
    assert props["CompatibleArchitectures"] == ["arm64"]


def _role_policy(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    role = _resource(template, "IngestFunctionRole", "AWS::IAM::Role")
    [policy] = [p["PolicyDocument"] for p in role["Policies"] if p["PolicyName"] == name]
    return [st["Fn::If"][1] if "Fn::If" in st else st for st in policy["Statement"]]


def _policy_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The ingest function's statements for the calls of its code (the role's "ingest" policy)."""
    return _role_policy(template, "ingest")


# Exactly what the Lambda code calls (the adapters in src/alblake/aws that src/alblake/service wires): S3
# get_object and upload_file (PutObject covers the single PUT and Create/UploadPart/CompleteMultipartUpload;
# AbortMultipartUpload is its own action), Glue get_table + batch_create_partition, QuickSight list_ingestions +
# create_ingestion (sts:GetCallerIdentity needs no permission).
INGEST_ACTIONS = {
    "ReadAlbLogs": {"s3:GetObject"},
    "ListAlbLogs": {"s3:ListBucket"},
    "WriteLake": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"},
    "ListLake": {"s3:ListBucket"},
    "SourceManifests": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"},
    "AddPartitions": {
        "glue:GetTable",
        "glue:BatchGetPartition",
        "glue:BatchCreatePartition",
        "glue:BatchUpdatePartition",
    },
    "RefreshDataSet": {"quicksight:ListIngestions", "quicksight:CreateIngestion"},
    "ReadExtraSources": {"s3:GetObject"},
    "ListExtraSources": {"s3:ListBucket"},
}
# Granted without a boto3 call of its own: ListBucket on the log bucket turns a deleted object's 403 into
# NoSuchKey (a skip instead of retries).
_NOT_FROM_CALLS = {"s3:ListBucket"}


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_ingest_policy_is_least_privilege(template: dict[str, Any]) -> None:
    statements = {s["Sid"]: s for s in _policy_statements(template)}
    assert set(statements) == set(INGEST_ACTIONS)
    for st in statements.values():
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert all("*" not in a for a in actions), actions
        for resource in _walk(st["Resource"]):
            assert resource != "*"
    # Exact action sets, per statement and per service: adding or removing any action fails.
    granted = {sid: _actions(st) for sid, st in statements.items()}
    assert all(len(a) == len(set(a)) for a in granted.values()), granted
    assert {sid: set(a) for sid, a in granted.items()} == INGEST_ACTIONS
    by_service: dict[str, set[str]] = {}
    for action in (a for actions in granted.values() for a in actions):
        by_service.setdefault(action.split(":")[0], set()).add(action)
    assert by_service == {
        "s3": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:ListBucket"},
        "glue": {"glue:GetTable", "glue:BatchGetPartition", "glue:BatchCreatePartition", "glue:BatchUpdatePartition"},
        "quicksight": {"quicksight:ListIngestions", "quicksight:CreateIngestion"},
    }
    assert statements["ReadAlbLogs"]["Action"] == "s3:GetObject"
    condition, own_bucket, existing_bucket = statements["ReadAlbLogs"]["Resource"]["Fn::If"]
    assert condition == "CreateLogBucket"
    name_sub = _log_bucket_name_expr(template)["Fn::Sub"]
    assert own_bucket["Fn::Sub"] == [
        "arn:${AWS::Partition}:s3:::" + name_sub[0] + "/${LogPrefix}/AWSLogs/${AWS::AccountId}/*",
        name_sub[1],
    ]
    # An existing bucket holds many accounts' and Regions' logs under LogPrefix/AWSLogs/.
    assert existing_bucket == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ExistingLogBucketName}/${LogPrefix}/AWSLogs/*"}
    assert statements["WriteLake"]["Resource"] == [
        {"Fn::Sub": f"${{LakeBucket.Arn}}/{schema.TABLE_NAME}/*"},
        {"Fn::Sub": "${LakeBucket.Arn}/quarantine/*"},
        {"Fn::Sub": "${LakeBucket.Arn}/compaction/*"},
        {"Fn::Sub": f"${{LakeBucket.Arn}}/{schema.ROLLUP_TABLE_NAME}/*"},  # the rollup's siblings of the data files
    ]
    assert "Condition" not in statements["ListLake"]  # a missing partition state must be 404, never 403
    assert "Condition" not in statements["ListAlbLogs"]  # a prefix condition would not turn 403 into 404
    assert statements["SourceManifests"]["Resource"] == {"Fn::Sub": "${LakeBucket.Arn}/manifests/*"}
    glue_resources = [r["Fn::Sub"] for r in statements["AddPartitions"]["Resource"]]
    assert glue_resources[-2].endswith(f":table/${{GlueDatabase}}/{schema.TABLE_NAME}")
    assert glue_resources[-1].endswith(f":table/${{GlueDatabase}}/{schema.ROLLUP_TABLE_NAME}")
    qs = statements["RefreshDataSet"]
    assert all(r["Fn::Sub"].split(":dataset/")[1].startswith("${AWS::StackName}-alb-logs") for r in qs["Resource"])


_CLIENT_CALL = re.compile(r"\b_client\.([a-z_]+)\(")
# boto3 call -> the IAM actions it needs (upload_file may go multipart and abort on failure).
_CALL_ACTIONS = {
    "get_object": {"s3:GetObject"},
    "head_object": {"s3:GetObject"},  # HeadObject needs GetObject (the size of a file read in ranges)
    "download_file": {"s3:GetObject"},
    "upload_file": {"s3:PutObject", "s3:AbortMultipartUpload"},
    "copy": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"},  # CopyObject, or UploadPartCopy above 5 GB
    "put_object": {"s3:PutObject"},
    "delete_object": {"s3:DeleteObject"},
    "get_paginator": {"s3:ListBucket"},  # list_objects_v2 pages
    "get_table": {"glue:GetTable"},
    "batch_get_partition": {"glue:BatchGetPartition"},
    "batch_create_partition": {"glue:BatchCreatePartition"},
    "batch_update_partition": {"glue:BatchUpdatePartition"},
    "list_ingestions": {"quicksight:ListIngestions"},
    "create_ingestion": {"quicksight:CreateIngestion"},
}


# The adapters the functions wire (service/ builds them); the operator's adapters have a test of their own.
FUNCTION_ADAPTERS = ("s3.py", "glue.py", "quicksight.py", "events.py", "session.py")


def test_policy_actions_follow_the_boto3_calls_in_the_code() -> None:
    """Adding a boto3 call to an adapter without its IAM action (or keeping an action nobody calls) fails."""
    package = ROOT / "src" / "alblake"
    sources = [*(package / "aws" / name for name in FUNCTION_ADAPTERS), *sorted((package / "service").glob("*.py")),
               ROOT / "functions" / "ingest" / "app.py"]
    calls = {m for path in sources for m in _CLIENT_CALL.findall(path.read_text(encoding="utf-8"))}
    assert calls == set(_CALL_ACTIONS), calls
    needed = set().union(*(_CALL_ACTIONS[c] for c in calls))
    assert needed == set().union(*INGEST_ACTIONS.values()) | _NOT_FROM_CALLS  # the lifecycle function's own: its test


def test_alarms_cover_errors_dlq_depth_and_quarantine_rate(template: dict[str, Any]) -> None:
    alarms = _resources_of_type(template, "AWS::CloudWatch::Alarm")
    simple = {(a["Properties"].get("Namespace"), a["Properties"].get("MetricName")) for a in alarms.values()}
    assert ("AWS/Lambda", "Errors") in simple
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in simple
    metric_math = [a["Properties"]["Metrics"] for a in alarms.values()  # the log-derived ones: their own test
                   if "Metrics" in a["Properties"] and a.get("Condition") != "LogMetricsEnabled"]
    assert len(metric_math) == 1
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in metric_math[0] if "MetricStat" in m}
    assert {s["MetricName"] for s in stats.values()} == {"LinesQuarantined", "RowsWritten"}
    assert ("AlbLake", "RowsWritten") in simple  # the heartbeat (see its own test)
    assert {s["MetricName"] for s in stats.values()} <= METRICS
    assert all(s["Namespace"] == "AlbLake" for s in stats.values())
    assert all(s["Dimensions"] == [{"Name": "service", "Value": "alblake-ingest"}] for s in stats.values())
    (expr,) = [m for m in metric_math[0] if "Expression" in m]
    ids = {v["MetricName"]: k for k, v in stats.items()}
    assert expr["ReturnData"] is True
    assert (
        f"FILL({ids['LinesQuarantined']}, 0) / (FILL({ids['RowsWritten']}, 0) + FILL({ids['LinesQuarantined']}, 0))"
        in expr["Expression"]
    )


# ---------------------------------------------------------------------------------------------- web tier


def test_instances_take_http_from_the_load_balancer_only(template: dict[str, Any]) -> None:
    sg = _resource(template, "InstanceSecurityGroup", "AWS::EC2::SecurityGroup")
    assert sg["SecurityGroupIngress"] == [
        {
            "IpProtocol": "tcp",
            "FromPort": 80,
            "ToPort": 80,
            "SourceSecurityGroupId": {"Ref": "AlbSecurityGroup"},
            "Description": "HTTP from the load balancer only",
        }
    ]
    lt = _resource(template, "WebLaunchTemplate", "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert lt["MetadataOptions"]["HttpTokens"] == "required"
    assert template["Parameters"]["AmiParameter"]["Default"].startswith(
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-"
    )
    user_data = lt["UserData"]["Fn::Base64"]
    assert "httpd" in user_data
    assert "X-aws-ec2-metadata-token" in user_data
    assert "instance-id" in user_data


# ---------------------------------------------------------------------------------------------- QuickSight

_QS_TYPES = {"string": "STRING", "int": "INTEGER", "bigint": "INTEGER", "double": "DECIMAL", "timestamp": "DATETIME"}
_PLACEHOLDER_ARN = "arn:aws:quicksight:us-east-1:123456789012:placeholder/x"


def _placeholders(node: Any) -> Any:
    """Replace CloudFormation intrinsics by plain strings, as the API would receive them after resolution."""
    if isinstance(node, dict):
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Fn::GetAtt":
                return _PLACEHOLDER_ARN if value[1] == "Arn" else "placeholder"
            if key == "Ref" and value == "AWS::AccountId":
                return "123456789012"
            if key in ("Ref", "Fn::Sub", "Fn::Join", "Fn::Select", "Fn::ImportValue"):
                return "placeholder"
            if key == "Fn::If":
                return _placeholders(value[1])
        return {k: _placeholders(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_placeholders(v) for v in node]
    return node


def _enum_errors(value: Any, shape: Any, path: str = "") -> list[str]:
    """botocore's validator checks types, required members and lengths but not enums; check those too."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return [
            e for k, v in value.items() if k in shape.members for e in _enum_errors(v, shape.members[k], f"{path}.{k}")
        ]
    if shape.type_name == "list" and isinstance(value, list):
        return [e for i, v in enumerate(value) for e in _enum_errors(v, shape.member, f"{path}[{i}]")]
    if shape.type_name == "map" and isinstance(value, dict):
        return [e for k, v in value.items() for e in _enum_errors(v, shape.value, f"{path}.{k}")]
    if shape.type_name == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} not in {shape.enum}"]
    return []


def _quicksight_input(operation: str) -> Any:
    model = botocore.session.get_session().get_service_model("quicksight")
    return model.operation_model(operation).input_shape


@pytest.mark.parametrize(
    ("logical_id", "rtype", "operation"),
    [
        ("QuickSightDataSource", "AWS::QuickSight::DataSource", "CreateDataSource"),
        ("QuickSightDataSet", "AWS::QuickSight::DataSet", "CreateDataSet"),
        ("QuickSightDashboard", "AWS::QuickSight::Dashboard", "CreateDashboard"),
    ],
)
def test_quicksight_resources_validate_against_botocore(
    template: dict[str, Any], logical_id: str, rtype: str, operation: str
) -> None:
    assert template["Resources"][logical_id]["Condition"] == "QuickSightEnabled"
    params = _placeholders(_resource(template, logical_id, rtype))
    # CloudFormation-only properties: the wait policy has no API twin; the refresh properties are their own
    # API call (PutDataSetRefreshProperties, validated below).
    params.pop("IngestionWaitPolicy", None)
    params.pop("DataSetRefreshProperties", None)
    validate_parameters(params, _quicksight_input(operation))
    assert _enum_errors(params, _quicksight_input(operation)) == []


def test_spice_dataset_refreshes_incrementally_on_time_and_does_not_block_the_stack(template: dict[str, Any]) -> None:
    props = _resource(template, "QuickSightDataSet", "AWS::QuickSight::DataSet")
    # CloudFormation docs: the default waits for the first SPICE load, up to 36 h.
    assert props["IngestionWaitPolicy"] == {"WaitForSpiceIngestion": False}
    refresh = props["DataSetRefreshProperties"]
    params = _placeholders(
        {"AwsAccountId": {"Ref": "AWS::AccountId"}, "DataSetId": "x", "DataSetRefreshProperties": refresh}
    )
    params["DataSetRefreshProperties"]["RefreshConfiguration"]["IncrementalRefresh"]["LookbackWindow"]["Size"] = 3
    validate_parameters(params, _quicksight_input("PutDataSetRefreshProperties"))
    assert _enum_errors(params, _quicksight_input("PutDataSetRefreshProperties")) == []
    window = refresh["RefreshConfiguration"]["IncrementalRefresh"]["LookbackWindow"]
    assert window == {"ColumnName": "time", "Size": {"Ref": "SpiceLookbackHours"}, "SizeUnit": "HOUR"}
    (physical,) = props["PhysicalTableMap"].values()
    assert {"Name": "time", "Type": "DATETIME"} in physical["CustomSql"]["Columns"]
    decimals = [c for c in physical["CustomSql"]["Columns"] if c["Type"] == "DECIMAL"]
    assert decimals
    assert all(c["SubType"] == "FLOAT" for c in decimals)  # SPICE's floating decimal, not the fixed one
    lookback = template["Parameters"]["SpiceLookbackHours"]
    assert 1 <= lookback["MinValue"] <= lookback["Default"] <= lookback["MaxValue"]


def test_quicksight_queries_athena_as_a_stack_role_scoped_to_this_stack(template: dict[str, Any]) -> None:
    role = template["Resources"]["QuickSightAthenaRole"]
    assert role["Condition"] == "QuickSightEnabled"
    props = role["Properties"]
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "quicksight.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    statements = {st["Sid"]: st for policy in props["Policies"] for st in policy["PolicyDocument"]["Statement"]}
    # lakeformation:GetDataAccess (Athena asks it of whoever queries a table Lake Formation governs) is the one
    # action on "*": it has no resource-level scoping, Lake Formation decides per table
    assert statements["LakeFormationDataAccess"]["Action"] == "lakeformation:GetDataAccess"
    assert statements["LakeFormationDataAccess"]["Resource"] == "*"
    resources = [
        r
        for sid, st in statements.items()
        if sid != "LakeFormationDataAccess"
        for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
    ]
    assert "*" not in resources
    assert all(st["Effect"] == "Allow" for st in statements.values())
    writes = {a for st in statements.values() for a in _actions(st) if a.startswith("s3:Put")}
    assert writes == {"s3:PutObject"}
    assert statements["AthenaResults"]["Resource"] == {"Fn::Sub": "${AthenaResultsBucket.Arn}/results/*"}
    assert statements["LakeRead"]["Resource"] == [{"Fn::Sub": f"${{LakeBucket.Arn}}/{t}/*"}
                                                  for t in (schema.TABLE_NAME, schema.ROLLUP_TABLE_NAME)]
    assert "workgroup/${AthenaWorkGroup}" in statements["AthenaWorkGroup"]["Resource"]["Fn::Sub"]
    glue = [r["Fn::Sub"] for r in statements["GlueRead"]["Resource"]]
    assert all("${GlueDatabase}" in r or r.endswith(":catalog") for r in glue)
    assert not {a for a in _actions(statements["GlueRead"]) if not a.startswith(("glue:Get", "glue:BatchGet"))}


def test_botocore_validation_rejects_a_broken_definition(template: dict[str, Any]) -> None:
    """The validation above is real: a misspelt field in one visual fails it."""
    params = _placeholders(_resource(template, "QuickSightDashboard", "AWS::QuickSight::Dashboard"))
    visual = params["Definition"]["Sheets"][0]["Visuals"][0]["BarChartVisual"]
    visual["ChartConfiguration"]["FieldWells"]["BarChartAggregatedFieldWells"]["Categories"] = []
    with pytest.raises(ParamValidationError):
        validate_parameters(params, _quicksight_input("CreateDashboard"))


def test_enum_check_rejects_an_unknown_enum_value(template: dict[str, Any]) -> None:
    params = _placeholders(_resource(template, "QuickSightDashboard", "AWS::QuickSight::Dashboard"))
    assert _enum_errors(params, _quicksight_input("CreateDashboard")) == []
    params["Definition"]["Sheets"][0]["Visuals"][0]["BarChartVisual"]["ChartConfiguration"]["Orientation"] = "DIAGONAL"
    (error,) = _enum_errors(params, _quicksight_input("CreateDashboard"))
    assert "DIAGONAL" in error


def test_dataset_columns_exist_in_the_curated_table_with_matching_types(template: dict[str, Any]) -> None:
    props = _resource(template, "QuickSightDataSet", "AWS::QuickSight::DataSet")
    assert props["ImportMode"] == "SPICE"
    (physical,) = props["PhysicalTableMap"].values()
    custom = physical["CustomSql"]
    assert custom["DataSourceArn"] == {"Fn::GetAtt": ["QuickSightDataSource", "Arn"]}
    glue = {c["Name"]: c["Type"] for c in schema.glue_columns() + schema.glue_partition_keys()}
    for col in custom["Columns"]:
        assert col["Name"] in glue, col["Name"]
        assert col["Type"] == _QS_TYPES[glue[col["Name"]]], col["Name"]
    # The query selects exactly the declared columns, in order, from the curated table.
    select, from_where = custom["SqlQuery"]["Fn::Sub"].split("FROM", 1)
    assert re.findall(r'"(\w+)"', select) == [c["Name"] for c in custom["Columns"]]
    assert from_where.split()[0] == f'"AwsDataCatalog"."${{GlueDatabase}}"."{schema.TABLE_NAME}"'
    source = template["Resources"]["QuickSightDataSource"]["Properties"]
    assert source["Type"] == "ATHENA"
    assert source["DataSourceParameters"]["AthenaParameters"] == {
        "WorkGroup": {"Ref": "AthenaWorkGroup"},
        "RoleArn": {"Fn::GetAtt": ["QuickSightAthenaRole", "Arn"]},
    }


def test_spice_dataset_reads_only_a_partition_pruned_window(template: dict[str, Any]) -> None:
    """Each refresh (up to 32 a day) scans and stores the last SpiceWindowDays days, not the whole lake."""
    param = template["Parameters"]["SpiceWindowDays"]
    assert param["Type"] == "Number"
    assert param["Default"] == 30
    assert 1 <= param["MinValue"] <= param["Default"] <= param["MaxValue"]
    props = _resource(template, "QuickSightDataSet", "AWS::QuickSight::DataSet")
    (physical,) = props["PhysicalTableMap"].values()
    assert set(physical) == {"CustomSql"}  # no RelationalTable over the whole alb_logs table
    sql = " ".join(physical["CustomSql"]["SqlQuery"]["Fn::Sub"].split())
    (where,) = re.findall(r"\bWHERE (.*)$", sql)
    # A plain comparison on the string partition key `day` (YYYY-MM-DD sorts as a date), so Athena prunes.
    assert where == """"day" >= date_format(current_date - interval '${SpiceWindowDays}' day, '%Y-%m-%d')"""
    assert "day" in schema.PARTITION_KEYS
    assert {"Name": "day", "Type": "string"} in schema.glue_partition_keys()


_Measures = frozenset[tuple[str, str]]


def _fields(visual: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(well kind, column, aggregation) for every field of a visual; kind is 'dim' or 'measure'."""
    out: list[tuple[str, str, str]] = []
    for node in _walk(visual):
        if not isinstance(node, dict):
            continue
        for key, field in node.items():
            if not isinstance(field, dict) or "Column" not in field:
                continue
            column = field["Column"]["ColumnName"]
            if key.endswith("DimensionField"):
                out.append(("dim", column, ""))
            elif key.endswith("MeasureField"):
                agg = field["AggregationFunction"]
                out.append(("measure", column, agg if isinstance(agg, str) else agg["SimpleNumericalAggregation"]))
    return out


def test_dashboard_has_the_required_visuals(template: dict[str, Any]) -> None:
    props = _resource(template, "QuickSightDashboard", "AWS::QuickSight::Dashboard")
    definition = props["Definition"]
    (declaration,) = definition["DataSetIdentifierDeclarations"]
    assert declaration["DataSetArn"] == {"Fn::GetAtt": ["QuickSightDataSet", "Arn"]}
    dataset_cols = {
        c["Name"]
        for t in template["Resources"]["QuickSightDataSet"]["Properties"]["PhysicalTableMap"].values()
        for c in t["CustomSql"]["Columns"]
    }
    visuals = [v for sheet in definition["Sheets"] for v in sheet["Visuals"]]
    assert len(visuals) >= 4
    signatures = []
    for visual in visuals:
        fields = _fields(visual)
        assert {c for _, c, _ in fields} <= dataset_cols
        dims = frozenset(c for kind, c, _ in fields if kind == "dim")
        measures = frozenset((c, agg) for kind, c, agg in fields if kind == "measure")
        signatures.append((dims, measures))
    wanted: list[tuple[frozenset[str], Callable[[_Measures], bool]]] = [
        # requests by ELB status code (a count of rows)
        (frozenset({"elb_status_code"}), lambda m: any(agg == "COUNT" for _, agg in m)),
        # distinct client IPs per target IP
        (frozenset({"target_ip"}), lambda m: ("client_ip", "DISTINCT_COUNT") in m),
        # requests by verb
        (frozenset({"request_verb"}), lambda m: any(agg == "COUNT" for _, agg in m)),
        # bytes sent and received per target IP
        (frozenset({"target_ip"}), lambda m: {("sent_bytes", "SUM"), ("received_bytes", "SUM")} <= m),
    ]
    for dims, ok in wanted:
        assert any(d == dims and ok(m) for d, m in signatures), dims


# ---------------------------------------------------------------------------------------------- policy, config


def test_every_checkov_skip_is_justified(template: dict[str, Any]) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(skip.get("comment", "").split()) >= 5, f"{logical_id}: {skip['id']} needs a real justification"


def test_samconfig_overrides_only_template_parameters(template: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    deploy = config["default"]["deploy"]["parameters"]
    overrides = dict(re.findall(r'(\w+)="([^"]*)"', deploy["parameter_overrides"]))
    assert overrides
    for name, value in overrides.items():
        param = template["Parameters"][name]
        if "AllowedValues" in param:
            assert value in [str(v) for v in param["AllowedValues"]], name
    assert overrides.get("EnableQuickSight") == "false"
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    assert config["default"]["build"]["parameters"]["use_container"] is False


# ---------------------------------------------------------------------------------------------- deploy realism

WEB_TIER = {
    "WebInstanceRole",
    "WebInstanceProfile",
    "AlbSecurityGroup",
    "InstanceSecurityGroup",
    "AlbToInstancesEgress",
    "WebLaunchTemplate",
    "WebTargetGroup",
    "WebAutoScalingGroup",
    "WebCpuScalingPolicy",
    "LoadBalancer",
    "HttpListener",
}


def test_demo_web_tier_is_one_parameter_and_on_by_default(template: dict[str, Any]) -> None:
    assert template["Parameters"]["EnableDemoWebTier"]["Default"] == "true"
    conditions = template["Conditions"]
    assert conditions["CreateWebTier"] == {"Fn::Equals": [{"Ref": "EnableDemoWebTier"}, "true"]}
    assert {"Condition": "CreateWebTier"} in conditions["CreateVpc"]["Fn::And"]
    for logical_id in WEB_TIER:
        assert template["Resources"][logical_id]["Condition"] == "CreateWebTier", logical_id
    vpc_resources = {k for k, v in template["Resources"].items() if v.get("Condition") == "CreateVpc"}
    assert {"Vpc", "PublicSubnet1", "PublicSubnet2", "InternetGateway"} <= vpc_resources
    assert template["Outputs"]["AlbUrl"]["Condition"] == "CreateWebTier"
    # The lake pipeline itself never depends on the web tier.
    pipeline = ["IngestFunction", "IngestQueue", "LakeBucket", "GlueDatabase", "CuratedTable", "AthenaWorkGroup"]
    for logical_id in pipeline:
        assert "Condition" not in template["Resources"][logical_id], logical_id


def test_existing_log_bucket_sends_new_log_objects_through_eventbridge_to_the_queue(template: dict[str, Any]) -> None:
    conditions = template["Conditions"]
    assert conditions["CreateLogBucket"] == {"Fn::Equals": [{"Ref": "ExistingLogBucketName"}, ""]}
    for logical_id in ("AccessLogBucket", "AccessLogBucketPolicy"):
        assert template["Resources"][logical_id]["Condition"] == "CreateLogBucket", logical_id
    # The demo tier logs into the stack's own bucket, so the two options exclude each other.
    rule = template["Rules"]["ExistingLogBucketWithoutDemoTier"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "EnableDemoWebTier"}, "false"]}
    events_rule = template["Resources"]["ExistingLogBucketRule"]
    assert events_rule["Condition"] == "UseExistingLogBucket"
    pattern = events_rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"] == {"name": [{"Ref": "ExistingLogBucketName"}]}
    assert pattern["detail"]["object"] == {"key": [{"wildcard": {"Fn::Sub": "${LogPrefix}/AWSLogs/*.log.gz"}}]}
    (target,) = events_rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    # events EventBridge cannot deliver land in the one dead-letter queue (after a day of retries), where a redrive
    # finds them; its policy lets exactly this rule send
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    dlq_policy = _resource(template, "IngestDeadLetterQueuePolicy", "AWS::SQS::QueuePolicy")["PolicyDocument"]
    (undelivered,) = [st["Fn::If"] for st in dlq_policy["Statement"] if "Fn::If" in st]
    assert undelivered[0] == "UseExistingLogBucket"
    assert undelivered[1]["Principal"] == {"Service": "events.amazonaws.com"}
    assert undelivered[1]["Resource"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert undelivered[1]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ExistingLogBucketRule", "Arn"]}}
    }
    policy = _resource(template, "IngestQueuePolicy", "AWS::SQS::QueuePolicy")["PolicyDocument"]["Statement"]
    (allow,) = [st["Fn::If"] for st in policy if "Fn::If" in st and st["Fn::If"][0] == "UseExistingLogBucket"]
    assert allow[0] == "UseExistingLogBucket"
    assert allow[1]["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow[1]["Action"] == "sqs:SendMessage"
    assert allow[1]["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ExistingLogBucketRule", "Arn"]}}}


def test_ingest_queue_feeds_the_function_with_partial_batch_responses(template: dict[str, Any]) -> None:
    fn = _resource(template, "IngestFunction", "AWS::Serverless::Function")
    (event,) = [e for e in fn["Events"].values() if e["Type"] == "SQS"]
    props = event["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == {"Ref": "IngestBatchSize"}
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "IngestMaxConcurrency"}}
    concurrency = template["Parameters"]["IngestMaxConcurrency"]
    # botocore's Lambda model: ScalingConfig.MaximumConcurrency is 2..1000.
    shape: Any = botocore.session.get_session().get_service_model("lambda").shape_for("ScalingConfig")
    limits = shape.members["MaximumConcurrency"].metadata
    assert (concurrency["MinValue"], concurrency["MaxValue"]) == (limits["min"], limits["max"])
    assert template["Parameters"]["IngestBatchSize"]["MaxValue"] <= 10  # more needs a batching window
    queue = _resource(template, "IngestQueue", "AWS::SQS::Queue")
    # Lambda's guidance: the queue's visibility timeout at least 6 x the function timeout.
    assert queue["VisibilityTimeout"] >= 6 * fn["Timeout"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "IngestMaxReceiveCount"},
    }
    dlq = _resource(template, "IngestDeadLetterQueue", "AWS::SQS::Queue")
    # A message keeps its first enqueue time in the DLQ, so the DLQ must keep messages longer.
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert template["Outputs"]["IngestQueueUrl"]["Value"] == {"Ref": "IngestQueue"}
    alarms = _resources_of_type(template, "AWS::CloudWatch::Alarm")
    ages = [a for a in alarms.values() if a["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert [a["Properties"]["Dimensions"][0]["Value"] for a in ages] == [{"Fn::GetAtt": ["IngestQueue", "QueueName"]}]


def test_data_buckets_and_the_curated_table_are_retained(template: dict[str, Any]) -> None:
    """The buckets so that `sam delete` cannot fail halfway; the curated table because its partitions point at
    compacted generations no crawler finds (catalog sync rebuilds it if it is deleted anyway)."""
    for logical_id in [*_resources_of_type(template, "AWS::S3::Bucket"), "CuratedTable"]:
        resource = template["Resources"][logical_id]
        assert resource["DeletionPolicy"] == "Retain", logical_id
        assert resource["UpdateReplacePolicy"] == "Retain", logical_id


def test_glue_database_default_name_includes_the_stack_name(template: dict[str, Any]) -> None:
    assert template["Parameters"]["GlueDatabaseName"]["Default"] == ""
    name = _resource(template, "GlueDatabase", "AWS::Glue::Database")["DatabaseInput"]["Name"]
    condition, explicit, default = name["Fn::If"]
    assert condition == "HasGlueDatabaseName"
    assert explicit == {"Ref": "GlueDatabaseName"}
    assert default == {
        "Fn::Join": ["_", [{"Fn::Join": ["_", {"Fn::Split": ["-", {"Ref": "AWS::StackName"}]}]}, "alblake"]]
    }
    # Everything else names the database through the resource, never the (possibly empty) parameter.
    uses = [n for n in _walk(template["Resources"]) if isinstance(n, str) and "${GlueDatabaseName}" in n]
    assert uses == []
    refs = [n for n in _walk(template["Resources"]) if n == {"Ref": "GlueDatabaseName"}]
    assert refs == [{"Ref": "GlueDatabaseName"}]


def _event_files() -> list[Path]:
    # s3-put-urlencoded.json shows the URL decoding of keys (a prefix with a space and a colon, which S3 encodes
    # in events); LogPrefix's pattern does not allow those characters, so it cannot match a deployed prefix.
    return sorted(p for p in (ROOT / "events").glob("*.json") if p.name != "s3-put-urlencoded.json")


@pytest.mark.parametrize("path", _event_files(), ids=lambda p: p.name)
def test_events_use_keys_under_the_deployed_notification_prefix(template: dict[str, Any], path: Path) -> None:
    """`sam local invoke -e events/X.json` against a deployed stack reads keys the stack's notification sends."""
    prefix = template["Parameters"]["LogPrefix"]["Default"] + "/AWSLogs/"
    event = json.loads(path.read_text(encoding="utf-8"))
    keys = [record.key for record in parse_event(event).records]  # an SQS batch: the notifications it carries
    assert keys
    for key in keys:
        assert key.startswith(prefix), key


COMPACT_ENV = {
    "LAKE_BUCKET",
    "LAKE_PREFIX",
    "GLUE_DATABASE",
    "GLUE_TABLE",
    "COMPACT_OLDER_THAN_MINUTES",
    "COMPACT_GRACE_MINUTES",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
}


def test_compact_function_runs_on_a_schedule_with_lake_scoped_permissions(template: dict[str, Any]) -> None:
    fn = _resource(template, "CompactFunction", "AWS::Serverless::Function")
    assert (fn["CodeUri"], fn["Handler"], fn["Runtime"], fn["Architectures"]) == (
        "functions/compact/",
        "app.handler",
        "python3.13",
        ["arm64"],
    )
    assert fn["Layers"] == [{"Ref": "AlbLakeLayer"}]
    assert fn["Timeout"] == 900  # Lambda's maximum
    env = fn["Environment"]["Variables"]
    assert set(env) == COMPACT_ENV
    assert env["GLUE_DATABASE"] == {"Ref": "GlueDatabase"}
    assert env["COMPACT_OLDER_THAN_MINUTES"] == {"Ref": "CompactOlderThanMinutes"}
    assert env["COMPACT_GRACE_MINUTES"] == {"Ref": "CompactGraceMinutes"}
    assert env["POWERTOOLS_SERVICE_NAME"] == "alblake-compact"
    params = template["Parameters"]
    assert (params["CompactOlderThanMinutes"]["Default"], params["CompactGraceMinutes"]["Default"]) == (120, 60)
    (schedule,) = fn["Events"].values()
    assert schedule == {
        "Type": "Schedule",
        "Properties": {"Schedule": {"Ref": "CompactionSchedule"}, "Description": "Compact settled hour partitions"},
    }
    assert params["CompactionSchedule"]["Default"] == "rate(1 hour)"
    (policy,) = fn["Policies"]
    statements = {st["Sid"]: st for st in policy["Statement"]}
    prefixes = [f"{schema.TABLE_NAME}/", "compaction/", f"{schema.ROLLUP_TABLE_NAME}/"]
    assert statements["CompactLakeObjects"]["Resource"] == [{"Fn::Sub": f"${{LakeBucket.Arn}}/{p}*"} for p in prefixes]
    listing = statements["ListLakePrefixes"]
    assert listing["Action"] == "s3:ListBucket"
    assert "Condition" not in listing  # a missing partition state must be 404, never 403
    glue = statements["CompactPartitions"]
    assert glue["Action"] == ["glue:GetTable", "glue:BatchGetPartition", "glue:BatchCreatePartition",
                              "glue:BatchUpdatePartition"]
    assert glue["Resource"][-2]["Fn::Sub"].endswith(f":table/${{GlueDatabase}}/{schema.TABLE_NAME}")
    assert glue["Resource"][-1]["Fn::Sub"].endswith(f":table/${{GlueDatabase}}/{schema.ROLLUP_TABLE_NAME}")
    log_group = _resource(template, "CompactLogGroup", "AWS::Logs::LogGroup")
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert fn["LoggingConfig"]["LogGroup"] == {"Ref": "CompactLogGroup"}
    alarms = _resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    assert any(
        a["Properties"].get("MetricName") == "Errors"
        and a["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "CompactFunction"}}]
        for a in alarms
    )


# ---------------------------------------------------------------------------------------------- day-2 operations


def _rule_value(node: Any, params: dict[str, Any]) -> Any:
    """Evaluate a CloudFormation rule function over parameter values (the functions this template's rules use)."""
    if isinstance(node, dict):
        [(name, args)] = node.items()
        if name == "Ref":
            return params[args]
        values = [_rule_value(a, params) for a in args] if isinstance(args, list) else [_rule_value(args, params)]
        if name == "Fn::Not":
            return not values[0]
        if name == "Fn::Or":
            return any(values)
        if name == "Fn::And":
            return all(values)
        if name == "Fn::Equals":
            return str(values[0]) == str(values[1])
        if name == "Fn::Contains":
            return str(values[1]) in [str(v) for v in values[0]]
        raise AssertionError(f"rule function {name} not modelled")
    if isinstance(node, list):
        return [_rule_value(v, params) for v in node]
    return node


def _defaults(template: dict[str, Any]) -> dict[str, Any]:
    """Each parameter's default as CloudFormation passes it to rules (a list type: its items)."""
    found: dict[str, Any] = {}
    for name, parameter in template["Parameters"].items():
        if "Default" in parameter:
            default = str(parameter["Default"])
            listed = "List" in parameter["Type"]
            found[name] = default.split(",") if listed else default
    return found


def _rules_pass(template: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether every rule holds for ``params`` (parameters not given take their defaults)."""
    params = {**_defaults(template), **params}
    for rule in template["Rules"].values():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], params):
            continue
        if not all(_rule_value(a["Assert"], params) for a in rule["Assertions"]):
            return False
    return True


def _bounds(template: dict[str, Any], name: str) -> range:
    param = template["Parameters"][name]
    return range(param["MinValue"], param["MaxValue"] + 1)


def test_web_tier_rules_accept_exactly_min_le_desired_le_max(template: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "EnableDemoWebTier": "true", "EnableQuickSight": "false", "QuickSightPrincipalArn": "",
        "ExistingLogBucketName": "", "ExistingVpcId": "", "ExistingSubnetIds": [""], "AWS::Region": "us-east-1",
    }
    checked = 0
    for low in _bounds(template, "MinSize"):
        for desired in _bounds(template, "DesiredCapacity"):
            for high in _bounds(template, "MaxSize"):
                params = {**base, "MinSize": str(low), "DesiredCapacity": str(desired), "MaxSize": str(high)}
                assert _rules_pass(template, params) == (low <= desired <= high), (low, desired, high)
                checked += 1
    assert checked == 4 * 8 * 7
    defaults = {k: str(template["Parameters"][k]["Default"]) for k in ("MinSize", "DesiredCapacity", "MaxSize")}
    assert _rules_pass(template, {**base, **defaults})
    no_tier = {**base, "EnableDemoWebTier": "false", "MinSize": "4", "DesiredCapacity": "1", "MaxSize": "2"}
    assert _rules_pass(template, no_tier)  # nothing to size without the web tier


# cfn-lint E3006 with --regions ALL_REGIONS: the QuickSight resource types do not exist in these Regions.
QUICKSIGHT_MISSING = {
    "ap-east-1", "ap-east-2", "ap-northeast-3", "ap-south-2", "ap-southeast-4", "ap-southeast-6", "ap-southeast-7",
    "ca-west-1", "cn-northwest-1", "il-central-1", "me-central-1", "mx-central-1", "us-west-1",
}


def _condition(template: dict[str, Any], name: str, params: dict[str, str]) -> bool:
    def value(node: Any) -> Any:
        if isinstance(node, dict):
            [(fn, args)] = node.items()
            if fn == "Condition":
                return _condition(template, args, params)
            if fn == "Ref":
                return params[args]
            if fn == "Fn::Equals":
                return str(value(args[0])) == str(value(args[1]))
            if fn == "Fn::Not":
                return not value(args[0])
            if fn == "Fn::Or":
                return any(value(a) for a in args)
            if fn == "Fn::And":
                return all(value(a) for a in args)
            raise AssertionError(fn)
        return node

    return bool(value(template["Conditions"][name]))


def test_quicksight_is_refused_early_and_left_out_where_it_does_not_exist(template: dict[str, Any]) -> None:
    rule = template["Rules"]["QuickSightRegion"]
    [assertion] = rule["Assertions"]
    assert set(assertion["Assert"]["Fn::Not"][0]["Fn::Contains"][0]) == QUICKSIGHT_MISSING
    quicksight = [k for k, v in template["Resources"].items() if v["Type"].startswith("AWS::QuickSight::")]
    assert quicksight
    for logical_id in [*quicksight, "QuickSightAthenaRole"]:
        assert template["Resources"][logical_id]["Condition"] == "QuickSightEnabled", logical_id
    for region in [*QUICKSIGHT_MISSING, "us-east-1", "eu-west-1"]:
        params = {"EnableQuickSight": "true", "AWS::Region": region}
        supported = region not in QUICKSIGHT_MISSING
        assert _condition(template, "QuickSightEnabled", params) is supported, region
        assert _condition(template, "QuickSightSkippedHere", params) is not supported, region
        assert _rules_pass(template, {
            **params, "QuickSightPrincipalArn": "arn:aws:quicksight:us-east-1:1:user/default/a",
            "EnableDemoWebTier": "false", "ExistingLogBucketName": "", "ExistingVpcId": "",
        }) is supported
    assert not _condition(template, "QuickSightEnabled", {"EnableQuickSight": "false", "AWS::Region": "us-east-1"})
    assert template["Outputs"]["QuickSightNotCreated"]["Condition"] == "QuickSightSkippedHere"


@pytest.mark.parametrize(
    ("prefix", "accepted"),
    [("alb", True), ("logs/prod", True), ("a.b-c_d/e", True), ("AWSLogs", False), ("x/AWSLogs", False),
     ("myAWSLogsx", False), ("/alb", False), ("alb/", False), ("a//b", False)],
)
def test_log_prefix_must_not_contain_awslogs(template: dict[str, Any], prefix: str, accepted: bool) -> None:
    """Elastic Load Balancing refuses an access-log prefix containing "AWSLogs": the parameter refuses it first."""
    pattern = template["Parameters"]["LogPrefix"]["AllowedPattern"]
    assert (re.fullmatch(pattern, prefix) is not None) is accepted
    assert re.fullmatch(pattern, template["Parameters"]["LogPrefix"]["Default"])


def test_load_balancer_and_instances_wait_for_the_internet_route(template: dict[str, Any]) -> None:
    """A reference in a tag orders them after the default route (which DependsOn the gateway attachment); a
    DependsOn cannot name the conditional route."""
    assert template["Resources"]["PublicDefaultRoute"]["DependsOn"] == "InternetGatewayAttachment"
    expected = {"Fn::If": ["CreateVpc", {"Fn::GetAtt": ["PublicDefaultRoute", "CidrBlock"]}, "existing-vpc"]}
    lb_tags = _resource(template, "LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer")["Tags"]
    assert {"Key": "alblake:internet-route", "Value": expected} in lb_tags
    asg_tags = _resource(template, "WebAutoScalingGroup", "AWS::AutoScaling::AutoScalingGroup")["Tags"]
    assert {"Key": "alblake:internet-route", "Value": expected, "PropagateAtLaunch": False} in asg_tags


def test_instances_are_managed_by_systems_manager(template: dict[str, Any]) -> None:
    role = _resource(template, "WebInstanceRole", "AWS::IAM::Role")
    managed = "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
    assert role["ManagedPolicyArns"] == [{"Fn::Sub": managed}]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    profile = _resource(template, "WebInstanceProfile", "AWS::IAM::InstanceProfile")
    assert profile["Roles"] == [{"Ref": "WebInstanceRole"}]
    data = _resource(template, "WebLaunchTemplate", "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["WebInstanceProfile", "Arn"]}}


def test_ingest_role_consumes_only_its_own_queue_and_writes_only_its_own_logs(template: dict[str, Any]) -> None:
    """Its own role: no AWSLambdaSQSQueueExecutionRole (receive/delete on every queue) and no basic execution
    policy (every log group)."""
    role = _resource(template, "IngestFunctionRole", "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    run = {st["Sid"]: st for st in _role_policy(template, "run")}
    assert set(run) == {"WriteOwnLogs", "Tracing", "ConsumeIngestQueue"}
    assert set(run["ConsumeIngestQueue"]["Action"]) == {"sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                         "sqs:GetQueueAttributes"}
    assert run["ConsumeIngestQueue"]["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert run["WriteOwnLogs"]["Resource"] == {"Fn::GetAtt": ["IngestLogGroup", "Arn"]}
    assert set(run["WriteOwnLogs"]["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert set(run["Tracing"]["Action"]) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}  # only these on *
    assert _resource(template, "IngestFunction", "AWS::Serverless::Function")["Tracing"] == "Active"


def test_extra_source_buckets_are_readable_and_listable_only_when_named(template: dict[str, Any]) -> None:
    param = template["Parameters"]["ExtraSourceBuckets"]
    assert (param["Type"], param["Default"]) == ("CommaDelimitedList", "")
    assert template["Conditions"]["HasExtraSourceBuckets"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "ExtraSourceBuckets"}]}, ""]}]
    }
    role = _resource(template, "IngestFunctionRole", "AWS::IAM::Role")
    [ingest] = [p["PolicyDocument"]["Statement"] for p in role["Policies"] if p["PolicyName"] == "ingest"]
    extra = {st["Fn::If"][1]["Sid"]: st["Fn::If"] for st in ingest
             if "Fn::If" in st and st["Fn::If"][0] == "HasExtraSourceBuckets"}
    assert set(extra) == {"ReadExtraSources", "ListExtraSources"}
    read, listing = extra["ReadExtraSources"][1], extra["ListExtraSources"][1]
    assert (read["Action"], listing["Action"]) == ("s3:GetObject", "s3:ListBucket")
    # what the Split/Sub/Join builds for "a,b": one ARN per bucket (objects, then the buckets themselves)
    for statement, suffix in ((read, "/*"), (listing, "")):
        separator, names_param = statement["Resource"]["Fn::Split"][1]["Fn::Sub"][1]["Names"]["Fn::Join"]
        template_text = statement["Resource"]["Fn::Split"][1]["Fn::Sub"][0]
        built = template_text.replace("${Names}", separator.join(["a", "b"])).split(",")
        assert names_param == {"Ref": "ExtraSourceBuckets"}
        assert built == [f"arn:*:s3:::a{suffix}", f"arn:*:s3:::b{suffix}"]


def test_heartbeat_alarm_fires_when_no_row_is_written_for_n_hours(template: dict[str, Any]) -> None:
    alarm = _resource(template, "HeartbeatAlarm", "AWS::CloudWatch::Alarm")
    # the metric exactly as the function publishes it (EMF through Powertools: namespace, name, dimension set;
    # tests/integration/test_alarm_metrics.py compares with a real invocation's output)
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AlbLake", "RowsWritten")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "alblake-ingest"}]
    assert alarm["MetricName"] in METRICS
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 3600, 0)
    assert alarm["ComparisonOperator"] == "LessThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "breaching"  # a function that never runs publishes nothing
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == {"Ref": "HeartbeatHours"}
    hours = template["Parameters"]["HeartbeatHours"]
    assert hours["MinValue"] >= 1
    assert hours["MaxValue"] * alarm["Period"] <= 7 * 24 * 3600  # CloudWatch: at most seven days evaluated
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


# boto3 call in the operator's adapters -> the IAM actions it needs
OPERATOR_CALL_ACTIONS = {
    "describe_stacks": {"cloudformation:DescribeStacks"},
    "get_queue_url": {"sqs:GetQueueUrl"},
    "get_queue_attributes": {"sqs:GetQueueAttributes"},
    "send_message_batch": {"sqs:SendMessage"},
    "list_message_move_tasks": {"sqs:ListMessageMoveTasks"},
    # the move task reads and deletes the dead-letter queue's messages under the caller's permissions
    "start_message_move_task": {"sqs:StartMessageMoveTask", "sqs:ReceiveMessage", "sqs:DeleteMessage"},
    "get_bucket_notification_configuration": {"s3:GetBucketNotification"},
    "list_objects_v2": {"s3:ListBucket"},
    "head_object": {"s3:GetObject"},
    "get_object": {"s3:GetObject"},
    "get_table": {"glue:GetTable"},
    "create_table": {"glue:CreateTable"},
    "update_table": {"glue:UpdateTable"},
    "get_partitions": {"glue:GetPartitions"},
    "batch_create_partition": {"glue:BatchCreatePartition"},
    "batch_update_partition": {"glue:BatchUpdatePartition"},
    "batch_delete_partition": {"glue:BatchDeletePartition"},
    "describe_data_set": {"quicksight:DescribeDataSet"},
    "list_ingestions": {"quicksight:ListIngestions"},
}
OPERATOR_MODULES = ("redrive.py", "doctor.py", "glue_catalog.py", "sqs.py", "stack.py", "s3.py", "s3_listing.py")
# granted without a call of alblake's own: the move task's cancel is the AWS CLI command redrive names
OPERATOR_EXTRA = {"sqs:CancelMessageMoveTask"}
# calls whose bucket the stack cannot know (an S3 Inventory of any bucket): the caller's own permissions
OPERATOR_NOT_GRANTED = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


def _operations() -> set[str]:
    session = botocore.session.get_session()
    names: set[str] = set()
    for service in ("s3", "sqs", "glue", "quicksight", "cloudformation"):
        model = session.get_service_model(service)
        names |= {botocore.xform_name(op) for op in model.operation_names}
    return names


def test_operator_policy_grants_exactly_the_calls_of_the_operator_commands(template: dict[str, Any]) -> None:
    package = ROOT / "src" / "alblake" / "aws"
    text = "\n".join((package / name).read_text(encoding="utf-8") for name in OPERATOR_MODULES)
    operations = _operations()
    calls = {m for m in re.findall(r"\.([a-z_0-9]+)\b", text) if m in operations}  # called, or handed to a wrapper
    calls |= set(re.findall(r'get_paginator\("([a-z_0-9]+)"\)', text))
    lake_writes = {"put_object", "delete_object"}  # S3Store's writes: compaction and repair, not these commands
    assert calls - lake_writes == set(OPERATOR_CALL_ACTIONS), calls
    policy = _resource(template, "OperatorPolicy", "AWS::IAM::ManagedPolicy")["PolicyDocument"]["Statement"]
    statements = [st["Fn::If"][1] if "Fn::If" in st else st for st in policy]
    granted = {a for st in statements for a in _actions(st)}
    needed = set().union(*OPERATOR_CALL_ACTIONS.values())
    assert granted == needed | OPERATOR_EXTRA
    for st in statements:
        assert st["Effect"] == "Allow"
        for resource in _walk(st["Resource"]):
            assert resource != "*", st["Sid"]
    assert template["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": "OperatorPolicy"}
    by_sid = {st["Sid"]: st for st in statements}
    assert by_sid["RedriveDeadLetters"]["Resource"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    assert by_sid["EnqueueObjects"]["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert by_sid["ReadStack"]["Resource"] == {"Ref": "AWS::StackId"}
    assert by_sid["ListExtraSources"]["Action"] == "s3:ListBucket"  # backfill lists the extra buckets too
    assert not OPERATOR_NOT_GRANTED & granted
