"""``alblake query NAME --athena``: the same named SQL on Athena, printed like the local run.

moto_server (a real endpoint) runs StartQueryExecution / GetQueryExecution (its state manager drives QUEUED ->
RUNNING -> SUCCEEDED) and GetQueryResults with results set through its moto-api. moto has no FAILED or
CANCELLED outcome and ignores NextToken, so those cases use botocore's Stubber, labelled STUBBED below.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest
from botocore.stub import Stubber

from alblake.analysis import run_query
from alblake.aws.athena import AthenaQueryError, AthenaRunner
from alblake.cli import main
from alblake.cli.output import format_csv, format_table
from alblake.ingest.runner import ingest_paths
from alblake.sample import write_sample_logs
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url

__all__ = ["aws_endpoint", "moto_server_url"]  # fixtures

_ATHENA_TYPES = {pa.int64(): "bigint", pa.int32(): "integer", pa.float64(): "double", pa.string(): "varchar"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(value)


def as_athena_result(table: pa.Table) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The shape Athena answers a SELECT with: a header row, then every value as text (absent for NULL)."""
    info = [
        {"Name": f.name, "Type": "timestamp" if pa.types.is_timestamp(f.type) else _ATHENA_TYPES[f.type]}
        for f in table.schema
    ]
    header = {"Data": [{"VarCharValue": f.name} for f in table.schema]}
    rows = [
        {"Data": [{} if _text(v) is None else {"VarCharValue": _text(v)} for v in row.values()]}
        for row in table.to_pylist()
    ]
    return info, [header, *rows]


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("athena")
    write_sample_logs(root / "logs", files=4, lines_per_file=300)
    ingest_paths([str(root / "logs")], root / "lake", jobs=1)
    return root / "lake"


@pytest.mark.parametrize("name", ["requests_by_status", "error_rate_by_hour", "overview"])
def test_athena_run_prints_what_the_local_run_prints(
    name: str, local_lake: Path, aws_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    local = run_query(name, local_lake)
    info, rows = as_athena_result(local)
    _post(f"{aws_endpoint}/moto-api/static/athena/query-results",
          {"results": [{"rows": rows, "column_info": info}], "region": "us-east-1"})
    _post(f"{aws_endpoint}/moto-api/state-manager/set-transition",
          {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 2}})
    try:
        assert main(["query", name, "--athena", "--workgroup", "primary", "--database", "alblake"]) == 0
        athena_text = capsys.readouterr().out
        assert main(["query", name, "--lake", str(local_lake)]) == 0
        assert athena_text == capsys.readouterr().out
        assert athena_text.count("\n") == local.num_rows + 3
    finally:
        _post(f"{aws_endpoint}/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})
    execution = boto3.client("athena").list_query_executions()["QueryExecutionIds"]
    assert len(execution) == 1


def _stubbed_runner() -> tuple[AthenaRunner, Stubber, list[float]]:
    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    waits: list[float] = []
    return AthenaRunner(client, workgroup="wg", sleep=waits.append), Stubber(client), waits


def _execution(state: str, reason: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    return {"QueryExecution": {"QueryExecutionId": "q1", "Status": status}}


def test_results_are_paginated_and_typed_stubbed() -> None:
    """STUBBED (moto ignores NextToken): two pages, the header only on the first; backoff while RUNNING."""
    runner, stub, waits = _stubbed_runner()
    info = [{"Name": "elb_status_code", "Type": "integer"}, {"Name": "requests", "Type": "bigint"},
            {"Name": "share", "Type": "double"}, {"Name": "first", "Type": "timestamp"}]
    stub.add_response("start_query_execution", {"QueryExecutionId": "q1"},
                      {"QueryString": "SELECT 1", "QueryExecutionContext": {"Database": "alblake"}, "WorkGroup": "wg"})
    for state in ("QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"):
        stub.add_response("get_query_execution", _execution(state), {"QueryExecutionId": "q1"})

    def row(*values: str | None) -> dict[str, Any]:
        return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}

    stub.add_response("get_query_results", {
        "ResultSet": {"Rows": [row("elb_status_code", "requests", "share", "first"),
                               row("200", "90", "0.9", "2026-11-24 09:00:00.000")],
                      "ResultSetMetadata": {"ColumnInfo": info}},
        "NextToken": "page-2"}, {"QueryExecutionId": "q1"})
    stub.add_response("get_query_results", {
        "ResultSet": {"Rows": [row("502", "10", None, None)], "ResultSetMetadata": {"ColumnInfo": info}}},
        {"QueryExecutionId": "q1", "NextToken": "page-2"})
    with stub:
        table = runner.run("SELECT 1")
    stub.assert_no_pending_responses()
    assert table.to_pylist() == [
        {"elb_status_code": 200, "requests": 90, "share": 0.9, "first": datetime(2026, 11, 24, 9, tzinfo=UTC)},
        {"elb_status_code": 502, "requests": 10, "share": None, "first": None},
    ]
    assert waits == [0.2, 0.4, 0.8]
    assert "502" in format_table(table) and "502,10" in format_csv(table)


@pytest.mark.parametrize(("state", "words"), [("FAILED", "failed: TABLE_NOT_FOUND: line 1:15: Table "
                                               "'awsdatacatalog.alblake.alb_logs' does not exist"),
                                              ("CANCELLED", "was cancelled: cancelled by a user")])
def test_failed_and_cancelled_queries_are_clear_errors_stubbed(state: str, words: str) -> None:
    """STUBBED (moto always succeeds): FAILED and CANCELLED end the run with the reason Athena gives."""
    runner, stub, _ = _stubbed_runner()
    reason = words.split(": ", 1)[1]
    stub.add_response("start_query_execution", {"QueryExecutionId": "q1"})
    stub.add_response("get_query_execution", _execution(state, reason))
    with stub, pytest.raises(AthenaQueryError) as caught:
        runner.run("SELECT 1")
    assert str(caught.value) == f"Athena query q1 {words}"


def test_a_query_that_never_ends_is_stopped_stubbed() -> None:
    """STUBBED: a query still RUNNING at the timeout is stopped, and the error says so."""
    runner, stub, _ = _stubbed_runner()
    runner.timeout_seconds = 1.0
    stub.add_response("start_query_execution", {"QueryExecutionId": "q1"})
    for _ in range(4):  # polls after 0, 0.2, 0.6 and 1.4 s of waiting
        stub.add_response("get_query_execution", _execution("RUNNING"))
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q1"})
    with stub, pytest.raises(AthenaQueryError, match="still RUNNING after 1 s: stopped it"):
        runner.run("SELECT 1")
    stub.assert_no_pending_responses()


def test_cli_reports_a_failed_athena_query_without_a_traceback_stubbed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """STUBBED (moto always succeeds): the CLI prints Athena's reason and exits 1."""
    runner, stub, _ = _stubbed_runner()
    stub.add_response("start_query_execution", {"QueryExecutionId": "q1"})
    stub.add_response("get_query_execution", _execution("FAILED", "HIVE_BAD_DATA: malformed \x1b[2J file"))
    monkeypatch.setattr("alblake.aws.athena.athena_runner", lambda **_: runner)
    with stub:
        assert main(["query", "overview", "--athena", "--workgroup", "wg"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "error: Athena query q1 failed: HIVE_BAD_DATA: malformed \\x1b[2J file\n"
    assert captured.out == ""
