"""Parallel ingest: a process pool gives the same lake as one process, file for file and byte for byte."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from alblake.ingest.runner import Progress, ingest_objects, ingest_paths
from alblake.ingest.selection import select_local
from alblake.sample import write_sample_logs
from tests.ingest_helpers import KillsItsWorker


def lake_files(lake: Path) -> dict[str, bytes]:
    return {
        p.relative_to(lake).as_posix(): p.read_bytes()
        for p in sorted(lake.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(lake).parts)
    }


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logs")
    write_sample_logs(root, files=24, lines_per_file=150, malformed_every=41,
                      start=datetime(2026, 5, 1, 22, 0, tzinfo=UTC))
    return root


def test_pool_and_one_process_write_identical_lakes(logs: Path, tmp_path: Path) -> None:
    serial = ingest_paths([str(logs)], tmp_path / "serial", jobs=1)
    parallel = ingest_paths([str(logs)], tmp_path / "parallel", jobs=3)
    assert (parallel.files, parallel.lines, parallel.rows, parallel.quarantined) == (
        serial.files, serial.lines, serial.rows, serial.quarantined)
    assert parallel.partitions == serial.partitions and len(serial.partitions) > 1
    assert serial.quarantined > 0 and serial.lines == serial.rows + serial.quarantined
    serial_files, parallel_files = lake_files(tmp_path / "serial"), lake_files(tmp_path / "parallel")
    assert any(name.endswith(".parquet") for name in serial_files)
    assert any(name.startswith("quarantine/") for name in serial_files)
    assert parallel_files == serial_files


def test_the_same_object_twice_ends_as_in_a_serial_run(logs: Path, tmp_path: Path) -> None:
    """Two copies of one ALB object (same source id) never run at once: the later one replaces the earlier."""
    shutil.copytree(logs, tmp_path / "copy")
    paths = [str(logs), str(tmp_path / "copy")]
    serial = ingest_paths(paths, tmp_path / "serial", jobs=1)
    parallel = ingest_paths(paths, tmp_path / "parallel", jobs=2)
    assert serial.files == parallel.files == 48
    assert lake_files(tmp_path / "parallel") == lake_files(tmp_path / "serial")


def test_progress_counts_objects_and_bytes(logs: Path, tmp_path: Path) -> None:
    seen: list[Progress] = []
    selection = select_local([str(logs)])
    ingest_objects(selection.objects, tmp_path / "lake", jobs=2, progress=seen.append)
    total = sum(o.size for o in selection.objects)
    assert [p.objects_done for p in seen] == list(range(1, 25))
    assert seen[-1] == Progress(24, 24, total, total)
    assert all(a.bytes_done < b.bytes_done for a, b in pairwise(seen))


def test_a_dead_worker_fails_the_objects_without_a_result_and_nothing_else(logs: Path, tmp_path: Path) -> None:
    good = select_local([str(logs)]).objects[:3]
    summary = ingest_objects([*good, KillsItsWorker(tmp_path / "killer.log")], tmp_path / "lake", jobs=2)
    assert summary.files + len(summary.failures) == 4
    assert any(name.endswith("killer.log") for name, _ in summary.failures)
    assert all("a worker process died" in reason for _, reason in summary.failures)


def test_the_console_command_with_a_pool_writes_the_lake_one_process_writes(logs: Path, tmp_path: Path) -> None:
    """``alblake ingest`` as a user runs it (a fresh process, through the console script's module)."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    assert [e.value for e in entry_points(group="console_scripts", name="alblake")] == ["alblake.__main__:main"]
    command = [sys.executable, "-m", "alblake", "ingest", str(logs), "--lake", str(tmp_path / "command"), "--quiet"]
    done = subprocess.run([*command, "--jobs", "2"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "files        24 converted, 0 failed" in done.stdout
    ingest_paths([str(logs)], tmp_path / "serial", jobs=1)
    assert lake_files(tmp_path / "command") == lake_files(tmp_path / "serial")
