"""Hostile objects (what anyone able to write to the log bucket could send): every line is still accounted for
(lines = rows + quarantined), what an object can cost is bounded, and the quarantine says why. Sizes are small
here; bench/adversarial.py measures time and peak RSS at full size.
"""

from __future__ import annotations

import gzip
import io
import json
import resource
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alblake.convert import core as convert
from alblake.convert import derived as derived_rows
from alblake.convert import parquet as parquet_out
from alblake.convert.core import MAX_LINES_PER_PARSE, convert_stream
from alblake.convert.decompress import BLOCK_SIZE, LONG_LINE_SAMPLE_BYTES
from alblake.convert.quarantine import STORED_LINES_LIMIT
from alblake.lake.layout import KEY_MAX_BYTES, NAME_MAX_BYTES, Partition, data_key, object_stem
from alblake.parse import MAX_LINE_BYTES
from alblake.rollup.table import DIMENSION_NAMES, ROLLUP, derive
from tests.convert_helpers import KEY, convert_bytes, lake_files, quarantine_file
from tests.parse_helpers import DOC_LINE

DOC_TIME = "2018-07-02T22:23:00.186641Z"
DOC_ELB = "app/my-loadbalancer/50dc6c495c0c9188"
LONG_LINE_REASON = f"line longer than {MAX_LINE_BYTES} bytes"


def log_line(time: str = DOC_TIME, elb: str = DOC_ELB) -> bytes:
    return DOC_LINE.replace(DOC_TIME, time, 1).replace(DOC_ELB, elb, 1).encode()


def hour_line(hour: int, trace: str = "TID_1234abcd5678ef90") -> bytes:
    """The documented line at ``hour`` hours after 2018-07-02 00:23 UTC, with another conn_trace_id."""
    time = datetime(2018, 7, 2, 0, 23, tzinfo=UTC) + timedelta(hours=hour)
    return log_line(time.strftime("%Y-%m-%dT%H:%M:%S.186641Z")).replace(b"TID_1234abcd5678ef90", trace.encode())


def the_quarantine(lake: Path) -> tuple[list[dict[str, object]], dict[str, object]]:
    [path] = (lake / "quarantine").iterdir()
    return quarantine_file(path)


def open_descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


@pytest.fixture
def descriptor_limit() -> Iterator[None]:
    """Run with only ~100 descriptors to spare (as Lambda's fixed 1,024 would, for an object spanning more)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("counts open descriptors in /proc/self/fd (Linux, like Lambda)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_descriptors() + 100, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ------------------------------------------------------------------------------- 1. quarantine amplification


def test_an_object_of_newlines_is_counted_not_stored(tmp_path: Path) -> None:
    lines = 3 * MAX_LINES_PER_PARSE
    result = convert_bytes(gzip.compress(b"\n" * lines), tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (lines, 0, lines)
    records, summary = the_quarantine(tmp_path)
    assert records == []
    assert summary == {"quarantined": lines, "stored": 0, "reasons": {"empty line": lines}}
    assert sum(p.stat().st_size for p in (tmp_path / "quarantine").iterdir()) < 1000


def test_blank_lines_taken_out_keep_the_line_numbers_of_the_others(tmp_path: Path) -> None:
    blank_run = b"\n" * MAX_LINES_PER_PARSE + b"\r\n" * 10
    text = log_line() + b"\n" + blank_run + b"junk line\n" + blank_run + log_line() + b"\n" + b"\n\nmore junk\n"
    result = convert_bytes(gzip.compress(text), tmp_path)
    lines = text.count(b"\n")
    assert (result.lines, result.rows, result.quarantined) == (lines, 2, lines - 2)
    records, summary = the_quarantine(tmp_path)
    junk = 2 + len(blank_run.splitlines())
    assert [(r["line_number"], r["raw"]) for r in records] == [(junk, "junk line"), (lines, "more junk")]
    assert summary["reasons"] == {"empty line": lines - 4, "expected at least N fields, found N": 2}
    assert ds.dataset(tmp_path / "alb_logs", partitioning="hive").count_rows() == 2


def test_quarantine_keeps_the_first_lines_verbatim_and_counts_all(tmp_path: Path) -> None:
    junk = [f"junk {n} \u00e9".encode() for n in range(STORED_LINES_LIMIT + 2_500)]
    text = b"\n".join([*junk[:100], log_line(), *junk[100:]]) + b"\n"
    result = convert_bytes(gzip.compress(text), tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (len(junk) + 1, 1, len(junk))
    records, summary = the_quarantine(tmp_path)
    assert len(records) == STORED_LINES_LIMIT
    assert [r["raw"] for r in records] == [line.decode() for line in junk[:STORED_LINES_LIMIT]]
    assert records[100]["line_number"] == 102
    assert summary == {
        "quarantined": len(junk),
        "stored": STORED_LINES_LIMIT,
        "reasons": {"expected at least N fields, found N": len(junk)},
    }


# ---------------------------------------------------------------------------------------- 2. descriptors


def test_an_object_spanning_more_hours_than_descriptors_converts(tmp_path: Path, descriptor_limit: None) -> None:
    hours = 300  # three times the descriptors left
    text = b"".join(hour_line(hour) + b"\n" for hour in range(hours))
    result = convert_bytes(gzip.compress(text), tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (hours, hours, 0)
    assert len(result.partitions) == len({p.path for p in result.partitions}) == hours
    table = ds.dataset(tmp_path / "alb_logs", partitioning="hive").to_table()
    assert table.num_rows == hours
    assert table.column("time").to_pylist()[0].year == 2018
    assert not list((tmp_path / ".staging").iterdir())


def test_rows_beyond_the_partitions_an_object_may_span_are_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(convert, "MAX_PARTITIONS_PER_OBJECT", 10)
    text = b"".join(hour_line(n % 15, f"TID_{n}") + b"\n" for n in range(30))
    result = convert_bytes(gzip.compress(text), tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (30, 20, 10)
    assert len(result.partitions) == 10
    records, summary = the_quarantine(tmp_path)
    assert [r["line_number"] for r in records] == [n + 1 for n in range(30) if n % 15 >= 10]
    assert {r["reason"] for r in records} == {"the object spans more than 10 partition-hours"}
    assert summary["reasons"] == {"the object spans more than N partition-hours": 10}


def test_a_failure_closes_every_file_and_stages_nothing(tmp_path: Path, descriptor_limit: None) -> None:
    """Here the descriptors run out mid-object (a limit below MAX_OPEN_WRITERS): the error comes through,
    every staged file is closed and removed, and a retry with descriptors to spare succeeds."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_descriptors() + 20, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    text = b"".join(hour_line(hour) + b"\n" for hour in range(200))
    staging = tmp_path / "staging"
    staging.mkdir()
    before = open_descriptors()
    with pytest.raises(OSError, match="Too many open files"):
        convert_stream(io.BytesIO(gzip.compress(text)), KEY, staging, block_size=len(text) // 7)
    assert open_descriptors() == before
    assert list(staging.iterdir()) == []


def test_partitions_continued_in_new_files_are_joined_in_line_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 2 open files for 5 partitions and a line per block, every partition is written in several parts."""
    monkeypatch.setattr(parquet_out, "ROW_GROUP_ROWS", 2)  # a partition's rows are written out every 2 rows
    monkeypatch.setattr(parquet_out, "MAX_OPEN_WRITERS", 2)
    lines = [hour_line(n % 5, f"TID_{n}") for n in range(40)]
    text = b"\n".join(lines) + b"\n"
    result = convert_bytes(gzip.compress(text), tmp_path, block_size=len(lines[0]) + 2)
    assert (result.rows, len(result.partitions)) == (40, 5)
    for partition in result.partitions:
        [file] = (tmp_path / data_key(partition, object_stem(KEY))).parent.iterdir()
        ids = pq.read_table(file).column("conn_trace_id").to_pylist()
        hour = int(partition.hour)
        assert ids == [f"TID_{n}" for n in range(40) if n % 5 == hour]


# ------------------------------------------------------------------------------------ every engine


def junk_heavy_object() -> bytes:
    """More junk than the quarantine stores, of every kind, runs of blank lines long enough to be taken out of
    the pieces cut for the Arrow and exact engines, valid rows in three hours (one refused below), CRLF lines."""
    junk = [b"x", b'"', b"\xff\xfe", b"a b c", b" \t ", "\u3000".encode(), log_line().replace(b" app/", b" no-")]
    lines: list[bytes] = []
    for n in range(40_000):
        if n % 5 == 0:
            lines.append(hour_line(n % 3, f"TID_{n}") + (b"\r" if n % 7 == 0 else b""))
        elif 15_000 <= n < 17_000:
            lines.append(b"")
        else:
            lines.append(junk[n % len(junk)])
    return b"\n".join(lines) + b"\n"


def test_every_engine_converts_a_junk_heavy_object_to_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The native engine takes whole blocks and counts junk in C; the others get pieces and list every line.
    The staged rows, quarantine file (stored lines, reasons, counts) and counts are the same."""
    from alblake import parse

    monkeypatch.setattr(convert, "MAX_PARTITIONS_PER_OBJECT", 2)
    data = gzip.compress(junk_heavy_object(), compresslevel=1)
    outcomes = []
    for engine in ("native", "arrow", "exact"):
        monkeypatch.setattr(parse, "DEFAULT_ENGINE", engine)
        (tmp_path / engine).mkdir()
        staged = convert_stream(io.BytesIO(data), KEY, tmp_path / engine, block_size=1 << 18)
        try:
            assert staged.quarantine_path is not None
            tables = {d.partition.path: pq.read_table(d.path) for d in staged.data}
            counts = (staged.lines, staged.rows, staged.quarantined, staged.quarantine_stored)
            outcomes.append((counts, staged.quarantine_reasons, staged.quarantine_path.read_text(), tables))
        finally:
            staged.discard()
    native_outcome = outcomes[0]
    assert native_outcome[0] == (40_000, 5_333, 34_667, STORED_LINES_LIMIT)
    assert native_outcome[1]["the object spans more than N partition-hours"] == 2_667  # the third hour
    for outcome in outcomes[1:]:
        assert outcome[:3] == native_outcome[:3]
        assert outcome[3].keys() == native_outcome[3].keys()
        assert all(outcome[3][path].equals(table) for path, table in native_outcome[3].items())


# ------------------------------------------------------------------------------------ memory by bytes


class ShortReads(io.BytesIO):
    """A stream that returns at most ``size`` bytes per read."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(data)
        self.size = size

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self.size if size is None or size < 0 else min(size, self.size))


def wide_line(number: int, agent_bytes: int = 8192) -> bytes:
    """The documented line with a user agent of ``agent_bytes`` (ALB truncates user agents at 8 KB)."""
    agent = (f"agent-{number}-" + "x" * agent_bytes)[:agent_bytes]
    return log_line().replace(b"curl/7.46.0", agent.encode()).replace(b"TID_1234abcd5678ef90", f"TID_{number}".encode())


def test_rows_of_8_kb_user_agents_are_written_in_row_groups_bounded_by_bytes(tmp_path: Path) -> None:
    """Row groups (and the rows held in memory for them) are bounded by bytes: 4,000 rows of 8 KB are far fewer
    than ROW_GROUP_ROWS, yet more than ROW_GROUP_BYTES; every row lands once, in line order."""
    lines = [wide_line(n) for n in range(4_000)]
    data = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1)
    result = convert_bytes(data, tmp_path, block_size=BLOCK_SIZE)
    assert (result.lines, result.rows, len(result.partitions)) == (4_000, 4_000, 1)
    [file] = (tmp_path / "alb_logs").rglob("*.parquet")
    metadata = pq.ParquetFile(file).metadata
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    assert len(groups) >= 2
    assert all(group.num_rows * 8192 <= parquet_out.ROW_GROUP_BYTES + BLOCK_SIZE for group in groups)  # + a block
    assert pq.read_table(file).column("conn_trace_id").to_pylist() == [f"TID_{n}" for n in range(4_000)]


def rollup_totals(rollup: pa.Table) -> dict[tuple[object, ...], tuple[int, ...]]:
    """A rollup's sums and sketch counts by its dimensions (rows of one combination may be split over rows)."""
    totals: dict[tuple[object, ...], list[int]] = {}
    for row in rollup.to_pylist():
        key = tuple(row[name] for name in DIMENSION_NAMES)
        sums = totals.setdefault(key, [0, 0, 0, 0])
        sums[0] += row["requests"]
        sums[1] += row["sent_bytes"]
        sums[2] += row["errors_5xx"]
        sums[3] += sum(b * c for b, c in zip(row["latency_buckets"], row["latency_counts"], strict=True))
    return {key: tuple(sums) for key, sums in totals.items()}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 20)), min_size=1, max_size=40),
    st.integers(1, 6),
)
def test_rows_spilled_written_and_held_come_out_in_line_order(runs: list[tuple[int, int]], per_block: int) -> None:
    """With budgets of a few rows, partitions go through every path - written as row groups, spilled (alone or
    with others), continued in new part files when their writer was closed, still in memory at the end - and
    each partition's file holds its rows in line order; nothing of the spill file is left."""
    hours = [hour for hour, length in runs for _ in range(length)]
    text = b"".join(hour_line(hour, f"TID_{n}") + b"\n" for n, hour in enumerate(hours))
    row_bytes = len(text) // len(hours)
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        for name, value in [
            ("ROW_GROUP_BYTES", 8 * row_bytes),
            ("BUFFER_BYTES", 6 * row_bytes),
            ("SPILL_BELOW_BYTES", 3 * row_bytes),
            ("_SPILL_BATCH_BYTES", 2 * row_bytes),
            ("CHUNK_COST_BYTES", 0),
            ("PARTITIONS_PER_SPILL_READ", 2),
            ("MAX_OPEN_WRITERS", 2),
        ]:
            patch.setattr(parquet_out, name, value)
        # rows are derived a few at a time, and derived rows go to part files too
        patch.setattr(derived_rows, "DERIVE_BATCH_ROWS", 5)
        patch.setattr(derived_rows, "DERIVE_MEMORY_BATCH_BYTES", 4 * row_bytes)
        patch.setattr(derived_rows, "DERIVED_BUFFER_BYTES", 2 * row_bytes)
        stream = ShortReads(text, per_block * row_bytes)  # each read a block's worth: blocks of a few lines
        staged = convert_stream(
            stream, "local/spread.log", Path(directory), block_size=per_block * row_bytes, derived=[ROLLUP]
        )
        try:
            assert staged.rows == len(hours) and not list(staged.stage_dir.glob("spill*"))
            for data in staged.data:
                rows = pq.read_table(data.path)
                ids = rows.column("conn_trace_id").to_pylist()
                expected = [f"TID_{n}" for n, hour in enumerate(hours) if hour == int(data.partition.hour)]
                assert (ids, data.rows) == (expected, len(expected))
                # the rollup derived while converting sums to the rollup of the file's rows, whatever the path
                assert rollup_totals(pq.read_table(data.derived[ROLLUP.name])) == rollup_totals(derive(rows))
            assert sum(data.rows for data in staged.data) == len(hours)
        finally:
            staged.discard()


# ------------------------------------------------------------------------------ 3. unstorable partitions


@pytest.mark.parametrize(("name", "escaped_bytes"), [("a" * 300, 300), ("\u00e9" * 50, 300)], ids=["long", "escaped"])
def test_lines_whose_partition_cannot_be_stored_are_quarantined(tmp_path: Path, name: str, escaped_bytes: int) -> None:
    bad = log_line(elb=f"app/{name}/50dc6c495c0c9188")
    text = b"\n".join([log_line(), bad, log_line(), bad]) + b"\n"
    result = convert_bytes(gzip.compress(text), tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (4, 2, 2)
    assert [p.elb_name for p in result.partitions] == ["my-loadbalancer"]
    records, summary = the_quarantine(tmp_path)
    reason = (
        f"elb name too long for a partition path ({escaped_bytes + len('elb_name=')} bytes escaped; a name holds 255)"
    )
    assert [(r["line_number"], r["reason"], r["raw"]) for r in records] == [(n, reason, bad.decode()) for n in (2, 4)]
    assert summary["reasons"] == {"elb name too long for a partition path (N bytes escaped; a name holds N)": 2}
    assert any(f.startswith("manifests/") for f in lake_files(tmp_path))


def test_the_longest_storable_partition_leaves_room_in_an_s3_key() -> None:
    from alblake.lake.layout import unstorable_reason

    name = "a" * (NAME_MAX_BYTES - len("elb_name="))
    longest = Partition(name, "2018-07-02", "22")
    stem = object_stem("x" * 2000)
    assert unstorable_reason(longest, stem) is None
    assert unstorable_reason(Partition(name + "a", "2018-07-02", "22"), stem) is not None
    assert len(data_key(longest, stem).encode()) < KEY_MAX_BYTES - 512  # room for the lake's prefix


# --------------------------------------------------------------------------------------- 4. long lines


class SmallReads(io.BytesIO):
    """A stream that returns at most 64 KiB per read, so that a long line spans many chunks."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(min(size if size is not None and size >= 0 else 1 << 16, 1 << 16))


@pytest.mark.parametrize("where", ["first", "middle", "last-unterminated"])
@pytest.mark.parametrize("source", ["gzip", "gzip-small-reads", "plain-small-reads"])
def test_an_overlong_line_is_quarantined_wherever_it_sits(tmp_path: Path, where: str, source: str) -> None:
    long_line = b"GET " + bytes(range(32, 127)) * (3 * MAX_LINE_BYTES // 95)
    good = [log_line()] * 5
    if where == "first":
        lines, number = [long_line, *good], 1
    elif where == "middle":
        lines, number = [*good[:2], long_line, *good[2:]], 3
    else:
        lines, number = [*good, long_line], 6
    text = b"\n".join(lines) + (b"" if where.endswith("unterminated") else b"\n")
    data = text if source.startswith("plain") else gzip.compress(text, compresslevel=1)
    source_id = "local/file.log" if source.startswith("plain") else KEY
    stream = SmallReads(data) if source.endswith("small-reads") else io.BytesIO(data)
    from alblake.ingest.core import ingest_object
    from alblake.lake.generational import open_local_lake

    result = ingest_object(lambda: stream, source_id, open_local_lake(tmp_path))
    assert (result.lines, result.rows, result.quarantined) == (6, 5, 1)
    [record], summary = the_quarantine(tmp_path)
    assert record["line_number"] == number
    assert record["reason"] == LONG_LINE_REASON
    assert (record["length"], record["truncated"]) == (len(long_line), True)
    assert record["raw"] == long_line[:LONG_LINE_SAMPLE_BYTES].decode()
    assert summary["reasons"] == {"line longer than N bytes": 1}


# ------------------------------------------------------------------------------------------ 9. small ones


def test_line_separators_are_escaped_in_the_quarantine(tmp_path: Path) -> None:
    junk = "x \u2028 y \u2029 z \x85 w \x0b \x0c \x1c"
    result = convert_bytes(gzip.compress(junk.encode() + b"\n" + log_line() + b"\n"), tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (2, 1, 1)
    [path] = (tmp_path / "quarantine").iterdir()
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 2  # the record and the summary
    assert json.loads(text.splitlines()[0])["raw"] == junk


def test_year_one_is_a_four_digit_day_partition(tmp_path: Path) -> None:
    text = log_line("0001-01-01T00:05:00.000000Z") + b"\n" + log_line() + b"\n"
    result = convert_bytes(gzip.compress(text), tmp_path)
    assert (result.lines, result.rows, result.quarantined) == (2, 2, 0)
    assert sorted(p.path for p in result.partitions) == [
        "elb_name=my-loadbalancer/day=0001-01-01/hour=00",
        "elb_name=my-loadbalancer/day=2018-07-02/hour=22",
    ]
    assert (tmp_path / "alb_logs/elb_name=my-loadbalancer/day=0001-01-01/hour=00").is_dir()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b"", b"\r", b"a", b"bb b", b"c\rc", b"\r\r", b"dddddddddddd"]), min_size=1, max_size=80),
    st.integers(1, 9),
    st.integers(0, 3),
)
def test_blocks_of_many_lines_are_cut_into_pieces_that_keep_every_line(
    lines: list[bytes], max_lines: int, blank_lines_parsed: int
) -> None:
    block = b"\n".join(lines) + b"\n"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(convert, "MAX_LINES_PER_PARSE", max_lines)
        patch.setattr(convert, "_BLANK_LINES_PARSED", blank_lines_parsed)
        patch.setattr(convert, "_WINDOW_BYTES", 16)  # longer than any line here, as MAX_LINE_BYTES + 1 is
        pieces = list(convert._line_pieces(memoryview(block), 101))
    seen: dict[int, bytes] = {}
    for piece in pieces:
        text, numbers = bytes(piece.text), piece.numbers
        assert numbers is not None
        assert len(numbers) <= max_lines and text.count(b"\n") == len(numbers)
        seen.update(zip(numbers.tolist(), text.split(b"\n")[:-1], strict=True))
    assert list(seen) == sorted(seen)
    taken_out = [n for n in range(101, 101 + len(lines)) if n not in seen]
    assert all(lines[n - 101] in (b"", b"\r") for n in taken_out)
    assert sum(piece.blank_lines for piece in pieces) == len(taken_out)
    assert all(seen[n] == lines[n - 101] for n in seen)
    if len(lines) <= max_lines:
        assert len(pieces) == 1 and taken_out == []


def test_an_object_whose_only_quarantined_lines_are_blank_still_has_a_quarantine_summary(tmp_path: Path) -> None:
    """The counts of blank lines must be findable in the lake (replay and status read quarantine files)."""
    from alblake.ingest.core import ingest_object
    from alblake.lake.generational import open_local_lake

    data = gzip.compress(f"{DOC_LINE}\n\n{DOC_LINE}\n\n".encode())
    result = ingest_object(lambda: io.BytesIO(data), "blank-lines.log.gz", open_local_lake(tmp_path))
    assert (result.rows, result.quarantined) == (2, 2)
    [quarantine] = (tmp_path / "quarantine").iterdir()
    [summary] = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert summary["summary"]["quarantined"] == 2 and summary["summary"]["stored"] == 0
