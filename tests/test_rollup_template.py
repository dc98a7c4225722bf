"""template.yaml's rollup parts: the Glue table is the schema's, the long-window QuickSight data set runs the checked-in
SQL and validates against botocore, and the log-derived alarms watch the metrics the ingest function writes, with
settings that tolerate ALB's delivery delay."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import botocore.session
import duckdb
import pytest
from botocore.validate import validate_parameters

from alblake import schema
from alblake.analysis import sql_dir
from alblake.lake.generational import open_local_lake
from alblake.rollup.files import rollup_dataset, rollup_files
from alblake.service.log_metrics import NAMESPACE, LogMetricsSettings
from tests.template_loader import load_template
from tests.triage_fixtures import incident_lake

__all__ = ["incident_lake"]  # fixture


@pytest.fixture
def template() -> dict[str, Any]:
    return copy.deepcopy(load_template())


def _props(template: dict[str, Any], logical_id: str, rtype: str) -> dict[str, Any]:
    resource = template["Resources"][logical_id]
    assert resource["Type"] == rtype
    props: dict[str, Any] = resource["Properties"]
    return props


def _placeholders(node: Any) -> Any:
    if isinstance(node, dict):
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Fn::GetAtt":
                return "arn:aws:quicksight:us-east-1:123456789012:datasource/x" if value[1] == "Arn" else "x"
            if key == "Ref" and value == "AWS::AccountId":
                return "123456789012"
            if key in ("Ref", "Fn::Sub"):
                return "placeholder"
        return {k: _placeholders(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_placeholders(v) for v in node]
    return node


def _shape(operation: str) -> Any:
    return botocore.session.get_session().get_service_model("quicksight").operation_model(operation).input_shape


def test_rollup_table_is_the_schema_table_input(template: dict[str, Any]) -> None:
    table = _props(template, "RollupTable", "AWS::Glue::Table")["TableInput"]
    location = table["StorageDescriptor"]["Location"]
    assert location == {"Fn::Sub": f"s3://${{LakeBucket}}/{schema.ROLLUP_TABLE_NAME}/"}
    assert table == schema.rollup_glue_table_input(location)
    assert template["Outputs"]["RollupTableName"]["Value"] == schema.ROLLUP_TABLE_NAME


# ----------------------------------------------------------------------------- long-window QuickSight data set

_SQL = sql_dir() / "quicksight" / "long_window.sql"


def _sql_body() -> str:
    return "\n".join(line for line in _SQL.read_text(encoding="utf-8").splitlines() if not line.startswith("--"))


def test_long_window_data_set_runs_the_checked_in_sql(template: dict[str, Any]) -> None:
    props = _props(template, "QuickSightRollupDataSet", "AWS::QuickSight::DataSet")
    (physical,) = props["PhysicalTableMap"].values()
    assert physical["CustomSql"]["SqlQuery"] == {"Fn::Sub": _sql_body()}
    assert props["ImportMode"] == "SPICE" and props["IngestionWaitPolicy"] == {"WaitForSpiceIngestion": False}
    assert template["Resources"]["QuickSightRollupDataSet"]["Condition"] == "QuickSightEnabled"
    params = _placeholders(props)
    params.pop("IngestionWaitPolicy")
    validate_parameters(params, _shape("CreateDataSet"))
    refresh = _props(template, "QuickSightRollupRefresh", "AWS::QuickSight::RefreshSchedule")
    assert refresh["DataSetId"] == props["DataSetId"]
    assert refresh["Schedule"]["RefreshType"] == "FULL_REFRESH"
    api = _placeholders(refresh)
    frequency = api["Schedule"]["ScheduleFrequency"]
    frequency["Timezone"] = frequency.pop("TimeZone")  # CloudFormation spells it TimeZone, the API Timezone
    validate_parameters(api, _shape("CreateRefreshSchedule"))
    role = _props(template, "QuickSightAthenaRole", "AWS::IAM::Role")
    (policy,) = role["Policies"]
    reads = next(s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "LakeRead")["Resource"]
    assert {"Fn::Sub": f"${{LakeBucket.Arn}}/{schema.ROLLUP_TABLE_NAME}/*"} in reads


_QS_TYPES = {"DATETIME": ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE"), "STRING": ("VARCHAR",),
             "INTEGER": ("INTEGER", "BIGINT", "HUGEINT"), "DECIMAL": ("DOUBLE",)}


def test_long_window_columns_are_what_the_sql_returns(template: dict[str, Any], incident_lake: Path) -> None:
    """The SQL on DuckDB over a lake's rollup (the Athena-only window predicate replaced): the data set's columns,
    in order and type, and the requests it holds are all of the rollup's."""
    lake = open_local_lake(incident_lake)
    con = duckdb.connect()
    con.register("rollup_files", rollup_dataset(rollup_files(lake)))
    sql = _sql_body().replace('"AwsDataCatalog"."${GlueDatabase}"."alb_rollup_1m"', "rollup_files")
    sql = re.sub(r"WHERE .*\n", "", sql)
    relation = con.sql(sql)
    columns = list(zip(relation.columns, [str(t) for t in relation.types], strict=True))
    declared = _props(template, "QuickSightRollupDataSet", "AWS::QuickSight::DataSet")
    (physical,) = declared["PhysicalTableMap"].values()
    assert [c for c, _ in columns] == [c["Name"] for c in physical["CustomSql"]["Columns"]]
    for (name, duck_type), column in zip(columns, physical["CustomSql"]["Columns"], strict=True):
        assert duck_type.split("(")[0] in _QS_TYPES[column["Type"]], (name, duck_type)
    rows = relation.fetchall()
    total = con.sql("SELECT sum(requests) FROM rollup_files").fetchall()[0][0]
    assert sum(r[5] for r in rows) == total
    assert len(rows) < total / 10  # hourly rows: far fewer than requests


# --------------------------------------------------------------------------------------- log-derived alarms

LOG_ALARMS = ("RouteErrorShareAlarm", "DesyncAlarm", "ElbGenerated5xxAlarm")


def _watched(props: dict[str, Any]) -> list[dict[str, Any]]:
    if "Metrics" in props:
        return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
    return [{"Namespace": props["Namespace"], "MetricName": props["MetricName"]}]


def test_log_alarms_watch_what_the_function_writes_and_tolerate_delay(template: dict[str, Any]) -> None:
    emitted = {"WorstRoute5xxPercent", "DesyncAmbiguous", "DesyncSevere", "DeprecatedTlsRequests",
               "TopClientPercent", "ElbGenerated5xx"}
    for name in LOG_ALARMS:
        resource = template["Resources"][name]
        assert resource["Condition"] == "LogMetricsEnabled"
        props = resource["Properties"]
        for metric in _watched(props):
            assert metric["Namespace"] == NAMESPACE and metric["MetricName"] in emitted
            assert "Dimensions" not in metric  # the fleet-wide metric (the empty dimension set)
        periods = [m["MetricStat"]["Period"] for m in props.get("Metrics", []) if "MetricStat" in m]
        assert periods == [] or set(periods) == {300}
        assert props.get("Period", 300) == 300 and props["EvaluationPeriods"] == 3
        assert props["DatapointsToAlarm"] <= 2 and props["TreatMissingData"] == "notBreaching"
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    parameters = template["Parameters"]
    assert parameters["EnableLogMetrics"]["Default"] == "false"
    assert template["Conditions"]["LogMetricsEnabled"] == {"Fn::Equals": [{"Ref": "EnableLogMetrics"}, "true"]}
    env = _props(template, "IngestFunction", "AWS::Serverless::Function")["Environment"]["Variables"]
    assert env["LOG_METRICS"] == {"Ref": "EnableLogMetrics"}
    assert LogMetricsSettings.from_env({"LOG_METRICS": "true"}).enabled
    assert not LogMetricsSettings.from_env({"LOG_METRICS": "false"}).enabled  # the parameter's default
