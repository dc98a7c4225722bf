"""Derived tables' files (``alblake.ports.DerivedTable``): where a data file's sibling lives and how it is made.

A data file ``alb_logs/<rest>`` (a per-object file or a compacted one, in any generation folder) has, for each
derived table, a sibling ``<table prefix><rest>`` with the derived rows of its rows. The lake writes siblings before
the data file and deletes them with it (``alblake.lake.generational``), so a derived table has exactly the
visible files of the curated table, mapped, and its Glue partitions follow the curated table's Locations.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from alblake.lake.layout import DATA_PREFIX
from alblake.lake.merge import conform_rows
from alblake.ports import DerivedTable

DERIVE_BATCH_ROWS = 128 * 1024  # rows derived at a time: memory stays bounded for a compacted file of any size


def derived_key(table: DerivedTable, data_key: str) -> str:
    """Where the sibling of a data key (or of a folder under the data prefix) lives in ``table``."""
    if not data_key.startswith(DATA_PREFIX):
        raise ValueError(f"{data_key}: not under {DATA_PREFIX}")
    return table.prefix + data_key[len(DATA_PREFIX) :]


def sibling_keys(tables: Iterable[DerivedTable], data_key: str) -> list[str]:
    return [derived_key(table, data_key) for table in tables]


def write_derived(table: DerivedTable, data_path: Path, out_path: Path) -> int:
    """Write the derived rows of a local data file to ``out_path``, batch by batch; the rows written."""
    written = 0
    with pq.ParquetWriter(
        out_path, table.schema, compression="zstd", compression_level=1, write_page_checksum=True
    ) as writer:
        for batch in pq.ParquetFile(data_path).iter_batches(batch_size=DERIVE_BATCH_ROWS, use_threads=False):
            derived = table.derive(conform_rows(batch, str(data_path)))
            if derived.num_rows:
                writer.write_table(derived.cast(table.schema))
                written += derived.num_rows
    return written


def default_derived_tables() -> list[DerivedTable]:
    """The derived tables every lake keeps, in every writer (the CLI and both functions): one list, so that no
    writer leaves data files without their siblings."""
    from alblake.rollup.table import ROLLUP  # the per-minute rollup (docs/ROLLUP.md)

    return [ROLLUP]
