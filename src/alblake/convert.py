"""Convert one log object into a ``StagedObject``: one staged Parquet file per partition-hour and a quarantine
file, all in a private staging directory. Nothing is in the lake until ``Lake.commit``.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alblake.lake.layout import Partition
from alblake.lake.staged import StagedObject
from alblake.parquet_out import PartitionWriters
from alblake.parse import ParsedBlock, is_constant, parse_block
from alblake.quarantine import QuarantineWriter
from alblake.source import BLOCK_SIZE, iter_blocks, iter_text_chunks

_ELB_CODE_SHIFT = 40  # group key = elb code << 40 | hour offset: hour offsets stay far below 2**40


class _CountingReader:
    """Counts bytes read from the underlying (compressed) object."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


def _epoch_hours(hour_start: pa.Array) -> np.ndarray:
    """Hours since the epoch of each row's hour (UTC)."""
    return np.asarray(hour_start.to_numpy(zero_copy_only=False).astype("datetime64[h]").astype(np.int64))


def _partition_groups(block: ParsedBlock) -> list[tuple[Partition, pa.Table]]:
    """Split a parsed block by (elb_name, hour) of the request time."""
    if block.table.num_rows == 0:
        return []
    hours = _epoch_hours(block.hour_start)
    if is_constant(block.elb_name):
        codes, dictionary = np.zeros(len(hours), dtype=np.int64), [block.elb_name[0].as_py()]
    else:
        names = pc.dictionary_encode(block.elb_name)
        codes = names.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        dictionary = names.dictionary.to_pylist()
    keys = (codes << _ELB_CODE_SHIFT) + (hours - hours.min())
    unique_keys = np.unique(keys)
    if len(unique_keys) == 1:
        positions = [np.arange(len(keys))]
    else:
        order = np.argsort(keys, kind="stable")
        boundaries = np.flatnonzero(np.diff(keys[order])) + 1
        positions = np.split(order, boundaries)
    groups: list[tuple[Partition, pa.Table]] = []
    for rows in positions:
        first = int(rows[0])
        hour_utc = datetime.fromtimestamp(int(hours[first]) * 3600, tz=UTC)
        table = block.table if len(positions) == 1 else block.table.take(pa.array(rows))
        groups.append((Partition.of_hour(dictionary[codes[first]], hour_utc), table))
    return groups


def convert_stream(
    fileobj: BinaryIO, source_id: str, staging_dir: Path, *, block_size: int = BLOCK_SIZE
) -> StagedObject:
    """Convert one log object. Raises ``InputError`` for unreadable input, leaving nothing staged."""
    staged = StagedObject(source_id, Path(tempfile.mkdtemp(prefix="convert-", dir=staging_dir)))
    try:
        _convert(fileobj, staged, block_size)
    except BaseException:
        staged.discard()
        raise
    return staged


def _convert(fileobj: BinaryIO, staged: StagedObject, block_size: int) -> None:
    reader = _CountingReader(fileobj)
    writers = PartitionWriters(staged.stage_dir)
    quarantine = QuarantineWriter(staged.stage_dir, staged.source_id)
    chunks = iter_text_chunks(reader, require_gzip=staged.source_id.endswith(".gz"))
    max_time: datetime | None = None
    try:
        for block in iter_blocks(chunks, block_size):
            parsed = parse_block(block, staged.lines + 1)
            staged.lines += parsed.lines
            staged.text_bytes += len(block)
            quarantine.add(parsed.quarantined)
            for partition, table in _partition_groups(parsed):
                writers.add(partition, table)
            if parsed.table.num_rows:
                block_max = pc.max(parsed.table.column("time")).as_py()
                if max_time is None or block_max > max_time:
                    max_time = block_max
    finally:
        staged.data = writers.close()
        staged.quarantine_path = quarantine.close()
    staged.rows = sum(d.rows for d in staged.data)
    staged.quarantined = quarantine.count
    staged.bytes_in = reader.count
    staged.max_time = max_time
