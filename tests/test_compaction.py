"""Compaction on local lakes: the merge, `alblake compact`, `alblake status`, foreign and corrupt files."""

from __future__ import annotations

import errno
import gzip
import io
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from alblake.analysis import run_query
from alblake.cli import main
from alblake.ingest.runner import ingest_paths
from alblake.lake.generational import open_local_lake
from alblake.lake.local import LocalStore
from alblake.lake.merge import MergeInput, merge_sorted, read_lineage
from alblake.ports import ConditionFailedError
from alblake.sample import write_sample_day, write_sample_logs
from alblake.schema import ARROW_SCHEMA


def _status(lake: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", "--lake", str(lake), "--json"]) == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    return body


def _requests(lake: Path) -> int:
    return int(run_query("overview", lake).column("requests")[0].as_py())


def test_compact_then_status_and_query_count_every_row_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = write_sample_logs(tmp_path / "logs", files=30, lines_per_file=300)
    lake = tmp_path / "lake"
    summary = ingest_paths([str(tmp_path / "logs")], lake)
    before = _status(lake, capsys)
    assert before["visible_files"] == 30 and before["rows"] == summary.rows
    assert main(["compact", "--lake", str(lake)]) == 0
    after = _status(lake, capsys)
    assert after["visible_files"] == after["partitions"] == len(summary.partitions)
    assert after["rows"] == summary.rows == _requests(lake)
    assert after["quarantined"] == summary.quarantined

    # one compacted object again, now with its first 100 lines only: its rows are replaced, not added
    victim = logs[4]
    old_rows = ingest_paths([str(victim)], tmp_path / "scratch").rows
    lines = gzip.decompress(victim.read_bytes()).decode().splitlines(keepends=True)
    victim.write_bytes(gzip.compress("".join(lines[:100]).encode()))
    new_rows = ingest_paths([str(victim)], lake).rows
    assert 0 < new_rows < old_rows
    expected = summary.rows - old_rows + new_rows
    assert _requests(lake) == expected
    assert main(["compact", "--lake", str(lake), "--grace", "0"]) == 0
    final = _status(lake, capsys)
    assert final["visible_files"] == final["partitions"]
    assert final["rows"] == _requests(lake) == expected


def test_status_reports_gaps_late_objects_and_quarantine_by_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = write_sample_day(tmp_path / "logs", nodes_per_lb=(1, 0, 0), lines_per_object=40, malformed_every=13)
    assert len(logs) == 288
    missing = logs[100]  # one node, one interval: a gap
    late = logs[200]
    lake = tmp_path / "lake"
    ingest_paths([str(p) for p in logs if p not in (missing, late)], lake)
    assert main(["compact", "--lake", str(lake), "--older-than", "0"]) == 0
    ingest_paths([str(late)], lake)  # into a compacted hour
    body = _status(lake, capsys)
    web = body["load_balancers"]["web-prod"]
    assert web["objects"] == 287
    assert web["gaps"] == 1 and web["late_objects"] == 1
    assert web["first_time"].startswith("2026-11-24T00:00")
    assert web["last_time"].startswith("2026-11-24T23:5")
    assert body["quarantined"] == sum(body["quarantined_by_reason"].values()) > 0
    assert body["rows"] + body["quarantined"] == 287 * 40


def test_a_foreign_file_names_itself_and_blocks_only_its_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sample_logs(tmp_path / "logs", files=6, lines_per_file=50)
    lake = tmp_path / "lake"
    ingest_paths([str(tmp_path / "logs")], lake)
    files = sorted((lake / "alb_logs").rglob("*.parquet"))
    foreign = files[0].parent / "exported-by-someone.parquet"
    pq.write_table(pa.table({"x": [1]}), foreign)
    capsys.readouterr()
    assert main(["compact", "--lake", str(lake)]) == 1
    err = capsys.readouterr().err
    assert "exported-by-someone.parquet" in err and "not a file this lake wrote" in err
    live = open_local_lake(lake).visible_files()
    assert sum(1 for f in live if "/compacted/" in f) == len({Path(f).parent.parent for f in files}) - 1


def test_a_corrupt_file_names_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sample_logs(tmp_path / "logs", files=3, lines_per_file=50)
    lake = tmp_path / "lake"
    ingest_paths([str(tmp_path / "logs")], lake)
    victim = sorted((lake / "alb_logs").rglob("*.parquet"))[0]
    victim.write_bytes(b"PAR1 this is not a parquet file PAR1")
    capsys.readouterr()
    assert main(["compact", "--lake", str(lake)]) == 1
    assert victim.name in capsys.readouterr().err


def _table(times: list[int], tag: str) -> pa.Table:
    columns = {}
    for field in ARROW_SCHEMA:
        if field.name == "time":
            columns[field.name] = pa.array(times, pa.int64()).cast(field.type)
        elif field.name == "request_url":
            columns[field.name] = pa.array([f"{tag}/{i}" for i in range(len(times))], field.type)
        else:
            columns[field.name] = pa.nulls(len(times), field.type)
    return pa.table(columns, schema=ARROW_SCHEMA)


def test_merge_with_runs_sorts_keeps_every_row_and_records_lineage(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    inputs = []
    expected: Counter[str] = Counter()
    for index in range(6):
        times = (
            sorted(rng.integers(0, 3_600_000_000, 700).tolist())[::-1]
            if index % 2
            else rng.integers(0, 3_600_000_000, 700).tolist()
        )
        path = tmp_path / f"in-{index}.parquet"
        pq.write_table(_table(times, f"s{index}"), path)
        inputs.append(MergeInput(f"in-{index}", path, [f"s{index}"]))
        expected.update(f"s{index}/{i}" for i in range(700))
    out = tmp_path / "out"
    out.mkdir()
    # small runs and chunks force the external path (runs on disk, k-way merge); small files force a split
    result = merge_sorted(inputs, out, "tok", run_rows=500, chunk_rows=64, max_file_bytes=20_000, group_rows=256)
    assert len(result.files) > 1
    seen: Counter[str] = Counter()
    previous = None
    for file in result.files:
        table = pq.read_table(file.data_path)
        assert table.schema.equals(ARROW_SCHEMA, check_metadata=False)
        times = table.column("time").cast(pa.int64()).to_numpy()
        assert (np.diff(times) >= 0).all() and (previous is None or times[0] >= previous)
        previous = times[-1]
        stems, lineage = read_lineage(file.lineage_path, file.data_path.name)
        urls = table.column("request_url").to_pylist()
        assert [stems[i] for i in lineage] == [u.split("/")[0] for u in urls]
        seen.update(urls)
    assert seen == expected and result.rows == 4200
    assert result.rows_by_stem == Counter({f"s{i}": 700 for i in range(6)})
    # a rewrite that excludes one source from a compacted input drops exactly its rows
    stems, lineage = read_lineage(result.files[0].lineage_path, "first")
    again = tmp_path / "again"
    again.mkdir()
    compacted = MergeInput("c", result.files[0].data_path, stems, lineage, exclude=frozenset({"s3"}))
    rewritten = merge_sorted([compacted], again, "tok2")
    kept = pq.read_table(rewritten.files[0].data_path).column("request_url")
    assert not pc.any(pc.starts_with(kept, "s3/")).as_py()
    assert rewritten.rows == result.files[0].rows - Counter(stems[i] for i in lineage)["s3"]


def test_local_compare_and_swap_lets_exactly_one_writer_win(tmp_path: Path) -> None:
    """Eight threads increment a counter by compare-and-swap: no increment is lost."""
    store = LocalStore(tmp_path)
    store.put_bytes_if("counter", b"0", None)

    def increment(_: int) -> int:
        conflicts = 0
        while True:
            current = store.get_versioned("counter")
            assert current is not None
            try:
                store.put_bytes_if("counter", str(int(current.content) + 1).encode(), current.tag)
                return conflicts
            except ConditionFailedError:
                conflicts += 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(increment, range(200)))
    assert store.get("counter") == b"200"
    with pytest.raises(ConditionFailedError):
        store.put_bytes_if("counter", b"x", None)


def test_an_hour_split_into_several_compacted_files_is_not_compacted_again(tmp_path: Path) -> None:
    """Above the size limit an hour becomes several compacted files; the next runs must leave it alone (they
    rewrote it on every run, and FilesRemoved went negative)."""
    from datetime import UTC, datetime, timedelta

    from alblake.ingest.core import ingest_object
    from alblake.lake.compaction import CompactionOptions, compact
    from alblake.lake.generational import GenerationalLake
    from tests.parse_helpers import DOC_LINE

    lake = GenerationalLake(LocalStore(tmp_path), max_file_bytes=2_000)
    data = gzip.compress(((DOC_LINE + "\n") * 70_000).encode())
    for node in range(4):
        ingest_object(lambda: io.BytesIO(data), f"node-{node}.log.gz", lake)
    options = CompactionOptions(now=datetime.now(UTC), older_than=timedelta(0), grace=timedelta(days=1))
    first = compact(lake, options)
    assert first.partitions_compacted == 1
    files = lake.visible_files()
    assert len(files) > 1  # split
    for _ in range(2):
        again = compact(lake, options)
        assert (again.partitions_compacted, again.files_removed) == (0, 0)
        assert lake.visible_files() == files
    assert sum(pq.read_metadata(f).num_rows for f in files) == 280_000


def test_compacting_an_s3_lake_needs_its_glue_database(capsys: pytest.CaptureFixture[str]) -> None:
    """Without it the Glue Locations would stay behind and Athena would read emptied folders after the grace."""
    assert main(["compact", "--lake", "s3://lake-bucket/x"]) == 2
    assert "give --glue-database" in capsys.readouterr().err


def test_a_denied_partition_state_is_an_error_not_a_missing_one() -> None:
    """A 403 on a state must fail the commit: read as "never compacted", rows would land in a dead folder."""
    import boto3
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    from alblake.aws.s3 import S3Store

    client = boto3.client("s3", region_name="us-east-1")
    store = S3Store(client, "lake")
    with Stubber(client) as stub:
        stub.add_client_error("get_object", "AccessDenied", http_status_code=403)
        with pytest.raises(ClientError, match="AccessDenied"):
            store.get_versioned("compaction/state/x.json")
        stub.add_client_error("get_object", "NoSuchKey", http_status_code=404)
        assert store.get_versioned("compaction/state/x.json") is None
        stub.add_client_error("get_object", "AccessDenied", http_status_code=403)
        assert store.get("manifests/x.json") is None  # a manifest: fail-safe "none"


def test_a_failed_local_put_leaves_no_hidden_temporary_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "compaction" / "state.json").mkdir(parents=True)  # the rename onto it fails
    with pytest.raises(OSError):
        store.put_bytes("compaction/state.json", b"{}")
    assert [p.name for p in (tmp_path / "compaction").iterdir()] == ["state.json"]


def test_a_local_put_makes_folders_moves_across_filesystems_and_names_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "lake")
    staged = tmp_path / "a.parquet"
    staged.write_bytes(b"one")
    store.put_file("alb_logs/x=1/a.parquet", staged)  # the folders do not exist yet
    assert store.get("alb_logs/x=1/a.parquet") == b"one" and not staged.exists()
    real_replace = Path.replace

    def replace_across_devices(self: Path, target: Path) -> Path:
        if self == staged:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", replace_across_devices)
    staged.write_bytes(b"two")
    store.put_file("alb_logs/x=2/b.parquet", staged)
    assert store.get("alb_logs/x=2/b.parquet") == b"two" and not staged.exists()
    assert [p.name for p in (tmp_path / "lake" / "alb_logs" / "x=2").iterdir()] == ["b.parquet"]
    with pytest.raises(FileNotFoundError):
        store.put_file("alb_logs/x=3/c.parquet", staged)  # gone


def test_a_partition_state_keeps_every_field_through_its_json() -> None:
    """The state is written field by field (json's C encoder): a field added to a record must be written too."""
    from dataclasses import fields

    from alblake.lake.generations import PartitionState, RetiredFolder, SourceRecord
    from alblake.lake.layout import Partition

    partition = Partition("app.web.1a2b", "2026/11/24", "09")
    record = SourceRecord(digest="d" * 64, rows=7, file="c-ab12-000.parquet", late=True)
    state = PartitionState(
        partition,
        generation=3,
        live="data/x/g3-ab12/",
        sources={"stem-b": record, "stem-a": SourceRecord("", 1, "stem-a.parquet")},
        retired=[RetiredFolder("data/x/g2-cd34/", "2026-11-24T10:00:00+00:00")],
        compacted_at="2026-11-24T11:00:00+00:00",
        revision=9,
    )
    content = state.to_json()
    assert PartitionState.from_json(content, "state") == state
    body = json.loads(content)
    assert set(body["sources"]["stem-b"]) == {f.name for f in fields(SourceRecord)}
    assert set(body["retired"][0]) == {f.name for f in fields(RetiredFolder)}
    assert content.count(b"\n") == 1 and content == state.to_json()  # one line, the same bytes every time
