"""Compaction that cannot stall: any error stays with its partition, hours too large for one step are compacted
in steps, runs that die inside a partition push it to the end and then leave it to an operator, and extreme
timestamps do not break the arithmetic."""

from __future__ import annotations

import errno
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alblake.cli import main
from alblake.lake.compaction import MAX_DEATHS, CompactionOptions, compact
from alblake.lake.derived import default_derived_tables
from alblake.lake.generational import GenerationalLake
from alblake.lake.generations import CURSOR_KEY
from alblake.lake.layout import Partition
from alblake.lake.local import LocalStore
from alblake.service.compaction import CompactConfig, CompactionPipeline, RunCursor
from tests.fakes import RecordingLogger, RecordingMetrics
from tests.log_objects import DOCUMENTED, write_objects

NOW = datetime(2018, 7, 3, tzinfo=UTC)


def lake_with_hours(tmp_path: Path, hours: tuple[int, ...] = (20, 21, 22), nodes: int = 4) -> tuple[Path, int]:
    lines = write_objects(tmp_path / "logs", range(1, nodes + 1), hours, 30)
    lake = tmp_path / "lake"
    assert main(["ingest", str(tmp_path / "logs"), "--lake", str(lake), "--quiet", "--no-batch"]) == 0
    return lake, lines


def options(**kwargs: object) -> CompactionOptions:
    return CompactionOptions(now=NOW, older_than=timedelta(0), grace=timedelta(0), **kwargs)  # type: ignore[arg-type]


class DiskFullIn(LocalStore):
    """A store whose downloads of one hour fail as a full /tmp does."""

    def __init__(self, root: Path, hour: str) -> None:
        super().__init__(root)
        self.hour = hour

    def download(self, key: str, local_path: Path) -> None:
        if f"/hour={self.hour}/" in key:
            raise OSError(errno.ENOSPC, "No space left on device", str(local_path))
        super().download(key, local_path)


def hours_compacted(lake: GenerationalLake) -> set[str]:
    return {state.partition.hour for state in lake.states() if state.generation > 0}


def test_any_error_in_one_partition_leaves_the_others_compacted(tmp_path: Path) -> None:
    root, _ = lake_with_hours(tmp_path)
    lake = GenerationalLake(DiskFullIn(root, "21"))
    report = compact(lake, options())
    assert hours_compacted(lake) == {"20", "22"}
    ((partition, message),) = report.errors
    assert partition.endswith("hour=21") and "No space left on device" in message
    assert len(report.finished) == 3


def test_an_hour_larger_than_a_step_is_compacted_in_steps_exactly_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, lines = lake_with_hours(tmp_path, hours=(21,), nodes=7)
    lake = GenerationalLake(LocalStore(root), derived=default_derived_tables())  # as every writer: with the rollup
    one_file = max(path.stat().st_size for path in root.rglob("*.parquet"))
    report = compact(lake, options(step_bytes=2 * one_file))  # two or three objects per step
    assert report.errors == []
    assert report.partitions_compacted >= 3  # steps, each a whole new generation
    (state,) = lake.states()
    assert {record.file.startswith("c-") for record in state.sources.values()} == {True}
    capsys.readouterr()
    assert main(["query", "overview", "--lake", str(root), "--csv"]) == 0
    assert f"\n{lines}," in capsys.readouterr().out
    assert main(["status", "--lake", str(root)]) == 0


def test_a_step_that_stops_early_leaves_the_partition_pending_for_the_next_run(tmp_path: Path) -> None:
    root, _ = lake_with_hours(tmp_path, hours=(21,), nodes=6)
    lake = GenerationalLake(LocalStore(root))
    one_file = max(path.stat().st_size for path in root.rglob("*.parquet"))
    calls = iter([False, True])  # before the partition: go on; after its first step: stop
    first = compact(lake, options(step_bytes=one_file, should_stop=lambda: next(calls, True)))
    assert first.partitions_compacted == 1
    (state,) = lake.states()
    assert sum(not record.file.startswith("c-") for record in state.sources.values()) == 5  # carried as they were
    second = compact(lake, options(step_bytes=1 << 30))
    assert second.partitions_compacted == 1
    (state,) = lake.states()
    assert {record.file for record in state.sources.values()} == {state.sources[next(iter(state.sources))].file}


def test_partitions_a_run_died_in_come_last_in_smaller_steps_and_are_left_after_five_deaths(tmp_path: Path) -> None:
    root, _ = lake_with_hours(tmp_path)
    lake = GenerationalLake(LocalStore(root))
    hour = Partition("my-loadbalancer", "2018-07-02", "20").path
    order: list[str] = []
    report = compact(lake, options(deaths={hour: 1}, on_partition=lambda p, cursor: order.append(p.hour)))
    assert order == ["21", "22", "20"]
    assert hours_compacted(lake) == {"20", "21", "22"} and report.errors == []

    root2, _ = lake_with_hours(tmp_path / "again")
    stuck = GenerationalLake(LocalStore(root2))
    report = compact(stuck, options(deaths={hour: MAX_DEATHS}))
    assert hours_compacted(stuck) == {"21", "22"}
    ((partition, message),) = report.errors
    assert partition == hour and "alblake compact --lake" in message


def test_the_last_hour_of_year_9999_and_the_first_of_year_1_go_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Computing the end of hour 9999-12-31T23 overflowed: the CLI printed a traceback and the compaction
    function failed every run, so no partition after it was ever compacted."""
    times = ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00.000001Z", "2018-07-02T22:23:00.186641Z"]
    log = tmp_path / "extreme.log"
    log.write_text("".join(DOCUMENTED.replace("2018-07-02T22:23:00.186641Z", t) + "\n" for t in times))
    lake = tmp_path / "lake"
    assert main(["ingest", str(log), "--lake", str(lake), "--quiet"]) == 0
    shutil.copy(log, tmp_path / "again.log")
    assert main(["ingest", str(tmp_path / "again.log"), "--lake", str(lake), "--quiet"]) == 0
    assert main(["compact", "--lake", str(lake), "--older-than", "0"]) == 0
    capsys.readouterr()
    assert main(["query", "overview", "--lake", str(lake), "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("6,")
    assert main(["status", "--lake", str(lake)]) == 0
    genlake = GenerationalLake(LocalStore(lake))
    assert {s.partition.day for s in genlake.states() if s.generation > 0} == {"0001-01-01", "2018-07-02"}


class KilledError(BaseException):
    """The function killed (time limit, memory, a full /tmp): nothing after it runs, nothing can handle it."""


class KillerStore(LocalStore):
    """A store whose process dies at the first download of one hour, while ``armed``."""

    def __init__(self, root: Path, hour: str) -> None:
        super().__init__(root)
        self.hour = hour
        self.armed = True

    def download(self, key: str, local_path: Path) -> None:
        if self.armed and f"/hour={self.hour}/" in key:
            raise KilledError(key)
        super().download(key, local_path)


def test_a_run_killed_inside_a_partition_makes_the_next_run_take_the_others_first(tmp_path: Path) -> None:
    """The cursor was saved only at the end of a run: a run killed inside one partition restarted there every
    time, so the partitions after it were never compacted."""
    root, _ = lake_with_hours(tmp_path)
    store = KillerStore(root, "20")
    lake = GenerationalLake(store)
    config = CompactConfig(lake_bucket="unused", glue_database="unused", older_than=timedelta(0), grace=timedelta(0))
    logger, metrics = RecordingLogger(), RecordingMetrics()
    pipeline = CompactionPipeline(config=config, lake=lake, logger=logger, metrics=metrics, clock=lambda: NOW)
    with pytest.raises(KilledError):
        pipeline.run(lambda: 900_000)
    assert hours_compacted(lake) == set()
    cursor = RunCursor.from_json(store.get(CURSOR_KEY))
    assert cursor.in_progress.endswith("hour=20")

    with pytest.raises(KilledError):  # the next run: the other hours first, then hour 20 (and it dies again)
        pipeline.run(lambda: 900_000)
    assert hours_compacted(lake) == {"21", "22"}
    assert RunCursor.from_json(store.get(CURSOR_KEY)).deaths == {cursor.in_progress: 1}

    store.armed = False  # smaller steps fit at last
    pipeline.run(lambda: 900_000)
    assert hours_compacted(lake) == {"20", "21", "22"}
    assert RunCursor.from_json(store.get(CURSOR_KEY)) == RunCursor()

