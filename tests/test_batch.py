"""Small objects ingested in batches give exactly what ingesting each alone gives: per object the same rows, the
same quarantine file and counts; in the lake the same rows, once, across re-ingests in either mode."""

from __future__ import annotations

import gzip
import io
import json
import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alblake.convert.core import SMALL_TEXT_BYTES, convert_batch, convert_stream
from alblake.ingest.core import IngestedObject
from alblake.ingest.planning import BATCH_MAX_OBJECTS, BATCH_MIN_OBJECTS, plan_tasks
from alblake.ingest.runner import ingest_batch, ingest_objects, ingest_paths
from alblake.ingest.selection import Failure, LocalFile, LogObject
from alblake.lake.generational import open_lake, open_local_lake
from alblake.lake.local import LocalStore
from alblake.parse import MAX_LINE_BYTES
from alblake.ports import BatchCommitError, CommitResult
from alblake.sample import write_sample_day
from tests.parse_helpers import DOC_LINE

DATA = Path(__file__).parent / "data"
DOCUMENTED = [line for line in (DATA / "aws_documented_examples.log").read_text().splitlines() if line]
HISTORICAL = [
    line for line in (DATA / "historical_lines.log").read_text().splitlines() if line and not line.startswith("#")
]


def at_time(line: str, hour: int, minute: int = 7) -> str:
    """The documented line with its request time moved to another hour of 2018-07-02."""
    fields = line.split(" ")
    fields[1] = f"2018-07-02T{hour:02d}:{minute:02d}:01.000000Z"
    return " ".join(fields)


def with_elb(line: str, name: str) -> str:
    fields = line.split(" ")
    fields[2] = f"app/{name}/50dc6c495c0c9188"
    return " ".join(fields)


LINES = [
    *DOCUMENTED,
    *HISTORICAL,
    at_time(DOC_LINE, 3),
    at_time(DOC_LINE, 4, 59),
    with_elb(DOC_LINE, "other-lb"),
    "",  # blank
    "garbage that is not a log line",
    DOC_LINE.replace(" 200 200 ", " 2x0 200 ", 1),  # a bad status code
    DOC_LINE[:80],  # cut short
    DOC_LINE + "\r",  # CRLF line end
]


@dataclass(frozen=True)
class MemoryObject:
    """A log object held in memory (the ``LogObject`` shape)."""

    source_id: str
    content: bytes

    @property
    def name(self) -> str:
        return self.source_id

    @property
    def size(self) -> int:
        return len(self.content)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.content)


def log_object(index: int, lines: list[str], *, gz: bool = True, final_newline: bool = True) -> MemoryObject:
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    data = text.encode()
    suffix = ".log.gz" if gz else ".log"
    return MemoryObject(f"AWSLogs/1/elasticloadbalancing/r/2018/07/02/obj-{index:03d}{suffix}",
                        gzip.compress(data, mtime=0) if gz else data)


def assert_same_as_alone(objects: list[MemoryObject], tmp_path: Path) -> tuple[list[int], dict[int, Exception]]:
    """Convert ``objects`` as a batch and each alone; every object the batch took equals its conversion alone.
    Returns the positions left to be converted alone and the failures."""
    conversion = convert_batch([(o.open, o.source_id) for o in objects], tmp_path)
    batch_rows: dict[str, dict[str, pa.Table]] = {}
    for rows in conversion.batch.rows:
        for index, stem in enumerate(rows.stems):
            mask = pa.array(rows.lineage == index)
            batch_rows.setdefault(stem, {})[rows.partition.path] = rows.table.filter(mask).combine_chunks()
    for position, staged in zip(conversion.converted, conversion.batch.objects, strict=True):
        alone = convert_stream(objects[position].open(), objects[position].source_id, tmp_path)
        try:
            assert (staged.lines, staged.rows, staged.quarantined, staged.quarantine_stored, staged.bytes_in,
                    staged.text_bytes, staged.max_time, staged.quarantine_reasons, staged.partitions) == (
                alone.lines, alone.rows, alone.quarantined, alone.quarantine_stored, alone.bytes_in,
                alone.text_bytes, alone.max_time, alone.quarantine_reasons, alone.partitions)
            assert staged.lines == staged.rows + staged.quarantined
            expected = {d.partition.path: pq.read_table(d.path) for d in alone.data}
            mine = batch_rows.get(staged.stem, {})
            assert mine.keys() == expected.keys()
            for path, table in expected.items():
                assert mine[path].equals(table), path
            assert staged.batched_rows == {d.partition: d.rows for d in alone.data}
            quarantine_alone = alone.quarantine_path.read_text() if alone.quarantine_path else None
            quarantine_batch = staged.quarantine_path.read_text() if staged.quarantine_path else None
            assert quarantine_batch == quarantine_alone
        finally:
            alone.discard()
    for position, error in conversion.failed.items():
        with pytest.raises(type(error)) as raised:
            convert_stream(objects[position].open(), objects[position].source_id, tmp_path)
        assert str(raised.value) == str(error)
    conversion.batch.discard()
    return conversion.alone, conversion.failed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shapes=st.lists(
        st.tuples(st.lists(st.sampled_from(LINES), max_size=12), st.booleans(), st.booleans()),
        min_size=1, max_size=8,
    )
)
def test_a_batch_converts_every_object_as_it_would_be_converted_alone(
    shapes: list[tuple[list[str], bool, bool]], tmp_path: Path
) -> None:
    objects = [log_object(i, lines, gz=gz, final_newline=newline) for i, (lines, gz, newline) in enumerate(shapes)]
    alone, failed = assert_same_as_alone(objects, tmp_path)
    assert not alone
    assert all(not objects[i].content and objects[i].source_id.endswith(".gz") for i in failed)  # empty .gz only


def test_objects_a_batch_cannot_take_are_left_to_convert_alone(tmp_path: Path) -> None:
    too_long = log_object(0, [DOC_LINE, "x" * (MAX_LINE_BYTES + 5)])
    unstorable = log_object(1, [with_elb(DOC_LINE, "n" * 300), DOC_LINE])
    large = log_object(2, [DOC_LINE] * (2 * SMALL_TEXT_BYTES // len(DOC_LINE)))
    bad_gzip = MemoryObject("AWSLogs/x/bad.log.gz", b"\x1f\x8b not really gzip")
    not_gzip = MemoryObject("AWSLogs/x/plain-named.log.gz", b"plain text\n")
    good = [log_object(10 + i, [at_time(DOC_LINE, i), "garbage"]) for i in range(3)]
    objects = [too_long, good[0], unstorable, large, bad_gzip, good[1], not_gzip, good[2]]
    alone, failed = assert_same_as_alone(objects, tmp_path)
    assert sorted(alone) == [0, 2, 3]
    assert sorted(failed) == [4, 6]


def test_many_lines_are_parsed_in_several_calls(tmp_path: Path) -> None:
    objects = [log_object(i, [at_time(DOC_LINE, i % 5, m % 60) for m in range(3000)] + ["junk"]) for i in range(14)]
    alone, failed = assert_same_as_alone(objects, tmp_path)  # 42k lines: over one parse call's 32k
    assert not alone and not failed


# ------------------------------------------------------------------------------------------------ in the lake


def lake_rows(lake: Path) -> Counter[tuple[object, ...]]:
    files = open_local_lake(lake).visible_files()
    table = ds.dataset(files, format="parquet").to_table() if files else pa.table({})
    return Counter(tuple(row.values()) for row in table.to_pylist())


def manifests(lake: Path) -> dict[str, dict[str, object]]:
    found = {}
    for path in sorted((lake / "manifests").glob("*.json")):
        body = json.loads(path.read_text())
        body.pop("files")  # keys of compacted files carry a random token
        found[path.name] = body
    return found


def quarantine(lake: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((lake / "quarantine").glob("*.jsonl"))}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("day")
    return write_sample_day(root, nodes_per_lb=(2, 1, 1), lines_per_object=30, malformed_every=17, intervals=30)


def test_batches_and_objects_alone_give_the_same_lake(day: list[Path], tmp_path: Path) -> None:
    alone = ingest_paths([str(p) for p in day], tmp_path / "alone", batch=False)
    batched = ingest_paths([str(p) for p in day], tmp_path / "batched", batch=True)
    assert not alone.failures and not batched.failures
    assert (batched.files, batched.lines, batched.rows, batched.quarantined, batched.partitions) == (
        alone.files, alone.lines, alone.rows, alone.quarantined, alone.partitions)
    assert batched.quarantined > 0
    assert lake_rows(tmp_path / "batched") == lake_rows(tmp_path / "alone")
    assert manifests(tmp_path / "batched") == manifests(tmp_path / "alone")
    assert quarantine(tmp_path / "batched") == quarantine(tmp_path / "alone")
    files = open_local_lake(tmp_path / "batched").visible_files()
    assert len(files) == len(batched.partitions) < batched.files  # one file per partition-hour, not per object
    for path in sorted((tmp_path / "batched" / "manifests").glob("*.json")):
        listed = json.loads(path.read_text())["files"]
        assert listed and all((tmp_path / "batched" / key).is_file() for key in listed)


def test_re_ingest_in_either_mode_keeps_every_row_once(day: list[Path], tmp_path: Path) -> None:
    paths = [str(p) for p in day]
    reference = tmp_path / "reference"
    ingest_paths(paths, reference, batch=False)
    expected = lake_rows(reference)
    lake = tmp_path / "lake"
    ingest_paths(paths, lake, batch=True)
    ingest_paths(paths, lake, batch=True)  # again, in batches
    assert lake_rows(lake) == expected
    ingest_paths(paths[:7], lake, batch=False)  # some alone (their rows sit in batch files)
    assert lake_rows(lake) == expected
    ingest_paths(paths, lake, jobs=2, batch=True)
    assert lake_rows(lake) == expected
    assert manifests(lake) == manifests(reference)


def test_a_changed_object_replaces_its_rows_when_re_ingested_in_a_batch(tmp_path: Path) -> None:
    first = [log_object(i, [at_time(DOC_LINE, 1 + i % 2, i)]) for i in range(6)]
    changed = log_object(0, [at_time(DOC_LINE, 5, 30), at_time(DOC_LINE, 5, 31), "junk"])  # moved to hour 5
    lake_dir = tmp_path / "lake"
    lake = open_local_lake(lake_dir)
    assert all(isinstance(o, IngestedObject) for o in ingest_batch(first, lake))
    outcomes = ingest_batch([changed, *first[1:]], lake)
    assert all(isinstance(o, IngestedObject) for o in outcomes)
    minutes = Counter(row[1].minute for row in lake_rows(lake_dir))  # type: ignore[attr-defined]
    assert minutes == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 30: 1, 31: 1})
    assert (lake_dir / "quarantine").exists() and len(quarantine(lake_dir)) == 1


def test_an_object_leaving_an_hour_its_batch_rewrites_is_removed_by_that_one_rewrite(tmp_path: Path) -> None:
    """Object 0 moves from hour 1 to hour 5 while its batch rewrites hour 1 for objects 2 and 4: that rewrite
    drops object 0's rows there too, so hour 1 gets one new generation, not two."""
    first = [log_object(i, [at_time(DOC_LINE, 1 + i % 2, i)]) for i in range(6)]
    moved = log_object(0, [at_time(DOC_LINE, 5, 30)])
    lake_dir = tmp_path / "lake"

    def generations() -> dict[str, int]:
        states = sorted((lake_dir / "compaction" / "state").rglob("hour=*.json"))
        return {path.name: json.loads(path.read_text())["generation"] for path in states}

    ingest_batch(first, open_local_lake(lake_dir))
    before = generations()
    outcomes = ingest_batch([moved, *first[1:]], open_local_lake(lake_dir))
    assert all(isinstance(o, IngestedObject) for o in outcomes)
    after = generations()
    assert after["hour=01.json"] == before["hour=01.json"] + 1
    assert after["hour=02.json"] == before["hour=02.json"] + 1
    minutes = Counter(row[1].minute for row in lake_rows(lake_dir))  # type: ignore[attr-defined]
    assert minutes == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 30: 1})


def test_a_failing_object_fails_alone_and_a_failed_commit_fails_its_batch(tmp_path: Path) -> None:
    good = [log_object(i, [at_time(DOC_LINE, 1, i)]) for i in range(3)]
    broken = MemoryObject("AWSLogs/x/broken.log.gz", b"\x1f\x8b\x08\x00garbage")
    lake = open_local_lake(tmp_path / "lake")
    outcomes = ingest_batch([good[0], broken, good[1], good[2]], lake)
    assert isinstance(outcomes[1], Failure) and "broken.log.gz" in outcomes[1].name
    assert [isinstance(o, IngestedObject) for o in outcomes] == [True, False, True, True]

    def failing_commit(batch: object) -> list[object]:
        raise OSError("disk full")

    lake.commit_batch = failing_commit  # type: ignore[assignment,method-assign]
    outcomes = ingest_batch(good, lake)
    assert all(isinstance(o, Failure) and o.reason == "OSError: disk full" for o in outcomes)
    assert not list((tmp_path / "lake" / ".staging").iterdir())  # nothing staged is left behind


def test_a_batch_commit_stopped_part_way_reports_its_complete_objects_as_ingested(tmp_path: Path) -> None:
    """The third object's manifest cannot be written: the two before it are complete (rows live, manifests
    written) and reported so; the third and the rest fail. A retry of the failed ones gives the lake that one
    commit of all of them gives."""
    objects = [log_object(i, [at_time(DOC_LINE, 1 + i % 2, i)]) for i in range(6)]
    lake_dir = tmp_path / "lake"
    manifests_written: list[str] = []

    class FullAtTheThirdManifest(LocalStore):
        def put_bytes(self, key: str, content: bytes) -> None:
            if key.startswith("manifests/"):
                if len(manifests_written) == 2:
                    raise OSError("disk full")
                manifests_written.append(key)
            super().put_bytes(key, content)

    outcomes = ingest_batch(objects, open_lake(FullAtTheThirdManifest(lake_dir)))
    assert [isinstance(o, IngestedObject) for o in outcomes] == [True, True, False, False, False, False]
    assert all(o.reason == "OSError: disk full" for o in outcomes if isinstance(o, Failure))
    assert sorted(p.name for p in (lake_dir / "manifests").glob("*.json")) == sorted(
        k.removeprefix("manifests/") for k in manifests_written)
    retried = ingest_batch(objects[2:], open_local_lake(lake_dir))
    stopped = pickle.loads(pickle.dumps(BatchCommitError({0: CommitResult(["k"])}, OSError("disk full"))))
    assert (stopped.completed, str(stopped), str(stopped.cause)) == ({0: CommitResult(["k"])}, "disk full", "disk full")
    assert all(isinstance(o, IngestedObject) for o in retried)
    ingest_batch(objects, open_local_lake(tmp_path / "reference"))
    assert lake_rows(lake_dir) == lake_rows(tmp_path / "reference")
    assert manifests(lake_dir) == manifests(tmp_path / "reference")


def test_a_batch_that_cannot_be_converted_ingests_each_object_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = [log_object(i, [at_time(DOC_LINE, 1, i)]) for i in range(3)]

    def broken_parse(*args: object, **kwargs: object) -> None:
        raise MemoryError("no memory for the joined text")

    monkeypatch.setattr("alblake.convert.core.parse_block", broken_parse)
    with pytest.raises(MemoryError):
        convert_batch([(o.open, o.source_id) for o in objects], tmp_path)
    monkeypatch.undo()
    monkeypatch.setattr("alblake.ingest.runner.convert_batch", lambda *a: broken_parse())
    outcomes = ingest_batch(objects, open_local_lake(tmp_path / "lake"))
    assert all(isinstance(o, IngestedObject) and o.rows == 1 for o in outcomes)
    assert len(lake_rows(tmp_path / "lake")) == 3


def test_a_repeated_object_in_one_batch_ends_as_in_order(tmp_path: Path) -> None:
    first = log_object(0, [at_time(DOC_LINE, 1, 1), at_time(DOC_LINE, 1, 2)])
    again = MemoryObject(first.source_id, gzip.compress(f"{at_time(DOC_LINE, 1, 9)}\n".encode(), mtime=0))
    other = log_object(1, [at_time(DOC_LINE, 1, 3)])
    conversion = convert_batch([(o.open, o.source_id) for o in (first, other, again)], tmp_path)
    assert conversion.converted == [0, 1] and conversion.alone == [2]
    conversion.batch.discard()
    outcomes = ingest_batch([first, other, again], open_local_lake(tmp_path / "lake"))
    assert [o.rows for o in outcomes if isinstance(o, IngestedObject)] == [2, 1, 1]
    minutes = sorted(row[1].minute for row in lake_rows(tmp_path / "lake").elements())  # type: ignore[attr-defined]
    assert minutes == [3, 9]  # the later copy replaced the earlier, nothing twice


def test_plan_batches_small_objects_in_name_order_then_the_others(tmp_path: Path) -> None:
    def local(name: str, size: int) -> LocalFile:
        return LocalFile(tmp_path / name, size, f"AWSLogs/{name}")

    small = [local(f"lb_2018070{9 - i % 3}T0{i % 10}05Z_{i}.log.gz", 100) for i in range(BATCH_MIN_OBJECTS)]
    big = local("big.log.gz", 50 << 20)
    objects = [*small, big, small[0]]  # the same object twice: the second in a later wave
    plan = plan_tasks(objects, batch=None, jobs=2)
    batches, alone, repeated = plan  # batches first, then objects alone, then the repeated source id
    assert alone == [[len(objects) - 2]] and repeated == [[len(objects) - 1]]
    batched = [i for task in batches for i in task]
    assert sorted(batched) == list(range(BATCH_MIN_OBJECTS))
    names = [objects[i].source_id for i in batched]
    assert names == sorted(names)
    assert len(batches) >= 4  # several per process
    assert all(len(task) == 1 for tasks in plan_tasks(small[:-1], batch=None, jobs=2) for task in tasks)
    assert all(len(task) == 1 for tasks in plan_tasks(objects, batch=False, jobs=2) for task in tasks)


def test_plan_keeps_hours_whole_and_an_oversized_hour_s_rest_for_after_the_batches(tmp_path: Path) -> None:
    def alb(lb: str, end: str, node: int) -> LocalFile:
        name = f"123456789012_elasticloadbalancing_us-east-1_app.{lb}.50dc6c495c0c9188_{end}_10.0.0.{node}_x.log.gz"
        return LocalFile(tmp_path / name, 1000, f"AWSLogs/123456789012/elasticloadbalancing/us-east-1/{name}")

    busy = [alb("busy", f"20260101T10{m:02d}Z", n) for m in range(5, 60, 5) for n in range(30)]  # 330 in hour 10
    quiet = [alb("quiet", f"20260101T{h:02d}{m:02d}Z", 1) for h in (10, 11) for m in range(5, 60, 5)]
    quiet.append(alb("quiet", "20260101T1200Z", 1))  # the interval ending at 12:00 belongs to hour 11
    objects = [*quiet, *busy]
    batches, alone = plan_tasks(objects, batch=True, jobs=2)
    hour_of_batch = [{(objects[i].source_id.split(".")[1], objects[i].source_id.split("_")[-3][:11]) for i in task}
                     for task in batches]
    assert sorted(len(task) for task in batches) == [11 + 12, BATCH_MAX_OBJECTS]  # whole hours: 10, 11 together
    assert all(len(hours) == 1 or hours <= {("quiet", "20260101T10"), ("quiet", "20260101T11"),
                                            ("quiet", "20260101T12")} for hours in hour_of_batch)
    assert len(alone) == len(busy) - BATCH_MAX_OBJECTS


def test_pool_with_batches_gives_the_lake_of_one_process(day: list[Path], tmp_path: Path) -> None:
    objects: list[LocalFile] = [LocalFile.at(p) for p in day]
    progress: list[int] = []
    serial = ingest_objects(objects, tmp_path / "serial", jobs=1, batch=True)
    parallel = ingest_objects(objects, tmp_path / "parallel", jobs=2, batch=True,
                              progress=lambda p: progress.append(p.objects_done))
    assert progress == list(range(1, len(objects) + 1))
    assert (parallel.files, parallel.rows, parallel.quarantined) == (serial.files, serial.rows, serial.quarantined)
    assert lake_rows(tmp_path / "parallel") == lake_rows(tmp_path / "serial")
    assert manifests(tmp_path / "parallel") == manifests(tmp_path / "serial")



def test_cli_batch_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from alblake.cli import main

    logs = tmp_path / "logs"
    assert main(["sample", "--out", str(logs), "--files", "6", "--lines", "200"]) == 0
    (logs / "corrupt.log.gz").write_bytes(b"\x1f\x8bnot really gzip")
    for mode in ("--batch", "--no-batch"):
        capsys.readouterr()
        assert main(["ingest", str(logs), "--lake", str(tmp_path / mode), mode, "--quiet"]) == 1
        captured = capsys.readouterr()
        assert "files        6 converted, 1 failed" in captured.out
        assert "corrupt.log.gz: not a valid gzip stream" in captured.err
    assert lake_rows(tmp_path / "--batch") == lake_rows(tmp_path / "--no-batch")
    batched = open_local_lake(tmp_path / "--batch").visible_files()
    alone = open_local_lake(tmp_path / "--no-batch").visible_files()
    assert all("/compacted/" in f for f in batched) and not any("/compacted/" in f for f in alone)
    assert len(batched) < len(alone)


def test_a_process_killed_inside_a_batch_fails_objects_and_not_the_command(day: list[Path], tmp_path: Path) -> None:
    from tests.ingest_helpers import KillsItsWorker

    objects: list[LogObject] = [*[LocalFile.at(p) for p in day[:40]], KillsItsWorker(tmp_path / "killer.log")]
    summary = ingest_objects(objects, tmp_path / "lake", jobs=2, batch=True)  # this process survives
    assert summary.files + len(summary.failures) == len(objects)
    assert any(name.endswith("killer.log") for name, _ in summary.failures)
    assert all("a worker process died" in reason for _, reason in summary.failures)


def test_an_oversized_hour_gets_one_batch_and_its_other_objects_after_it(
    day: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [str(p) for p in day]
    ingest_paths(paths, tmp_path / "alone", batch=False)
    monkeypatch.setattr("alblake.ingest.planning.BATCH_MAX_OBJECTS", 8)  # hours of 12-24 objects are oversized now
    summary = ingest_paths(paths, tmp_path / "mixed", batch=True, jobs=2)
    assert not summary.failures
    assert lake_rows(tmp_path / "mixed") == lake_rows(tmp_path / "alone")
    assert manifests(tmp_path / "mixed") == manifests(tmp_path / "alone")
