"""--where: an expression over the curated columns, never a statement; what is refused and why, and what is accepted
runs as the same text on DuckDB (Athena's Trino grammar parsed it)."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot

from alblake.rollup.routes import DUCKDB_MACROS
from alblake.schema import ARROW_SCHEMA
from alblake.triage.where import WhereError, parse_where
from tests.analysis_fixtures import make_rows

ACCEPTED = {
    "elb_status_code >= 500": 0,
    "elb_status_code BETWEEN 500 AND 599 AND target_ip IS NOT NULL": 0,
    "target_ip IN ('10.0.0.1', '10.0.0.2')": 0,
    "lower(user_agent) LIKE '%curl%'": 0,
    "request_url LIKE '%/api/%' AND NOT elb_status_code = 200": 0,
    "regexp_like(request_url, 'slow')": 0,
    "starts_with(client_ip, '203.0.113.')": 0,
    "strpos(request_url, '?') > 0 OR length(request_url) > 60": 0,
    "split_part(target_group_arn, '/', 2) = 'my-targets'": 0,
    "coalesce(lambda_error_reason, '-') <> '-'": 0,
    "upper(request_verb) = 'GET' AND abs(target_processing_time) > 0.1": 0,
    "substr(client_ip, 1, 4) = '2001'": 0,
    "\"time\" >= TIMESTAMP '2024-02-28 22:00:00'": 0,
    "CAST(elb_status_code AS VARCHAR) = '404'": 0,
    "target_ip || ':' || CAST(target_port AS VARCHAR) = '10.0.0.1:80'": 0,
    "sent_bytes / 1000 > floor(received_bytes / 100) + ceil(0.5)": 0,
    "day = '2024-02-29' AND elb_name = 'web-prod'": 0,
}

REFUSED = {
    "": "empty",
    "elb_status_code = 500; DROP TABLE alb_logs": "not 2 statements",
    "(SELECT 1) = 1": "not a query",
    "elb IN (SELECT elb FROM alb_logs)": "not a query",
    "EXISTS (SELECT 1)": "not a query",
    "count(*) > 1": "aggregates",
    "sum(sent_bytes) > 10": "aggregates",
    "row_number() OVER () = 1": "window",
    "nope = 1": "unknown column 'nope'",
    "t.elb = 'x'": "without a table name",
    "lower(user_agent) ILIKE '%x%'": "ILIKE",
    "from_base64(user_agent) = 'x'": "not allowed",
    "CAST(elb AS JSON) IS NULL": "CAST to JSON",
    "elb_status_code": "not a predicate",
    "elb_status_code >= 500 OR": "not an expression",
    "* = 1": "not",
}


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    import pyarrow as pa

    connection = duckdb.connect()
    for macro in DUCKDB_MACROS:
        connection.execute(macro)
    rows = pa.Table.from_pylist(make_rows(300), schema=ARROW_SCHEMA)
    rows = rows.append_column("elb_name", pa.array([r.split("/")[1] for r in rows["elb"].to_pylist()]))
    rows = rows.append_column("day", pa.array([f"{t:%Y-%m-%d}" for t in rows["time"].to_pylist()]))
    rows = rows.append_column("hour", pa.array([f"{t:%H}" for t in rows["time"].to_pylist()]))
    connection.execute("SET TimeZone = 'UTC'")
    connection.register("alb_logs", rows)
    return connection


@pytest.mark.parametrize("text", sorted(ACCEPTED))
def test_accepted_predicates_run_as_one_text(text: str, con: duckdb.DuckDBPyConnection) -> None:
    where = parse_where(text)
    assert sqlglot.parse_one(where.sql, read="trino") is not None
    count = con.sql(f"SELECT count(*) FROM alb_logs WHERE {where.sql}").fetchall()[0][0]
    assert 0 <= count <= 300


@pytest.mark.parametrize(("text", "reason"), sorted(REFUSED.items()))
def test_refused_predicates_say_why(text: str, reason: str) -> None:
    with pytest.raises(WhereError, match="--where") as error:
        parse_where(text)
    words = [w for w in reason.split() if w != "not"]
    assert all(w in str(error.value) for w in words), str(error.value)


def test_identifiers_are_quoted_and_rollup_readiness() -> None:
    where = parse_where("elb_status_code >= 500 AND target_ip = '10.0.0.1'")
    assert where.sql == "\"elb_status_code\" >= 500 AND \"target_ip\" = '10.0.0.1'"
    assert where.columns == {"elb_status_code", "target_ip"} and where.rollup_ready
    assert not parse_where("lower(user_agent) LIKE '%bot%'").rollup_ready
    assert not parse_where("\"time\" > TIMESTAMP '2026-01-01 00:00:00'").rollup_ready


def test_a_refused_predicate_is_an_input_error_of_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from alblake.cli import main

    code = main(["triage", "--lake", "/nonexistent", "--since", "30m", "--where", "1 = 1; DROP TABLE alb_logs"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --where") and len(err.splitlines()) == 1
