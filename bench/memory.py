"""Peak RSS of converting a ~1 GB (uncompressed) log in a fresh process; target < 400 MB.

Usage: python bench/memory.py [--mb 1000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import make_log

CHILD = """
import sys, time
from pathlib import Path
from bench.common import pin_to_one_core
pin_to_one_core()
from alblake.ingest.core import ingest_object
from alblake.lake.generational import open_local_lake
started = time.perf_counter()
result = ingest_object(lambda: open(sys.argv[1], "rb"), sys.argv[1], open_local_lake(Path(sys.argv[2])))
print(result.lines, result.rows, result.quarantined, round(time.perf_counter() - started, 2))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1000)
    args = parser.parse_args()
    path = Path(__file__).parent / "out" / f"memory-{args.mb}mb.log.gz"
    lines, text_bytes = make_log(path, args.mb * 1_000_000)
    baseline = subprocess.run([sys.executable, "-c", "import alblake.convert.core"], check=True)
    baseline_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as lake:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), lake],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out_lines, rows, quarantined, seconds = done.stdout.split()
    del baseline
    print(
        f"input      {lines:,} lines, {text_bytes / 1e6:,.0f} MB uncompressed, {path.stat().st_size / 1e6:,.0f} MB gzip"
    )
    print(f"converted  {int(out_lines):,} lines -> {int(rows):,} rows, {quarantined} quarantined in {seconds} s")
    print(f"peak RSS   {peak_mb:,.0f} MB (import-only process: {baseline_rss:,.0f} MB); target < 400 MB")
    print(f"ratio      {peak_mb / (text_bytes / 1e6):.3f} MB RSS per MB of log text")


if __name__ == "__main__":
    main()
