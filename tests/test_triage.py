"""alblake triage on a generated day with injected incidents: the failing target and the slowed route come out on
top, from the rollup and from the curated table alike; the SQL is one text for Athena and DuckDB."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlglot
from sqlglot import expressions as exp

from alblake.analysis import files_read
from alblake.cli import main
from alblake.lake.generational import open_local_lake
from alblake.scope import Scope
from alblake.triage import TriageInputError, TriageResult, make_window, parse_duration, parse_time, run_triage
from alblake.triage.local import local_connection, local_sql, newest_time, rollup_gaps
from alblake.triage.query import build_query
from alblake.triage.where import parse_where
from tests.triage_fixtures import FAILING, SLOW, SLOW_ROUTE, incident_lake, window_of

__all__ = ["incident_lake"]  # fixture


def triage(lake: Path, start: datetime, end: datetime, where: str | None = None, **options: object) -> TriageResult:
    window = make_window(start=start, end=end)
    with local_sql(open_local_lake(lake)) as run:
        return run_triage(run, window, parse_where(where) if where else None, engine="duckdb", **options)  # type: ignore[arg-type]


def test_a_failing_target_comes_out_on_top(incident_lake: Path) -> None:
    result = triage(incident_lake, *window_of(FAILING))
    top = result.findings[0]
    assert (top.signal, top.dimension, top.value) == ("errors", "target", FAILING.target)
    assert top.source == "rollup"
    assert top.window_hits == top.window_requests > 30  # every request it got in the window was a 502
    assert top.baseline_hits < top.baseline_requests * 0.01
    assert top.score > 0.8 * top.window_hits
    overall = result.overall
    assert overall["w_hits"] >= top.window_hits and overall["b_hits"] < overall["b_requests"] * 0.01
    # a dimension with one value (the domain) carries the excess only in proportion: never a finding
    assert all(f.dimension != "domain" for f in result.findings)


def test_a_slow_route_comes_out_on_top(incident_lake: Path) -> None:
    result = triage(incident_lake, *window_of(SLOW))
    top = result.findings[0]
    assert (top.signal, top.dimension, top.value) == ("latency", "route", SLOW_ROUTE)
    assert top.window_p95 is not None and top.baseline_p95 is not None
    assert top.window_p95 > 10 * top.baseline_p95
    assert top.window_slow > 0.8 * top.window_latency


def test_a_where_selection_names_the_target(incident_lake: Path) -> None:
    for where in ("elb_status_code >= 500", "elb_status_code = 502 OR lower(user_agent) LIKE 'nobody'"):
        result = triage(incident_lake, *window_of(FAILING), where)
        top = result.findings[0]
        assert (top.signal, top.dimension, top.value) == ("selection", "target", FAILING.target), where
    assert parse_where("elb_status_code >= 500").rollup_ready
    assert not parse_where("lower(user_agent) LIKE 'x'").rollup_ready


def test_rollup_and_curated_table_give_the_same_counts(incident_lake: Path) -> None:
    """The rollup's exactness seen from triage: both readings give the same findings (none without a twin), and
    every count behind them is equal (the latency counts too: on this day no time sits on a sketch bucket edge)."""
    for incident in (FAILING, SLOW):
        rollup = triage(incident_lake, *window_of(incident), top=50)
        curated = triage(incident_lake, *window_of(incident), top=50, use_rollup=False)
        assert rollup.query.from_rollup and not curated.query.from_rollup
        counts = ("window_requests", "window_hits", "baseline_requests", "baseline_hits", "window_latency",
                  "baseline_latency")
        by_key = {(f.signal, f.dimension, f.value): f for f in curated.findings}
        rollup_keys = [(f.signal, f.dimension, f.value) for f in rollup.findings]
        assert len(rollup_keys) >= 5
        assert sorted(rollup_keys) == sorted(by_key), "the same findings from either table, none without a twin"
        for finding, key in zip(rollup.findings, rollup_keys, strict=True):
            assert [getattr(finding, c) for c in counts] == [getattr(by_key[key], c) for c in counts], key
        assert rollup.findings[0].value == curated.findings[0].value
        assert {k: rollup.overall[k] for k in ("w_requests", "w_hits", "b_requests", "b_hits")} == {
            k: curated.overall[k] for k in ("w_requests", "w_hits", "b_requests", "b_hits")}


def test_nothing_stands_out_in_a_quiet_window(incident_lake: Path) -> None:
    result = triage(incident_lake, datetime(2026, 11, 24, 3, 0, tzinfo=UTC), datetime(2026, 11, 24, 3, 20, tzinfo=UTC))
    assert all(f.score < 15 for f in result.findings)


# ------------------------------------------------------------------------------------------------ SQL

TRINO_FUNCTIONS = {
    "coalesce", "nullif", "split_part", "substr", "length", "replace", "strpos", "regexp_like", "lower", "ceil",
    "ln", "power", "sum", "count", "min", "max", "row_number", "cast", "reverse", "starts_with", "array_position",
    "grouping",  # Trino's grouping operation (SELECT, GROUPING SETS): 0 when the column is in the row's set
}
_KEYWORDS = {"and", "or", "not", "in", "as", "from", "when", "then", "else", "over", "by", "exists", "on", "values",
             "unnest", "join", "end", "sets"}


@pytest.mark.parametrize("where", [None, "elb_status_code >= 500", "lower(user_agent) LIKE '%bot%'"])
@pytest.mark.parametrize("use_rollup", [True, False])
def test_the_sql_is_one_text_for_trino_and_duckdb(where: str | None, use_rollup: bool) -> None:
    window = make_window(start=datetime(2026, 11, 24, 8, tzinfo=UTC), end=datetime(2026, 11, 24, 8, 20, tzinfo=UTC))
    query = build_query(window, parse_where(where) if where else None, use_rollup=use_rollup)
    called = {m.lower() for m in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", query.sql)} - _KEYWORDS
    called -= {"u", "urls"}  # aliases with column lists: u(bucket)
    assert called <= TRINO_FUNCTIONS, called - TRINO_FUNCTIONS
    for dialect in ("trino", "duckdb"):
        tree = sqlglot.parse_one(query.sql, read=dialect)
        tables = {t.name for t in tree.find_all(exp.Table) if t.name}
        assert tables <= {"alb_logs", "alb_rollup_1m", "rollup_keyed", "rollup_counts", "rollup_sets", "curated_rows",
                          "curated_sets", "keyed", "route_urls", "route_paths", "route_map", "cells", "seen",
                          "seen_cells", "totals", "dim_totals", "hist", "cumulative", "percentiles", "slow", "scored",
                          "shared", "ranked", "window_client_network", "curated_grouped", "rollup_grouped"}
    trino = sqlglot.parse_one(query.sql, read="trino")
    assert [f.name for f in trino.find_all(exp.Anonymous)] == []
    assert "day >= '2026-11-23' AND day <= '2026-11-24'" in query.sql  # partitions pruned on Athena
    assert ("alb_rollup_1m" in query.sql) == (use_rollup and where != "lower(user_agent) LIKE '%bot%'")


# ------------------------------------------------------------------------------------------- windows


def test_windows_and_durations() -> None:
    now = datetime(2026, 11, 24, 8, 17, 42, tzinfo=UTC)
    window = make_window(since=parse_duration("30m"), now=now)
    assert (window.start, window.end) == (datetime(2026, 11, 24, 7, 47, tzinfo=UTC), datetime(2026, 11, 24, 8, 17,
                                                                                               tzinfo=UTC))
    assert window.baseline_start == window.start - timedelta(hours=24)
    assert parse_duration("2h") == timedelta(hours=2) and parse_duration("1.5d") == timedelta(hours=36)
    assert parse_time("2026-11-24T08:00:00") == datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert parse_time("2026-11-24T09:00:00+01:00") == datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert parse_time("2026-11-24T08:00z") == parse_time("2026-11-24 08:00Z") == datetime(2026, 11, 24, 8, tzinfo=UTC)
    for bad in ("30", "5x", "10s", "", "9999999999d"):  # the last beyond what a time can hold: a line, no traceback
        with pytest.raises(TriageInputError):
            parse_duration(bad)
    for bad_time in ("2h", "now", "9999-12-31T23:00-05:00", "yesterday"):  # relative, out of range, not a time
        with pytest.raises(TriageInputError, match="not a time"):
            parse_time(bad_time)
    with pytest.raises(TriageInputError, match="before it starts"):
        make_window(start=now, end=now - timedelta(hours=1))
    with pytest.raises(TriageInputError, match="not both"):
        make_window(since=timedelta(hours=1), start=now, end=now)


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "thirty"], "a duration is"),
    (["--from", "2026-11-24T08:00"], "--from and --to go together"),
    (["--from", "yesterday", "--to", "today"], "not a time"),
    (["--since", "30m", "--baseline", "1s"], "at least a minute"),
])
def test_cli_refuses_unusable_windows(args: list[str], message: str, incident_lake: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "--lake", str(incident_lake), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------- CLI


def _cli(lake: Path, start: datetime, end: datetime, *extra: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["triage", "--lake", str(lake), "--from", start.isoformat(), "--to", end.isoformat(), *extra])
    out = capsys.readouterr().out
    assert code == 0
    return out


def test_cli_prints_the_table_json_and_csv(incident_lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start, end = window_of(FAILING)
    text = _cli(incident_lake, start, end, capsys=capsys)
    lines = text.splitlines()
    first = next(line for line in lines if line.strip().startswith("1 "))
    assert FAILING.target in first and "errors" in first and "of" in first
    assert any(line.startswith("window ") for line in lines) and "rollup (target, route" in text
    body = json.loads(_cli(incident_lake, start, end, "--json", capsys=capsys))
    assert body["findings"][0]["value"] == FAILING.target and body["sources"]["client_network"] == "curated"
    assert body["window"]["start"].startswith("2026-11-24T08:00")
    rows = list(csv.DictReader(io.StringIO(_cli(incident_lake, start, end, "--csv", "--top", "3", capsys=capsys))))
    assert len(rows) == 3 and rows[0]["value"] == FAILING.target and rows[0]["rank"] == "1"
    sql = _cli(incident_lake, start, end, "--sql", capsys=capsys)
    assert sql.startswith("WITH ") and "alb_rollup_1m" in sql


def test_cli_jsonl_and_a_window_without_requests(incident_lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start, end = window_of(FAILING)
    lines = _cli(incident_lake, start, end, "--format", "jsonl", "--top", "2", capsys=capsys).splitlines()
    assert [json.loads(line)["rank"] for line in lines] == [1, 2]
    assert json.loads(lines[0])["value"] == FAILING.target
    later = end + timedelta(days=30)  # after the lake's last row: says so, not "nothing stands out"
    text = _cli(incident_lake, later, later + timedelta(minutes=30), capsys=capsys)
    assert "the window holds no requests" in text and "alblake status" in text and "nothing stands out" not in text


def test_a_lake_written_before_the_rollup_reads_the_curated_table(incident_lake: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    lake = tmp_path / "lake"
    shutil.copytree(incident_lake, lake)
    removed = [p for p in (lake / "alb_rollup_1m").rglob("*.parquet") if "hour=08" in str(p)]
    for path in removed:  # the lake before its rollup existed, for that hour
        path.unlink()
    assert removed
    window = make_window(start=window_of(FAILING)[0], end=window_of(FAILING)[1])
    with local_connection(open_local_lake(lake)) as con:
        gaps = rollup_gaps(con, window)
    assert gaps and all("/hour=08/" in gap for gap in gaps)
    text = _cli(lake, *window_of(FAILING), capsys=capsys)
    assert "no rollup file" in text and "curated table (target, route" in text
    assert FAILING.target in next(line for line in text.splitlines() if line.strip().startswith("1 "))


def test_the_newest_time_is_read_from_the_newest_hour_and_from_all_when_the_scope_empties_it(
        incident_lake: Path) -> None:
    lake = open_local_lake(incident_lake)
    with local_connection(lake) as con:
        everything = con.sql('SELECT max("time") FROM alb_logs').fetchall()[0][0]
        assert newest_time(con) == everything
    newest_hour = everything.replace(minute=0, second=0, microsecond=0)
    # the newest hour's partition is in the scope, none of its rows is: the answer is the hour before's newest
    scope = Scope(until=newest_hour + timedelta(microseconds=1))
    with local_connection(lake, scope) as con:
        assert any(f"/hour={newest_hour:%H}/" in url for url in files_read(con)["alb_logs"])
        expected = con.sql('SELECT max("time") FROM alb_logs').fetchall()[0][0]
        assert expected < newest_hour and newest_time(con) == expected
    with local_connection(lake, Scope(until=datetime(2000, 1, 1, tzinfo=UTC))) as con:
        assert newest_time(con) is None
