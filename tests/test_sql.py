"""sql/: the DDL agrees with alblake.schema, and every named query returns the right answer on DuckDB.

Expected answers are computed in plain Python from the rows that went into the lake (``oracle``), never by
DuckDB. Portability to Athena (Trino) is checked statically: an allow-list of functions that exist with the
same meaning in both engines, and sqlglot's Trino parser.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot import expressions as exp

from alblake import analysis
from alblake.schema import COLUMNS, PARTITION_KEYS, RAW_LOG_REGEX, TABLE_NAME, TIMESTAMP, glue_type, raw_glue_type
from tests.analysis_fixtures import Row, make_rows, oracle_lake, oracle_rows

__all__ = ["oracle_lake", "oracle_rows"]  # pytest fixtures imported from analysis_fixtures

ROOT = Path(__file__).resolve().parent.parent
QUERY_NAMES = [q.name for q in analysis.list_queries()]

# ---------------------------------------------------------------------------------------------- DDL


def _ddl_columns(ddl: str, section: str) -> list[tuple[str, str]]:
    """(name, type) pairs of the column list after ``section`` ('alb_logs (', 'PARTITIONED BY (')."""
    body = ddl[ddl.index(section) + len(section):]
    body = body[: body.index("\n)")]
    return re.findall(r"^\s*`(\w+)` (\w+)", body, flags=re.MULTILINE)


def test_curated_ddl_matches_schema() -> None:
    ddl = analysis.ddl("alb_logs")
    assert f"CREATE EXTERNAL TABLE IF NOT EXISTS {TABLE_NAME} (" in ddl
    assert _ddl_columns(ddl, f"{TABLE_NAME} (") == [(c.name, glue_type(c.arrow_type)) for c in COLUMNS]
    assert _ddl_columns(ddl, "PARTITIONED BY (") == [(k, "string") for k in PARTITION_KEYS]
    assert "STORED AS PARQUET" in ddl
    assert "LOCATION 's3://${LakeBucket}/alb_logs/'" in ddl


def test_raw_ddl_matches_schema_and_regex() -> None:
    ddl = analysis.ddl("alb_logs_raw")
    # The curated types, except timestamps (ISO 8601 text that Hive cannot parse); '-' is NULL via the regex.
    expected = [(c.name, raw_glue_type(c.arrow_type)) for c in COLUMNS]
    assert expected == [(c.name, "string" if c.arrow_type == TIMESTAMP else glue_type(c.arrow_type)) for c in COLUMNS]
    assert _ddl_columns(ddl, "alb_logs_raw (") == expected
    assert "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'" in ddl
    regexes = re.findall(r"'input.regex' = '(.*)'$", ddl, flags=re.MULTILINE)
    assert regexes == [RAW_LOG_REGEX]
    # Embedded in a Hive string literal verbatim: no quote or backslash that would need escaping.
    assert "'" not in RAW_LOG_REGEX
    assert "\\" not in RAW_LOG_REGEX
    assert re.compile(regexes[0]).groups == len(COLUMNS)


def _raw_match(line: str) -> dict[str, str | None]:
    # RegexSerDe uses Matcher.matches(): the regex must match the whole line.
    match = re.fullmatch(RAW_LOG_REGEX, line)
    assert match is not None, line
    return dict(zip([c.name for c in COLUMNS], match.groups(), strict=True))


def test_raw_regex_parses_documented_examples(documented_lines: list[bytes]) -> None:
    lines = [b.decode() for b in documented_lines if b.strip()]
    assert len(lines) == 7
    parsed = [_raw_match(line) for line in lines]
    assert [p["type"] for p in parsed] == ["http", "https", "h2", "ws", "wss", "http", "http"]
    first = parsed[0]
    assert first["client_ip"] == "192.168.131.39" and first["client_port"] == "2817"
    assert first["target_ip"] == "10.0.0.1" and first["target_port"] == "80"
    assert first["request_verb"] == "GET" and first["request_url"] == "http://www.example.com:80/"
    assert first["request_proto"] == "HTTP/1.1" and first["user_agent"] == "curl/7.46.0"
    assert first["received_bytes"] == "34" and first["sent_bytes"] == "366"
    assert first["target_port_list"] == "10.0.0.1:80" and first["target_status_code_list"] == "200"
    assert first["conn_trace_id"] == "TID_1234abcd5678ef90" and first["request_transform_status"] is None
    second = parsed[1]
    assert second["ssl_protocol"] == "TLSv1.2" and second["domain_name"] == "www.example.com"
    assert second["actions_executed"] == "authenticate,forward"
    assert second["transformed_host"] == "m.example.com"
    assert second["request_transform_status"] == "TransformSuccess"
    assert parsed[2]["redirect_url"] == "https://example.com:80/"
    assert parsed[3]["elb_status_code"] == "101" and parsed[3]["target_port"] == "8010"
    no_target = parsed[6]
    assert no_target["target_ip"] is None and no_target["target_port"] is None  # '-': the group does not match
    assert no_target["elb_status_code"] == "502" and no_target["target_status_code"] is None
    assert no_target["lambda_error_reason"] == "LambdaInvalidResponse"


def test_raw_regex_is_forward_and_backward_compatible(documented_lines: list[bytes]) -> None:
    line = documented_lines[1].decode()
    full = _raw_match(line)
    # AWS appends fields at the end, sometimes announced by a trailing "-": known columns must not move.
    for suffix in (' "-"', " -", ' "new-field" 42 "x y"', " "):
        assert _raw_match(line + suffix) == full
    tokens = re.findall(r'"[^"]*"|[^ ]+', line)
    # Older logs end after field 18 (2016-2017), 20 (2017-2018), 21-24 (mid-2018), 25 (pre-2020), 29 (pre-2024)
    # or 30 (pre Oct 2025); tokens count "request" as one token, so field n is token n.
    names = [c.name for c in COLUMNS]
    cuts = (
        (18, "trace_id"),
        (20, "chosen_cert_arn"),
        (22, "request_creation_time"),
        (25, "lambda_error_reason"),
        (29, "classification_reason"),
        (30, "conn_trace_id"),
    )
    for fields, last_column in cuts:
        old = _raw_match(" ".join(tokens[:fields]))
        cut = names.index(last_column) + 1
        assert {k: old[k] for k in names[:cut]} == {k: full[k] for k in names[:cut]}
        assert all(old[k] is None for k in names[cut:])


# ------------------------------------------------------------------------------------ query files


def test_query_files_have_headers() -> None:
    queries = analysis.list_queries()
    assert len(queries) == 12
    seeds = {"requests_by_status", "clients_per_target", "requests_by_verb", "bytes_per_target"}
    assert seeds <= set(QUERY_NAMES)
    for query in queries:
        assert query.title and query.description and query.chart in analysis.CHART_KINDS
        assert not query.sql.rstrip().endswith(";")


def _host(ip: str) -> str:
    """An address as it stands before ':port': IPv6 in brackets."""
    return f"[{ip}]" if ":" in ip else ip


PORTABLE_FUNCTIONS = {
    # identical name and meaning in Trino (Athena engine v3) and DuckDB
    "count", "sum", "avg", "min", "max", "coalesce", "nullif", "date_trunc", "split_part",
    # Trino built-in; DuckDB macro defined by alblake.analysis.connect (see its docstring)
    "approx_percentile",
}
SQL_KEYWORDS_BEFORE_PAREN = {"cast", "over", "in", "as", "by"}


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_is_portable(name: str) -> None:
    query = analysis.get_query(name)
    body = _strip_comments(query.sql)
    called = {m.lower() for m in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", body)}
    assert called - SQL_KEYWORDS_BEFORE_PAREN <= PORTABLE_FUNCTIONS
    assert '"' not in body.replace('"time"', "")  # only "time" needs quoting; no dialect-specific quoting
    for dialect in ("trino", "duckdb"):
        tree = sqlglot.parse_one(query.sql, read=dialect)
        assert {t.name for t in tree.find_all(exp.Table)} == {TABLE_NAME}
    trino = sqlglot.parse_one(query.sql, read="trino")
    unknown = [f.name for f in trino.find_all(exp.Anonymous)]
    assert unknown == [], f"functions sqlglot does not know in Trino: {unknown}"


# ------------------------------------------------------------------------------------------ oracle


def _url(row: Row) -> str:
    return str(row["request_url"]).split("?", 1)[0]


def _count(rows: Iterable[Row], predicate: Callable[[Row], bool]) -> int:
    return sum(1 for r in rows if predicate(r))


def _quantile_cont(values: list[float], p: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _group(rows: Iterable[Row], key: Callable[[Row], Any]) -> dict[Any, list[Row]]:
    groups: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def oracle(name: str, rows: list[Row]) -> list[tuple[Any, ...]]:
    is_4xx = lambda r: 400 <= r["elb_status_code"] <= 499  # noqa: E731
    is_5xx = lambda r: 500 <= r["elb_status_code"] <= 599  # noqa: E731
    is_err = lambda r: r["elb_status_code"] >= 400  # noqa: E731
    out: list[tuple[Any, ...]]
    if name == "overview":
        n = len(rows)
        return [(
            n, _count(rows, is_4xx), _count(rows, is_5xx), _count(rows, is_err) / n,
            len({r["client_ip"] for r in rows}), sum(r["received_bytes"] for r in rows),
            sum(r["sent_bytes"] for r in rows), min(r["time"] for r in rows), max(r["time"] for r in rows),
        )]
    if name == "requests_by_status":
        return sorted(Counter(r["elb_status_code"] for r in rows).items())
    with_target = [r for r in rows if r["target_ip"] is not None]
    if name == "clients_per_target":
        groups = _group(with_target, lambda r: r["target_ip"])
        out = [(ip, len({r["client_ip"] for r in g}), len(g)) for ip, g in groups.items()]
        return sorted(out, key=lambda t: (-t[1], t[0]))
    if name == "requests_by_verb":
        counts = Counter(r["request_verb"] or "-" for r in rows)
        return sorted(counts.items(), key=lambda t: (-t[1], t[0]))
    if name == "bytes_per_target":
        groups = _group(with_target, lambda r: r["target_ip"])
        out = [(ip, sum(r["received_bytes"] for r in g), sum(r["sent_bytes"] for r in g), len(g))
               for ip, g in groups.items()]
        return sorted(out, key=lambda t: (-(t[1] + t[2]), t[0]))
    if name == "error_rate_by_hour":
        groups = _group(rows, lambda r: _hour(r["time"]))
        return [(h, len(g), _count(g, is_4xx), _count(g, is_5xx), _count(g, is_4xx) / len(g),
                 _count(g, is_5xx) / len(g)) for h, g in sorted(groups.items())]
    if name == "latency_by_target":
        dispatched = [r for r in with_target if r["target_processing_time"] >= 0]
        groups = _group(dispatched, lambda r: f"{_host(r['target_ip'])}:{r['target_port']}")
        out = []
        for target, g in groups.items():
            times = [r["target_processing_time"] for r in g]
            out.append((target, len(g), _quantile_cont(times, 0.5), _quantile_cont(times, 0.95),
                        _quantile_cont(times, 0.99), max(times)))
        return sorted(out, key=lambda t: (-t[3], t[0]))
    if name == "slowest_urls":
        timed = [r for r in rows if r["request_url"] is not None and min(
            r["request_processing_time"], r["target_processing_time"], r["response_processing_time"]) >= 0]
        total = lambda r: (  # noqa: E731
            r["request_processing_time"] + r["target_processing_time"] + r["response_processing_time"])
        out = [(url, len(g), sum(map(total, g)) / len(g), max(map(total, g)))
               for url, g in _group(timed, _url).items()]
        return sorted(out, key=lambda t: (-t[2], t[0]))[:20]
    if name == "failing_urls":
        groups = _group([r for r in rows if r["request_url"] is not None], _url)
        out = [(url, len(g), _count(g, is_err), _count(g, lambda r: r["elb_status_code"] >= 500),
                _count(g, is_err) / len(g)) for url, g in groups.items() if _count(g, is_err) > 0]
        return sorted(out, key=lambda t: (-t[2], t[0]))[:20]
    if name == "top_clients":
        groups = _group(rows, lambda r: r["client_ip"])
        out = [(ip, len(g), _count(g, is_err), sum(r["received_bytes"] for r in g),
                sum(r["sent_bytes"] for r in g)) for ip, g in groups.items()]
        return sorted(out, key=lambda t: (-t[1], t[0]))[:20]
    if name == "tls_protocols":
        counts = Counter(r["ssl_protocol"] or "-" for r in rows)
        return sorted(((p, c, c / len(rows)) for p, c in counts.items()), key=lambda t: (-t[1], t[0]))
    if name == "error_reasons":
        flagged = [r for r in rows
                   if r["lambda_error_reason"] or r["classification"] or r["classification_reason"]]
        groups = _group(flagged, lambda r: (r["lambda_error_reason"] or "-", r["classification"] or "-",
                                            r["classification_reason"] or "-"))
        out = [(*k, len(g), min(r["elb_status_code"] for r in g), max(r["elb_status_code"] for r in g))
               for k, g in groups.items()]
        return sorted(out, key=lambda t: (-t[3], t[0], t[1], t[2]))
    raise AssertionError(f"no oracle for query {name!r}: add one")


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    return bool(actual == expected)


def assert_matches_oracle(name: str, lake: Path, rows: list[Row]) -> int:
    table = analysis.run_query(name, lake)
    query = analysis.get_query(name)
    for column in (query.x, *query.y):
        if column is not None:
            assert column in table.column_names, f"{name}: chart column {column} not in result"
    actual = [tuple(r.values()) for r in table.to_pylist()]
    expected = oracle(name, rows)
    assert len(actual) == len(expected), f"{name}: {len(actual)} rows, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert len(a) == len(e) and all(_same(x, y) for x, y in zip(a, e, strict=True)), (
            f"{name} row {i}: got {a}, expected {e}")
    return len(actual)


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_matches_oracle(name: str, oracle_lake: Path, oracle_rows: list[Row]) -> None:
    assert assert_matches_oracle(name, oracle_lake, oracle_rows) > 0


def test_oracle_lake_exercises_the_edge_cases(oracle_rows: list[Row]) -> None:
    """Guard the fixture: the interesting cases are really in the data the oracle tests run on."""
    assert any(r["target_ip"] is None for r in oracle_rows)
    assert any(r["target_processing_time"] == -1 for r in oracle_rows)
    assert any(r["request_verb"] is None for r in oracle_rows)
    assert any(":" in r["client_ip"] for r in oracle_rows)
    assert any(r["classification"] for r in oracle_rows)
    assert any(r["lambda_error_reason"] for r in oracle_rows)
    assert any("?" in (r["request_url"] or "") for r in oracle_rows)
    assert len({r["time"].date() for r in oracle_rows}) == 2


def test_values_spot_check(oracle_lake: Path) -> None:
    """A few hand-checkable facts, independent of the oracle function."""
    rows = make_rows()
    status = {r["elb_status_code"]: r["requests"]
              for r in analysis.run_query("requests_by_status", oracle_lake).to_pylist()}
    assert sum(status.values()) == len(rows) == 700
    assert status[404] == sum(1 for r in rows if r["elb_status_code"] == 404)
    overview = analysis.run_query("overview", oracle_lake).to_pylist()[0]
    assert overview["requests"] == 700
    assert 0 < overview["error_rate"] < 1
    latency = analysis.run_query("latency_by_target", oracle_lake).to_pylist()
    assert all(r["p50"] <= r["p95"] <= r["p99"] <= r["max_seconds"] for r in latency)


def test_partition_columns_are_strings(oracle_lake: Path) -> None:
    con = analysis.connect(oracle_lake)
    types = dict(con.sql("SELECT column_name, data_type FROM information_schema.columns "
                         "WHERE table_name = 'alb_logs'").fetchall())
    assert {k: types[k] for k in PARTITION_KEYS} == dict.fromkeys(PARTITION_KEYS, "VARCHAR")
    hours = con.sql("SELECT DISTINCT day, hour FROM alb_logs ORDER BY 1, 2").fetchall()
    assert hours[0] == ("2024-02-28", "21") and ("2024-02-29", "01") in hours  # leading zero kept


def test_empty_lake_runs_every_query(tmp_path: Path) -> None:
    for name in QUERY_NAMES:
        table = analysis.run_query(name, tmp_path)
        if name == "overview":
            assert table.to_pylist()[0]["requests"] == 0
        else:
            assert table.num_rows == 0


def test_unknown_query() -> None:
    with pytest.raises(analysis.UnknownQueryError):
        analysis.get_query("nope")


# ------------------------------------------------------------ the real core: sample logs -> ingest


def _read_lake_rows(lake: Path) -> list[Row]:
    """Rows of every Parquet file in the lake, read with pyarrow (not DuckDB)."""
    rows: list[Row] = []
    for path in sorted((lake / "alb_logs").rglob("*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


@pytest.fixture(scope="module")
def core_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from alblake.ingest.runner import ingest_paths
    from alblake.sample import write_sample_logs

    base = tmp_path_factory.mktemp("core")
    logs = write_sample_logs(base / "logs", files=4, lines_per_file=800, seed=11)
    summary = ingest_paths([str(p) for p in logs], base / "lake")
    assert summary.failures == [] and summary.rows > 3000
    return base / "lake"


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_over_core_lake(name: str, core_lake: Path) -> None:
    rows = _read_lake_rows(core_lake)
    assert assert_matches_oracle(name, core_lake, rows) > 0


def test_view_columns_are_schema_plus_partitions(oracle_lake: Path, core_lake: Path) -> None:
    expected = {*(c.name for c in COLUMNS), *PARTITION_KEYS}
    for lake in (oracle_lake, core_lake):
        columns = [r[0] for r in analysis.connect(lake).sql("DESCRIBE alb_logs").fetchall()]
        assert len(columns) == len(expected) and set(columns) == expected
