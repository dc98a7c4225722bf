"""Shared helpers for the benchmarks: a large realistic .log.gz, single-core pinning."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path

from isal import igzip

from alblake.sample import LOAD_BALANCERS, generate_lines

POOL_LINES = 50_000


def pin_to_one_core() -> None:
    """Benchmarks are single-core: pin the process and stop Arrow from using its thread pools."""
    import pyarrow as pa

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def log_pool(seed: int = 1, malformed_every: int = 0) -> bytes:
    """POOL_LINES realistic lines (5 minutes of one load balancer) as text; make_log repeats it."""
    pool = generate_lines(
        POOL_LINES,
        lb=LOAD_BALANCERS[0],
        start=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        seconds=300,
        rng=random.Random(seed),
        malformed_every=malformed_every,
    )
    return ("\n".join(pool) + "\n").encode()


def make_log(path: Path, text_bytes: int, seed: int = 1, malformed_every: int = 0) -> tuple[int, int]:
    """Write a gzip ALB log of about ``text_bytes`` uncompressed (5 min of one LB, repeated pool).

    Returns (lines, uncompressed bytes). Cached: an existing file of the right size is reused.
    """
    marker = path.with_suffix(".meta")
    if path.exists() and marker.exists():
        lines, size = map(int, marker.read_text().split())
        if size >= text_bytes:
            return lines, size
    chunk = log_pool(seed, malformed_every)
    lines = size = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with igzip.open(path, "wb", compresslevel=2) as out:  # type: ignore[no-untyped-call]
        while size < text_bytes:
            out.write(chunk)
            lines += POOL_LINES
            size += len(chunk)
    marker.write_text(f"{lines} {size}")
    return lines, size
