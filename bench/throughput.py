"""End-to-end .log.gz -> Parquet throughput on one core, as ratios against baselines of the same run.

Baselines, measured on the same file in the same process run:
  * ``gzip -dc FILE > /dev/null`` (plain decompression, the floor any converter pays);
  * a straightforward per-line Python regex parser producing the same Parquet output.
Targets: alblake >= 0.8x gzip throughput (decompression is the floor; the parse should cost less than it),
>= 4x the regex parser (the console recipe's RegexSerDe approach, in Python).
Usage: python bench/throughput.py [--mb 120]
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alblake import parse
from alblake.ingest.core import ingest_object
from alblake.lake.generational import open_local_lake
from alblake.schema import ARROW_SCHEMA, RAW_LOG_REGEX
from bench.common import make_log, pin_to_one_core


def time_gzip(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(f"gzip -dc '{path}' > /dev/null", shell=True, check=True)
    return time.perf_counter() - started


def time_alblake(path: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as lake:
        started = time.perf_counter()
        result = ingest_object(lambda: path.open("rb"), str(path), open_local_lake(Path(lake)))
        return time.perf_counter() - started, result.rows


def _regex_converters() -> list[object]:
    def ts(text: str) -> datetime | None:
        return None if text in ("-", "") else datetime.fromisoformat(text)

    def number(kind: type) -> object:
        return lambda text: None if text in ("-", "") else kind(text)

    def text(value: str) -> str | None:
        return None if value == "-" else value

    by_type = {pa.int32(): number(int), pa.int64(): number(int), pa.float64(): number(float)}
    return [ts if pa.types.is_timestamp(f.type) else by_type.get(f.type, text) for f in ARROW_SCHEMA]


def time_regex_baseline(path: Path, max_lines: int) -> tuple[float, int]:
    """Per-line ``re`` parse (the raw-table regex), typed Python values, one Parquet file."""
    pattern = re.compile(RAW_LOG_REGEX)
    converters = _regex_converters()
    started = time.perf_counter()
    columns: list[list[object]] = [[] for _ in converters]
    lines = 0
    with gzip.open(path, "rt", encoding="utf-8") as source:
        for line in source:
            match = pattern.fullmatch(line.rstrip("\n"))
            if match:
                for column, convert, value in zip(columns, converters, match.groups(), strict=True):
                    column.append(convert(value or "-"))  # type: ignore[operator]
            lines += 1
            if lines >= max_lines:
                break
    table = pa.table(
        [pa.array(c, type=f.type) for c, f in zip(columns, ARROW_SCHEMA, strict=True)], schema=ARROW_SCHEMA
    )
    with tempfile.TemporaryDirectory() as out:
        pq.write_table(table, Path(out) / "baseline.parquet", compression="zstd")
    return time.perf_counter() - started, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=120, help="uncompressed size of the test log")
    parser.add_argument("--baseline-lines", type=int, default=60_000, help="lines the regex baseline parses")
    args = parser.parse_args()
    pin_to_one_core()
    path = Path(__file__).parent / "out" / f"throughput-{args.mb}mb.log.gz"
    lines, text_bytes = make_log(path, args.mb * 1_000_000)
    gzip_seconds = min(time_gzip(path) for _ in range(3))
    alblake_seconds, rows = min(time_alblake(path) for _ in range(3))
    regex_seconds, regex_lines = time_regex_baseline(path, args.baseline_lines)
    alblake_rate, regex_rate = lines / alblake_seconds, regex_lines / regex_seconds
    gzip_rate = lines / gzip_seconds
    print(f"engine          {parse.DEFAULT_ENGINE}")
    print(
        f"input           {lines:,} lines, {text_bytes / 1e6:,.0f} MB uncompressed, "
        f"{path.stat().st_size / 1e6:,.1f} MB gzip"
    )
    print(
        f"gzip -dc        {gzip_seconds:6.2f} s  {gzip_rate:12,.0f} lines/s  "
        f"{text_bytes / gzip_seconds / 1e6:7.1f} MB/s"
    )
    print(
        f"alblake         {alblake_seconds:6.2f} s  {alblake_rate:12,.0f} lines/s  "
        f"{text_bytes / alblake_seconds / 1e6:7.1f} MB/s  ({rows:,} rows)"
    )
    print(f"regex baseline  {regex_seconds:6.2f} s  {regex_rate:12,.0f} lines/s  (first {regex_lines:,} lines)")
    default_engine = parse.DEFAULT_ENGINE
    parse.DEFAULT_ENGINE = "arrow"  # the pure-Arrow engine, for comparison (used when _albtok is not built)
    arrow_seconds, _ = min(time_alblake(path) for _ in range(2))
    parse.DEFAULT_ENGINE = default_engine
    print(f"alblake, Arrow CSV engine {arrow_seconds:6.2f} s  ({gzip_seconds / arrow_seconds:4.2f}x gzip)")
    dirty = path.with_name(path.name.replace(".log.gz", "-dirty.log.gz"))
    make_log(dirty, args.mb * 1_000_000, malformed_every=1000)
    dirty_seconds, dirty_rows = min(time_alblake(dirty) for _ in range(2))
    print(
        f"alblake, 0.1% malformed lines {dirty_seconds:6.2f} s  ({dirty_rows:,} rows; "
        f"{alblake_seconds / dirty_seconds:4.2f}x the clean speed)"
    )
    print(f"ratio vs gzip -dc        {alblake_rate / gzip_rate:5.2f}x  (target >= 0.80)")
    print(f"ratio vs regex baseline  {alblake_rate / regex_rate:5.2f}x  (target >= 4)")


if __name__ == "__main__":
    main()
