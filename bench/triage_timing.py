"""How long ``alblake triage`` takes on a simulated day, from the rollup and from the curated table alone, against
plain DuckDB running the same SQL over the same visible files (``read_parquet`` of the explicit file lists).

A day of realistic traffic (``alblake.incidents``: a target answering 502 for 20 minutes at 08:00) is ingested
and compacted; triage compares 08:00-08:30 with the 24 hours before. Best of N runs each: the triage query alone
(``run_triage`` with an open connection), the whole command (``alblake triage`` in a fresh process), and plain
DuckDB (a fresh connection, views over ``read_parquet``, the same SQL).

Usage: ``python -m bench.triage_timing [--work DIR] [--per-second 5] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from alblake.incidents import FailingTarget, write_traffic
from alblake.ingest.runner import ingest_paths
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.generational import open_local_lake
from alblake.rollup.files import rollup_files
from alblake.rollup.routes import DUCKDB_MACROS
from alblake.triage import make_window, run_triage
from alblake.triage.local import local_sql
from alblake.triage.query import build_query

DAY = datetime(2026, 11, 24, tzinfo=UTC)
WINDOW = (DAY + timedelta(hours=8), DAY + timedelta(hours=8, minutes=30))


def _best(repeat: int, run: object) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def _plain(lake_dir: Path, sql: str) -> None:
    lake = open_local_lake(lake_dir)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for macro in DUCKDB_MACROS:
        con.execute(macro)
    for view, files in (("alb_logs", list(lake.visible_files())), ("alb_rollup_1m", rollup_files(lake))):
        listed = ", ".join(f"'{f}'" for f in files)
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true, "
                    "union_by_name = true)")
    con.sql(sql).fetchall()
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--per-second", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="alblake-triage-"))
    lake_dir = work / "lake"
    if not lake_dir.exists():
        logs = write_traffic(work / "logs", end=DAY + timedelta(days=1), hours=24, per_second=args.per_second,
                             incidents=[FailingTarget("10.0.3.21:9000", WINDOW[0], 20)])
        ingest_paths([str(p) for p in logs], lake_dir)
        compact(open_local_lake(lake_dir), CompactionOptions(datetime(2100, 1, 1, tzinfo=UTC),
                                                             older_than=timedelta(0), grace=timedelta(0)))
    lake = open_local_lake(lake_dir)
    rows = sum(1 for _ in lake.visible_files())
    window = make_window(start=WINDOW[0], end=WINDOW[1])
    print(f"lake: {lake_dir} ({rows} visible files), window 08:00-08:30 against the 24 h before")
    for label, use_rollup in (("rollup + curated", True), ("curated table only", False)):
        sql = build_query(window, None, use_rollup=use_rollup).sql
        with local_sql(lake) as run:
            query = _best(args.repeat, lambda r=run, u=use_rollup: run_triage(r, window, engine="duckdb",
                                                                               use_rollup=u))
        command = [sys.executable, "-m", "alblake", "triage", "--lake", str(lake_dir), "--from",
                   WINDOW[0].isoformat(), "--to", WINDOW[1].isoformat()] + ([] if use_rollup else ["--no-rollup"])
        whole = _best(args.repeat, lambda c=command: subprocess.run(c, check=True, capture_output=True))
        plain = _best(args.repeat, lambda s=sql: _plain(lake_dir, s))
        print(f"{label:<20} query {query:6.2f} s   command {whole:6.2f} s   plain DuckDB {plain:6.2f} s   "
              f"query / plain {query / plain:4.2f}x   command / plain {whole / plain:4.2f}x")


if __name__ == "__main__":
    main()
