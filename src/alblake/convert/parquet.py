"""Write rows into one staged Parquet file per partition-hour (zstd, decent row groups, bounded buffering)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from alblake.convert.parquet_format import ROW_GROUP_ROWS, parquet_writer
from alblake.lake.layout import Partition
from alblake.lake.staged import StagedData

_BUFFERED_ROWS_LIMIT = 160 * 1024
_SMALL_TABLE_ROWS = 1024
_TABLE_COST_ROWS = 32  # a buffered table counts as this many rows against the limit (its fixed cost in memory)
MAX_OPEN_WRITERS = 64  # Parquet files open at once while converting one object


class PartitionWriters:
    """One Parquet file per partition; rows are buffered per partition into decent row groups.

    At most ``max_open`` files are open at once (Lambda allows 1,024 descriptors, and an object may span any
    number of partition-hours): when another partition needs a writer, the least recently used one is closed
    and that partition continues in a new part file; ``close`` concatenates a partition's parts into one file.
    """

    def __init__(self, staging: Path, max_open: int | None = None) -> None:
        self.staging = staging
        self.max_open = max_open or MAX_OPEN_WRITERS
        self.writers: dict[Partition, pq.ParquetWriter] = {}  # open ones, least recently used first
        self.parts: dict[Partition, list[Path]] = {}
        self.buffers: dict[Partition, list[pa.Table]] = {}
        self.rows: dict[Partition, int] = {}
        self.buffered = 0  # rows
        self.buffered_tables = 0
        self._files = 0

    def add(self, partition: Partition, table: pa.Table) -> None:
        buffer = self.buffers.setdefault(partition, [])
        if buffer and buffer[-1].num_rows + table.num_rows <= _SMALL_TABLE_ROWS:
            # an object scattered over many hours gives each partition a row or two per block: each Arrow table
            # costs ~30 KB whatever its rows, so small ones are joined (ALB objects give one large table per block)
            buffer[-1] = pa.concat_tables([buffer[-1], table]).combine_chunks()
        else:
            buffer.append(table)
            self.buffered_tables += 1
        self.rows[partition] = self.rows.get(partition, 0) + table.num_rows
        self.buffered += table.num_rows
        if sum(t.num_rows for t in self.buffers[partition]) >= ROW_GROUP_ROWS:
            self._flush(partition)
        if self.buffered + _TABLE_COST_ROWS * self.buffered_tables >= _BUFFERED_ROWS_LIMIT:
            for buffered_partition in list(self.buffers):
                self._flush(buffered_partition)

    def _flush(self, partition: Partition) -> None:
        tables = self.buffers.pop(partition, [])
        if not tables:
            return
        table = pa.concat_tables(tables)
        self._writer(partition).write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.buffered -= table.num_rows
        self.buffered_tables -= len(tables)

    def _writer(self, partition: Partition) -> pq.ParquetWriter:
        writer = self.writers.pop(partition, None)
        if writer is None:
            while len(self.writers) >= self.max_open:
                self.writers.pop(next(iter(self.writers))).close()
            writer = parquet_writer(self._new_file(partition))
        self.writers[partition] = writer  # (re)inserted last: most recently used
        return writer

    def _new_file(self, partition: Partition) -> Path:
        path = self.staging / f"{self._files:05d}.parquet"
        self._files += 1
        self.parts.setdefault(partition, []).append(path)
        return path

    def close(self) -> list[StagedData]:
        """Flush and close every writer; one staged file per partition, in partition order."""
        for partition in list(self.buffers):
            self._flush(partition)
        while self.writers:
            self.writers.popitem()[1].close()
        return [
            StagedData(partition, self._one_file(parts), self.rows[partition])
            for partition, parts in sorted(self.parts.items())
        ]

    def _one_file(self, parts: list[Path]) -> Path:
        if len(parts) == 1:
            return parts[0]
        whole = self.staging / f"{self._files:05d}.parquet"
        self._files += 1
        with parquet_writer(whole) as writer:
            batches: list[pa.RecordBatch] = []
            rows = 0
            for part in parts:
                with pq.ParquetFile(part) as rows_of_part:
                    for batch in rows_of_part.iter_batches(batch_size=ROW_GROUP_ROWS):
                        batches.append(batch)
                        rows += batch.num_rows
                        if rows >= ROW_GROUP_ROWS:
                            writer.write_table(pa.Table.from_batches(batches), row_group_size=ROW_GROUP_ROWS)
                            batches, rows = [], 0
                part.unlink()
            if batches:
                writer.write_table(pa.Table.from_batches(batches), row_group_size=ROW_GROUP_ROWS)
        return whole

    def abort(self) -> None:
        """Close every open file without writing what is buffered (the conversion failed); never raises."""
        self.buffers.clear()
        while self.writers:
            with contextlib.suppress(Exception):
                self.writers.popitem()[1].close()
