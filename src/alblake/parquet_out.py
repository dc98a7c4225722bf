"""Write rows into one staged Parquet file per partition-hour (zstd, decent row groups, bounded buffering)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from alblake.lake.layout import Partition
from alblake.lake.staged import StagedData
from alblake.schema import ARROW_SCHEMA

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
DICTIONARY_COLUMNS = [name for name in ARROW_SCHEMA.names if name not in _NO_DICTIONARY]
# Min/max statistics where a predicate can skip row groups: time ranges, status codes, latency. Not on strings:
# over 128k rows of one load balancer the min/max of client_ip, verb, type or TLS version span almost every
# value (and elb is fixed by the partition), so they prune nothing and cost ~4% of the conversion time.
STATISTICS_COLUMNS = [
    "time",
    "request_creation_time",
    "elb_status_code",
    "target_status_code",
    "target_processing_time",
]
_BUFFERED_ROWS_LIMIT = 160 * 1024


def parquet_writer(path: Path, schema: pa.Schema = ARROW_SCHEMA) -> pq.ParquetWriter:
    """A writer with the lake's Parquet settings (every data file of the lake is written by one of these)."""
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=1,
        use_dictionary=DICTIONARY_COLUMNS,
        write_statistics=STATISTICS_COLUMNS,
    )


class PartitionWriters:
    """One Parquet writer per partition; rows are buffered per partition into decent row groups."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
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
            writer = parquet_writer(self.staging / f"{len(self.writers):05d}.parquet")
            self.writers[partition] = writer
        table = pa.concat_tables(tables)
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.buffered -= table.num_rows

    def close(self) -> list[StagedData]:
        """Flush and close every writer; the staged files in partition order."""
        for partition in list(self.buffers):
            self._flush(partition)
        staged = []
        for partition, writer in sorted(self.writers.items()):
            writer.close()
            staged.append(StagedData(partition, Path(writer.where), self.rows[partition]))
        return staged
