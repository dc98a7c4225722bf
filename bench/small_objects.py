"""Many small objects vs one large object: lines/s of ``alblake ingest`` over 600 objects x 250 lines (all
cores, process pool) against one 150k-line object (one process), measured in the same run.

Three shapes of the same 600 x 250 lines, because the cost of small objects depends on how many share a
partition-hour (one file per partition-hour is the floor of any Hive layout):
- ``delivery``: what ALB writes, one object per load balancer node every 5 minutes (3 load balancers with 2, 2
  and 1 nodes, 120 intervals: 12-24 objects per partition-hour);
- ``spread``: the sample generator's rounds 40 minutes apart (1-2 objects per partition-hour, ~400 of them);
- ``documented``: the delivery shape, but every line one of AWS's documented example lines (http, https, h2, ws,
  wss, a Lambda target, a 502 without target), verbatim but for its time and load balancer; the large object is
  made of the same lines.

Target: small objects at >= 0.5x the large object's lines/s (ALB delivers a day as ~2,000 small objects, so
the per-object cost must not dominate); and the large object is not slower
than a plain in-process ``ingest_object`` call (the pool is not used for a single object).
Prints ratios; each figure is the best of ``--repeat`` runs, the configurations alternating so that a noisy
neighbour on the machine hits them alike. ``per object`` is the same objects ingested one by one (no batches).
``N processes`` reuses this process's fork server after the first round (steady state, as in a long backfill):
the strict figure, with no start cost on either side. ``one command`` runs ``alblake ingest`` in a fresh process
for each side, timed from start to exit, as a user meets it: both sides pay the interpreter's start and alblake's
imports (~0.5-0.7 s), and the small side its pool's start.
The lakes are written under ``--work-dir`` (default: the system's temporary directory) and kept until the end;
each run starts once earlier writes are on disk (``new_lake``). Small objects create files (a manifest each, a
dozen per partition-hour); the run prints what creating a file costs there, because it varies a lot between
filesystems and with what the filesystem is still doing (on this project's development VM: ~0.04 ms on a quiet
ext4, 0.3-0.7 ms while it commits a large deletion, which adds 0.2-0.4 s to 600 objects).
Usage: python bench/small_objects.py [--objects 600 --lines 250 --repeat 3 --jobs N --shape delivery|spread|documented
                                      --work-dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alblake.ingest.core import ingest_object
from alblake.ingest.pool import default_jobs
from alblake.ingest.runner import ingest_paths
from alblake.lake.generational import open_local_lake
from alblake.sample import LOAD_BALANCERS, object_key, write_sample_day, write_sample_logs

OUT = Path(__file__).parent / "out"


DELIVERY_NODES = (2, 2, 1)  # nodes of each sample load balancer: 5 objects per 5-minute interval


DOCUMENTED = Path(__file__).resolve().parents[1] / "tests" / "data" / "aws_documented_examples.log"


def documented_lines(count: int, elb: str, start: datetime, seconds: int) -> list[str]:
    """``count`` lines cycling over AWS's documented examples, spread over ``seconds`` from ``start``."""
    examples = [line.split(" ") for line in DOCUMENTED.read_text().splitlines() if line]
    lines = []
    for i in range(count):
        fields = list(examples[i % len(examples)])
        moment = start + timedelta(microseconds=i * seconds * 1_000_000 // max(count, 1))
        fields[1], fields[2] = f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z", elb
        lines.append(" ".join(fields))
    return lines


def write_documented(out: Path, objects: int, lines: int, start: datetime) -> None:
    nodes = [(lb, node) for lb, count in zip(LOAD_BALANCERS, DELIVERY_NODES, strict=True) for node in range(count)]
    for index in range(objects):
        (lb, node), interval = nodes[index % len(nodes)], index // len(nodes)
        begin = start + timedelta(minutes=5 * interval)
        text = documented_lines(lines, f"app/{lb.name}/{lb.lb_id}", begin, 300)
        path = out / object_key(lb, begin + timedelta(minutes=5), f"10.9.{node}.{10 + node}", f"{index:010x}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(("\n".join(text) + "\n").encode(), compresslevel=6, mtime=0))


def make_inputs(objects: int, lines: int, shape: str) -> tuple[Path, Path]:
    small = OUT / (f"small-{objects}x{lines}" if shape == "spread" else f"small-{shape}-{objects}x{lines}")
    large = OUT / (f"large-1x{objects * lines}" if shape != "documented" else f"large-documented-1x{objects * lines}")
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    if not small.exists():
        if shape == "spread":
            write_sample_logs(small / "tmp", files=objects, lines_per_file=lines, start=start, malformed_every=0)
        elif shape == "documented":
            write_documented(small / "tmp", objects, lines, start)
        else:
            intervals = -(-objects // sum(DELIVERY_NODES))
            write_sample_day(small / "tmp", day=start, nodes_per_lb=DELIVERY_NODES, lines_per_object=lines,
                             malformed_every=0, intervals=intervals)
        (small / "tmp").rename(small / "logs")
    if not large.exists():
        if shape == "documented":
            write_documented(large / "tmp", 1, objects * lines, start)
        else:
            write_sample_logs(large / "tmp", files=1, lines_per_file=objects * lines, start=start, malformed_every=0)
        (large / "tmp").rename(large / "logs")
    return small / "logs", large / "logs"


def new_lake(work: Path) -> Path:
    """A fresh lake folder, once what earlier runs wrote is on disk (``os.sync``): every run starts alike.

    Lakes are deleted only at the end of the bench. Deleting one right after its run made the next run pay for
    that deletion: on this project's development VM (ext4 mounted with ``discard``) the journal commit of a
    deleted lake ran during the next run's file creations, which then cost ~0.3-0.7 ms each instead of
    ~0.04 ms; a run of small objects creates ~1,000 files (the large object a few dozen), so the artefact fell
    almost entirely on the small objects (0.45-0.51x with it, 0.64x without, same code, same hour)."""
    lake = Path(tempfile.mkdtemp(dir=work))
    os.sync()
    return lake


def timed_ingest(logs: Path, jobs: int, work: Path, batch: bool | None = None) -> tuple[float, int]:
    lake = new_lake(work)
    started = time.perf_counter()
    summary = ingest_paths([str(logs)], lake, jobs=jobs, batch=batch)
    seconds = time.perf_counter() - started
    assert not summary.failures, summary.failures
    return seconds, summary.lines


def timed_command(logs: Path, work: Path) -> float:
    """``alblake ingest`` as a user runs it: a fresh process (``python -m alblake``, what the console script runs),
    timed from outside, from its start to its exit. It pays the interpreter's start and alblake's imports, and a
    pool when it has many objects."""
    lake = new_lake(work)
    command = [sys.executable, "-m", "alblake", "ingest", str(logs), "--lake", str(lake), "--quiet"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
    return time.perf_counter() - started


def timed_direct(logs: Path, work: Path) -> float:
    """The large object through a bare ``ingest_object`` call: the reference for 'must not get slower'."""
    path = next(logs.rglob("*.log.gz"))
    lake = new_lake(work)
    started = time.perf_counter()
    ingest_object(lambda: path.open("rb"), str(path), open_local_lake(lake))
    return time.perf_counter() - started


def _spin(_: int) -> int:
    total = 0
    for i in range(2_000_000):
        total += i
    return total


def cpu_scaling(jobs: int) -> float:
    """Control: speedup of a pool of ``jobs`` processes on pure CPU work. On an idle machine it is ~``jobs``;
    far less means other load has the cores, and no pool can show its gain in this run."""
    started = time.perf_counter()
    for i in range(4 * jobs):
        _spin(i)
    serial = time.perf_counter() - started
    with multiprocessing.get_context("forkserver").Pool(jobs) as pool:
        pool.map(_spin, range(jobs))  # started
        started = time.perf_counter()
        pool.map(_spin, range(4 * jobs), chunksize=1)
        return serial / (time.perf_counter() - started)


def file_create_ms(work: Path, count: int = 300) -> float:
    """Control: milliseconds to create (and write) one small file in a fresh folder of ``work``, started as the
    runs start (``new_lake``)."""
    folder = new_lake(work)
    started = time.perf_counter()
    for i in range(count):
        (folder / f"f{i}").write_bytes(b"{}")
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=600)
    parser.add_argument("--lines", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--shape", choices=["delivery", "spread", "documented"], default="delivery")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()), help="where lakes are written")
    args = parser.parse_args()
    small, large = make_inputs(args.objects, args.lines, args.shape)
    work = Path(tempfile.mkdtemp(dir=args.work_dir, prefix="alblake-bench-"))
    best: dict[str, float] = {}
    lines = args.objects * args.lines
    try:
        for _ in range(args.repeat):
            runs: dict[str, Callable[[], float]] = {
                # the large runs are short: three tries per round, so their minimum is as settled as the others'
                "large, ingest_object": lambda: min(timed_direct(large, work) for _ in range(3)),
                "large, alblake ingest": lambda: min(timed_ingest(large, args.jobs, work)[0] for _ in range(3)),
                "small, 1 process": lambda: timed_ingest(small, 1, work)[0],
                f"small, {args.jobs} processes": lambda: timed_ingest(small, args.jobs, work)[0],
                "large, one command": lambda: min(timed_command(large, work) for _ in range(3)),
                "small, one command": lambda: timed_command(small, work),
                f"small per object, {args.jobs} pr.": lambda: timed_ingest(small, args.jobs, work, batch=False)[0],
            }
            for name, run in runs.items():
                best[name] = min(best.get(name, float("inf")), run())
        creating = file_create_ms(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reference = lines / best["large, alblake ingest"]
    objects = sum(1 for _ in small.rglob("*.log.gz"))
    print(f"{lines:,} lines each ({objects} small objects, shape {args.shape}); best of {args.repeat}; "
          f"{args.jobs} processes for the pool")
    print(f"control: pure CPU work on {args.jobs} processes runs {cpu_scaling(args.jobs):.2f}x one process")
    print(f"control: creating a file in the work directory takes {creating:.3f} ms")
    for name, seconds in best.items():
        print(f"  {name:28s} {seconds:6.2f} s  {lines / seconds:>10,.0f} lines/s  {lines / seconds / reference:5.2f}x")
    small_ratio = lines / best[f"small, {args.jobs} processes"] / reference
    large_ratio = best["large, ingest_object"] / best["large, alblake ingest"]
    fixed_ms = (best["small, 1 process"] - best["large, alblake ingest"]) / args.objects * 1000
    print(f"fixed cost per object (one process): {fixed_ms:.1f} ms")
    command_ratio = best["large, one command"] / best["small, one command"]
    print(f"small objects / large object: {small_ratio:.2f}x in one process with a started pool; {command_ratio:.2f}x "
          "as two `alblake ingest` commands, start to exit (target >= 0.5x)")
    print(f"large object, CLI path / bare ingest_object: {large_ratio:.2f}x (target >= ~1.0x: not slower)")


if __name__ == "__main__":
    main()
