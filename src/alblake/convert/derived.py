"""The rows of the lake's derived tables (``alblake.lake.derived``: the rollup), derived while an object is converted
from the rows the conversion writes, so that no staged file is read back for them (``alblake.convert.parquet``
calls ``add`` with each partition-hour's rows as it writes them, and ``finish_all`` when it closes).

The columns the tables read are gathered per partition-hour up to ``DERIVE_BATCH_ROWS`` rows (and
``DERIVE_MEMORY_BATCH_BYTES`` over all of them) and derived together; the small partition-hours of an object spread
over many hours are derived in one pass at the end, each as if alone (``alblake.lake.derived.derive_parts``). Derived
rows are held in memory up to ``DERIVED_BUFFER_BYTES`` (beyond that, written out as part files, one per
partition-hour and table), and ``finish`` gives a partition-hour one file per derived table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alblake.lake.derived import (
    DERIVE_BATCH_ROWS,
    DERIVE_MEMORY_BATCH_BYTES,
    derive_parts,
    derive_rows,
    derived_writer,
)
from alblake.lake.layout import Partition
from alblake.ports import DerivedTable

DERIVED_BUFFER_BYTES = 16 << 20  # derived rows held in memory across partitions, at most
_COMBINE_BELOW_ROWS = 16 * 1024  # fewer rows than this are copied into one chunk before they are derived


class DerivedRows:
    """The derived tables' rows of each partition, derived from its rows as they are written (see the module's
    description); no file stays open between calls. The columns the tables read are gathered per partition up to
    ``DERIVE_BATCH_ROWS`` rows (and ``DERIVE_MEMORY_BATCH_BYTES`` over all partitions) and derived together: a row
    group of ordinary rows is ~40K rows, and a derivation of three times as many costs less than three and gives
    fewer rows to write."""

    def __init__(self, staging: Path, tables: Sequence[DerivedTable]) -> None:
        self.staging = staging
        self.tables = {table.name: table for table in tables}
        self.columns = list(dict.fromkeys(column for table in tables for column in table.columns))
        self.pending: dict[Partition, list[tuple[pa.Table, int]]] = {}  # rows waiting, with their bytes
        self.pending_bytes = 0
        self.held: dict[tuple[Partition, str], list[pa.Table]] = {}
        self.parts: dict[tuple[Partition, str], list[Path]] = {}
        self.bytes = 0
        self._files = 0

    def add(self, partition: Partition, rows: pa.Table) -> None:
        if not self.tables:
            return
        present = set(rows.column_names)
        selected = rows.select([c for c in self.columns if c in present])
        size = selected.nbytes
        if self._waiting_rows(partition) + selected.num_rows > DERIVE_BATCH_ROWS:
            self._derive(partition)  # what waits first: batches of at most DERIVE_BATCH_ROWS, not one and a bit
        if self.pending_bytes + size > DERIVE_MEMORY_BATCH_BYTES:
            self._derive_waiting(list(self.pending))
        self.pending.setdefault(partition, []).append((selected, size))
        self.pending_bytes += size

    def _waiting_rows(self, partition: Partition) -> int:
        return sum(table.num_rows for table, _ in self.pending.get(partition, []))

    def _take(self, partition: Partition) -> list[pa.Table]:
        """The rows waiting of a partition, no longer waiting."""
        pieces = self.pending.pop(partition, [])
        self.pending_bytes -= sum(size for _, size in pieces)
        return [table for table, _ in pieces]

    def _derive(self, partition: Partition) -> None:
        waiting = self._take(partition)
        if not waiting:
            return
        rows = pa.concat_tables(waiting)
        if rows.num_rows < _COMBINE_BELOW_ROWS:  # one chunk per column: derive() pays per chunk
            rows = rows.combine_chunks()
        for table in self.tables.values():
            self._hold(partition, table.name, derive_rows(table, rows))

    def finish_all(self, partitions: Sequence[Partition]) -> list[dict[str, Path]]:
        """``finish`` for each partition, the rows still waiting derived first (``_derive_waiting``)."""
        self._derive_waiting(partitions)
        return [self.finish(partition) for partition in partitions]

    def _derive_waiting(self, partitions: Sequence[Partition]) -> None:
        """Derive the rows waiting of these partitions, those with few together: one pass for up to
        ``DERIVE_BATCH_ROWS`` rows (an object spread over 2,000 hours has ~500 rows in each)."""
        batch: list[Partition] = []
        rows = size = 0
        for partition in partitions:
            waiting = self._waiting_rows(partition)
            if not waiting:
                continue
            waiting_bytes = sum(bytes_ for _, bytes_ in self.pending[partition])
            if batch and (rows + waiting > DERIVE_BATCH_ROWS or size + waiting_bytes > DERIVE_MEMORY_BATCH_BYTES):
                self._derive_together(batch)
                batch, rows, size = [], 0, 0
            batch.append(partition)
            rows, size = rows + waiting, size + waiting_bytes
        if batch:
            self._derive_together(batch)

    def _derive_together(self, partitions: list[Partition]) -> None:
        if len(partitions) == 1:
            self._derive(partitions[0])
            return
        waiting = [self._take(partition) for partition in partitions]
        rows = pa.concat_tables([table for tables in waiting for table in tables]).combine_chunks()
        parts = np.repeat(np.arange(len(partitions)), [sum(t.num_rows for t in tables) for tables in waiting])
        for table in self.tables.values():
            for partition, derived in zip(partitions, derive_parts(table, rows, parts, len(partitions)), strict=True):
                self._hold(partition, table.name, [derived])

    def _hold(self, partition: Partition, name: str, derived: Iterable[pa.Table]) -> None:
        held = self.held.setdefault((partition, name), [])
        for table in derived:
            if table.num_rows:
                held.append(table)
                self.bytes += table.nbytes
        if self.bytes >= DERIVED_BUFFER_BYTES:
            for key, tables in self.held.items():
                self.parts.setdefault(key, []).append(self._file(self.tables[key[1]].schema, [], tables))
            self.held.clear()
            self.bytes = 0

    def abort(self) -> None:
        """Forget every row waiting and held (the conversion failed; its staging directory goes with the parts)."""
        self.pending.clear()
        self.pending_bytes = 0
        self.held.clear()
        self.parts.clear()
        self.bytes = 0

    def finish(self, partition: Partition) -> dict[str, Path]:
        """The partition's file for each derived table (written now from its parts and rows in memory)."""
        self._derive(partition)
        files: dict[str, Path] = {}
        for name, table in self.tables.items():
            held = self.held.pop((partition, name), [])
            self.bytes -= sum(derived.nbytes for derived in held)
            parts = self.parts.pop((partition, name), [])
            files[name] = parts[0] if len(parts) == 1 and not held else self._file(table.schema, parts, held)
        return files

    def _file(self, schema: pa.Schema, parts: list[Path], held: list[pa.Table]) -> Path:
        """One file of the parts' rows, then the rows held; the parts are removed."""
        path = self.staging / f"derived-{self._files:05d}.parquet"
        self._files += 1
        with derived_writer(path, schema) as writer:
            for part in parts:
                with pq.ParquetFile(part) as rows:
                    for group in range(rows.num_row_groups):
                        writer.write_table(rows.read_row_group(group))
                part.unlink()
            if held:
                writer.write_table(pa.concat_tables(held))
        return path
