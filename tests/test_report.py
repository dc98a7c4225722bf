"""The HTML report and the analysis CLI; browser tests open the report in headless Chromium.

Browser tests are marked ``browser``. They need Debian's ``chromium``; without it they skip locally but fail
when ``CI`` is set, so CI cannot pass without really rendering the report.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from alblake import analysis
from alblake import report as report_module
from alblake.cli import main
from alblake.cli.output import format_table
from alblake.report import MAX_BARS, PALETTE, STATUS_COLOURS, render_report
from alblake.scope import EVERYTHING
from tests.analysis_fixtures import Row, make_rows, oracle_lake, oracle_rows, write_lake

__all__ = ["oracle_lake", "oracle_rows"]  # pytest fixtures imported from analysis_fixtures

CHART_QUERIES = [q for q in analysis.list_queries() if q.chart in {"bar", "grouped_bar", "line"}]
TABLE_QUERIES = [q for q in analysis.list_queries() if q.chart == "table"]


def expected_marks(lake: Path) -> dict[str, int]:
    """Marks each chart must draw: one bar per (row, series), one point per (row, series), one row per row."""
    marks = {}
    for query in CHART_QUERIES:
        rows = analysis.run_query(query.name, lake).num_rows
        shown = rows if query.chart == "line" else min(rows, MAX_BARS)
        marks[query.name] = shown * len(query.y)
    for query in TABLE_QUERIES:
        marks[query.name] = analysis.run_query(query.name, lake).num_rows
    return marks


@pytest.fixture(scope="module")
def report(oracle_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_report(oracle_lake, tmp_path_factory.mktemp("report") / "report.html")


# ------------------------------------------------------------------------------------ static checks


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # nothing fetched at runtime: no external scripts, styles, images, fonts or imports
    assert not re.search(r"<(script|img|iframe|link)\b[^>]*\b(src|href)=", text)
    assert "@import" not in text and "url(" not in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert 20_000 < len(text.encode()) < 2_000_000


def test_report_has_every_chart_with_all_its_marks(report: Path, oracle_lake: Path) -> None:
    text = report.read_text(encoding="utf-8")
    for name, count in expected_marks(oracle_lake).items():
        section = re.search(rf'<section class="card[^"]*" id="q-{name}".*?</section>', text, flags=re.DOTALL)
        assert section is not None, name
        assert section.group(0).count("data-mark=") == count, name
        assert count > 0, name


def test_report_kpis_match_the_rows(report: Path, oracle_rows: list[Row]) -> None:
    text = report.read_text(encoding="utf-8")
    kpis = dict(re.findall(r'data-kpi="(\w+)"><div class="kpi-value">([^<]*)<', text))
    errors = sum(1 for r in oracle_rows if r["elb_status_code"] >= 400)
    assert kpis["requests"] == f"{len(oracle_rows):,}"
    assert kpis["error_rate"] == f"{errors / len(oracle_rows) * 100:.2f}%"
    assert kpis["distinct_clients"] == str(len({r["client_ip"] for r in oracle_rows}))
    assert kpis["errors_5xx"] == str(sum(1 for r in oracle_rows if r["elb_status_code"] >= 500))


def test_log_text_is_escaped(tmp_path: Path) -> None:
    rows = make_rows(n=40, seed=3)
    evil = '<script>alert("x")</script>'
    for row in rows[:10]:
        row["request_url"] = f"https://example.com:443/{evil}?a=1"
        row["client_ip"] = "<img src=x onerror=alert(1)>"
        row["elb_status_code"] = 500
    out = render_report(write_lake(rows, tmp_path / "lake"), tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    assert evil not in text and "<img src=x" not in text
    assert html.escape(evil) in text


def test_empty_lake_report(tmp_path: Path) -> None:
    out = render_report(tmp_path / "no-lake", tmp_path / "empty.html")
    text = out.read_text(encoding="utf-8")
    assert 'data-kpi="requests"><div class="kpi-value">0<' in text
    assert "no data" in text


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_query_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [q.name for q in analysis.named_queries()]


def test_cli_query_prints_aligned_table(oracle_lake: Path, oracle_rows: list[Row],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "requests_by_status", "--lake", str(oracle_lake)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["elb_status_code", "requests"]
    assert set(lines[1]) == {"-", " "}
    body = {int(code): int(n.replace(",", "")) for code, n in (line.split() for line in lines[2:-1])}
    assert body[404] == sum(1 for r in oracle_rows if r["elb_status_code"] == 404)
    assert lines[-1] == f"({len(body)} rows)"
    assert len({len(line) for line in lines[2:-1]}) == 1  # right-aligned numbers: equal widths


def test_cli_query_csv_and_sql(oracle_lake: Path, oracle_rows: list[Row],
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "overview", "--lake", str(oracle_lake), "--csv"]) == 0
    header, values = capsys.readouterr().out.splitlines()
    assert dict(zip(header.split(","), values.split(","), strict=True))["requests"] == str(len(oracle_rows))
    assert main(["query", "overview", "--sql"]) == 0
    assert capsys.readouterr().out.strip() == analysis.get_query("overview").sql


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "nope", "--lake", str(tmp_path)]) == 2
    assert "unknown query 'nope'" in capsys.readouterr().err
    assert main(["query", "overview"]) == 2
    assert main(["report", "--lake", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 2


def test_cli_report(oracle_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "report.html"
    assert main(["report", "--lake", str(oracle_lake), "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out


def test_format_table() -> None:
    import pyarrow as pa

    table = pa.table({"name": ["a", "bbb"], "n": [5, 12345], "rate": [0.5, None]})
    assert format_table(table).splitlines() == [
        "name       n    rate",
        "----  ------  ------",
        "a          5  50.00%",
        "bbb   12,345       —",
        "(2 rows)",
    ]


# ------------------------------------------------------------------------------------------ browser


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed, but CI must run the browser tests (apt-get install chromium)")
    pytest.skip("chromium not installed (apt-get install chromium)")


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.browser
def test_report_renders_in_chromium(report: Path, oracle_lake: Path, tmp_path: Path) -> None:
    dom = _run_chromium(tmp_path, "--window-size=1400,1000", "--dump-dom", report.as_uri()).stdout
    match = re.search(r'<pre id="render-check">(.*?)</pre>', dom, flags=re.DOTALL)
    assert match is not None and match.group(1), "the render-check script did not run"
    rendered: dict[str, dict[str, Any]] = {c["chart"]: c for c in json.loads(html.unescape(match.group(1)))}
    expected = expected_marks(oracle_lake)
    assert set(rendered) == set(expected)
    for name, count in expected.items():
        chart = rendered[name]
        assert chart["marks"] == count, name
        assert chart["width"] > 200 and chart["height"] > 30, chart
        assert chart["drawn"] > 0, chart  # the SVG's content has a real bounding box
    assert f'data-rendered="{len(expected)}"' in dom


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes): width, height, rows of pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        filt, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if filt == 1:
                line[i] = (line[i] + a) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + b) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa_, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa_ <= pb and pa_ <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line if bpp == 3 else b"".join(line[i:i + 3] for i in range(0, stride, 4))))
        prev = line
    return width, height, rows


def _rgb(colour: str) -> bytes:
    return bytes.fromhex(colour.lstrip("#"))


@pytest.mark.browser
def test_report_screenshot_shows_the_charts(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _run_chromium(tmp_path, "--window-size=1200,2000", f"--screenshot={shot}", report.as_uri())
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 2000)
    pixels = [row[i:i + 3] for row in rows[::4] for i in range(0, len(row), 12)]  # 1 in 16 pixels
    counts: dict[bytes, int] = {}
    for px in pixels:
        counts[px] = counts.get(px, 0) + 1
    background = max(counts, key=lambda k: counts[k])
    assert counts[background] / len(pixels) < 0.9, "screenshot is (almost) blank"
    assert len(counts) > 50
    # Bars are solid fills in known colours: the charts are really painted, not just present in the DOM.
    for colour in (PALETTE[0], STATUS_COLOURS[2], STATUS_COLOURS[4], STATUS_COLOURS[5]):
        assert counts.get(_rgb(colour), 0) > 0, f"no {colour} pixels: charts not drawn"


# ------------------------------------------------------------------------------------- two at a time


def _without_timing(section: str) -> str:
    return re.sub(r"duckdb, [0-9.]+ s", "duckdb", section)


def _same(value: Any, other: Any) -> bool:
    """Equal, floats to 12 digits: a sum of doubles depends on the order DuckDB's threads add them up in."""
    if isinstance(value, float) and isinstance(other, float):
        return math.isclose(value, other, rel_tol=1e-12)
    return bool(value == other)


def test_the_queries_two_at_a_time_answer_as_one_at_a_time(oracle_lake: Path) -> None:
    queries = analysis.list_queries()
    con = analysis.connect(oracle_lake)
    try:
        together, sections = report_module.run_queries(con, oracle_lake, EVERYTHING, queries)
    finally:
        con.close()
    con = analysis.connect(oracle_lake)
    try:
        alone, alone_sections = report_module.run_queries(con, oracle_lake, EVERYTHING, queries, lanes=1)
    finally:
        con.close()
    assert list(together) == [q.name for q in queries]
    for name, table in alone.items():
        assert together[name].schema == table.schema, name
        rows, expected = together[name].to_pylist(), table.to_pylist()
        assert len(rows) == len(expected) > 0, name
        assert all(_same(row[c], want[c]) for row, want in zip(rows, expected, strict=True) for c in want), name
    assert [_without_timing(s) for s in sections] == [_without_timing(s) for s in alone_sections]
    assert 'id="q-triage"' in sections[0]


def test_a_cursor_has_the_views_macros_and_time_zone_of_its_connection(oracle_lake: Path) -> None:
    con = analysis.connect(oracle_lake)
    other = analysis.cursor(con)
    try:
        sql = ('SELECT count(*), approx_percentile(target_processing_time, 0.5), min("time"), '
               "(SELECT count(*) FROM alb_rollup_1m), current_setting('TimeZone') FROM alb_logs")
        assert other.sql(sql).fetchall() == con.sql(sql).fetchall()
        assert other.sql(sql).fetchall()[0][0] > 0
        assert analysis.files_read(other) == analysis.files_read(con)
        # the footers read once serve every later query of both (the report's 13 queries read the same files)
        for connection in (con, other):
            assert connection.sql("SELECT current_setting('parquet_metadata_cache')").fetchall() == [(True,)]
    finally:
        other.close()
        con.close()


def test_lanes_start_the_long_queries_first_and_the_page_keeps_its_order() -> None:
    queries = analysis.list_queries()
    ordered = [q.name for q in report_module.longest_first(queries)]
    long = {"clients_per_target", "latency_by_target", "overview", "top_clients"}  # clients, exact percentiles
    assert set(ordered[: len(long)]) == long and sorted(ordered) == sorted(q.name for q in queries)
    rest = [q.name for q in queries if q.name not in long]
    assert ordered[len(long):] == rest  # the others as listed
