"""Compaction of one partition-hour far larger than the memory a compaction may use, in steps.

One load balancer's hour of logs (``--gb`` GB of log text, default 3: about 5 million lines in ~100 objects, as
a large fleet's nodes deliver them) is ingested into a local lake; then a fresh child process compacts it with
``CompactionOptions(step_bytes=--step-mb)``, so the hour goes in steps (each step merges about that many bytes of
files into one new generation). While the child runs, this process polls its resident memory and the disk use of
the lake's staging directory (where a compaction downloads its inputs and writes its outputs: /tmp on Lambda).

Asserted (the run fails otherwise):
- peak RSS of the compacting process < 400 MB (a fixed ceiling, the same as the conversion's), although the
  hour's rows take several times that in memory (printed: rows x bytes per row of a decoded file);
- peak staging disk < 2.5 x (step + largest input file): a step holds its inputs and its outputs (and lineage);
- every row is still there once, and the hour ended in compacted files only.

Usage: python bench/compaction_scale.py [--gb 3] [--step-mb 32] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isal import igzip

from alblake.sample import LOAD_BALANCERS, generate_lines

RSS_CEILING_MB = 400
DISK_FACTOR = 2.5
HOUR = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
POOL_LINES = 50_000

CHILD = """
import json, resource, sys, time
from datetime import datetime, timedelta, UTC
from pathlib import Path
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.generational import open_local_lake
lake = open_local_lake(Path(sys.argv[1]))
options = CompactionOptions(now=datetime.now(UTC), older_than=timedelta(0), grace=timedelta(days=1),
                            step_bytes=int(sys.argv[2]))
started = time.perf_counter()
report = compact(lake, options)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "rows": report.rows_compacted,
                  "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                  "steps": report.partitions_compacted, "errors": report.errors, "bytes": report.bytes_written,
                  "maxrss_mb": usage.ru_maxrss / 1024}))
"""


def write_hour(folder: Path, text_bytes: int) -> tuple[int, int, int]:
    """ALB-named objects of one load balancer in one hour (12 nodes, every 5 minutes, as many rounds as needed);
    each object holds the lines of a generated pool of that hour, each line's URL made unique (a repeated line
    would compress, once sorted, far better than real logs do). Returns (objects, lines, text bytes)."""
    lb = LOAD_BALANCERS[0]
    pool = generate_lines(POOL_LINES, lb=lb, start=HOUR, seconds=3600, rng=random.Random(7), malformed_every=0)
    parts = [line.split(" HTTP/", 1) for line in pool if " HTTP/" in line]
    folder.mkdir(parents=True, exist_ok=True)
    objects = lines = size = 0
    while size < text_bytes:
        chunk = ("\n".join(f"{head}?o={objects}&l={i} HTTP/{tail}" for i, (head, tail) in enumerate(parts))
                 + "\n").encode()
        node, interval = objects % 12, (objects // 12) % 12
        end = HOUR + timedelta(minutes=5 * (interval + 1))
        name = (f"123456789012_elasticloadbalancing_us-east-1_app.{lb.name}.{lb.lb_id}_{end:%Y%m%dT%H%MZ}_"
                f"10.0.{objects // 144}.{node}_{objects:08x}.log.gz")
        with igzip.open(folder / name, "wb", compresslevel=1) as out:  # type: ignore[no-untyped-call]
            out.write(chunk)
        objects += 1
        lines += len(parts)
        size += len(chunk)
    return objects, lines, size


def disk_use(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a file the compaction just deleted
                total += (Path(directory) / name).lstat().st_blocks * 512
    return total


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def compact_watched(lake: Path, step: int) -> tuple[dict[str, Any], float, int]:
    """Run the compaction child; poll its RSS and the staging directory's disk use until it ends."""
    staging = lake / ".staging"
    staging.mkdir(exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(lake), str(step)], stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    peak_rss, peak_disk = [0.0], [0]

    def poll() -> None:
        while child.poll() is None:
            peak_rss[0] = max(peak_rss[0], rss_mb(child.pid))
            peak_disk[0] = max(peak_disk[0], disk_use(staging))
            time.sleep(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, _ = child.communicate()
    watcher.join()
    if child.returncode:
        raise SystemExit(f"compaction failed ({child.returncode})")
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return report, max(peak_rss[0], float(report["maxrss_mb"])), peak_disk[0]


def row_bytes(lake: Path) -> float:
    """Bytes per row of the hour's rows decoded in memory (one per-object file read whole)."""
    import pyarrow.parquet as pq

    first = next((lake / "alb_logs").rglob("*.parquet"))
    table = pq.read_table(first)
    decoded: float = table.nbytes / max(table.num_rows, 1)
    return decoded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=3.0, help="GB of log text in the partition-hour")
    parser.add_argument("--step-mb", type=int, default=32, help="CompactionOptions.step_bytes, in MB")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary directory)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="alblake-compaction-scale-"))
    try:
        run(work, int(args.gb * 1e9), args.step_mb * 1_000_000)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, text_bytes: int, step: int) -> None:
    started = time.perf_counter()
    objects, lines, size = write_hour(work / "logs", text_bytes)
    print(f"input        {objects} objects, {lines:,} lines, {size / 1e9:.2f} GB of log text in one partition-hour "
          f"({time.perf_counter() - started:.0f} s to write)")
    lake = work / "lake"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "alblake", "ingest", str(work / "logs"), "--lake", str(lake), "--quiet",
                    "--no-batch"], check=True, stdout=subprocess.DEVNULL)
    files = list((lake / "alb_logs").rglob("*.parquet"))
    parquet = sum(p.stat().st_size for p in files)
    largest = max(p.stat().st_size for p in files)
    in_memory = lines * row_bytes(lake)
    print(f"ingested     {len(files)} files, {parquet / 1e6:,.0f} MB of Parquet (largest {largest / 1e6:.1f} MB); "
          f"the rows take ~{in_memory / 1e9:.1f} GB decoded, {in_memory / 1e6 / RSS_CEILING_MB:.1f}x the "
          f"{RSS_CEILING_MB} MB ceiling ({time.perf_counter() - started:.0f} s)")
    report, peak_rss, peak_disk = compact_watched(lake, step)
    disk_bound = DISK_FACTOR * (step + largest)
    print(f"compacted    {report['rows']:,} rows merged in {report['steps']} steps of <= {step / 1e6:.0f} MB, "
          f"{int(report['bytes']) / 1e6:,.0f} MB written, {report['seconds']} s ({report['cpu_seconds']} s of CPU: "
          "on a shared machine, wall time grows with the other processes and CPU time much less)")
    print(f"peak RSS     {peak_rss:,.0f} MB (ceiling {RSS_CEILING_MB} MB)")
    print(f"peak staging {peak_disk / 1e6:,.0f} MB on disk (bound {DISK_FACTOR} x (step + largest input) = "
          f"{disk_bound / 1e6:,.0f} MB; {peak_disk / step:.2f}x the step)")
    visible, rows = visible_rows(lake)
    print(f"lake         {rows:,} rows in {len(visible)} visible file(s), all compacted: "
          f"{all('/compacted/' in f for f in visible)}")
    assert not report["errors"], report["errors"]
    assert rows == lines, (rows, lines)
    assert all("/compacted/" in f for f in visible)
    assert int(report["steps"]) >= 2, "the hour must go in steps: lower --step-mb"
    assert peak_rss < RSS_CEILING_MB, f"peak RSS {peak_rss:.0f} MB"
    assert peak_disk < disk_bound, f"peak staging {peak_disk / 1e6:.0f} MB"


def visible_rows(lake: Path) -> tuple[list[str], int]:
    """The lake's visible files (what readers read) and their rows, from the footers."""
    import pyarrow.parquet as pq

    from alblake.lake.generational import open_local_lake

    files = list(open_local_lake(lake).visible_files())
    return files, sum(pq.read_metadata(f).num_rows for f in files)


if __name__ == "__main__":
    main()
