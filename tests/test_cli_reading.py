"""The reading commands a user keeps open during an incident: ``alblake sql``, the time and load-balancer scope
(read by partition: a one-hour question reads one hour's files), output formats, ``files``, ``shell`` and the
Python API, over a local lake built from sample logs."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

import alblake
from alblake.analysis import connect, files_read
from alblake.cli import main
from alblake.cli.output import format_csv, json_text, render
from alblake.sample import write_sample_logs
from alblake.scope import Scope, parse_age, parse_moment, scoped_for_catalog, window_end


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 sample objects: 3 load balancers, 4 rounds 40 minutes apart from 2026-11-24T09:00Z (hours 09-11)."""
    root = tmp_path_factory.mktemp("reading")
    write_sample_logs(root / "logs", files=12, lines_per_file=300, malformed_every=0)
    assert main(["ingest", str(root / "logs"), "--lake", str(root / "lake"), "--quiet", "--no-batch"]) == 0
    return root / "lake"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ------------------------------------------------------------------------------------------------------ sql


def test_sql_runs_over_the_same_view_as_the_named_queries(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "query", "overview", "--lake", str(lake), "--csv")
    assert code == 0
    requests = int(csv_rows(out)[0]["requests"])
    code, out, err = run(capsys, "sql", "SELECT count(*) AS n FROM alb_logs", "--lake", str(lake), "--csv")
    assert (code, err) == (0, "")
    assert csv_rows(out) == [{"n": str(requests)}] and requests == 3600


def test_sql_from_a_file_and_from_standard_input(
    lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    query = tmp_path / "by_lb.sql"
    query.write_text("-- per load balancer\nSELECT elb_name, count(*) AS n FROM alb_logs GROUP BY 1 ORDER BY 1;\n")
    code, out, _ = run(capsys, "sql", "-f", str(query), "--lake", str(lake), "--json")
    assert code == 0
    body = json.loads(out)
    assert [row["n"] for row in body] == [1200, 1200, 1200] and len({row["elb_name"] for row in body}) == 3
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT 41 + 1 AS answer"))
    assert run(capsys, "sql", "-f", "-", "--lake", str(lake), "--format", "jsonl")[1] == '{"answer": 42}\n'


def test_bad_sql_is_one_line_and_exit_2(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sql", "SELEC nonsense", "--lake", str(lake))
    assert code == 2 and out == ""
    assert err.startswith("error: Parser Error") and err.count("\n") == 1
    code, _, err = run(capsys, "sql", "SELECT no_such_column FROM alb_logs", "--lake", str(lake))
    assert code == 2 and "no_such_column" in err and "Traceback" not in err
    assert run(capsys, "sql", "--lake", str(lake))[0] == 2


# ---------------------------------------------------------------------------------------------- the scope


def test_a_one_hour_question_reads_one_hours_files(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, every, _ = run(capsys, "files", "--lake", str(lake))
    assert code == 0
    all_files = every.splitlines()
    hour_ten = [f for f in all_files if "/hour=10/" in f]
    assert 0 < len(hour_ten) < len(all_files)
    window = ["--since", "2026-11-24T10:00Z", "--until", "2026-11-24T11:00"]
    code, listed, _ = run(capsys, "files", "--lake", str(lake), *window)
    assert listed.splitlines() == hour_ten
    ten, eleven = datetime(2026, 11, 24, 10, tzinfo=UTC), datetime(2026, 11, 24, 11, tzinfo=UTC)
    con = connect(lake, Scope(since=ten, until=eleven))
    assert files_read(con)["alb_logs"] == hour_ten  # the view reads exactly those files
    expected = con.sql("SELECT count(*) FROM alb_logs").fetchall()[0]
    whole = connect(lake).sql(
        "SELECT count(*) FROM alb_logs WHERE \"time\" >= TIMESTAMPTZ '2026-11-24 10:00:00+00' "
        "AND \"time\" < TIMESTAMPTZ '2026-11-24 11:00:00+00'"
    ).fetchall()[0]
    assert expected == whole and expected[0] > 0
    code, out, _ = run(capsys, "sql", "SELECT min(\"time\") AS a, max(\"time\") AS b FROM alb_logs", "--lake",
                       str(lake), *window, "--json")
    (row,) = json.loads(out)
    assert row["a"] >= "2026-11-24T10:00:00Z" and row["b"] < "2026-11-24T11:00:00Z" and row["a"].endswith("Z")


def test_elb_and_limit(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sql", "SELECT DISTINCT elb_name FROM alb_logs", "--lake", str(lake), "--csv")
    names = sorted(r["elb_name"] for r in csv_rows(out))
    code, out, _ = run(capsys, "query", "requests_by_status", "--lake", str(lake), "--elb", names[0], "--csv")
    by_status = {r["elb_status_code"]: int(r["requests"]) for r in csv_rows(out)}
    assert code == 0 and sum(by_status.values()) == 1200
    files = run(capsys, "files", "--lake", str(lake), "--elb", f"app/{names[0]}/0123456789abcdef")[1].splitlines()
    assert files and all(f"/elb_name={names[0]}/" in f for f in files)
    code, out, _ = run(capsys, "query", "top_clients", "--lake", str(lake), "--limit", "3", "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 3


def test_times_users_give() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_moment("2h", now).at == now - timedelta(hours=2)
    assert parse_moment("30m", now).at == now - timedelta(minutes=30)
    assert parse_moment("1.5d", now).at == now - timedelta(days=1.5)
    assert parse_moment("2026-11-24T08:00", now).at == datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert parse_moment("2026-11-24T08:00:00Z", now).at == datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert parse_moment("2026-11-24T10:00+02:00", now).at == datetime(2026, 11, 24, 8, tzinfo=UTC)
    day = parse_moment("2026-11-24", now)
    assert day.whole_day and day.at == datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_moment("2h", now).relative and parse_moment(" NOW ", now).relative
    assert not parse_moment("2026-11-24T08:00", now).relative and not day.relative
    with pytest.raises(ValueError, match="2h, 30m"):
        parse_moment("yesterday-ish", now)
    assert parse_age(" 1.5 d ") == timedelta(days=1.5) and parse_age("1w") == timedelta(weeks=1)
    with pytest.raises(ValueError, match="like 2h or 7d"):
        parse_age("2026-11-24")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9999999999d", "too long an age"),
        ("999999d", "ago is before the year 1"),
        ("9999-12-31T23:00-05:00", "outside the years 1 to 9999 in UTC"),
        ("0001-01-01T00:00+05:00", "outside the years 1 to 9999 in UTC"),
    ],
)
def test_a_time_out_of_range_is_refused_with_a_message_not_a_traceback(
    lake: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    """Python's dates end at the years 1 and 9999: a time beyond them was an OverflowError, which argparse does not
    catch (a traceback); it is refused like any time that is not one."""
    with pytest.raises(ValueError, match=message):
        parse_moment(text, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    with pytest.raises(SystemExit):
        run(capsys, "files", "--lake", str(lake), "--since", text)
    assert message in capsys.readouterr().err


def test_until_the_last_day_a_time_can_hold_is_no_upper_bound(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--until 9999-12-31 means the end of that day, which Python cannot hold (it was an OverflowError): no end."""
    assert window_end(parse_moment("9999-12-31")) is None
    code, out, _ = run(capsys, "sql", "SELECT count(*) AS n FROM alb_logs", "--lake", str(lake), "--until",
                       "9999-12-31", "--format", "csv")
    assert code == 0 and out.splitlines()[1] == str(12 * 300)


def test_an_empty_window_and_a_bad_time_are_refused(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sql", "SELECT 1", "--lake", str(lake), "--since", "2026-11-24T10:00",
                       "--until", "2026-11-24T09:00")
    assert code == 2 and "is not after --since" in err
    with pytest.raises(SystemExit):
        main(["query", "overview", "--lake", str(lake), "--since", "last tuesday"])


def test_athena_gets_the_scope_as_a_with_over_the_catalog_table() -> None:
    scope = Scope(elb="app/web-prod/abc", since=datetime(2026, 11, 24, 8, tzinfo=UTC),
                  until=datetime(2026, 11, 25, tzinfo=UTC))
    sql = scoped_for_catalog("SELECT count(*) FROM alb_logs", scope, "prod_alblake")
    assert sql == (
        'WITH alb_logs AS (SELECT * FROM "prod_alblake"."alb_logs" WHERE elb_name = \'web-prod\' AND '
        "day >= '2026-11-24' AND \"time\" >= TIMESTAMP '2026-11-24 08:00:00.000000' AND day <= '2026-11-24' AND "
        "\"time\" < TIMESTAMP '2026-11-25 00:00:00.000000')\nSELECT count(*) FROM alb_logs"
    )
    merged = scoped_for_catalog("WITH x AS (SELECT 1) SELECT * FROM x, alb_logs", Scope(elb="a"), "d")
    assert merged.startswith('WITH alb_logs AS (SELECT * FROM "d"."alb_logs" WHERE elb_name = \'a\'),\nx AS')
    assert scoped_for_catalog("SELECT 1", Scope(), "d") == "SELECT 1"


# -------------------------------------------------------------------------------------------------- formats


def test_every_format_says_the_same_rows(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["query", "requests_by_verb", "--lake", str(lake)]
    table = run(capsys, *base)[1]
    csv_out = run(capsys, *base, "--format", "csv")[1]
    json_out = json.loads(run(capsys, *base, "--json")[1])
    jsonl = [json.loads(line) for line in run(capsys, *base, "--format", "jsonl")[1].splitlines()]
    assert json_out == jsonl and len(csv_rows(csv_out)) == len(jsonl) == int(table.rsplit("(", 1)[1].split()[0])
    assert [int(r["requests"]) for r in csv_rows(csv_out)] == [r["requests"] for r in jsonl]


def test_timestamps_are_iso_8601_with_z_everywhere() -> None:
    when = datetime(2026, 11, 24, 8, 0, 1, 250000, tzinfo=UTC)
    table = pa.table({"first": pa.array([when], pa.timestamp("us", tz="UTC"))})
    assert "2026-11-24T08:00:01.250000Z" in render(table, "table")
    assert render(table, "csv") == "first\n2026-11-24T08:00:01.250000Z\n"
    assert render(table, "jsonl") == '{"first": "2026-11-24T08:00:01.250000Z"}\n'


def test_csv_neutralises_formulas_unless_raw() -> None:
    cells = ["=HYPERLINK(\"http://x\")", "+SUM(A1)", "-2+3+cmd|' /C calc'!A0", "@SUM(1)", "\tx", "\rx", "fine"]
    table = pa.table({"url": cells, "n": [-1, 2, 3, 4, 5, 6, 7]})
    safe = list(csv.reader(io.StringIO(format_csv(table))))[1:]
    assert [row[0] for row in safe] == ["'" + c for c in cells[:-1]] + ["fine"]
    assert [row[1] for row in safe] == ["-1", "2", "3", "4", "5", "6", "7"]  # numbers are never touched
    raw = list(csv.reader(io.StringIO(format_csv(table, raw=True))))[1:]
    assert [row[0] for row in raw] == cells


def test_csv_raw_flag_and_help(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sql", "SELECT '=1+1' AS f", "--lake", str(lake), "--csv")[1] == "f\n'=1+1\n"
    assert run(capsys, "sql", "SELECT '=1+1' AS f", "--lake", str(lake), "--csv", "--raw")[1] == "f\n=1+1\n"
    with pytest.raises(SystemExit):
        main(["sql", "--help"])
    assert "formula" in capsys.readouterr().out


def test_json_escapes_what_a_terminal_would_act_on() -> None:
    text = json_text({"url": "/\x1b]0;owned\x07\u202e\u2028x", "ok": "café"})
    assert not any(c in text for c in "\x1b\x07\u202e\u2028")
    assert json.loads(text) == {"url": "/\x1b]0;owned\x07\u202e\u2028x", "ok": "café"} and "café" in text


# ------------------------------------------------------------------------------------ files, shell, the API


def test_files_as_json_and_a_lake_path_with_glob_characters(
    tmp_path: Path, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = json.loads(run(capsys, "files", "--lake", str(lake), "--json")[1])
    assert listed == run(capsys, "files", "--lake", str(lake))[1].splitlines()
    import shutil

    shutil.copytree(lake, tmp_path / "lake[1]")
    shutil.copytree(lake, tmp_path / "lake1")
    write_sample_logs(tmp_path / "more", files=3, lines_per_file=10, malformed_every=0,
                      start=datetime(2026, 11, 25, 9, tzinfo=UTC))
    assert main(["ingest", str(tmp_path / "more"), "--lake", str(tmp_path / "lake1"), "--quiet"]) == 0
    con = connect(tmp_path / "lake[1]")  # DuckDB's read_parquet globs every path it gets: escaped, it must not
    assert con.sql("SELECT count(*) FROM alb_logs").fetchall() == [(3600,)]
    assert all("/lake[1]/" in f for f in files_read(con)["alb_logs"])


def test_shell_reads_sql_from_standard_input(
    lake: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ".format csv\nSELECT count(*) AS n\n  FROM alb_logs;\n.tables\nSELECT nope;\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    code, out, err = run(capsys, "shell", "--lake", str(lake))
    assert out.splitlines()[:3] == ["n", "3600", "alb_logs"]
    assert code == 1 and "nope" in err  # the failed statement is named; a script that failed exits 1


def test_the_python_api(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    con = alblake.connect(lake, since="2026-11-24T10:00Z", until="2026-11-24T11:00Z")
    table = con.sql("SELECT min(\"time\") AS a, count(*) AS n FROM alb_logs").to_arrow_table()
    assert table.column("a")[0].as_py() >= datetime(2026, 11, 24, 10, tzinfo=UTC)
    monkeypatch.setenv("ALBLAKE_LAKE", str(lake))
    assert alblake.connect().sql("SELECT count(*) FROM alb_logs").fetchall() == [(3600,)]


def test_sums_arrive_as_bigint_and_a_sum_beyond_it_is_an_error_line(lake: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    con = connect(lake)
    try:
        from alblake.analysis import execute

        table = execute(con, "SELECT sum(sent_bytes) AS total, sum(received_bytes) AS total_2 FROM alb_logs")
        assert table.schema.types == [pa.int64(), pa.int64()] and table.column("total")[0].as_py() > 0
        same_names = execute(con, "SELECT sum(sent_bytes) AS s, sum(received_bytes) AS s FROM alb_logs")
        assert same_names.schema.types == [pa.int64(), pa.int64()]
    finally:
        con.close()
    code, out, err = run(capsys, "sql", "SELECT sum(x) FROM (VALUES (9223372036854775807), (1)) AS t(x)",
                         "--lake", str(lake))
    assert code == 2 and out == "" and err.startswith("error: Conversion Error") and "Traceback" not in err
