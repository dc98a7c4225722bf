"""Convert one log object into staged Parquet files (one per partition) and a quarantine file.

Nothing is visible in the lake until ``publish``: files are written to a staging directory and handed to a
``LakeSink`` only after the whole object converted. File names derive from the source id, so converting the
same object again replaces its files instead of duplicating rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alblake.parse import ParsedBlock, QuarantinedLine, is_constant, parse_block
from alblake.schema import ARROW_SCHEMA, TABLE_NAME
from alblake.sinks import LakeSink
from alblake.source import BLOCK_SIZE, iter_blocks, iter_text_chunks

QUARANTINE_PREFIX = "quarantine"
# manifests/<stem>.json lists what the last publish of a source wrote, so that a re-run (say, after a parser
# fix moved rows to another hour, or quarantined nothing) removes the files it no longer writes.
MANIFEST_PREFIX = "manifests"
ROW_GROUP_ROWS = 128 * 1024
# Dictionary encoding pays off only for repetitive columns; for unique-ish ones (trace ids, times, byte
# counts) it costs time and bytes. Statistics are kept where predicates use them.
_NO_DICTIONARY = {
    "time",
    "request_creation_time",
    "client_port",
    "trace_id",
    "conn_trace_id",
    "sent_bytes",
    "received_bytes",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
}
_DICTIONARY_COLUMNS = [name for name in ARROW_SCHEMA.names if name not in _NO_DICTIONARY]
# Min/max statistics where a predicate can skip row groups: time ranges, status codes, latency. Not on strings:
# over 128k rows of one load balancer the min/max of client_ip, verb, type or TLS version span almost every
# value (and elb is fixed by the partition), so they prune nothing and cost ~4% of the conversion time.
_STATISTICS_COLUMNS = [
    "time",
    "request_creation_time",
    "elb_status_code",
    "target_status_code",
    "target_processing_time",
]
_BUFFERED_ROWS_LIMIT = 160 * 1024
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")  # outside this set: escaped in partition values, '_' in names


@dataclass(frozen=True, order=True)
class Partition:
    elb_name: str
    day: str  # YYYY-MM-DD
    hour: str  # HH

    @property
    def values(self) -> list[str]:
        return [self.elb_name, self.day, self.hour]

    @property
    def path(self) -> str:
        return f"elb_name={_escape_value(self.elb_name)}/day={self.day}/hour={self.hour}"


@dataclass(frozen=True)
class StagedFile:
    key: str  # relative to the lake root
    path: Path  # local staged file
    rows: int
    partition: Partition | None


@dataclass
class ConversionResult:
    source_id: str
    parquet_files: list[StagedFile] = field(default_factory=list)
    quarantine_file: StagedFile | None = None
    lines: int = 0
    rows: int = 0
    quarantined: int = 0
    bytes_in: int = 0
    text_bytes: int = 0
    max_time: datetime | None = None
    stage_dir: Path | None = None

    @property
    def partitions(self) -> list[Partition]:
        return [f.partition for f in self.parquet_files if f.partition is not None]


def _escape_value(value: str) -> str:
    """Hive-style escaping of a partition value (ALB names are [A-Za-z0-9-], so normally a no-op)."""
    return _UNSAFE_CHARS.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), value)


def output_file_stem(source_id: str) -> str:
    """Deterministic, filesystem-safe file stem for a source: readable name plus a hash of the full id."""
    base = source_id.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".log", ".txt"):
        base = base.removesuffix(suffix)
    readable = _UNSAFE_CHARS.sub("_", base)[:120] or "log"
    digest = hashlib.sha256(source_id.encode()).hexdigest()[:16]
    return f"{readable}.{digest}"


class _CountingReader:
    """Counts bytes read from the underlying (compressed) object."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


class _PartitionWriters:
    """One Parquet writer per partition; rows are buffered per partition into decent row groups."""

    def __init__(self, staging: Path, stem: str) -> None:
        self.staging = staging
        self.stem = stem
        self.writers: dict[Partition, pq.ParquetWriter] = {}
        self.buffers: dict[Partition, list[pa.Table]] = {}
        self.rows: dict[Partition, int] = {}
        self.buffered = 0

    def add(self, partition: Partition, table: pa.Table) -> None:
        self.buffers.setdefault(partition, []).append(table)
        self.rows[partition] = self.rows.get(partition, 0) + table.num_rows
        self.buffered += table.num_rows
        if sum(t.num_rows for t in self.buffers[partition]) >= ROW_GROUP_ROWS:
            self._flush(partition)
        if self.buffered >= _BUFFERED_ROWS_LIMIT:
            for buffered_partition in list(self.buffers):
                self._flush(buffered_partition)

    def _flush(self, partition: Partition) -> None:
        tables = self.buffers.pop(partition, [])
        if not tables:
            return
        writer = self.writers.get(partition)
        if writer is None:
            path = self.staging / f"{len(self.writers):05d}.parquet"
            writer = pq.ParquetWriter(
                path,
                ARROW_SCHEMA,
                compression="zstd",
                compression_level=1,
                use_dictionary=_DICTIONARY_COLUMNS,
                write_statistics=_STATISTICS_COLUMNS,
            )
            self.writers[partition] = writer
        table = pa.concat_tables(tables)
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.buffered -= table.num_rows

    def close(self) -> list[StagedFile]:
        for partition in list(self.buffers):
            self._flush(partition)
        staged = []
        for partition, writer in sorted(self.writers.items()):
            writer.close()
            key = f"{TABLE_NAME}/{partition.path}/{self.stem}.parquet"
            staged.append(StagedFile(key, Path(writer.where), self.rows[partition], partition))
        return staged


class _QuarantineWriter:
    def __init__(self, staging: Path, source_id: str) -> None:
        self.path = staging / "quarantine.jsonl"
        self.source_id = source_id
        self.count = 0
        self._file: TextIO | None = None

    def add(self, lines: list[QuarantinedLine]) -> None:
        if not lines:
            return
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8")
        for line in lines:
            record: dict[str, object] = {
                "source": self.source_id,
                "line_number": line.line_number,
                "reason": line.reason,
            }
            try:
                record["raw"] = line.raw.decode("utf-8")
            except UnicodeDecodeError:  # readable approximation plus the exact bytes
                record["raw"] = line.raw.decode("utf-8", errors="backslashreplace")
                record["raw_base64"] = base64.b64encode(line.raw).decode("ascii")
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += len(lines)

    def close(self, stem: str) -> StagedFile | None:
        if self._file is None:
            return None
        self._file.close()
        return StagedFile(f"{QUARANTINE_PREFIX}/{stem}.jsonl", self.path, self.count, None)


def _partition_groups(block: ParsedBlock) -> list[tuple[Partition, pa.Table]]:
    """Split a parsed block by (elb_name, hour) of the request time."""
    if block.table.num_rows == 0:
        return []
    hours = pc.cast(block.hour_start, pa.int64()).to_numpy(zero_copy_only=False) // 3_600_000_000
    if is_constant(block.elb_name):
        codes, dictionary = np.zeros(len(hours), dtype=np.int64), [block.elb_name[0].as_py()]
    else:
        names = pc.dictionary_encode(block.elb_name)
        codes = names.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        dictionary = names.dictionary.to_pylist()
    keys = codes * (1 << 40) + (hours - hours.min())
    unique_keys = np.unique(keys)
    groups: list[tuple[Partition, pa.Table]] = []
    if len(unique_keys) == 1:
        positions = [np.arange(len(keys))]
    else:
        order = np.argsort(keys, kind="stable")
        boundaries = np.flatnonzero(np.diff(keys[order])) + 1
        positions = np.split(order, boundaries)
    for rows in positions:
        first = int(rows[0])
        hour_utc = datetime.fromtimestamp(int(hours[first]) * 3600, tz=UTC)
        partition = Partition(dictionary[codes[first]], hour_utc.strftime("%Y-%m-%d"), f"{hour_utc.hour:02d}")
        table = block.table if len(positions) == 1 else block.table.take(pa.array(rows))
        groups.append((partition, table))
    return groups


def convert_stream(
    fileobj: BinaryIO,
    source_id: str,
    staging_dir: Path,
    *,
    block_size: int = BLOCK_SIZE,
) -> ConversionResult:
    """Convert one log object. Raises ``InputError`` for unreadable input, leaving nothing staged."""
    stage = Path(tempfile.mkdtemp(prefix="convert-", dir=staging_dir))
    try:
        return _convert(fileobj, source_id, stage, block_size)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _convert(fileobj: BinaryIO, source_id: str, stage: Path, block_size: int) -> ConversionResult:
    result = ConversionResult(source_id, stage_dir=stage)
    stem = output_file_stem(source_id)
    reader = _CountingReader(fileobj)
    writers = _PartitionWriters(stage, stem)
    quarantine = _QuarantineWriter(stage, source_id)
    chunks = iter_text_chunks(reader, require_gzip=source_id.endswith(".gz"))
    max_time: pa.Scalar | None = None
    try:
        for block in iter_blocks(chunks, block_size):
            parsed = parse_block(block, result.lines + 1)
            result.lines += parsed.lines
            result.text_bytes += len(block)
            quarantine.add(parsed.quarantined)
            for partition, table in _partition_groups(parsed):
                writers.add(partition, table)
            if parsed.table.num_rows:
                block_max = pc.max(parsed.table.column("time"))
                if max_time is None or block_max.as_py() > max_time.as_py():
                    max_time = block_max
    finally:
        result.parquet_files = writers.close()
        result.quarantine_file = quarantine.close(stem)
    result.rows = sum(f.rows for f in result.parquet_files)
    result.quarantined = quarantine.count
    result.bytes_in = reader.count
    result.max_time = None if max_time is None else max_time.as_py()
    return result


def publish(result: ConversionResult, sink: LakeSink) -> list[str]:
    """Publish every staged file (Parquet first, then the quarantine record), delete what an earlier publish
    of the same source wrote and this one did not, then record this publish in the source's manifest.

    Readers never miss data: stale files go only after their replacements are visible. The manifest is
    written last, so a failure anywhere before leaves the earlier manifest and a retry finishes the cleanup.
    Returns the keys deleted. The stage is dropped in any case.
    """
    try:
        stem = output_file_stem(result.source_id)
        manifest = f"{MANIFEST_PREFIX}/{stem}.json"
        earlier = _manifest_keys(sink.read(manifest), stem)
        for staged in result.parquet_files:
            sink.publish(staged.key, staged.path)
        if result.quarantine_file is not None:
            sink.publish(result.quarantine_file.key, result.quarantine_file.path)
        written = [f.key for f in result.parquet_files] + (
            [result.quarantine_file.key] if result.quarantine_file is not None else []
        )
        stale = sorted(set(earlier) - set(written))
        for key in stale:
            sink.delete(key)
        if result.stage_dir is not None:
            listing = result.stage_dir / "manifest.json"
            listing.write_text(json.dumps({"source": result.source_id, "files": written}, indent=1) + "\n")
            sink.publish(manifest, listing)
        return stale
    finally:
        discard(result)


def _manifest_keys(content: bytes | None, stem: str) -> list[str]:
    """Keys listed by an earlier manifest of the source with this stem; only its own lake files qualify."""
    if content is None:
        return []
    try:
        files = json.loads(content)["files"]
    except (ValueError, KeyError, TypeError):
        return []  # unreadable: delete nothing
    own = (f"{TABLE_NAME}/", f"{QUARANTINE_PREFIX}/")
    return [
        key
        for key in files
        if isinstance(key, str)
        and key.startswith(own)
        and ".." not in key.split("/")
        and key.rsplit("/", 1)[-1].startswith(f"{stem}.")
    ]


def discard(result: ConversionResult) -> None:
    """Remove what is left of the staged files (after publishing, or when giving up on the object)."""
    if result.stage_dir is not None:
        shutil.rmtree(result.stage_dir, ignore_errors=True)
