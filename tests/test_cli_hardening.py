"""CLI hardening (the command meets any file a user points it at): one failing file never stops the others; a
non-ALB file is called so; lake paths with glob characters read only their own lake; terminal-safe output;
unreadable lake files are named."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import alblake.convert.core
import alblake.ingest.core
from alblake.cli import main
from alblake.cli.output import format_table
from alblake.display import printable
from alblake.sample import write_sample_logs

DOCUMENTED = (Path(__file__).parent / "data" / "aws_documented_examples.log").read_bytes().splitlines()


def overview_requests(lake: Path, capsys: pytest.CaptureFixture[str]) -> int:
    assert main(["query", "overview", "--lake", str(lake), "--csv"]) == 0
    rows = list(pa_csv.read_csv(io.BytesIO(capsys.readouterr().out.encode())).to_pylist())
    return int(rows[0]["requests"])


def test_any_error_of_one_file_is_reported_and_the_rest_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_sample_logs(tmp_path / "logs", files=3, lines_per_file=20, malformed_every=0)
    real = alblake.convert.core.convert_stream

    def failing_on_the_first(stream, source_id, staging, **kwargs):  # type: ignore[no-untyped-def]
        if source_id.endswith(paths[0].name):
            raise OSError(36, "File name too long")
        return real(stream, source_id, staging, **kwargs)

    monkeypatch.setattr(alblake.ingest.core, "convert_stream", failing_on_the_first)
    code = main(["ingest", str(tmp_path / "logs"), "--lake", str(tmp_path / "lake"), "--quiet", "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "files        2 converted, 1 failed" in captured.out
    assert f"{paths[0].name}: OSError: [Errno 36] File name too long" in captured.err
    assert "Traceback" not in captured.err
    assert overview_requests(tmp_path / "lake", capsys) == 40


def test_a_file_with_no_alb_line_is_called_not_an_alb_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    passwd = tmp_path / "passwd.log"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    good = tmp_path / "good.log"
    good.write_bytes(b"\n".join(DOCUMENTED[:2]) + b"\n")
    code = main(["ingest", str(passwd), str(good), "--lake", str(tmp_path / "lake"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert "files        2 converted, 0 failed" in captured.out
    assert "quarantined  2" in captured.out  # the lines are kept in quarantine, nothing is lost
    assert "passwd.log: does not look like an ALB access log: none of its 2 lines is a valid entry" in captured.err
    assert "good.log" not in captured.err


@pytest.mark.parametrize(("name", "sibling"), [("lake[1]", "lake1"), ("lake*x", "lakeAx"), ("lake?", "lakeZ")])
def test_a_lake_path_with_glob_characters_reads_only_its_own_files(
    name: str, sibling: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = tmp_path / "small.log"
    small.write_bytes(DOCUMENTED[0] + b"\n")
    big = tmp_path / "big.log"
    big.write_bytes(b"\n".join(DOCUMENTED[:3]) + b"\n")
    assert main(["ingest", str(small), "--lake", str(tmp_path / name), "--quiet"]) == 0
    assert main(["ingest", str(big), "--lake", str(tmp_path / sibling), "--quiet"]) == 0
    capsys.readouterr()
    assert overview_requests(tmp_path / name, capsys) == 1
    assert overview_requests(tmp_path / sibling, capsys) == 3


def test_control_characters_never_reach_the_terminal_raw() -> None:
    hostile = "GET http://x/\x1b]0;owned\x07\x1b[2J\nforged  row\u202e\u2028 HTTP/1.1"
    text = format_table(pa.table({"url": [hostile, "plain"], "requests": [7, 3]}))
    assert not any(c in text for c in "\x1b\x07\u202e\u2028")
    lines = text.splitlines()
    assert len(lines) == 5  # header, rule, two rows, count: no forged row
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x0aforged  row\\u202e\\u2028" in lines[2]
    assert printable("café ü 日本") == "café ü 日本"


def test_csv_output_stays_valid_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from alblake.cli.output import format_csv

    table = pa.table({"url": ["a\nb", 'say "hi"', "\x1b[1m"], "requests": [1, 2, 3]})
    parsed = pa_csv.read_csv(io.BytesIO(format_csv(table).encode()))
    assert parsed.to_pylist() == table.to_pylist()


def test_file_names_in_messages_are_terminal_safe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weird = tmp_path / "evil\x1b]0;title\x07.log.gz"
    weird.write_bytes(b"\x1f\x8bnot gzip")
    assert main(["ingest", str(weird), "--lake", str(tmp_path / "lake"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "evil\\x1b]0;title\\x07.log.gz: not a valid gzip stream" in err


def _lake_with_one_object(tmp_path: Path) -> Path:
    log = tmp_path / "one.log"
    log.write_bytes(DOCUMENTED[0] + b"\n")
    lake = tmp_path / "lake"
    assert main(["ingest", str(log), "--lake", str(lake), "--quiet"]) == 0
    return lake


def test_a_corrupt_parquet_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake_with_one_object(tmp_path)
    junk = lake / "alb_logs" / "elb_name=x" / "day=2026-01-01" / "hour=00" / "junk.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"PAR1 this is not parquet")
    capsys.readouterr()
    assert main(["query", "overview", "--lake", str(lake)]) == 1
    err = capsys.readouterr().err
    assert f"error: cannot read the lake: {junk}: not a readable Parquet file" in err
    assert "Traceback" not in err
    assert main(["report", "--lake", str(lake), "--out", str(tmp_path / "r.html")]) == 1
    assert str(junk) in capsys.readouterr().err


def test_a_foreign_parquet_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _lake_with_one_object(tmp_path)
    foreign = lake / "alb_logs" / "elb_name=x" / "day=2026-01-01" / "hour=00" / "other.parquet"
    foreign.parent.mkdir(parents=True)
    pq.write_table(pa.table({"time": ["yesterday"], "elb_status_code": ["ok"]}), foreign)
    capsys.readouterr()
    assert main(["query", "overview", "--lake", str(lake)]) == 1
    err = capsys.readouterr().err
    assert f"{foreign}: column " in err and "Traceback" not in err

