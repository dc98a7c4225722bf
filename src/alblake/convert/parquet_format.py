"""The lake's Parquet format: zstd, dictionary and statistics columns, row group size. Every data file of the
lake is written with ``parquet_writer`` (staged by the conversion, rewritten by compaction)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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


def parquet_writer(path: Path, schema: pa.Schema = ARROW_SCHEMA) -> pq.ParquetWriter:
    """A writer with the lake's Parquet settings (every data file of the lake is written by one of these)."""
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=1,
        use_dictionary=DICTIONARY_COLUMNS,
        write_statistics=STATISTICS_COLUMNS,
        write_page_checksum=True,  # a damaged page is found when compaction or `status --verify` reads it
    )
