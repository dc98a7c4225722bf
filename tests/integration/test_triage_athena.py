"""``alblake triage --athena``: the same SQL goes to Athena, and Athena's answer is printed as the local one.

What these tests test: the SQL text sent and the client path (StartQueryExecution, polling, GetQueryResults, typed
conversion, rendering), not Athena's engine. The ``_preset`` results are DuckDB's output of the same SQL, so a
difference between Trino's and DuckDB's semantics would not show here (tests/test_triage.py parses the text with
Trino's grammar; only a deployed stack runs it on Athena).

moto_server runs StartQueryExecution / GetQueryExecution / GetQueryResults but no SQL: the result Athena would give
is preset through moto's query-results API, computed here by DuckDB from the very SQL text, turned into Athena's
shape (a header row, every value as text, types in ColumnInfo). The test then checks that Athena received exactly
the local SQL and that the command prints the local findings.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest

from alblake.cli import main
from alblake.lake.generational import open_local_lake
from alblake.triage import make_window
from alblake.triage.local import local_sql
from alblake.triage.query import build_query
from tests.integration.moto_endpoint import aws_endpoint, moto_server_url
from tests.triage_fixtures import FAILING, incident_lake, window_of

__all__ = ["aws_endpoint", "incident_lake", "moto_server_url"]  # fixtures

_TYPES = {pa.int64(): "bigint", pa.float64(): "double", pa.string(): "varchar"}


def athena_shape(table: pa.Table) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Athena's answer to a SELECT: column info, a header row, then every value as text (absent for NULL)."""
    info = [{"Name": f.name, "Type": _TYPES[f.type]} for f in table.schema]
    header = {"Data": [{"VarCharValue": f.name} for f in table.schema]}
    rows = [{"Data": [{} if v is None else {"VarCharValue": repr(v) if isinstance(v, float) else str(v)}
                      for v in row.values()]} for row in table.to_pylist()]
    return info, [header, *rows]


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def _without_timing(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("read "))


def test_athena_gets_the_local_sql_and_prints_the_local_findings_preset(
    incident_lake: Path, aws_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start, end = window_of(FAILING)
    query = build_query(make_window(start=start, end=end), None)
    with local_sql(open_local_lake(incident_lake)) as run:
        local = run(query.sql)
    info, rows = athena_shape(local)
    _post(f"{aws_endpoint}/moto-api/static/athena/query-results",
          {"results": [{"rows": rows, "column_info": info}], "region": "us-east-1"})
    window_args = ["--from", start.isoformat(), "--to", end.isoformat()]
    assert main(["triage", "--athena", "--workgroup", "primary", "--database", "alblake", *window_args]) == 0
    athena_text = capsys.readouterr().out
    assert main(["triage", "--lake", str(incident_lake), *window_args]) == 0
    local_text = capsys.readouterr().out
    assert "athena" in athena_text and FAILING.target in athena_text
    assert _without_timing(athena_text) == _without_timing(local_text)
    client = boto3.client("athena")
    (execution_id,) = client.list_query_executions()["QueryExecutionIds"]
    sent = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Query"]
    assert sent == query.sql  # one text for both engines


def test_athena_json_names_the_engine_preset(incident_lake: Path, aws_endpoint: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    start, end = window_of(FAILING)
    query = build_query(make_window(start=start, end=end), None, use_rollup=False)
    with local_sql(open_local_lake(incident_lake)) as run:
        info, rows = athena_shape(run(query.sql))
    _post(f"{aws_endpoint}/moto-api/static/athena/query-results",
          {"results": [{"rows": rows, "column_info": info}], "region": "us-east-1"})
    assert main(["triage", "--athena", "--no-rollup", "--workgroup", "primary", "--from", start.isoformat(),
                 "--to", end.isoformat(), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["engine"] == "athena" and body["sources"]["target"] == "curated"
    assert body["findings"][0]["value"] == FAILING.target


def test_a_rollup_query_runs_on_athena_as_locally_preset(incident_lake: Path, aws_endpoint: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``alblake query errors_by_route --athena``: the deployed rollup table answers the named query's SQL."""
    from alblake.analysis import get_query, run_query

    local = run_query("errors_by_route", incident_lake)
    info, rows = athena_shape(local)
    _post(f"{aws_endpoint}/moto-api/static/athena/query-results",
          {"results": [{"rows": rows, "column_info": info}], "region": "us-east-1"})
    assert main(["query", "errors_by_route", "--athena", "--workgroup", "primary"]) == 0
    athena_text = capsys.readouterr().out
    assert main(["query", "errors_by_route", "--lake", str(incident_lake)]) == 0
    assert athena_text == capsys.readouterr().out
    client = boto3.client("athena")
    (execution_id,) = client.list_query_executions()["QueryExecutionIds"]
    assert client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Query"] == get_query(
        "errors_by_route").sql
