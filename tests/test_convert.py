"""Conversion of whole objects: partitioned Parquet, determinism, atomicity, bad input, round trips."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from alblake import parse
from alblake.errors import CorruptInputError, EmptyInputError, InputError
from alblake.ingest.core import IngestedObject, ingest_object
from alblake.lake.generational import open_local_lake
from alblake.lake.local import LocalStore
from alblake.sample import write_sample_logs
from alblake.schema import ARROW_SCHEMA
from tests.convert_helpers import KEY, convert_bytes, lake_files, quarantine_file
from tests.parse_helpers import DOC_LINE


def data_keys(result: IngestedObject) -> list[str]:
    return [k for k in result.commit.written if k.startswith("alb_logs/")]


def quarantine_keys(result: IngestedObject) -> list[str]:
    return [k for k in result.commit.written if k.startswith("quarantine/")]


def test_documented_lines_land_in_hive_partitions(tmp_path: Path, documented_lines: list[bytes]) -> None:
    result = convert_bytes(gzip.compress(b"\n".join(documented_lines) + b"\n"), tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (7, 7, 0)
    assert [p.path for p in result.partitions] == [
        "elb_name=my-loadbalancer/day=2018-07-02/hour=22",
        "elb_name=my-loadbalancer/day=2018-11-30/hour=22",
    ]
    stem = "1_elasticloadbalancing_us-east-2_app.my-lb.1_20180702T2225Z_10.0.0.1_x"
    files = [f for f in lake_files(tmp_path) if not f.startswith("manifests/")]
    assert len(files) == 2
    assert all(f.startswith("alb_logs/elb_name=my-loadbalancer/day=") and stem in f for f in files)
    [manifest] = (tmp_path / "manifests").iterdir()
    assert sorted(json.loads(manifest.read_text())["files"]) == files
    table = ds.dataset(tmp_path / "alb_logs", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 7
    assert Counter(table.column("day").to_pylist()) == {"2018-07-02": 5, "2018-11-30": 2}
    assert table.select(list(ARROW_SCHEMA.names)).schema == ARROW_SCHEMA


def test_rerun_replaces_instead_of_duplicating(tmp_path: Path) -> None:
    data = gzip.compress((DOC_LINE + "\n").encode() * 10)
    convert_bytes(data, tmp_path)
    first = lake_files(tmp_path)
    convert_bytes(data, tmp_path)
    assert lake_files(tmp_path) == first
    assert ds.dataset(tmp_path / "alb_logs", partitioning="hive").count_rows() == 10
    convert_bytes(data, tmp_path, source_id=KEY.replace("_x.log.gz", "_y.log.gz"))
    assert ds.dataset(tmp_path / "alb_logs", partitioning="hive").count_rows() == 20


def test_lines_are_conserved_across_many_small_blocks(tmp_path: Path) -> None:
    paths = write_sample_logs(tmp_path / "logs", files=2, lines_per_file=3000, seed=3, malformed_every=101)
    for path in paths:
        expected_lines = gzip.decompress(path.read_bytes()).count(b"\n")
        result = convert_bytes(path.read_bytes(), tmp_path / "lake", source_id=str(path), block_size=4096)
        assert result.lines == expected_lines == 3000
        assert result.rows + result.quarantined == result.lines
        assert result.quarantined == 3000 // 101
    for path in (tmp_path / "lake" / "quarantine").iterdir():
        records, summary = quarantine_file(path)
        assert summary["quarantined"] == sum(summary["reasons"].values()) == 3000 // 101  # type: ignore[attr-defined]
        empty = summary["reasons"].get("empty line", 0)  # type: ignore[attr-defined]
        assert len(records) == summary["stored"] == 3000 // 101 - empty  # empty lines are counted, not stored
        assert all(q["line_number"] % 101 == 0 and q["reason"] for q in records)  # type: ignore[operator]


def read_sorted(lake: Path, key: list[str]) -> pa.Table:
    table = ds.dataset(lake / "alb_logs", partitioning="hive").to_table()
    return table.sort_by([(k, "ascending") for k in key])


def test_block_size_does_not_change_the_output(tmp_path: Path) -> None:
    path = write_sample_logs(tmp_path / "logs", files=1, lines_per_file=2000, seed=5)[0]
    big = convert_bytes(path.read_bytes(), tmp_path / "a", source_id=str(path))
    small = convert_bytes(path.read_bytes(), tmp_path / "b", source_id=str(path), block_size=10_000)
    key = ["time", "trace_id"]
    assert (big.rows, big.quarantined) == (small.rows, small.quarantined)
    assert read_sorted(tmp_path / "a", key).equals(read_sorted(tmp_path / "b", key))


def test_plain_text_and_multi_member_gzip(tmp_path: Path) -> None:
    text = (DOC_LINE + "\n").encode() * 3
    assert convert_bytes(text, tmp_path / "a", source_id="local/file.log").rows == 3
    two_members = gzip.compress(text) + gzip.compress(text[:-1])  # last line without newline
    assert convert_bytes(two_members, tmp_path / "b").rows == 6


class OneByteReads(io.BytesIO):
    """A stream that returns one byte per read: a byte order mark then arrives in three pieces."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(1)


@pytest.mark.parametrize("engine", ["native", "arrow", "exact"])
@pytest.mark.parametrize("source", ["log", "log.gz", "log, one byte per read"])
def test_a_byte_order_mark_at_the_start_of_an_object_is_not_part_of_its_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, source: str
) -> None:
    monkeypatch.setattr(parse, "DEFAULT_ENGINE", engine)
    text = b"\xef\xbb\xbf" + (DOC_LINE + "\n").encode() * 2 + b"\xef\xbb\xbf" + DOC_LINE.encode() + b"\n"
    data = gzip.compress(text) if source == "log.gz" else text
    stream = OneByteReads(data) if "one byte" in source else io.BytesIO(data)
    result = ingest_object(lambda: stream, f"local/bom.{source.split(',')[0]}", open_local_lake(tmp_path))
    assert (result.lines, result.rows, result.quarantined) == (3, 3, 0)
    table = ds.dataset(tmp_path / "alb_logs", partitioning="hive").to_table()
    assert table.column("type").to_pylist() == ["http", "http", "\ufeffhttp"]  # the object's mark only


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", EmptyInputError, "empty object"),
        (b"plain text, not gzip\n", CorruptInputError, "not gzip"),
        (gzip.compress((DOC_LINE + "\n").encode() * 1000, mtime=0)[:-30], CorruptInputError, "truncated"),
        (b"\x1f\x8b" + bytes(range(256)) * 4, CorruptInputError, "not a valid gzip stream"),
        (gzip.compress(b"x\n", mtime=0) + b"trailing junk", CorruptInputError, "trailing garbage"),
    ],
    ids=["empty", "not-gzip", "truncated", "corrupt-deflate", "trailing-garbage"],
)
def test_bad_gzip_raises_clear_error_and_publishes_nothing(
    tmp_path: Path, data: bytes, error: type[InputError], message: str
) -> None:
    with pytest.raises(error, match=message):
        convert_bytes(data, tmp_path)
    assert lake_files(tmp_path) == []


def test_corruption_after_good_blocks_stages_nothing(tmp_path: Path) -> None:
    good = zlib.compressobj(wbits=31)
    data = good.compress((DOC_LINE + "\n").encode() * 20_000) + good.flush()
    corrupt = data[: len(data) // 2] + b"\x00" * 64 + data[len(data) // 2 + 64 :]
    with pytest.raises(CorruptInputError):
        convert_bytes(corrupt, tmp_path, block_size=8192)
    assert lake_files(tmp_path) == []


def test_binary_garbage_and_invalid_utf8_are_quarantined_losslessly(tmp_path: Path) -> None:
    garbage = bytes(range(1, 256)).replace(b"\n", b"")
    data = gzip.compress((DOC_LINE + "\n").encode() + garbage + b"\n" + b"caf\xe9 latin-1\n")
    result = convert_bytes(data, tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (3, 1, 2)
    records, summary = quarantine_file(next((tmp_path / "quarantine").iterdir()))
    assert [r["line_number"] for r in records] == [2, 3]
    assert summary == {"quarantined": 2, "stored": 2, "reasons": {"invalid UTF-8 at byte N": 2}}
    import base64

    assert base64.b64decode(str(records[0]["raw_base64"])) == garbage
    assert base64.b64decode(str(records[1]["raw_base64"])) == b"caf\xe9 latin-1"


def test_duckdb_reads_the_lake_with_partitions(tmp_path: Path) -> None:
    paths = write_sample_logs(tmp_path / "logs", files=3, lines_per_file=500, seed=11, malformed_every=0)
    rows = sum(convert_bytes(p.read_bytes(), tmp_path / "lake", source_id=str(p)).rows for p in paths)
    glob = f"{tmp_path}/lake/alb_logs/**/*.parquet"
    connection = duckdb.connect()
    count, names = connection.execute(
        f"select count(*), count(distinct elb_name) from read_parquet('{glob}', hive_partitioning=true)"
    ).fetchone() or (0, 0)
    assert (count, rows, names) == (1500, 1500, 3)
    mismatched = connection.execute(
        f"select count(*) from read_parquet('{glob}', hive_partitioning=true) "
        "where strftime(time AT TIME ZONE 'UTC', '%Y-%m-%d') <> day::varchar "
        "or lpad(cast(hour(time AT TIME ZONE 'UTC') as varchar), 2, '0') <> lpad(hour::varchar, 2, '0') "
        "or split_part(elb, '/', 2) <> elb_name"
    ).fetchone()
    assert mismatched == (0,)


def test_a_block_mixing_load_balancers_splits_by_elb_name(tmp_path: Path) -> None:
    other = DOC_LINE.replace("app/my-loadbalancer/50dc6c495c0c9188", "app/other-lb/0123456789abcdef")
    odd_form = DOC_LINE.replace("app/my-loadbalancer/50dc6c495c0c9188", "app-no-slashes")
    text = "\n".join([DOC_LINE, other, odd_form, other]) + "\n"
    result = convert_bytes(gzip.compress(text.encode()), tmp_path)
    assert (result.rows, result.quarantined) == (3, 1)
    rows_per_partition = Counter(read_sorted(tmp_path, ["elb_name"]).column("elb_name").to_pylist())
    assert [p.path for p in result.partitions] == [
        "elb_name=my-loadbalancer/day=2018-07-02/hour=22",
        "elb_name=other-lb/day=2018-07-02/hour=22",
    ]
    assert rows_per_partition == {"my-loadbalancer": 1, "other-lb": 2}


def test_a_rerun_removes_the_files_its_earlier_run_wrote_and_it_does_not(tmp_path: Path) -> None:
    """E.g. a parser fix: the earlier run quarantined a line and put rows in hour 22; the re-run of the same
    object writes hour 23 only and quarantines nothing. Nothing of the earlier run may stay behind."""
    before = convert_bytes(gzip.compress((DOC_LINE + "\nnot a log line\n").encode()), tmp_path)
    assert before.quarantined == 1 and len(lake_files(tmp_path)) == 3  # parquet, quarantine, manifest
    later_line = DOC_LINE.replace("2018-07-02T22:23:00.186641Z", "2018-07-02T23:01:00.000000Z", 1)
    after = convert_bytes(gzip.compress((later_line + "\n").encode()), tmp_path)
    assert after.commit.deleted == sorted(data_keys(before) + quarantine_keys(before))
    files = lake_files(tmp_path)
    assert [f for f in files if not f.startswith("manifests/")] == data_keys(after)
    assert "/hour=23/" in data_keys(after)[0]
    table = ds.dataset(tmp_path / "alb_logs", format="parquet", partitioning="hive").to_table()
    assert table.column("hour").to_pylist() == [23]


def test_only_the_sources_own_lake_files_are_ever_deleted(tmp_path: Path) -> None:
    """A manifest is data on disk: keys in it outside alb_logs/ and quarantine/, of another source, or climbing
    out of the lake with '..' are never deleted."""
    lake = tmp_path / "lake"
    first = convert_bytes(gzip.compress((DOC_LINE + "\n").encode()), lake)
    other = convert_bytes(gzip.compress((DOC_LINE + "\n").encode()), lake, source_id=KEY.replace("_x.", "_y."))
    [manifest] = [p for p in (lake / "manifests").iterdir() if "_x." in p.name]
    stem = manifest.name.removesuffix(".json")
    (lake / "sql").mkdir()
    (lake / "sql" / "precious.sql").write_text("keep me")
    (tmp_path / f"{stem}.parquet").write_text("outside the lake")
    foreign = [data_keys(other)[0], "sql/precious.sql", f"alb_logs/../../{stem}.parquet"]
    manifest.write_text(json.dumps({"files": [data_keys(first)[0], *foreign]}))
    convert_bytes(gzip.compress((DOC_LINE + "\n").encode()), lake)  # the same source again
    assert (lake / data_keys(other)[0]).exists()
    assert (lake / "sql" / "precious.sql").read_text() == "keep me"
    assert (tmp_path / f"{stem}.parquet").read_text() == "outside the lake"
    assert (lake / data_keys(first)[0]).exists()  # rewritten, not deleted


def test_a_failed_cleanup_is_finished_by_the_retry(tmp_path: Path) -> None:
    """The manifest is written last: if deleting a stale file fails, the retry still knows what to delete."""

    class FlakyDeleteStore(LocalStore):
        failures = 1

        def delete(self, key: str) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError("S3 503 SlowDown")
            super().delete(key)

    before = convert_bytes(gzip.compress((DOC_LINE + "\nnot a log line\n").encode()), tmp_path)
    later_line = DOC_LINE.replace("2018-07-02T22:23:00.186641Z", "2018-07-02T23:01:00.000000Z", 1)
    store = FlakyDeleteStore(tmp_path)
    data = gzip.compress((later_line + "\n").encode())
    with pytest.raises(OSError, match="SlowDown"):
        convert_bytes(data, tmp_path, store=store)
    retry = convert_bytes(data, tmp_path, store=store)
    assert retry.commit.deleted == sorted(data_keys(before) + quarantine_keys(before))
    remaining = [f for f in lake_files(tmp_path) if not f.startswith("manifests/")]
    assert len(remaining) == 1 and "/hour=23/" in remaining[0]
