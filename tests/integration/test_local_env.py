"""scripts/local_env.py (`make local-env STACK=...`) against a CloudFormation stack in moto.

moto cannot run the SAM transform, so the stack here is a plain template with the outputs and parameters that
template.yaml declares (names taken from template.yaml itself); what the script writes must be exactly the
environment template.yaml gives each function.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.integration.conftest import REGION
from tests.template_loader import load_template

ROOT = Path(__file__).resolve().parents[2]
STACK = "alblake-test"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("local_env", ROOT / "scripts" / "local_env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


local_env = _load_script()


def _stack_template(with_compaction: bool = True) -> dict[str, Any]:
    """A deployable stand-in: the real template's parameters (defaults) and the outputs the script reads."""
    real = load_template()
    used = {*local_env.INGEST_FROM_PARAMETERS.values(), *local_env.COMPACT_FROM_PARAMETERS.values()}
    parameters = {name: {"Type": "String", "Default": str(real["Parameters"][name]["Default"])} for name in used}
    outputs = {
        "LakeBucketName": {"Value": {"Ref": "LakeBucket"}},
        "GlueDatabaseName": {"Value": "alblake_test_alblake"},
        "CuratedTableName": {"Value": "alb_logs"},
        "QuickSightDataSetId": {"Value": f"{STACK}-alb-logs"},
    }
    if with_compaction:
        outputs["CompactFunctionName"] = {"Value": f"{STACK}-compact"}
    assert set(outputs) <= set(real["Outputs"])  # the names exist in template.yaml
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": parameters,
        "Resources": {"LakeBucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": outputs,
    }


@pytest.fixture
def cloudformation(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("cloudformation", region_name=REGION)
        yield client


def _deploy(client: Any, template: dict[str, Any], **overrides: str) -> str:
    client.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in overrides.items()],
    )
    bucket = next(
        o["OutputValue"]
        for o in client.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        if o["OutputKey"] == "LakeBucketName"
    )
    return str(bucket)


def _function_env(logical_id: str) -> set[str]:
    return set(load_template()["Resources"][logical_id]["Properties"]["Environment"]["Variables"])


def test_writes_the_env_vars_template_yaml_gives_each_function(cloudformation: Any, tmp_path: Path) -> None:
    bucket = _deploy(cloudformation, _stack_template(), QuickSightMinRefreshMinutes="90")
    out = tmp_path / "env.json"
    assert local_env.main([STACK, "--out", str(out)], cloudformation=cloudformation) == 0
    written = json.loads(out.read_text())
    assert set(written) == {"IngestFunction", "CompactFunction"}
    assert set(written["IngestFunction"]) == _function_env("IngestFunction")
    assert set(written["CompactFunction"]) == _function_env("CompactFunction")
    assert written["IngestFunction"] == {
        "LAKE_BUCKET": bucket,
        "LAKE_PREFIX": "",
        "GLUE_DATABASE": "alblake_test_alblake",
        "GLUE_TABLE": "alb_logs",
        "QUICKSIGHT_DATASET_ID": f"{STACK}-alb-logs",
        "QUICKSIGHT_MIN_REFRESH_MINUTES": "90",
        "LOG_METRICS": "false",
        "LOG_METRICS_MAX_AGE_MINUTES": "180",
        "POWERTOOLS_SERVICE_NAME": "alblake-ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "AlbLake",
    }
    compact = written["CompactFunction"]
    assert (compact["LAKE_BUCKET"], compact["COMPACT_OLDER_THAN_MINUTES"], compact["COMPACT_GRACE_MINUTES"]) == (
        bucket,
        "120",
        "60",
    )
    assert compact["POWERTOOLS_SERVICE_NAME"] == "alblake-compact"


def test_fixed_values_match_the_template(cloudformation: Any) -> None:
    for logical_id, fixed in (("IngestFunction", local_env.INGEST_FIXED), ("CompactFunction", local_env.COMPACT_FIXED)):
        variables = load_template()["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
        assert {k: variables[k] for k in fixed} == fixed


def test_stack_without_compaction_gets_only_the_ingest_function(
    cloudformation: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy(cloudformation, _stack_template(with_compaction=False))
    assert local_env.main([STACK], cloudformation=cloudformation) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"IngestFunction"}


def test_missing_stack_or_output_is_a_clear_error(cloudformation: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert local_env.main(["no-such-stack"], cloudformation=cloudformation) == 1
    assert "local-env: stack 'no-such-stack'" in capsys.readouterr().err
    template = _stack_template()
    del template["Outputs"]["GlueDatabaseName"]
    _deploy(cloudformation, template)
    assert local_env.main([STACK], cloudformation=cloudformation) == 1
    assert "has no output GlueDatabaseName" in capsys.readouterr().err
