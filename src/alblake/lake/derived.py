"""Derived tables' files (``alblake.ports.DerivedTable``): where a data file's sibling lives and how it is made.

A data file ``alb_logs/<rest>`` (a per-object file or a compacted one, in any generation folder) has, for each
derived table, a sibling ``<table prefix><rest>`` with the derived rows of its rows. The lake writes siblings before
the data file and deletes them with it (``alblake.lake.generational``), so a derived table has exactly the
visible files of the curated table, mapped, and its Glue partitions follow the curated table's Locations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alblake.lake.layout import DATA_PREFIX
from alblake.lake.merge import conform_rows
from alblake.ports import DerivedTable

DERIVE_BATCH_ROWS = 128 * 1024  # rows derived at a time at most: memory stays bounded for a file of any size
# ... and at most about this many bytes of the columns read (8 MiB: the first derive() took several times its input;
# 32 MiB batches of 1.5 KB URLs peaked at 469 MB in bench/adversarial.py, 8 MiB at 315 MB): rows with long URLs are
# ~10x wider than typical ones, and a compacted file of them, read 128 Ki rows at a time, took a gigabyte per batch
DERIVE_BATCH_BYTES = 8 * 1024 * 1024
# Rows in memory (the conversion's) are measured as Arrow holds them, decoded: several times their Parquet size
# for repetitive columns (a load balancer's name, its target group ARN). derive() takes about its input once more
# plus a constant (20,000 rows of distinct 1.5 KB URLs, 33 MB of Arrow: +61 MB of RSS), so a slice of 32 MiB keeps
# ordinary rows in slices of DERIVE_BATCH_ROWS (fewer calls: each costs a few milliseconds whatever its size).
DERIVE_MEMORY_BATCH_BYTES = 32 * 1024 * 1024


def derived_key(table: DerivedTable, data_key: str) -> str:
    """Where the sibling of a data key (or of a folder under the data prefix) lives in ``table``."""
    if not data_key.startswith(DATA_PREFIX):
        raise ValueError(f"{data_key}: not under {DATA_PREFIX}")
    return table.prefix + data_key[len(DATA_PREFIX) :]


def sibling_keys(tables: Iterable[DerivedTable], data_key: str) -> list[str]:
    return [derived_key(table, data_key) for table in tables]


def derived_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A writer with the settings of every derived file."""
    return pq.ParquetWriter(path, schema, compression="zstd", compression_level=1, write_page_checksum=True)


def write_derived(table: DerivedTable, data_path: Path, out_path: Path) -> int:
    """Write the derived rows of a local data file to ``out_path``, batch by batch (only the columns the table
    reads, batches bounded by rows and bytes); the rows written."""
    written = 0
    data = pq.ParquetFile(data_path)
    present = set(data.schema_arrow.names)
    columns = [c for c in table.columns if c in present]  # a column older files lack: derive() sees NULL
    with derived_writer(out_path, table.schema) as writer:
        for batch in data.iter_batches(batch_size=batch_rows(data, columns), columns=columns, use_threads=False):
            derived = table.derive(conform_rows(batch, str(data_path)))
            if derived.num_rows:
                writer.write_table(derived.cast(table.schema))
                written += derived.num_rows
    return written


def derive_rows(table: DerivedTable, rows: pa.Table) -> Iterator[pa.Table]:
    """The derived rows of rows in memory (``ARROW_SCHEMA`` columns, as the conversion holds them), in ``table``'s
    schema: derived a slice at a time, slices bounded by rows and bytes (``DERIVE_MEMORY_BATCH_BYTES``)."""
    present = set(rows.column_names)
    selected = rows.select([c for c in table.columns if c in present])
    step = _rows_per_batch(selected.nbytes / max(selected.num_rows, 1), DERIVE_MEMORY_BATCH_BYTES)
    for start in range(0, selected.num_rows, step):
        derived = table.derive(selected.slice(start, step))
        if derived.num_rows:
            yield derived.cast(table.schema)


def batch_rows(data: pq.ParquetFile, columns: Sequence[str]) -> int:
    """Rows per batch so that a batch of ``columns`` holds about ``DERIVE_BATCH_BYTES`` (uncompressed, from the
    file's metadata), at most ``DERIVE_BATCH_ROWS`` and at least 1,024."""
    meta = data.metadata
    wanted = set(columns)
    size = sum(
        meta.row_group(g).column(c).total_uncompressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
        if meta.row_group(g).column(c).path_in_schema in wanted
    )
    return _rows_per_batch(size / max(meta.num_rows, 1), DERIVE_BATCH_BYTES)


def _rows_per_batch(bytes_per_row: float, budget: int) -> int:
    """Rows of that width in about ``budget`` bytes, at most ``DERIVE_BATCH_ROWS`` and at least 1,024."""
    return max(1024, min(DERIVE_BATCH_ROWS, int(budget / max(bytes_per_row, 1.0))))


def derive_parts(table: DerivedTable, rows: pa.Table, parts: np.ndarray, count: int) -> list[pa.Table]:
    """The derived rows of each part of ``rows`` (``parts``: a part number per row, 0 to ``count - 1``) as if each
    part's rows were derived alone: in one pass by a table that can (``RollupTable.derive_parts``), else part by part.
    The caller keeps ``rows`` small (the conversion's many small partition-hours): no slicing here."""
    together = getattr(table, "derive_parts", None)
    if together is not None:
        return [derived.cast(table.schema) for derived in together(rows, parts, count)]
    return [table.derive(rows.filter(pa.array(parts == part))).cast(table.schema) for part in range(count)]


def default_derived_tables() -> list[DerivedTable]:
    """The derived tables every lake keeps, in every writer (the CLI and both functions): one list, so that no
    writer leaves data files without their siblings."""
    from alblake.rollup.table import ROLLUP  # the per-minute rollup (docs/ROLLUP.md)

    return [ROLLUP]


def derived_tables_of(lake: object) -> tuple[DerivedTable, ...]:
    """The derived tables a lake keeps (``GenerationalLake.derived``; a lake without any has no such attribute)."""
    return tuple(getattr(lake, "derived", ()))
