"""Ingestion: the one core call (``ingest_object``: convert -> commit -> discard) and the local use case
(log files on disk -> a lake directory). The Lambda use case (``alblake.aws.pipeline``) calls
``ingest_object`` too.
"""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from alblake.convert import convert_stream
from alblake.errors import InputError
from alblake.lake import open_local_lake
from alblake.lake.layout import Partition
from alblake.ports import CommitResult, Lake
from alblake.source import BLOCK_SIZE

LOG_SUFFIXES = (".log", ".log.gz")


@dataclass(frozen=True)
class IngestedObject:
    """What ingesting one object did: its counts and what its commit changed in the lake."""

    source_id: str
    lines: int
    rows: int
    quarantined: int
    bytes_in: int
    text_bytes: int
    max_time: datetime | None
    partitions: list[Partition]
    commit: CommitResult


def ingest_object(
    open_stream: Callable[[], BinaryIO], source_id: str, lake: Lake, *, block_size: int = BLOCK_SIZE
) -> IngestedObject:
    """Convert the object ``open_stream()`` reads and commit it to ``lake``; the staged files are always removed.

    Raises ``InputError`` for an object that can never be converted (nothing of it is committed) and lets
    store/catalog errors through (a retry of the same object is safe: commits replace, never add).
    """
    with open_stream() as stream:
        staged = convert_stream(stream, source_id, lake.staging_dir(), block_size=block_size)
    try:
        commit = lake.commit(staged)
    finally:
        staged.discard()
    return IngestedObject(
        source_id=source_id,
        lines=staged.lines,
        rows=staged.rows,
        quarantined=staged.quarantined,
        bytes_in=staged.bytes_in,
        text_bytes=staged.text_bytes,
        max_time=staged.max_time,
        partitions=staged.partitions,
        commit=commit,
    )


@dataclass
class IngestSummary:
    files: int = 0
    lines: int = 0
    rows: int = 0
    quarantined: int = 0
    bytes_in: int = 0
    text_bytes: int = 0
    seconds: float = 0.0
    partitions: set[str] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, ingested: IngestedObject) -> None:
        self.files += 1
        self.lines += ingested.lines
        self.rows += ingested.rows
        self.quarantined += ingested.quarantined
        self.bytes_in += ingested.bytes_in
        self.text_bytes += ingested.text_bytes
        self.partitions.update(p.path for p in ingested.partitions)


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Files named directly, matched by a glob, or found (``*.log``, ``*.log.gz``) under a directory."""
    found: list[Path] = []
    for pattern in patterns:
        matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]  # noqa: PTH207
        if not matches:  # reported by ingest_paths: "no such file" or "no file matches"
            matches = [Path(pattern)]
        for path in matches:
            if path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES)))
            else:
                found.append(path)
    return list(dict.fromkeys(found))


def local_source_id(path: Path) -> str:
    """Identity of a local log file for output naming: from 'AWSLogs/' on when the path has it (a copy of the
    bucket layout, so the same ALB object ingested from two directories replaces itself), else the full path."""
    resolved = path.resolve().as_posix()
    marker = resolved.find("/AWSLogs/")
    return resolved[marker + 1 :] if marker >= 0 else resolved


def ingest_paths(
    paths: Iterable[str], lake_dir: Path, *, progress: Callable[[int, int], None] | None = None
) -> IngestSummary:
    """Ingest every file into the lake in ``lake_dir``. A bad file is reported in ``failures`` and does not stop
    the rest."""
    files = expand_paths(paths)
    lake = open_local_lake(lake_dir)
    summary = IngestSummary()
    started = time.perf_counter()
    for index, path in enumerate(files, start=1):
        try:
            summary.add(ingest_object(_opener(path), local_source_id(path), lake))
        except FileNotFoundError:
            is_pattern = any(char in str(path) for char in "*?[")
            summary.failures.append((str(path), "no file matches this pattern" if is_pattern else "no such file"))
        except IsADirectoryError:
            summary.failures.append((str(path), "is a directory"))
        except InputError as exc:
            summary.failures.append((str(path), str(exc)))
        if progress is not None:
            progress(index, len(files))
    summary.seconds = time.perf_counter() - started
    return summary


def _opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


def progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
