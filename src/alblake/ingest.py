"""Local ingestion: log files on disk -> a Parquet lake directory."""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from alblake.convert import ConversionResult, convert_stream, discard, publish
from alblake.errors import InputError
from alblake.sinks import LocalLakeSink

LOG_SUFFIXES = (".log", ".log.gz")


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

    def add(self, result: ConversionResult) -> None:
        self.files += 1
        self.lines += result.lines
        self.rows += result.rows
        self.quarantined += result.quarantined
        self.bytes_in += result.bytes_in
        self.text_bytes += result.text_bytes
        self.partitions.update(p.path for p in result.partitions)


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


def source_id(path: Path) -> str:
    """Identity of a local log file for output naming: from 'AWSLogs/' on when the path has it (a copy of the
    bucket layout, so the same ALB object ingested from two directories replaces itself), else the full path."""
    resolved = path.resolve().as_posix()
    marker = resolved.find("/AWSLogs/")
    return resolved[marker + 1 :] if marker >= 0 else resolved


def ingest_paths(
    paths: Iterable[str], lake: Path, *, progress: Callable[[int, int], None] | None = None
) -> IngestSummary:
    """Convert every file into ``lake``. A bad file is reported in ``failures`` and does not stop the rest."""
    files = expand_paths(paths)
    sink = LocalLakeSink(lake)
    summary = IngestSummary()
    started = time.perf_counter()
    for index, path in enumerate(files, start=1):
        try:
            with path.open("rb") as source:
                result = convert_stream(source, source_id(path), sink.staging_dir())
        except FileNotFoundError:
            is_pattern = any(char in str(path) for char in "*?[")
            summary.failures.append((str(path), "no file matches this pattern" if is_pattern else "no such file"))
        except IsADirectoryError:
            summary.failures.append((str(path), "is a directory"))
        except InputError as exc:
            summary.failures.append((str(path), str(exc)))
        else:
            try:
                publish(result, sink)
            finally:
                discard(result)
            summary.add(result)
        if progress is not None:
            progress(index, len(files))
    summary.seconds = time.perf_counter() - started
    return summary


def progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
