"""template.yaml's retention and privacy resources agree with the code: the parameters (off by default), the
lifecycle function's environment and least-privilege policy, the custom resource that publishes the privacy
settings, and the ingest function's access to the lake's policy and key."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from alblake.convert.privacy import CLIENT_IP_MODES, QUARANTINE_MODES, QUERY_MODES
from alblake.lake.derived import default_derived_tables
from alblake.service.lifecycle import PRIVACY_PROPERTIES
from tests.template_loader import load_template

ROOT = Path(__file__).resolve().parent.parent
LIFECYCLE_ENV = {
    "LAKE_BUCKET",
    "LAKE_PREFIX",
    "GLUE_DATABASE",
    "GLUE_TABLE",
    "LAKE_RETENTION_DAYS",
    "QUARANTINE_RETENTION_DAYS",
    "LIFECYCLE_GRACE_MINUTES",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
}
LIFECYCLE_ACTIONS = {
    "LifecycleLakeObjects": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"},
    "ListLakeForLifecycle": {"s3:ListBucket"},
    "LifecyclePartitions": {
        "glue:GetTable",
        "glue:BatchGetPartition",
        "glue:BatchCreatePartition",
        "glue:BatchUpdatePartition",
        "glue:GetPartitions",
        "glue:BatchDeletePartition",
    },
    "ReadLakeKeyParameter": {"ssm:GetParameter"},
    "ReadLakeKeySecret": {"secretsmanager:GetSecretValue"},
}


@pytest.fixture
def template() -> dict[str, Any]:
    return copy.deepcopy(load_template())


def _statements(policy_statements: list[Any]) -> dict[str, dict[str, Any]]:
    """Statements by Sid, the conditional ones (``Fn::If``) taken with their condition true."""
    found = {}
    for statement in policy_statements:
        if "Fn::If" in statement:
            statement = statement["Fn::If"][1]
        found[statement["Sid"]] = statement
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def test_retention_and_privacy_are_off_by_default(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["LakeRetentionDays"]["Default"] == 0 and params["QuarantineRetentionDays"]["Default"] == 0
    assert params["PrivacyClientAddresses"]["Default"] == "keep"
    assert params["PrivacyClientAddresses"]["AllowedValues"] == list(CLIENT_IP_MODES)
    assert params["PrivacyQueryStrings"]["AllowedValues"] == list(QUERY_MODES)
    assert params["PrivacyQuarantine"]["AllowedValues"] == list(QUARANTINE_MODES)
    assert (params["PrivacyQueryStrings"]["Default"], params["PrivacyKeySource"]["Default"]) == ("keep", "none")
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (group,) = [g for g in groups if g["Label"]["default"] == "Retention and privacy"]
    ours = {"LakeRetentionDays", "QuarantineRetentionDays", "LifecycleSchedule"}
    assert {name for name in params if name.startswith("Privacy")} | ours == set(group["Parameters"])
    rules = template["Rules"]
    assert rules["PrivacyHmacNeedsKey"]["RuleCondition"] == {"Fn::Equals": [{"Ref": "PrivacyClientAddresses"}, "hmac"]}
    assert "PrivacyKeyNeedsName" in rules


def test_the_lifecycle_function(template: dict[str, Any]) -> None:
    resource = template["Resources"]["LifecycleFunction"]
    fn = resource["Properties"]
    assert (fn["CodeUri"], fn["Handler"], fn["Runtime"], fn["Architectures"]) == (
        "functions/lifecycle/", "app.handler", "python3.13", ["arm64"]
    )
    assert (ROOT / "functions" / "lifecycle" / "app.py").exists()
    assert fn["Layers"] == [{"Ref": "AlbLakeLayer"}] and fn["Timeout"] == 900
    env = fn["Environment"]["Variables"]
    assert set(env) == LIFECYCLE_ENV
    assert env["LAKE_RETENTION_DAYS"] == {"Ref": "LakeRetentionDays"}
    assert env["QUARANTINE_RETENTION_DAYS"] == {"Ref": "QuarantineRetentionDays"}
    assert env["LIFECYCLE_GRACE_MINUTES"] == {"Ref": "CompactGraceMinutes"}  # one grace period for the lake
    (schedule,) = fn["Events"].values()
    assert schedule["Type"] == "Schedule" and schedule["Properties"]["Schedule"] == {"Ref": "LifecycleSchedule"}
    (policy,) = fn["Policies"]
    statements = _statements(policy["Statement"])
    assert {sid: _actions(st) for sid, st in statements.items()} == LIFECYCLE_ACTIONS
    # the derived tables' files are rewritten and deleted with the data files they come from
    derived = [table.prefix for table in default_derived_tables()]
    prefixes = ["alb_logs/", "compaction/", "manifests/", "quarantine/", "lifecycle/", *derived]
    expected = [{"Fn::Sub": f"${{LakeBucket.Arn}}/{p}*"} for p in prefixes]
    assert statements["LifecycleLakeObjects"]["Resource"] == expected
    assert "Condition" not in statements["ListLakeForLifecycle"]
    assert all("*" not in action for st in statements.values() for action in _actions(st))
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert any(a.get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": "LifecycleFunction"}}] for a in alarms)
    skips = {s["id"] for s in resource["Metadata"]["checkov"]["skip"]}
    assert skips == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173", "CKV_AWS_115"}


def test_the_custom_resource_publishes_what_the_service_reads(template: dict[str, Any]) -> None:
    props = template["Resources"]["LakePolicy"]["Properties"]
    assert props["ServiceToken"] == {"Fn::GetAtt": ["LifecycleFunction", "Arn"]}
    assert set(props) - {"ServiceToken", "ServiceTimeout"} == {*PRIVACY_PROPERTIES, "Key"}
    assert props["Key"] == {"Fn::If": ["HasPrivacyKey", {"Fn::Sub": "${PrivacyKeySource}:${PrivacyKeyName}"}, ""]}
    assert int(props["ServiceTimeout"]) <= 900  # a failed function must not hold the stack for an hour


def test_the_ingest_function_reads_the_policy_and_the_key_and_nothing_more(template: dict[str, Any]) -> None:
    access = template["Resources"]["IngestLakePolicyAccess"]["Properties"]
    assert access["Roles"] == [{"Ref": "IngestFunctionRole"}]  # the role SAM makes for IngestFunction
    statements = _statements(access["PolicyDocument"]["Statement"])
    assert {sid: _actions(st) for sid, st in statements.items()} == {
        "ReadLakePolicy": {"s3:GetObject"},
        "ReadLakeKeyParameter": {"ssm:GetParameter"},
        "ReadLakeKeySecret": {"secretsmanager:GetSecretValue"},
    }
    assert statements["ReadLakePolicy"]["Resource"] == {"Fn::Sub": "${LakeBucket.Arn}/lifecycle/policy.json"}
    secret = statements["ReadLakeKeySecret"]["Resource"]["Fn::Sub"]
    assert secret.endswith(":secret:${PrivacyKeyName}-??????")  # Secrets Manager's six random characters
    conditions = [s["Fn::If"][0] for s in access["PolicyDocument"]["Statement"] if "Fn::If" in s]
    assert conditions == ["PrivacyKeyInSsm", "PrivacyKeyInSecretsManager"]


def test_the_key_calls_in_the_code_have_their_actions() -> None:
    """Each boto3 call of the key adapter is granted where the key is read (the ingest and lifecycle functions)."""
    source = (ROOT / "src" / "alblake" / "aws" / "secrets.py").read_text()
    calls = set(re.findall(r"\bclient\.([a-z_]+)\(", source))
    assert calls == {"get_parameter", "get_secret_value"}
    partitions = (ROOT / "src" / "alblake" / "aws" / "glue_partitions.py").read_text()
    assert set(re.findall(r"_client\.([a-z_]+)\(", partitions)) == {"batch_delete_partition", "get_paginator"}
    assert '"get_partitions"' in partitions
