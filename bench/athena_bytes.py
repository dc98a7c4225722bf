"""Column bytes Athena would scan per named query, per million requests, before and after compaction.

Athena bills the bytes of the columns a query reads. Proxy measured here: the compressed sizes of the column
chunks of the columns a query references (found with sqlglot; partition columns are not stored in the files),
summed from the Parquet footers of the files a reader sees (``visible_files``), divided by the rows in them.
Athena may read less (row-group statistics let it skip chunks) and reads more for footers and metadata.

1. ``alblake sample --files 12 --lines 30000 --seed 7`` (359,640 rows after the malformed lines),
2. ``alblake ingest`` into a fresh local lake: measure,
3. ``alblake compact --older-than 0``: measure again.

Before both, the *raw* figure: what a query over the raw RegexSerDe table (``sql/ddl/alb_logs_raw.sql``) is billed
for, the compressed bytes of every log object it touches (a text file has no columns to skip), per million
rows; and the cost per million requests at ``--price`` dollars per TB scanned (default: 5.00, the us-east-1
price on AWS's Athena pricing page; check it there).

Those 12 objects fall in 9 partition-hours, so compaction merges little. ``--day`` ingests a simulated day
instead (``alblake.sample.write_sample_day``: 7 nodes each delivering every 5 minutes, 2,016 objects of 500
lines), where every partition-hour holds 24 or 36 per-object files, as a real lake does.

Usage: ``python -m bench.athena_bytes [--work DIR] [--files 12] [--lines 30000] [--day]``
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import sqlglot
from sqlglot import expressions as exp

from alblake.analysis import list_queries
from alblake.cli import main as alblake
from alblake.locations import open_lake_at
from alblake.sample import write_sample_day
from alblake.schema import ARROW_SCHEMA, PARTITION_KEYS


def referenced_columns(sql: str) -> frozenset[str]:
    """Stored columns a query names (aliases and partition columns drop out)."""
    names = {column.name.lower() for column in sqlglot.parse_one(sql, read="trino").find_all(exp.Column)}
    return frozenset(names & set(ARROW_SCHEMA.names) - set(PARTITION_KEYS))


def column_bytes(lake_dir: Path) -> tuple[Counter[str], int, int]:
    """Compressed bytes per top-level column, rows, and the number of files, over the visible files."""
    sizes: Counter[str] = Counter()
    rows = 0
    files = open_lake_at(lake_dir).visible_files()
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        rows += metadata.num_rows
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                sizes[chunk.path_in_schema.split(".")[0]] += chunk.total_compressed_size
    return sizes, rows, len(files)


def mb_per_million(sizes: Counter[str], rows: int, columns: frozenset[str]) -> float:
    """MB (10^6 B) per 10^6 rows is bytes per row."""
    return sum(sizes[column] for column in columns) / rows


def run(work: Path, files: int, lines: int, day: bool, price: float = 5.0) -> None:
    logs, lake = work / "logs", work / "lake"
    if day:
        write_sample_day(logs)
    elif alblake(["sample", "--out", str(logs), "--files", str(files), "--lines", str(lines), "--seed", "7"]) != 0:
        raise SystemExit("alblake sample failed")
    if alblake(["ingest", str(logs), "--lake", str(lake), "--quiet"]) != 0:
        raise SystemExit("alblake ingest failed")
    before, rows_before, files_before = column_bytes(lake)
    if alblake(["compact", "--lake", str(lake), "--older-than", "0"]) != 0:
        raise SystemExit("alblake compact failed")
    after, rows_after, files_after = column_bytes(lake)
    if rows_after != rows_before:
        raise SystemExit(f"compaction changed the visible rows: {rows_before} -> {rows_after}")
    raw = sum(p.stat().st_size for p in logs.rglob("*.log.gz")) / rows_before  # bytes per row = MB per M rows
    print(f"\n{rows_before:,} rows; visible files before {files_before}, after {files_after}")
    print(f"raw .log.gz: {raw:.2f} MB per million rows, whatever the query (${raw * price / 1e6:.5f} per million rows "
          f"at ${price:.2f}/TB)")
    print(f"{'query':<20} {'raw MB/M':>9} {'before MB/M':>11} {'after MB/M':>11} {'raw/after':>9} "
          f"{'$/M raw':>9} {'$/M after':>9}  columns")
    for query in list_queries():
        columns = referenced_columns(query.sql)
        old = mb_per_million(before, rows_before, columns)
        new = mb_per_million(after, rows_after, columns)
        print(f"{query.name:<20} {raw:>9.2f} {old:>11.2f} {new:>11.2f} {raw / new:>8.0f}x "
              f"{raw * price / 1e6:>9.5f} {new * price / 1e6:>9.5f}  {','.join(sorted(columns))}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, help="empty directory for the logs and the lake (default: temporary)")
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--lines", type=int, default=30_000, help="lines per sample object")
    parser.add_argument("--day", action="store_true", help="a simulated day of 2,016 objects instead of the sample")
    parser.add_argument("--price", type=float, default=5.0, help="dollars per TB scanned (AWS's Athena pricing page)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.work is not None:
        run(arguments.work, arguments.files, arguments.lines, arguments.day, arguments.price)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            run(Path(scratch), arguments.files, arguments.lines, arguments.day, arguments.price)
