"""The rollup's size against the curated table, the SPICE bytes of both QuickSight data sets, and what deriving the
rollup costs the ingest.

1. Lakes of simulated traffic, ingested one file per object (``--no-batch``: the per-object layout before
   compaction), then compacted: curated rows, rollup rows and their ratio, before and after, and the bytes of both
   tables' files. Traffic: ``alblake.sample.write_sample_day`` (uniform draws of every field: the worst case for a
   rollup) and ``alblake.incidents.write_traffic`` (Zipf-like routes and clients) at several request rates.
2. AWS's documented example lines (tests/data): rows and rollup rows.
3. SPICE bytes per million requests, by AWS's formula (QuickSight user guide, "Managing SPICE capacity": 8 bytes
   per numeric or date field, 8 bytes plus the UTF-8 length per text field) over the rows each data set would
   import: the detailed data set (template.yaml QuickSightDataSet: one row per request) and the long-window one
   (sql/quicksight/long_window.sql over the rollup).
4. Ingest of one large object with and without the rollup (the derived table), best of N: the rollup's share.

Usage: ``python -m bench.rollup_size [--work DIR] [--quick]``
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from alblake.analysis import connect, sql_dir
from alblake.incidents import write_traffic
from alblake.ingest.core import ingest_object
from alblake.ingest.runner import ingest_paths
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.generational import GenerationalLake, open_local_lake
from alblake.lake.local import LocalStore
from alblake.parse import parse_block
from alblake.rollup.files import rollup_dataset, rollup_files
from alblake.rollup.table import ROLLUP, derive
from alblake.sample import write_sample_day
from bench.common import make_log, pin_to_one_core

ROOT = Path(__file__).resolve().parent.parent
# the detailed data set's columns (template.yaml QuickSightDataSet): text columns, and the others (8 bytes each)
DETAIL_TEXT = ("elb_name", "day", "hour", "type", "client_ip", "target_ip", "request_verb", "request_url", "user_agent")
DETAIL_OTHER = 9  # time, target_port, elb_status_code, target_status_code, received/sent bytes, three times


def _files_bytes(files: list[str]) -> int:
    return sum(Path(f).stat().st_size for f in files)


def _counts(lake_dir: Path) -> dict[str, int]:
    lake = open_local_lake(lake_dir)
    data = list(lake.visible_files())
    rollup = rollup_files(lake)
    return {
        "rows": sum(pq.read_metadata(f).num_rows for f in data),
        "rollup_rows": sum(pq.read_metadata(f).num_rows for f in rollup),
        "bytes": _files_bytes(data),
        "rollup_bytes": _files_bytes(rollup),
        "files": len(data),
    }


def _ratio(counts: dict[str, int]) -> str:
    rows = 100 * counts["rollup_rows"] / counts["rows"]
    size = 100 * counts["rollup_bytes"] / counts["bytes"]
    return (f"{counts['rows']:>9,} rows -> {counts['rollup_rows']:>8,} rollup rows = {rows:5.2f}% "
            f"(bytes {size:5.2f}%, {counts['files']:,} files)")


def measure_lake(name: str, write: Callable[[Path], list[Path]], work: Path) -> dict[str, Any]:
    logs_dir, lake_dir = work / f"{name}-logs", work / f"{name}-lake"
    shutil.rmtree(logs_dir, ignore_errors=True)
    shutil.rmtree(lake_dir, ignore_errors=True)
    logs = write(logs_dir)
    summary = ingest_paths([str(p) for p in logs], lake_dir, jobs=1, batch=False)
    assert not summary.failures
    before = _counts(lake_dir)
    compact(open_local_lake(lake_dir), CompactionOptions(datetime(2100, 1, 1, tzinfo=UTC), older_than=timedelta(0),
                                                         grace=timedelta(0)))
    after = _counts(lake_dir)
    print(f"{name:<34} per object: {_ratio(before)}")
    print(f"{'':<34} compacted:  {_ratio(after)}")
    spice = spice_bytes(lake_dir)
    print(f"{'':<34} SPICE per 1M requests: detailed {spice['detail'] / 1e9:.3f} GB, long-window "
          f"{spice['long_window'] / 1e6:.2f} MB ({spice['long_window_rows']:,} hourly rows)")
    shutil.rmtree(logs_dir, ignore_errors=True)
    return {"before": before, "after": after, "spice": spice, "lake": lake_dir}


def spice_bytes(lake_dir: Path) -> dict[str, float]:
    """SPICE bytes per million requests of the two data sets, by AWS's formula over the rows they would import."""
    con = connect(lake_dir)
    lengths = ", ".join(f"sum(strlen(coalesce(CAST({c} AS VARCHAR), '')))" for c in DETAIL_TEXT)
    row = con.sql(f"SELECT count(*), {lengths} FROM alb_logs").fetchall()[0]
    requests = int(row[0])
    detail = requests * (8 * DETAIL_OTHER + 8 * len(DETAIL_TEXT)) + sum(int(v) for v in row[1:])
    rollup = duckdb.connect()
    rollup.register("rollup_files", rollup_dataset(rollup_files(open_local_lake(lake_dir))))
    sql = "\n".join(line for line in (sql_dir() / "quicksight" / "long_window.sql").read_text().splitlines()
                    if not line.startswith("--"))
    sql = sql.replace('"AwsDataCatalog"."${GlueDatabase}"."alb_rollup_1m"', "rollup_files").split("WHERE")[0] + \
        "GROUP BY 1, 2, 3, 4, 5"
    table = rollup.sql(sql).to_arrow_table()
    text = sum(sum(len(str(v).encode()) for v in table[c].to_pylist()) for c in ("elb_name", "target_group", "route"))
    long_window = table.num_rows * (8 * 14) + text  # 14 fields, three of them text (8 + length)
    return {"detail": detail * 1e6 / requests, "long_window": long_window * 1e6 / requests,
            "long_window_rows": table.num_rows}


def documented_lines() -> None:
    lines = [b for b in (ROOT / "tests" / "data" / "aws_documented_examples.log").read_bytes().splitlines()
             if b.strip()]
    rows = parse_block(b"\n".join(lines) + b"\n").table
    print(f"{'AWS documented example lines':<34} {rows.num_rows} rows -> {derive(rows).num_rows} rollup rows "
          "(seven different requests in one minute: nothing to sum)")


def ingest_cost(work: Path, repeat: int) -> None:
    """Ingest one large object into a lake with the rollup and one without: the rollup's share of the time."""
    log = work / "big.log.gz"
    lines, _ = make_log(log, 150 * 1024 * 1024)
    times: dict[str, float] = {}
    for label, derived in (("without rollup", []), ("with rollup", [ROLLUP])):
        best = float("inf")
        for attempt in range(repeat):
            root = work / f"ingest-{attempt}"
            shutil.rmtree(root, ignore_errors=True)
            lake = GenerationalLake(LocalStore(root), derived=derived)
            started = time.perf_counter()
            ingest_object(lambda: io.BytesIO(log.read_bytes()), str(log), lake)
            best = min(best, time.perf_counter() - started)
            shutil.rmtree(root, ignore_errors=True)
        times[label] = best
    share = times["with rollup"] / times["without rollup"]
    print(f"ingest of one {lines:,}-line object: {times['without rollup']:.2f} s without the rollup, "
          f"{times['with rollup']:.2f} s with it ({share:.2f}x; best of {repeat})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a smaller day and fewer rates")
    args = parser.parse_args()
    pin_to_one_core()
    work = args.work or Path(tempfile.mkdtemp(prefix="alblake-rollup-"))
    day = datetime(2026, 11, 24, tzinfo=UTC)
    intervals = 48 if args.quick else 24 * 12
    documented_lines()
    measure_lake("sample day (uniform fields)", lambda out: write_sample_day(out, intervals=intervals), work)
    runs = ((5, 1.0), (50, 0.5)) if args.quick else ((5, 4.0), (50, 1.0), (200, 0.5))
    for rate, hours in runs:

        def traffic(out: Path, r: float = rate, h: float = hours) -> list[Path]:
            return write_traffic(out, end=day + timedelta(hours=h), hours=h, per_second=r)

        measure_lake(f"realistic traffic, {rate} req/s, {hours:g} h", traffic, work)
    ingest_cost(work, 1 if args.quick else 3)
    print(f"work directory: {work}")


if __name__ == "__main__":
    main()
