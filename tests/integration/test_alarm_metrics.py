"""The alarms on the ingest function's own metrics watch what a real invocation publishes: CloudWatch only
aggregates a metric under the exact namespace, name and dimension set it was published with (EMF), so an alarm
naming another dimension set would see no data (and the heartbeat, treating missing data as breaching, would
fire forever, or a quarantine alarm never)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.integration.conftest import ALB_KEY, AWS_EXAMPLE_LINES, Aws, FakeContext, emf_lines, gz, s3_event
from tests.template_loader import load_template


def published(out: str) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, dimensions) of every metric in the EMF documents of an invocation's output."""
    found = set()
    for doc in emf_lines(out):
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, str(doc[name])) for name in dimension_set)
                for metric in directive["Metrics"]:
                    found.add((directive["Namespace"], metric["Name"], dimensions))
    return found


def watched(alarm: dict[str, Any]) -> list[tuple[str, str, frozenset[tuple[str, str]]]]:
    """The function's own metrics (namespace AlbLake) an alarm watches."""
    props = alarm["Properties"]
    stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
    metrics = [m for m in stats or [props] if m.get("Namespace") == "AlbLake"]
    return [
        (m["Namespace"], m["MetricName"], frozenset((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
        for m in metrics
    ]


def test_heartbeat_and_quarantine_alarms_watch_the_metrics_the_function_publishes(
    app: ModuleType, aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put_log(ALB_KEY, gz([*AWS_EXAMPLE_LINES, "not a log line"]))
    app.handler(s3_event(ALB_KEY), FakeContext())
    metrics = published(capsys.readouterr().out)
    resources = load_template()["Resources"]
    own = [
        metric
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        for metric in watched(alarm)
    ]
    assert {name for _, name, _ in own} == {"RowsWritten", "LinesQuarantined"}
    heartbeat = ("AlbLake", "RowsWritten", frozenset({("service", "alblake-ingest")}))
    assert watched(resources["HeartbeatAlarm"]) == [heartbeat]
    for metric in own:
        assert metric in metrics, (metric, metrics)
