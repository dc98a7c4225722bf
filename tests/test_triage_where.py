"""--where: an expression over the curated columns, never a statement; what is refused and why, and what is accepted
runs as the same text on DuckDB (Athena's Trino grammar parsed it)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest
import sqlglot

from alblake.rollup.routes import DUCKDB_MACROS
from alblake.schema import ARROW_SCHEMA
from alblake.triage.where import WhereError, parse_where
from tests.analysis_fixtures import make_rows

Row = dict[str, Any]


def _has(row: Row, *columns: str) -> bool:
    return all(row[c] is not None for c in columns)


def _url(row: Row) -> str:
    return str(row["request_url"])


# Each accepted predicate with the same condition in Python (SQL's NULL semantics: a NULL operand selects nothing),
# so the count DuckDB returns is checked against an independent computation over the same rows.
ACCEPTED: dict[str, Callable[[Row], bool]] = {
    "elb_status_code >= 500": lambda r: _has(r, "elb_status_code") and r["elb_status_code"] >= 500,
    "elb_status_code BETWEEN 500 AND 599 AND target_ip IS NOT NULL":
        lambda r: _has(r, "elb_status_code", "target_ip") and 500 <= r["elb_status_code"] <= 599,
    "target_ip IN ('10.0.0.1', '10.0.0.2')": lambda r: r["target_ip"] in ("10.0.0.1", "10.0.0.2"),
    "lower(user_agent) LIKE '%curl%'": lambda r: _has(r, "user_agent") and "curl" in r["user_agent"].lower(),
    "request_url LIKE '%/api/%' AND NOT elb_status_code = 200":
        lambda r: _has(r, "request_url", "elb_status_code") and "/api/" in _url(r) and r["elb_status_code"] != 200,
    "regexp_like(request_url, 'slow')": lambda r: _has(r, "request_url") and "slow" in _url(r),
    "starts_with(client_ip, '203.0.113.')": lambda r: _has(r, "client_ip") and r["client_ip"].startswith("203.0.113."),
    "strpos(request_url, '?') > 0 OR length(request_url) > 60":
        lambda r: _has(r, "request_url") and ("?" in _url(r) or len(_url(r)) > 60),
    "split_part(elb, '/', 2) = 'web-prod'":  # (the fixture's rows have no target group)
        lambda r: _has(r, "elb") and [*r["elb"].split("/"), ""][1] == "web-prod",
    "coalesce(lambda_error_reason, '-') <> '-'": lambda r: r["lambda_error_reason"] not in (None, "-"),
    "upper(request_verb) = 'GET' AND abs(target_processing_time) > 0.1":
        lambda r: _has(r, "request_verb", "target_processing_time") and r["request_verb"].upper() == "GET"
        and abs(r["target_processing_time"]) > 0.1,
    "substr(client_ip, 1, 4) = '2001'": lambda r: _has(r, "client_ip") and r["client_ip"][:4] == "2001",
    "\"time\" >= TIMESTAMP '2024-02-28 22:00:00'":
        lambda r: _has(r, "time") and r["time"] >= datetime(2024, 2, 28, 22, tzinfo=UTC),
    "CAST(elb_status_code AS VARCHAR) = '404'": lambda r: r["elb_status_code"] == 404,
    "target_ip || ':' || CAST(target_port AS VARCHAR) = '10.0.0.1:80'":
        lambda r: _has(r, "target_ip", "target_port") and f"{r['target_ip']}:{r['target_port']}" == "10.0.0.1:80",
    "sent_bytes / 1000 > floor(received_bytes / 100) + ceil(0.5)":  # DuckDB's / divides integers exactly
        lambda r: _has(r, "sent_bytes", "received_bytes")
        and r["sent_bytes"] / 1000 > math.floor(r["received_bytes"] / 100) + 1,
    "day = '2024-02-29' AND elb_name = 'web-prod'":
        lambda r: f"{r['time']:%Y-%m-%d}" == "2024-02-29" and r["elb"].split("/")[1] == "web-prod",
}

# Each refused text with the part of its message that says why (the message must contain it verbatim).
REFUSED = {
    "": "--where is empty",
    "elb_status_code = 500; DROP TABLE alb_logs": "one expression, not 2 statements",
    "(SELECT 1) = 1": "a predicate, not a query (SUBQUERY is not allowed)",
    "elb IN (SELECT elb FROM alb_logs)": "a predicate, not a query (SUBQUERY is not allowed)",
    "EXISTS (SELECT 1)": "a predicate, not a query (EXISTS is not allowed)",
    "count(*) > 1": "aggregates and window functions are not allowed (COUNT(*))",
    "sum(sent_bytes) > 10": "aggregates and window functions are not allowed (SUM(sent_bytes))",
    "row_number() OVER () = 1": "aggregates and window functions are not allowed (ROW_NUMBER() OVER ())",
    "nope = 1": "unknown column 'nope' (columns: actions_executed, ",
    "t.elb = 'x'": "write columns without a table name (t.elb)",
    "lower(user_agent) ILIKE '%x%'": "Athena has no ILIKE; write lower(column) LIKE '...'",
    "from_base64(user_agent) = 'x'": "function 'FROM_BASE64(user_agent)' is not allowed (allowed: abs, ceil, ",
    "CAST(elb AS JSON) IS NULL": "CAST to JSON is not allowed (VARCHAR, INTEGER, BIGINT, DOUBLE, TIMESTAMP)",
    "elb_status_code": "not a predicate (it should be true or false for a request)",
    "elb_status_code >= 500 OR": "not an expression (",
    "* = 1": "a predicate, not a query (STAR is not allowed)",
}


ROWS: list[Row] = make_rows(300)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    import pyarrow as pa

    connection = duckdb.connect()
    for macro in DUCKDB_MACROS:
        connection.execute(macro)
    rows = pa.Table.from_pylist(ROWS, schema=ARROW_SCHEMA)
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
    assert count == sum(1 for row in ROWS if ACCEPTED[text](row))


def test_the_accepted_predicates_select_some_rows_and_not_all() -> None:
    """The exact counts above mean something only if the predicates are not all trivially empty or full."""
    counts = [sum(1 for row in ROWS if accept(row)) for accept in ACCEPTED.values()]
    assert all(0 < c < len(ROWS) for c in counts), counts


@pytest.mark.parametrize(("text", "reason"), sorted(REFUSED.items()))
def test_refused_predicates_say_why(text: str, reason: str) -> None:
    with pytest.raises(WhereError, match="--where") as error:
        parse_where(text)
    assert reason in str(error.value)
    assert str(error.value).startswith(f"--where {text!r}: " if text else "--where is empty")


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


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    shown = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                           capture_output=True, text=True, timeout=120, check=True)
    return set(shown.stdout.split())


def test_only_a_where_imports_the_parser() -> None:
    # sqlglot takes about as long to import as the rest of alblake report's own code: every command builds the
    # parser (which registers alblake triage), the report runs triage, and neither needs it without a --where
    without = _modules_after("from alblake.cli import build_parser; build_parser(); import alblake.report")
    assert "alblake.triage.section" in without
    assert "sqlglot" not in without and "alblake.triage.where" not in without
    assert "sqlglot" in _modules_after("from alblake.triage import parse_where; parse_where('elb_status_code >= 500')")
