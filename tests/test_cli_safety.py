"""What a careless or hostile input meets: replay reads only under the roots the user names (a crafted quarantine
record cannot make it read a file elsewhere), text from the lake is escaped, status fits 120 columns, and every
path a command cannot use is one clear line (report/sample outputs, missing inputs, dangling links, names that are
not UTF-8, a lake that is not there)."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alblake.cli import main
from alblake.lake.status import BalancerStatus, LakeStatus, format_status
from alblake.sample import write_sample_logs
from tests.log_objects import DOCUMENTED, write_objects


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------------------------------- replay


def crafted_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, Path]:
    """A lake whose quarantine also names a 'credentials' file in a temporary home (absolute, and by '..')."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    secret = home / ".aws" / "credentials.log"
    secret.write_text(DOCUMENTED + "\n[default]\naws_secret_access_key = SECRET\n")
    logs = tmp_path / "logs"
    write_objects(logs, range(1, 3), (21,), 5)
    (logs / "bad.log").write_text(DOCUMENTED + "\nnot a log line\n")
    lake = tmp_path / "lake"
    assert run(capsys, "ingest", str(logs), "--lake", str(lake), "--quiet")[0] == 0
    (record,) = [json.loads(line) for q in (lake / "quarantine").glob("*.jsonl")
                 for line in q.read_text().splitlines() if '"source"' in line and "line" in line][:1]
    for name, source in (("a.x.jsonl", str(secret)), ("b.x.jsonl", "AWSLogs/../../home/.aws/credentials.log")):
        (lake / "quarantine" / name).write_text(json.dumps({**record, "source": source}) + "\n")
    return lake, logs, secret


def test_replay_never_reads_a_file_a_quarantine_record_points_outside_the_roots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake, logs, secret = crafted_lake(tmp_path, capsys)
    code, out, err = run(capsys, "replay", "--lake", str(lake), "--source-root", str(logs), "--quiet")
    assert code == 1
    assert f"{secret}: lies outside every --source-root: not read" in err
    assert "AWSLogs/../../home/.aws/credentials.log: names a parent folder ('..'): not read" in err
    assert "re-ingested              1 source objects" in out  # the real source under the root
    stored = b"".join(p.read_bytes() for p in lake.rglob("*") if p.is_file())
    assert b"SECRET" not in stored and b"credentials" not in b"".join(
        p.read_bytes() for p in (lake / "manifests").glob("*.json"))
    # without a root nothing local is read, and the hint is said once, not once per object
    code, _, err = run(capsys, "replay", "--lake", str(lake), "--quiet")
    assert code == 1 and err.count("give --source-root DIR") == 1 and "3 objects" in err


def test_replay_of_a_lake_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", "--lake", str(tmp_path / "nonexistent"))
    assert (code, out) == (2, "") and err == f"error: lake directory {tmp_path / 'nonexistent'} does not exist\n"


# ------------------------------------------------------------------------------------------------- status


def test_status_fits_120_columns_and_escapes_what_comes_from_the_lake() -> None:
    hostile = "web\x1b]0;owned\x07-prod-with-a-very-long-name"
    balancer = BalancerStatus(objects=123456, partitions=9999, visible_files=99999, rows=12_345_678_901,
                              quarantined=Counter({"bad \x1b[2J field": 3}), nodes=12, late_objects=7,
                              first_time=datetime(2026, 11, 24, 8, 0, 59, 999999, tzinfo=UTC),
                              last_time=datetime(2026, 11, 24, 23, 59, tzinfo=UTC))
    text = format_status(LakeStatus(balancers={hostile: balancer}, unreadable=["x\x1b[1m.parquet: bad"]))
    assert all(len(line) <= 120 for line in text.splitlines()), max(text.splitlines(), key=len)
    assert "\x1b" not in text and "\x07" not in text
    assert "web\\x1b]0;owned\\x07…" in text and "bad \\x1b[2J field" in text
    assert "2026-11-24T08:00Z  2026-11-24T23:59Z" in text


def test_status_scope_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sample_logs(tmp_path / "logs", files=12, lines_per_file=100, malformed_every=50)
    lake = tmp_path / "lake"
    assert run(capsys, "ingest", str(tmp_path / "logs"), "--lake", str(lake), "--quiet")[0] == 0
    whole = json.loads(run(capsys, "status", "--lake", str(lake), "--json")[1])
    names = sorted(whole["load_balancers"])
    one = json.loads(run(capsys, "status", "--lake", str(lake), "--format", "json", "--elb", names[0])[1])
    assert list(one["load_balancers"]) == [names[0]]
    assert one["rows"] == whole["load_balancers"][names[0]]["rows"] > 0
    hour = json.loads(run(capsys, "status", "--lake", str(lake), "--json", "--since", "2026-11-24T10:00",
                          "--until", "2026-11-24T11:00")[1])
    assert 0 < hour["rows"] < whole["rows"] and 0 < hour["partitions"] < whole["partitions"]
    assert whole["load_balancers"][names[0]]["first_time"].endswith("Z")
    lines = run(capsys, "status", "--lake", str(lake), "--format", "jsonl")[1].splitlines()
    assert sorted(json.loads(line)["load_balancer"] for line in lines) == names
    csv_out = run(capsys, "status", "--lake", str(lake), "--csv", "--limit", "2")[1].splitlines()
    assert csv_out[0].startswith("load_balancer,objects,") and len(csv_out) == 3


# ---------------------------------------------------------------------------------------- compact, report


def test_compact_says_the_replaced_files_stay_for_the_grace_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_objects(tmp_path / "logs", range(1, 4), (21,), 10)
    lake = tmp_path / "lake"
    assert run(capsys, "ingest", str(tmp_path / "logs"), "--lake", str(lake), "--quiet", "--no-batch")[0] == 0
    code, out, _ = run(capsys, "compact", "--lake", str(lake), "--older-than", "0", "--grace", "30")
    assert code == 0
    removed = int(out.split("files removed")[1].split()[0])
    assert f"note: the {removed} replaced files stay on disk until" in out and "(--grace 30 minutes" in out
    files = list((lake / "alb_logs").rglob("*.parquet"))
    assert len(files) == 4  # 3 per-object files + 1 compacted: the note says why the folder holds both


def test_report_and_sample_outputs_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sample_logs(tmp_path / "logs", files=1, lines_per_file=10)
    lake = tmp_path / "lake"
    assert run(capsys, "ingest", str(tmp_path / "logs"), "--lake", str(lake), "--quiet")[0] == 0
    code, _, err = run(capsys, "report", "--lake", str(lake), "--out", str(tmp_path))
    assert code == 2
    assert err == f"error: --out {tmp_path} is a directory: name a file, e.g. {tmp_path / 'report.html'}\n"
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "report", "--lake", str(lake), "--out", str(tmp_path / "file" / "r.html"))
    assert code == 2 and "cannot create its folder" in err and "Traceback" not in err
    code, _, err = run(capsys, "sample", "--out", str(tmp_path / "file"))
    assert code == 2
    assert err == f"error: --out {tmp_path / 'file'} is a file: name a directory to write the log files into\n"


def test_report_text_is_for_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sample_logs(tmp_path / "logs", files=6, lines_per_file=100)
    lake = tmp_path / "lake"
    assert run(capsys, "ingest", str(tmp_path / "logs"), "--lake", str(lake), "--quiet")[0] == 0
    out = str(tmp_path / "r.html")
    assert run(capsys, "report", "--lake", str(lake), "--out", out, "--since", "2026-11-24")[0] == 0
    page = (tmp_path / "r.html").read_text()
    assert "Seed visual" not in page and "from 2026-11-24T00:00:00Z" in page
    chart = page.split('data-chart="error_rate_by_hour"')[1].split("</svg>")[0]
    ticks = [t for t in chart.split("<text ") if 'class="tick"' in t and "text-anchor" in t and "-" in t]
    assert 'text-anchor="end"' in ticks[-1] or 'text-anchor="middle"' in ticks[-1]
    last_x = float(ticks[-1].split('x="')[1].split('"')[0])
    assert 'text-anchor="end"' in ticks[-1] or last_x < 800  # never centred on the right edge, where it is cut


# ----------------------------------------------------------------------------------------------- ingest


def test_a_missing_input_prints_the_reason_without_a_zero_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "ingest", str(tmp_path / "nope.log.gz"), "--lake", str(tmp_path / "lake"))
    assert (code, out) == (2, "") and err == f"error: {tmp_path / 'nope.log.gz'}: no such file\n"


def test_a_dangling_link_is_reported_and_a_name_that_is_not_utf8_ingests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "gone.log.gz").symlink_to(tmp_path / "moved-away.log.gz")
    body = gzip.compress((DOCUMENTED + "\n").encode())
    Path(os.fsdecode(os.fsencode(logs) + b"/caf\xe9.log.gz")).write_bytes(body)  # a name that is not UTF-8
    code, out, err = run(capsys, "ingest", str(logs), "--lake", str(tmp_path / "lake"), "--quiet")
    assert code == 1
    assert f"{logs / 'gone.log.gz'}: a symbolic link to {tmp_path / 'moved-away.log.gz'}, which does not exist" in err
    assert "files        1 converted, 1 failed" in out and "UnicodeEncodeError" not in err
    manifest = json.loads(next((tmp_path / "lake" / "manifests").glob("*.json")).read_text())
    assert manifest["source"].endswith("caf\\xe9.log.gz")


def test_replay_roots_hold_s3_sources_to_the_named_prefixes() -> None:
    from alblake.replay import SourceRoots

    roots = SourceRoots.of(["s3://logs/AWSLogs/"])
    assert roots.allows_remote("s3://logs/AWSLogs/123/x.log.gz")
    assert not roots.allows_remote("s3://secrets/credentials") and not roots.allows_remote("s3://logs/other/x")
    assert not SourceRoots.of([]).allows_remote("s3://logs/AWSLogs/x") and SourceRoots.of([], any_bucket=True)
    assert SourceRoots.of([], any_bucket=True).allows_remote("s3://any/thing")


def test_ingest_takes_times_as_well_as_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Sample rounds end at 09:05, 09:45, 10:25, 11:05 (objects named after their end): 09:40-10:21 overlaps two."""
    write_sample_logs(tmp_path / "logs", files=12, lines_per_file=10, malformed_every=0)
    code, out, _ = run(capsys, "ingest", str(tmp_path / "logs"), "--lake", str(tmp_path / "lake"), "--quiet",
                       "--since", "2026-11-24T09:40Z", "--until", "2026-11-24T10:21")
    assert code == 0 and "files        6 converted, 0 failed, 6 left out" in out
    code, out, _ = run(capsys, "ingest", str(tmp_path / "logs"), "--lake", str(tmp_path / "lake2"), "--quiet",
                       "--since", "2026-11-24", "--until", "2026-11-24")
    assert code == 0 and "files        12 converted" in out
