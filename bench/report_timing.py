"""``alblake report`` and ``alblake query``/``sql`` as whole commands, against a plain DuckDB process running the
same SQL over the same visible files.

1. A simulated day (``alblake.sample.write_sample_day``: every node of every load balancer delivers every
   5 minutes; ~1M rows) is ingested and compacted into a local lake (kept in ``--work`` for later runs).
2. Baseline: a fresh ``python`` process that imports duckdb, creates ``alb_logs`` with ``read_parquet`` over the
   lake's visible files (the list is written to a file beforehand: no listing, no globbing), defines the
   ``approx_percentile`` macro and runs the 12 files of ``sql/queries/`` into Arrow tables: the target's baseline.
   ``--triage-baseline`` adds, for information, a process running the same 12 files plus the triage SQL of the
   report's section (the newest 30 minutes against the 24 hours before, over the dimensions the rollup holds:
   ``alblake.triage.query.build_query`` with ``alblake.triage.section.REPORT_DIMENSIONS``) with the rollup as
   ``alb_rollup_1m`` (``read_parquet`` of its files) and the DuckDB macros the SQL needs.
3. ``alblake report --lake ... --out ...`` (the 12 queries, the triage section and the HTML page), ``alblake
   query overview``, and a one-hour ``alblake sql`` with ``--since/--until`` (reads one hour's files), each as a
   fresh process; any other command with ``--also 'ARGS'``.

The timed source trees are compiled to bytecode first (``compileall``), as an installed alblake is: pip compiles a
package's modules when it installs it, as it did DuckDB's and pyarrow's. Without that, a machine that sets
``PYTHONDONTWRITEBYTECODE`` (some CI images do) compiles alblake's modules from source at every start: about 60 ms
of a 1.2 s report, which no user of an installed alblake pays.

Each is timed from start to exit (wall) and by its CPU time (user + system of the process and its threads, from
``getrusage``: steadier than wall on a shared machine), ``--repeats`` times, alternating so a busy neighbour
slows all alike; the figures are ratios against the baseline of the same run, of the best runs and of the
medians. Target: report <= 1.25x the baseline (the 12 queries). ``--alblake-src DIR`` times the commands of
another source tree (``git archive`` of an earlier commit: its ``src``) instead of this one; ``--before-src DIR``
adds that tree's ``alblake report`` to the same alternation, for before/after figures under the same load.

Usage: ``python -m bench.report_timing [--work DIR] [--repeats 5] [--alblake-src DIR] [--before-src DIR]``
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]

BASELINE = """
import json, sys
import duckdb
files, rollup, macros, queries = json.load(open(sys.argv[1]))
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("CREATE TEMP MACRO approx_percentile(x, p) AS quantile_cont(x, p)")
for macro in macros:
    con.execute(macro)
for view, listed in (("alb_logs", files), ("alb_rollup_1m", rollup)):
    if listed:
        paths = ", ".join("'" + f.replace("'", "''") + "'" for f in listed)
        con.execute("CREATE TEMP VIEW " + view + " AS SELECT * FROM read_parquet([" + paths + "], "
                    "hive_partitioning = true, hive_types_autocast = false)")
for sql in queries:
    con.sql(sql).to_arrow_table()
"""


def build_lake(work: Path, lines: int) -> Path:
    """A compacted simulated day under ``work`` (built once, reused)."""
    from alblake.ingest.runner import ingest_paths
    from alblake.lake.compaction import CompactionOptions, compact
    from alblake.lake.generational import open_local_lake
    from alblake.sample import write_sample_day

    lake = work / f"lake-{lines}"
    if (lake / "complete").exists():
        return lake
    shutil.rmtree(lake, ignore_errors=True)
    logs = work / f"logs-{lines}"
    shutil.rmtree(logs, ignore_errors=True)
    write_sample_day(logs, lines_per_object=lines)
    summary = ingest_paths([str(logs)], lake, jobs=None)
    report = compact(
        open_local_lake(lake), CompactionOptions(now=datetime.now(UTC) + timedelta(days=3650), older_than=timedelta(0))
    )
    assert not report.errors, report.errors
    print(f"lake           {summary.rows:,} rows, {report.partitions_compacted} partitions compacted")
    (lake / "complete").write_text("")
    shutil.rmtree(logs, ignore_errors=True)
    return lake


def alblake_command(src: Path | None, *args: str) -> list[str]:
    if src is None:
        return [sys.executable, "-m", "alblake", *args]
    # as `python -m alblake` does (alblake.__main__, where the command line defers some imports), from that tree
    code = f"import runpy, sys; sys.path.insert(0, {str(src)!r}); runpy.run_module('alblake', run_name='__main__')"
    return [sys.executable, "-c", code, *args]


def seconds(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of a command run to its exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, help="directory for the lake, kept for later runs (default: temporary)")
    parser.add_argument("--lines", type=int, default=500, help="lines per simulated object (500: ~1M rows a day)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--alblake-src", type=Path, help="the src/ directory of another alblake to time")
    parser.add_argument("--before-src", type=Path, help="also time this src/ directory's alblake report, alternating")
    parser.add_argument("--triage-baseline", action="store_true",
                        help="also time plain DuckDB running the 12 queries and the report's triage SQL")
    parser.add_argument(
        "--also", action="append", default=[], metavar="ARGS",
        help="another alblake command to time against the same baseline, e.g. --also 'triage --since 30m' "
        "(the lake is added)",
    )
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="report-timing-"))
    try:
        run(work, args)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args: argparse.Namespace) -> None:
    from alblake.analysis import list_queries
    from alblake.lake.generational import open_local_lake
    from alblake.rollup.files import rollup_files
    from alblake.rollup.routes import DUCKDB_MACROS

    lake = build_lake(work, args.lines)
    for tree in (ROOT / "src", args.alblake_src, args.before_src):
        if tree is not None:
            compileall.compile_dir(tree, quiet=1)
    files = list(open_local_lake(lake).visible_files())
    queries = [q.sql for q in list_queries()][:12]
    spec = work / "baseline.json"
    spec.write_text(json.dumps([files, [], [], queries]))
    with_triage = work / "baseline-triage.json"
    with_triage.write_text(json.dumps([files, rollup_files(open_local_lake(lake)), DUCKDB_MACROS,
                                       [*queries, report_triage_sql(lake)]]))
    day = sorted({f.split("/day=")[1][:10] for f in files})[0]
    hour = [f"--since={day}T13:00", f"--until={day}T14:00"]
    commands = {
        "plain DuckDB (12 queries)": [sys.executable, "-c", BASELINE, str(spec)],
        "alblake report": alblake_command(args.alblake_src, "report", "--lake", str(lake), "--out",
                                          str(work / "report.html")),
        "alblake query overview": alblake_command(args.alblake_src, "query", "overview", "--lake", str(lake)),
    }
    if args.triage_baseline:
        commands["plain DuckDB (12 + triage)"] = [sys.executable, "-c", BASELINE, str(with_triage)]
    if args.before_src is not None:
        commands["alblake report (before)"] = alblake_command(args.before_src, "report", "--lake", str(lake),
                                                              "--out", str(work / "report-before.html"))
    if args.alblake_src is None:
        commands["alblake sql, one hour"] = alblake_command(
            None, "sql", "SELECT count(*) FROM alb_logs", "--lake", str(lake), *hour
        )
    for extra in args.also:
        commands[f"alblake {extra}"] = alblake_command(args.alblake_src, *shlex.split(extra), "--lake", str(lake))
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            took, used = seconds(command)
            walls[name].append(took)
            cpus[name].append(used)
    print(f"{len(files)} visible files; best and median of {args.repeats}, each a fresh process; load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end")
    print(f"{'command':<28} {'wall':>8} {'ratio':>6} {'cpu':>8} {'ratio':>6}   median: {'wall':>6} {'cpu':>6}")
    base = "plain DuckDB (12 queries)"
    for name in commands:
        wall, cpu = min(walls[name]), min(cpus[name])
        print(f"{name:<28} {wall:7.3f}s {wall / min(walls[base]):5.2f}x {cpu:7.3f}s {cpu / min(cpus[base]):5.2f}x"
              f"   {median(walls[name]) / median(walls[base]):13.2f}x {median(cpus[name]) / median(cpus[base]):5.2f}x")
    print("target: alblake report <= 1.25x plain DuckDB running the same 12 SQL files over the same files")


def report_triage_sql(lake: Path) -> str:
    """The SQL of the report's triage section: the lake's newest 30 minutes against the 24 hours before."""
    from alblake.analysis import connect
    from alblake.triage.query import build_query
    from alblake.triage.section import REPORT_DIMENSIONS, section_window

    con = connect(lake)
    try:
        window = section_window(con)
    finally:
        con.close()
    assert window is not None, "the bench lake holds no request"
    return build_query(window, None, dimensions=REPORT_DIMENSIONS).sql

if __name__ == "__main__":
    main()
