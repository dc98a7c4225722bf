"""The local CLI end to end: sample -> ingest, including bad files among good ones."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from alblake.cli import main


def test_sample_then_ingest_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--out", str(tmp_path / "logs"), "--files", "4", "--lines", "997"]) == 0
    assert main(["ingest", str(tmp_path / "logs"), "--lake", str(tmp_path / "lake"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "files        4 converted, 0 failed" in out
    assert "lines        3988" in out
    assert "quarantined  4" in out  # one malformed line per 997 by default
    rows = ds.dataset(tmp_path / "lake" / "alb_logs", partitioning="hive").count_rows()
    assert f"rows         {rows}" in out and rows == 3984


def test_bad_files_are_reported_and_good_ones_still_land(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    main(["sample", "--out", str(logs), "--files", "1", "--lines", "10"])
    (logs / "corrupt.log.gz").write_bytes(b"\x1f\x8bnot really gzip")
    (logs / "truncated.log.gz").write_bytes(gzip.compress(b"x" * 10_000)[:-10])
    code = main(["ingest", str(logs), str(tmp_path / "missing.log"), "--lake", str(tmp_path / "lake"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert "files        1 converted, 3 failed" in captured.out
    assert "corrupt.log.gz: not a valid gzip stream" in captured.err
    assert "truncated.log.gz: truncated gzip stream" in captured.err
    assert "missing.log: no such file" in captured.err
    assert "Traceback" not in captured.err


def test_glob_patterns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["sample", "--out", str(tmp_path / "logs"), "--files", "3", "--lines", "5"])
    assert main(["ingest", f"{tmp_path}/logs/**/*api-prod*.log.gz", "--lake", str(tmp_path / "lake"), "--quiet"]) == 0
    assert "files        1 converted" in capsys.readouterr().out


def test_no_files_found_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["ingest", str(tmp_path / "empty"), "--lake", str(tmp_path / "lake")]) == 2
    assert "no .log or .log.gz files" in capsys.readouterr().err


def test_same_alb_object_from_two_directories_replaces_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    main(["sample", "--out", str(tmp_path / "a"), "--files", "1", "--lines", "100"])
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for copy in ("a", "b"):
        assert main(["ingest", str(tmp_path / copy), "--lake", str(tmp_path / "lake"), "--quiet"]) == 0
    assert ds.dataset(tmp_path / "lake" / "alb_logs", partitioning="hive").count_rows() == 100


def test_crlf_log_converts_every_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["sample", "--out", str(tmp_path / "logs"), "--files", "1", "--lines", "300"])
    source = next((tmp_path / "logs").rglob("*.log.gz"))
    crlf = tmp_path / "crlf.log"
    crlf.write_bytes(gzip.decompress(source.read_bytes()).replace(b"\n", b"\r\n"))
    assert main(["ingest", str(crlf), "--lake", str(tmp_path / "lake"), "--quiet"]) == 0
    assert "lines        300" in capsys.readouterr().out
    assert ds.dataset(tmp_path / "lake" / "alb_logs", partitioning="hive").count_rows() == 300


def test_unmatched_glob_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["sample", "--out", str(tmp_path / "logs"), "--files", "1", "--lines", "5"])
    code = main(["ingest", str(tmp_path / "logs"), f"{tmp_path}/none/**/*.log.gz", "--lake", str(tmp_path / "l")])
    assert code == 1
    assert "no file matches this pattern" in capsys.readouterr().err
