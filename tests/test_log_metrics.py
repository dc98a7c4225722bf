"""Log-derived metrics: EMF documents that follow AWS's specification, timestamped with the log minute, with bounded
dimensions, and written by the ingest pipeline only after an object's commit succeeded."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from alblake.aws.events import S3Record
from alblake.incidents import ClientFlood, Desync, FailingTarget, Incident, write_traffic
from alblake.lake.generational import open_lake
from alblake.parse import parse_block
from alblake.service.ingest import IngestPipeline, LambdaConfig
from alblake.service.log_metrics import (
    ERROR_REASONS,
    LogMetricsLake,
    LogMetricsSettings,
    error_reason_dimension,
    metric_documents,
    with_log_metrics,
)
from tests.fakes import CountingRefresher, MemoryReader, RecordingLogger, RecordingMetrics
from tests.lake_fakes import MemoryCatalog, MemoryStore

UNITS = {"Percent", "Count"}


def assert_emf(document: dict[str, Any]) -> None:
    """The rules of AWS's EMF specification (CloudWatch user guide, "Specification: Embedded metric format")."""
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] % 60_000 == 0  # a minute's start, in ms
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == "AlbLake/AccessLogs"
        assert 1 <= len(directive["Metrics"]) <= 100
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 9
            assert all(isinstance(document[key], str) for key in dimension_set)
        for metric in directive["Metrics"]:
            assert metric["Unit"] in UNITS
            assert isinstance(document[metric["Name"]], int | float)
    json.dumps(document)  # valid JSON


def _rows(logs: list[Path]) -> pa.Table:
    lines = [line for path in logs for line in gzip.decompress(path.read_bytes()).splitlines() if line.strip()]
    return parse_block(b"\n".join(lines) + b"\n").table


END = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SETTINGS = LogMetricsSettings(enabled=True, max_age=timedelta(days=1))


@pytest.fixture(scope="module")
def incident_rows(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    start = END - timedelta(minutes=10)
    incidents: list[Incident] = [FailingTarget("10.0.3.21:9000", start, 10), Desync(start, 10, share=0.02),
                 Desync(start, 10, share=0.01, classification="Severe", reason="BadHeader"),
                 ClientFlood("198.51.100.77", start, 10, share=0.5)]
    logs = write_traffic(tmp_path_factory.mktemp("emf"), end=END, hours=0.5, per_second=10, incidents=incidents)
    return _rows(logs)


def test_documents_follow_the_spec_and_name_what_happened(incident_rows: pa.Table) -> None:
    documents = metric_documents(incident_rows, SETTINGS, END)
    for document in documents:
        assert_emf(document)
    base = [d for d in documents if "WorstRoute5xxPercent" in d]
    minutes = {d["_aws"]["Timestamp"] for d in base}
    assert len(base) == len(minutes) == 30  # one per load balancer (one here) and log minute
    late = [d for d in base if d["_aws"]["Timestamp"] >= int((END - timedelta(minutes=10)).timestamp() * 1000)]
    early = [d for d in base if d not in late]
    # one of the four api targets fails: about a quarter of an api route's requests are 502s
    assert all(d["WorstRoute5xxPercent"] >= 10 and d["WorstRoute"].startswith("/api/v1/") for d in late)
    assert all(d["WorstRoute5xxPercent"] < 10 for d in early)
    assert all(d["DesyncAmbiguous"] > 0 and d["DesyncSevere"] > 0 for d in late)
    assert all(d["TopClient"] == "198.51.100.77" and d["TopClientPercent"] > 40 for d in late)
    assert all(d["DesyncAmbiguous"] == 0 and d["TopClientPercent"] < 40 for d in early)
    assert all(d["DeprecatedTlsRequests"] >= 0 for d in base) and sum(d["DeprecatedTlsRequests"] for d in base) > 0
    assert sum(d["Requests"] for d in base) == incident_rows.num_rows


def test_elb_generated_5xx_by_a_bounded_error_reason() -> None:
    lines = (Path(__file__).parent / "data" / "aws_documented_examples.log").read_bytes().splitlines()
    rows = parse_block(b"\n".join(lines) + b"\n").table
    lambda_line = [i for i, r in enumerate(rows["lambda_error_reason"].to_pylist()) if r]
    documents = metric_documents(rows, SETTINGS, datetime(2018, 12, 1, tzinfo=UTC))
    reasons = [d for d in documents if "ElbGenerated5xx" in d]
    assert [(d["ErrorReason"], d["ElbGenerated5xx"]) for d in reasons] == [("LambdaInvalidResponse", 1)]
    assert len(lambda_line) == 1
    dimension_sets = reasons[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert dimension_sets == [["LoadBalancer", "ErrorReason"], ["ErrorReason"], []]
    assert error_reason_dimension(None) == "None" and error_reason_dimension("SomethingNew") == "Other"
    assert all(error_reason_dimension(r) == r for r in ERROR_REASONS)


def test_the_error_reasons_are_the_codes_aws_documents() -> None:
    """Checked against the documentation's tables, typed separately (tests/data/alb_error_reason_codes.tsv)."""
    documented = [line.split("\t") for line in (Path(__file__).parent / "data" / "alb_error_reason_codes.tsv")
                  .read_text().splitlines() if line and not line.startswith("#")]
    codes = [code for _, code in documented]
    assert len(codes) == len(set(codes))
    assert set(codes) == ERROR_REASONS
    assert {section for section, _ in documented} == {"authenticate", "weighted target groups", "lambda", "waf"}


def test_old_minutes_are_not_published(incident_rows: pa.Table) -> None:
    recent = LogMetricsSettings(enabled=True, max_age=timedelta(minutes=5))
    documents = metric_documents(incident_rows, recent, END)
    assert {d["_aws"]["Timestamp"] for d in documents} <= {
        int((END - timedelta(minutes=m)).timestamp() * 1000) for m in range(1, 6)}
    assert metric_documents(incident_rows, recent, END + timedelta(days=1)) == []


def test_settings_from_the_environment() -> None:
    assert not LogMetricsSettings.from_env({}).enabled
    on = LogMetricsSettings.from_env({"LOG_METRICS": "true", "LOG_METRICS_MAX_AGE_MINUTES": "60"})
    assert on.enabled and on.max_age == timedelta(minutes=60)
    lake = open_lake(MemoryStore())
    assert with_log_metrics(lake, {"LOG_METRICS": "false"}) is lake
    assert isinstance(with_log_metrics(lake, {"LOG_METRICS": "true"}), LogMetricsLake)


def _pipeline(lake: LogMetricsLake, reader: MemoryReader) -> IngestPipeline:
    return IngestPipeline(config=LambdaConfig(lake_bucket="lake", glue_database="db"), reader=reader, lake=lake,
                          refresher=CountingRefresher(), logger=RecordingLogger(), metrics=RecordingMetrics())


def test_the_pipeline_writes_documents_after_the_commit(tmp_path: Path) -> None:
    logs = write_traffic(tmp_path, end=END, hours=0.1, per_second=5, incidents=[FailingTarget("10.0.3.21:9000",
                                                                                             END - timedelta(hours=1))])
    reader = MemoryReader()
    key = str(logs[0].relative_to(tmp_path))
    reader.objects[("logs", key)] = logs[0].read_bytes()
    emitted: list[str] = []
    store = MemoryStore()
    lake = LogMetricsLake(open_lake(store, MemoryCatalog()), SETTINGS, emit=emitted.append, clock=lambda: END)
    outcome = _pipeline(lake, reader).process(S3Record("logs", key))
    assert outcome.rows > 0
    documents = [json.loads(line) for line in emitted]
    assert documents and sum(d.get("Requests", 0) for d in documents) == outcome.rows
    for document in documents:
        assert_emf(document)

    class Failing(MemoryStore):
        def put_file(self, key: str, local_path: Path) -> None:
            raise OSError("SlowDown")

    silent: list[str] = []
    failing = LogMetricsLake(open_lake(Failing(), MemoryCatalog()), SETTINGS, emit=silent.append, clock=lambda: END)
    assert _pipeline(failing, reader).process(S3Record("logs", key)).status.value == "failed"
    assert silent == []  # nothing is published for a commit that failed (the retry publishes it)
