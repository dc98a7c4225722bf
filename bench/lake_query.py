"""Query cost of per-object files vs compaction vs an ideal lake; compaction throughput and peak memory.

1. A simulated day (``alblake.sample.write_sample_day``: every node of every load balancer delivers every
   5 minutes; default 2,016 objects, ~1M rows) is ingested into a lake: one file per object and partition-hour.
2. The same rows written directly as one time-sorted file per partition-hour: the *ideal* lake.
3. ``GenerationalLake.compact`` on the per-object lake (rows/s).
4. Whole-lake ``GROUP BY elb_status_code`` and a one-hour time filter in DuckDB (``alblake.analysis.connect``),
   best of N, on all three. Target: compacted within 1.2x of ideal; the per-object penalty is reported.
   The same two questions over the raw ``.log.gz`` objects (DuckDB reading the text and splitting each line, as
   a query over the raw RegexSerDe table must read every compressed byte of the day): the "before" of the
   README's first screen.
5. Peak RSS of compacting one partition-hour of ``--big-mb`` MB of log text (several objects), in a child
   process (target < 400 MB for 1 GB).

Usage: ``python -m bench.lake_query [--work DIR] [--lines 500] [--nodes 3,2,2] [--big-mb 1024 | --skip-big]``
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alblake.convert.parquet_format import ROW_GROUP_ROWS, parquet_writer
from alblake.ingest.runner import ingest_paths
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.generational import GenerationalLake, open_local_lake
from alblake.lake.generations import partition_of_path
from alblake.lake.layout import partition_location
from alblake.sample import write_sample_day
from alblake.schema import ARROW_SCHEMA
from bench.common import make_log, pin_to_one_core

QUERIES = {
    "group by status": "SELECT elb_status_code, count(*) FROM alb_logs GROUP BY 1 ORDER BY 1",
    "one hour filter": (
        "SELECT count(*), round(sum(target_processing_time), 3) FROM alb_logs "
        "WHERE time >= TIMESTAMPTZ '2026-11-24 13:00:00+00' AND time < TIMESTAMPTZ '2026-11-24 14:00:00+00'"
    ),
}


# The same questions over the raw log text: one VARCHAR per line, fields split on spaces (the ELB status code is
# the 9th space-separated field, target_processing_time the 7th, the time the 2nd); no partition can be skipped.
RAW_QUERIES = {
    "group by status": (
        "SELECT TRY_CAST(split_part(line, ' ', 9) AS INTEGER) AS s, count(*) FROM raw GROUP BY 1 ORDER BY 1"
    ),
    "one hour filter": (
        "SELECT count(*), round(sum(TRY_CAST(split_part(line, ' ', 7) AS DOUBLE)), 3) FROM raw "
        "WHERE split_part(line, ' ', 2) >= '2026-11-24T13:00:00' AND split_part(line, ' ', 2) < '2026-11-24T14:00:00'"
    ),
}


def raw_seconds(logs: Path, sql: str, repeats: int) -> float:
    """Best time of ``sql`` over the raw objects under ``logs`` (each run reads and inflates them again)."""
    import duckdb

    files = sorted(str(p) for p in logs.rglob("*.log.gz"))
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    best = float("inf")
    for _ in range(repeats):
        con = duckdb.connect()
        started = time.perf_counter()
        con.execute(
            f"CREATE VIEW raw AS SELECT line FROM read_csv([{listed}], columns = {{'line': 'VARCHAR'}}, "
            "delim = '\x01', quote = '', escape = '', header = false, compression = 'gzip')"
        )
        con.sql(sql).fetchall()
        best = min(best, time.perf_counter() - started)
        con.close()
    return best


def _open_lake(path: Path) -> GenerationalLake:
    lake = open_local_lake(path)
    assert isinstance(lake, GenerationalLake)
    return lake


def query_seconds(lake_dir: Path, sql: str, repeats: int) -> tuple[float, float, list[tuple[object, ...]]]:
    """Best wall time of ``repeats`` runs with the connection setup (it lists the lake and reads the partition
    pointers), best time of the query alone on one connection, and the result."""
    from alblake.analysis import connect  # not in the compaction child: its peak RSS is measured

    best = best_query = float("inf")
    result: list[tuple[object, ...]] = []
    for _ in range(repeats):
        started = time.perf_counter()
        con = connect(lake_dir)
        result = con.sql(sql).fetchall()
        best = min(best, time.perf_counter() - started)
        started = time.perf_counter()
        con.sql(sql).fetchall()
        best_query = min(best_query, time.perf_counter() - started)
        con.close()
    return best, best_query, result


def build_ideal(source: Path, target: Path) -> None:
    """One time-sorted file per partition-hour, written with the lake's Parquet settings."""
    from alblake.analysis import connect

    con = connect(source)
    partitions = con.sql("SELECT DISTINCT elb_name, day, hour FROM alb_logs ORDER BY 1, 2, 3").fetchall()
    columns = ", ".join(ARROW_SCHEMA.names)
    for elb_name, day, hour in partitions:
        partition = partition_of_path(f"elb_name={elb_name}/day={day}/hour={hour}")
        assert partition is not None
        result = con.execute(
            f"SELECT {columns} FROM alb_logs WHERE elb_name = ? AND day = ? AND hour = ? ORDER BY time",
            [elb_name, day, hour],
        )
        to_table = getattr(result, "to_arrow_table", None) or getattr(result, "fetch_arrow_table")  # noqa: B009
        table = to_table()
        folder = target / partition_location(partition)
        folder.mkdir(parents=True, exist_ok=True)
        writer = parquet_writer(folder / "part-0.parquet")
        writer.write_table(table.cast(ARROW_SCHEMA), row_group_size=ROW_GROUP_ROWS)
        writer.close()
    con.close()


def compact_all(lake_dir: Path) -> tuple[float, int, int]:
    """Compact every partition now; (seconds, rows, partitions)."""
    lake = _open_lake(lake_dir)
    started = time.perf_counter()
    report = compact(lake, CompactionOptions(now=datetime.now(UTC) + timedelta(days=3650), older_than=timedelta(0)))
    assert not report.errors, report.errors
    return time.perf_counter() - started, report.rows_compacted, report.partitions_compacted


def big_partition(work: Path, megabytes: int) -> None:
    """Ingest ``megabytes`` of log text of one partition-hour (4 objects) and compact it in a child process."""
    logs = work / "big-logs"
    objects = 4
    for index in range(objects):
        make_log(logs / f"big-{index}.log.gz", megabytes * 1024 * 1024 // objects, seed=index + 1)
    lake_dir = work / "big-lake"
    shutil.rmtree(lake_dir, ignore_errors=True)
    summary = ingest_paths([str(logs)], lake_dir)
    print(
        f"\n1 partition-hour: {summary.text_bytes / 1e6:,.0f} MB of log text, {summary.rows:,} rows ({objects} objects)"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.lake_query", "--compact-child", str(lake_dir)], check=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"compaction     {seconds:6.2f} s   {summary.rows / seconds:,.0f} rows/s   peak RSS {peak:,.0f} MB (< 400)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--work", type=Path, help="working directory (default: a temporary one, removed)")
    parser.add_argument("--lines", type=int, default=500, help="lines per object")
    parser.add_argument("--nodes", default="3,2,2", help="nodes per load balancer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-mb", type=int, default=1024, help="log text of the partition-hour for peak RSS")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--compact-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    pin_to_one_core()
    if args.compact_child is not None:
        compact_all(args.compact_child)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="lake-query-"))
    try:
        run(work, args)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args: argparse.Namespace) -> None:
    nodes = tuple(int(n) for n in args.nodes.split(","))
    logs = work / f"logs-{'-'.join(map(str, nodes))}-{args.lines}"  # reused by later runs in the same --work
    per_object, ideal = work / "per-object", work / "ideal"
    for path in (per_object, ideal):
        shutil.rmtree(path, ignore_errors=True)
    if not (logs / "complete").exists():
        shutil.rmtree(logs, ignore_errors=True)
        started = time.perf_counter()
        written = write_sample_day(logs, nodes_per_lb=nodes, lines_per_object=args.lines)
        (logs / "complete").write_text(str(len(written)))
        print(f"sample day     {len(written):,} objects written in {time.perf_counter() - started:.1f} s")
    summary = ingest_paths([str(logs)], per_object)
    print(f"ingest         {summary.rows:,} rows, {len(summary.partitions)} partitions in {summary.seconds:.1f} s")
    build_ideal(per_object, ideal)

    measured: dict[str, dict[str, float]] = {}
    query_only: dict[str, dict[str, float]] = {}
    files: dict[str, int] = {}
    results: dict[str, dict[str, list[tuple[object, ...]]]] = {}
    for name, lake_dir in (("per-object", per_object), ("ideal", ideal)):
        files[name] = len(_open_lake(lake_dir).visible_files())
        measured[name], query_only[name], results[name] = {}, {}, {}
        for label, sql in QUERIES.items():
            measured[name][label], query_only[name][label], results[name][label] = query_seconds(
                lake_dir, sql, args.repeats
            )
    seconds, rows, partitions = compact_all(per_object)
    print(f"compaction     {partitions} partitions, {rows:,} rows in {seconds:.2f} s ({rows / seconds:,.0f} rows/s)")
    files["compacted"] = len(_open_lake(per_object).visible_files())
    measured["compacted"], query_only["compacted"], results["compacted"] = {}, {}, {}
    for label, sql in QUERIES.items():
        measured["compacted"][label], query_only["compacted"][label], results["compacted"][label] = query_seconds(
            per_object, sql, args.repeats
        )
    for label in QUERIES:
        assert results["compacted"][label] == results["ideal"][label] == results["per-object"][label], label

    print(f"\n{'lake':<12} {'files':>6}  " + "  ".join(f"{label:>18}" for label in QUERIES))
    for name in ("per-object", "compacted", "ideal"):
        cells = "  ".join(f"{measured[name][label]:>16.3f} s" for label in QUERIES)
        print(f"{name:<12} {files[name]:>6}  {cells}")
    print("(connection setup included: listing the lake and reading each partition's pointer)")
    for label in QUERIES:
        ideal_s, ideal_q = measured["ideal"][label], query_only["ideal"][label]
        print(
            f"{label}: compacted / ideal = {measured['compacted'][label] / ideal_s:.2f}x (target <= 1.2; "
            f"query alone {query_only['compacted'][label] / ideal_q:.2f}x), "
            f"per-object / ideal = {measured['per-object'][label] / ideal_s:.1f}x "
            f"(query alone {query_only['per-object'][label] / ideal_q:.1f}x)"
        )
    raw_bytes = sum(p.stat().st_size for p in logs.rglob("*.log.gz"))
    print(f"\nraw .log.gz    {raw_bytes / 1e6:,.1f} MB compressed, read whole by every query over the raw text")
    for label, sql in RAW_QUERIES.items():
        raw = raw_seconds(logs, sql, max(1, args.repeats // 2))
        print(f"{label}: raw text {raw:.3f} s, compacted lake {measured['compacted'][label]:.3f} s "
              f"({raw / measured['compacted'][label]:.0f}x faster)")
    if not args.skip_big:
        big_partition(work, args.big_mb)


if __name__ == "__main__":
    main()
