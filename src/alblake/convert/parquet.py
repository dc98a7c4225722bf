"""Write rows into one staged Parquet file per partition-hour, buffering by bytes, not rows.

The rows of a parsed block arrive together, grouped by partition, and are held as one chunk (sorted by
partition) whose slices are each partition's rows. A partition's rows are written as a row group when it has
``ROW_GROUP_ROWS`` rows or ``ROW_GROUP_BYTES`` bytes of them in memory, so a row group of 8 KB user agents is as
bounded as one of short lines. The chunks in memory take at most ``BUFFER_BYTES``: beyond that, partitions with
many rows in memory are written as row groups and the others - an object scattered over many hours has a few
rows of each - go to one spill file (Arrow IPC), each partition's rows together in one record batch, which
``close`` reads back memory-mapped, a few partitions at a time. So a block costs one sort whatever its
partitions, a partition a few Python objects, and each spill one slice per partition.

At most ``max_open`` Parquet files are open at once (Lambda allows 1,024 descriptors): when another partition
needs a writer, the least recently used one is closed and that partition continues in a new part file (as it
does after rows of it were spilled). ``close`` joins each partition's parts, spilled rows and rows still in
memory into one file, in the order they came.

The lake's derived tables (the rollup) are derived from the rows as they are written (``alblake.convert.derived``):
``close`` gives each partition one file per derived table next to its data file (``StagedData.derived``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alblake.convert.derived import DerivedRows
from alblake.convert.parquet_format import ROW_GROUP_ROWS, parquet_writer
from alblake.lake.layout import Partition
from alblake.lake.staged import StagedData
from alblake.ports import DerivedTable

ROW_GROUP_BYTES = 24 << 20  # a partition's rows are written out at this size, or at ROW_GROUP_ROWS rows
BUFFER_BYTES = 48 << 20  # rows held in memory across partitions, at most
SPILL_BELOW_BYTES = 4 << 20  # over budget, a partition with fewer bytes in memory is spilled, not written
_SPILL_BATCH_BYTES = 8 << 20  # spilled rows are copied into record batches of about this size
CHUNK_COST_BYTES = 64 << 10  # what a chunk costs in memory beyond its rows (~40 columns of buffers)
# Partitions read back from one memory map of the spill file: reading a slice touches whole pages of each of
# ~80 column buffers, so the map is released every few partitions to keep those pages out of memory.
PARTITIONS_PER_SPILL_READ = 8
_SMALL_PIECE_BYTES = 1 << 20  # pieces smaller on average are joined before writing (Parquet pays per chunk)
MAX_OPEN_WRITERS = 64  # Parquet files open at once while converting one object

Groups = Sequence[tuple[Partition, np.ndarray | None]]  # each partition's row positions in a table (None: all)


class _Chunk:
    """The rows of one block, sorted by partition, held until each partition's slice is written or spilled."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.rows = int(table.num_rows)
        self.bytes = int(table.nbytes) + CHUNK_COST_BYTES
        self.live = 0  # slices neither written nor spilled


@dataclass(frozen=True)
class _Slice:
    chunk: _Chunk
    start: int
    rows: int

    @property
    def bytes(self) -> int:
        return self.chunk.bytes * self.rows // max(self.chunk.rows, 1)

    def table(self) -> pa.Table:
        return self.chunk.table.slice(self.start, self.rows)


@dataclass(frozen=True)
class _Spilled:
    """Rows of one partition in the spill file: a slice of one of its record batches."""

    batch: int
    start: int
    rows: int


@dataclass
class _PartitionRows:
    """Where a partition's rows are, in the order they came: closed or open part files and spilled slices
    (``segments``), then slices of chunks in memory."""

    segments: list[Path | _Spilled] = field(default_factory=list)
    in_memory: list[_Slice] = field(default_factory=list)
    memory_rows: int = 0
    memory_bytes: int = 0
    rows: int = 0

    def hold(self, piece: _Slice) -> None:
        self.in_memory.append(piece)
        self.memory_rows += piece.rows
        self.memory_bytes += piece.bytes
        self.rows += piece.rows

    def release(self) -> list[_Slice]:
        """The slices in memory, which the caller writes or spills."""
        pieces, self.in_memory = self.in_memory, []
        self.memory_rows = self.memory_bytes = 0
        return pieces


def _rows(piece: _Slice) -> np.ndarray:
    return np.arange(piece.start, piece.start + piece.rows)


def _joined(tables: list[pa.Table]) -> pa.Table:
    """The tables as one; many small ones copied into one chunk per column (Parquet pays per chunk written)."""
    table = pa.concat_tables(tables)
    if len(tables) > 1 and table.nbytes < len(tables) * _SMALL_PIECE_BYTES:
        table = table.combine_chunks()
    return table


class _SpillFile:
    """Rows of many partitions in one uncompressed Arrow IPC file, read back memory-mapped: reading a partition's
    slices touches only their pages, and each map is released once its partitions are written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pa.ipc.RecordBatchFileWriter | None = None
        self.batches = 0

    def write(self, table: pa.Table) -> int:
        """Append the rows as one record batch; its index."""
        batch = table.combine_chunks().to_batches()[0]
        if self.writer is None:
            self.writer = pa.ipc.new_file(str(self.path), batch.schema)
        self.writer.write_batch(batch)
        self.batches += 1
        return self.batches - 1

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def reader(self) -> pa.ipc.RecordBatchFileReader:
        return pa.ipc.open_file(pa.memory_map(str(self.path)))

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.finish()
        self.path.unlink(missing_ok=True)


class PartitionWriters:
    """One Parquet file per partition, from rows held in memory by bytes (see the module's description)."""

    def __init__(
        self, staging: Path, max_open: int | None = None, derived: Sequence[DerivedTable] = ()
    ) -> None:
        self.staging = staging
        self.derived = DerivedRows(staging, derived)
        self.max_open = max_open or MAX_OPEN_WRITERS
        self.writers: dict[Partition, pq.ParquetWriter] = {}  # open ones, least recently used first
        self.partitions: dict[Partition, _PartitionRows] = {}
        self.rows: dict[Partition, int] = {}
        self.memory_bytes = 0  # of the chunks in memory
        self.spill = _SpillFile(staging / "spill.arrow")
        self._files = 0

    def add(self, table: pa.Table, groups: Groups) -> None:
        """The rows of one parsed block: ``groups`` gives each partition's row positions in ``table``."""
        if not groups:
            return
        if len(groups) > 1 or groups[0][1] is not None:
            positions = [np.arange(table.num_rows) if rows is None else rows for _, rows in groups]
            table = table.take(pa.array(np.concatenate(positions)))
        chunk = _Chunk(table)
        self.memory_bytes += chunk.bytes
        start = 0
        for partition, rows in groups:
            count = table.num_rows if rows is None else len(rows)
            chunk.live += 1
            held = self.partitions.setdefault(partition, _PartitionRows())
            held.hold(_Slice(chunk, start, count))
            self.rows[partition] = held.rows
            start += count
        for partition, _ in groups:
            held = self.partitions[partition]
            if held.memory_rows >= ROW_GROUP_ROWS or held.memory_bytes >= ROW_GROUP_BYTES:
                self._write(partition)
        if self.memory_bytes >= BUFFER_BYTES:
            self._make_room()

    def _make_room(self) -> None:
        """Empty the memory: partitions with many rows there are written as row groups, the others spilled."""
        small = []
        for partition, held in sorted(self.partitions.items()):
            if held.memory_bytes >= SPILL_BELOW_BYTES:
                self._write(partition)
            elif held.in_memory:
                small.append(partition)
        self._spill(small)

    def _consumed(self, pieces: list[_Slice]) -> None:
        for piece in pieces:
            piece.chunk.live -= 1
            if not piece.chunk.live:
                self.memory_bytes -= piece.chunk.bytes

    def _write(self, partition: Partition) -> None:
        pieces = self.partitions[partition].release()
        table = _joined([piece.table() for piece in pieces])
        self._writer(partition).write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.derived.add(partition, table)
        self._consumed(pieces)

    def _spill(self, partitions: list[Partition]) -> None:
        """The partitions' rows in memory to the spill file, in record batches of about _SPILL_BATCH_BYTES."""
        group: list[Partition] = []
        size = 0
        for partition in partitions:
            group.append(partition)
            size += self.partitions[partition].memory_bytes
            if size >= _SPILL_BATCH_BYTES:
                self._spill_group(group)
                group, size = [], 0
        if group:
            self._spill_group(group)

    def _spill_group(self, group: list[Partition]) -> None:
        """One record batch with each partition's rows together, in order: a take per chunk, then one to put
        each partition's rows of different chunks together."""
        pieces = {partition: self.partitions[partition].release() for partition in group}
        by_chunk: dict[int, list[_Slice]] = {}
        for partition_pieces in pieces.values():
            for piece in partition_pieces:
                by_chunk.setdefault(id(piece.chunk), []).append(piece)
        taken: list[pa.Table] = []
        offsets: dict[int, int] = {}  # id(piece) -> where its rows are in the concatenation of taken
        offset = 0
        for chunk_pieces in by_chunk.values():
            taken.append(chunk_pieces[0].chunk.table.take(pa.array(np.concatenate([_rows(p) for p in chunk_pieces]))))
            for piece in chunk_pieces:
                offsets[id(piece)] = offset
                offset += piece.rows
        rows = pa.concat_tables(taken).combine_chunks()
        if len(by_chunk) > 1:  # each partition's rows together, in order
            order = [np.arange(offsets[id(p)], offsets[id(p)] + p.rows) for ps in pieces.values() for p in ps]
            rows = rows.take(pa.array(np.concatenate(order)))
        batch, start = self.spill.write(rows), 0
        for partition, partition_pieces in pieces.items():
            count = sum(piece.rows for piece in partition_pieces)
            self.partitions[partition].segments.append(_Spilled(batch, start, count))
            start += count
            writer = self.writers.pop(partition, None)
            if writer is not None:  # the partition's later rows go to a new part file, after the spilled ones
                writer.close()
            self._consumed(partition_pieces)

    def _writer(self, partition: Partition) -> pq.ParquetWriter:
        writer = self.writers.pop(partition, None)
        if writer is None:
            while len(self.writers) >= self.max_open:
                self.writers.pop(next(iter(self.writers))).close()
            path = self._new_file()
            self.partitions[partition].segments.append(path)
            writer = parquet_writer(path)
        self.writers[partition] = writer  # (re)inserted last: most recently used
        return writer

    def _new_file(self) -> Path:
        path = self.staging / f"{self._files:05d}.parquet"
        self._files += 1
        return path

    def close(self) -> list[StagedData]:
        """Write what is in memory and close every writer; one staged file per partition, in partition order."""
        for partition, held in self.partitions.items():
            if held.in_memory and not any(isinstance(s, _Spilled) for s in held.segments):
                self._write(partition)  # else joined with its spilled rows below
        while self.writers:
            self.writers.popitem()[1].close()
        self.spill.finish()
        try:
            partitions = sorted(self.partitions)
            staged: list[StagedData] = []
            for first in range(0, len(partitions), PARTITIONS_PER_SPILL_READ):
                group = partitions[first : first + PARTITIONS_PER_SPILL_READ]
                reader = self.spill.reader() if self.spill.batches else None
                paths = [self._one_file(partition, reader) for partition in group]
                derived = self.derived.finish_all(group)
                staged.extend(map(StagedData, group, paths, [self.rows[p] for p in group], derived))
                del reader  # its memory map goes with the last table read from it
            return staged
        finally:
            self.spill.remove()

    def _one_file(self, partition: Partition, reader: pa.ipc.RecordBatchFileReader | None) -> Path:
        """The partition's rows in one file; the rows no part file held are derived now (the others were when
        their part was written)."""
        held = self.partitions[partition]
        if len(held.segments) == 1 and isinstance(held.segments[0], Path) and not held.in_memory:
            return held.segments[0]
        whole = self._new_file()
        with parquet_writer(whole) as writer:
            pending: list[pa.Table] = []
            rows = size = 0
            for table, derived in self._tables(held, reader):
                if not derived:
                    self.derived.add(partition, table)
                pending.append(table)
                rows, size = rows + table.num_rows, size + table.nbytes
                if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
                    writer.write_table(_joined(pending), row_group_size=ROW_GROUP_ROWS)
                    pending, rows, size = [], 0, 0
            if pending:
                writer.write_table(_joined(pending), row_group_size=ROW_GROUP_ROWS)
        return whole

    def _tables(
        self, held: _PartitionRows, reader: pa.ipc.RecordBatchFileReader | None
    ) -> Iterator[tuple[pa.Table, bool]]:
        """A partition's rows in order, a row group or a slice at a time; each with whether it was derived already
        (rows of part files were, when written)."""
        for segment in held.segments:
            if isinstance(segment, Path):
                with pq.ParquetFile(segment) as part:
                    for group in range(part.num_row_groups):
                        yield part.read_row_group(group), True
                segment.unlink()
            else:
                assert reader is not None
                yield pa.Table.from_batches([reader.get_batch(segment.batch).slice(segment.start, segment.rows)]), False
        pieces = held.release()
        yield from ((piece.table(), False) for piece in pieces)
        self._consumed(pieces)

    def abort(self) -> None:
        """Close every open file without writing what is in memory (the conversion failed); never raises."""
        self.partitions.clear()
        self.derived.abort()
        while self.writers:
            with contextlib.suppress(Exception):
                self.writers.popitem()[1].close()
        self.spill.remove()
