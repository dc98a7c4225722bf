"""Time and peak RSS of converting hostile objects, one fresh process each; target < 400 MB per object (the ingest
function has 1,024 MB, and a hostile object must not take it), and < 10 s for the 4 MiB object of newlines.

Classes: newlines (a 4 KB gzip object that inflates to 4 MiB of newlines, and 1 GB), short junk lines (every
line on the parser's slow path), long junk lines (100 KB each), over-long lines (5 MB each, cut out by the
reader), many partition-hours, all-quarantined 1 GB (well-formed lines whose elb field is not type/name/id).

Usage: python bench/adversarial.py [--only NAME ...] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from isal import igzip

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alblake.sample import LOAD_BALANCERS, generate_lines

OUT = Path(__file__).parent / "out"
MB = 1_000_000
TARGET_MB = 400

CHILD = """
import sys, time
from pathlib import Path
from bench.common import pin_to_one_core
pin_to_one_core()
from alblake.ingest.core import ingest_object
from alblake.lake.generational import open_local_lake
started = time.perf_counter()
lake = Path(sys.argv[2])
result = ingest_object(lambda: open(sys.argv[1], "rb"), sys.argv[1], open_local_lake(lake))
seconds = time.perf_counter() - started
quarantine = sum(p.stat().st_size for p in (lake / "quarantine").glob("*.jsonl"))
print(result.lines, result.rows, result.quarantined, len(result.partitions), quarantine, round(seconds, 2))
"""


def _valid_lines(count: int, start: datetime, seconds: int) -> list[str]:
    return generate_lines(count, lb=LOAD_BALANCERS[0], start=start, seconds=seconds, rng=random.Random(7))


def newlines(size: int) -> Iterator[bytes]:
    step = 1 << 24
    for offset in range(0, size, step):
        yield b"\n" * min(step, size - offset)


def short_junk(size: int) -> Iterator[bytes]:
    rng = random.Random(1)
    words = [b"GET", b"/", b"x", b"404", b"-", b"junk", b"a=b", b"0.1"]
    pool = b"".join(b" ".join(rng.choices(words, k=rng.randint(1, 4))) + b"\n" for _ in range(100_000))
    for _ in range(0, size, len(pool)):
        yield pool


def long_junk(size: int) -> Iterator[bytes]:
    rng = random.Random(2)
    words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", b'"quoted', b"x=1", b"\\x00"]
    for _ in range(0, size, 100_000):
        line = bytearray()
        while len(line) < 100_000:
            line += b" ".join(rng.choices(words, k=64)) + b" "
        yield bytes(line) + b"\n"


def overlong_lines(size: int) -> Iterator[bytes]:
    line = b"GET /" + b"a" * 5_000_000 + b"\n"
    for _ in range(0, size, len(line)):
        yield line


def many_partitions(size: int) -> Iterator[bytes]:
    """Every line in another hour: 3,000 consecutive hours (more than an object may span), cycled."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [_valid_lines(1, start + timedelta(hours=h), 1)[0].encode() + b"\n" for h in range(3_000)]
    pool = b"".join(hours)
    for _ in range(0, size, len(pool)):
        yield pool


def all_quarantined(size: int) -> Iterator[bytes]:
    lines = _valid_lines(50_000, datetime(2026, 11, 24, 9, tzinfo=UTC), 300)
    pool = "".join(line.replace(" app/", " not-an-elb-", 1) + "\n" for line in lines).encode()
    for _ in range(0, size, len(pool)):
        yield pool


CLASSES: dict[str, tuple[Callable[[int], Iterator[bytes]], int]] = {
    "newlines-4MiB": (newlines, 4 << 20),
    "newlines-1GB": (newlines, 1000 * MB),
    "short-junk-4MiB": (short_junk, 4 << 20),
    "long-junk-lines-1GB": (long_junk, 1000 * MB),
    "overlong-lines-1GB": (overlong_lines, 1000 * MB),
    "many-partitions-3000h-1GB": (many_partitions, 1000 * MB),
    "all-quarantined-1GB": (all_quarantined, 1000 * MB),
}


def make(name: str, size: int) -> tuple[Path, int]:
    """The class's .log.gz (cached) and its uncompressed size."""
    path = OUT / f"adversarial-{name}-{size}.log.gz"
    marker = path.with_suffix(".meta")
    if path.exists() and marker.exists():
        return path, int(marker.read_text())
    generate, _ = CLASSES[name]
    written = 0
    OUT.mkdir(parents=True, exist_ok=True)
    with igzip.open(path, "wb", compresslevel=3) as out:  # type: ignore[no-untyped-call]
        for chunk in generate(size):
            out.write(chunk)
            written += len(chunk)
            if written >= size:
                break
    marker.write_text(str(written))
    return path, written


def run(path: Path) -> tuple[list[str], float, float]:
    """The child's output line, wall seconds and peak RSS (MB) of converting ``path`` in a fresh process."""
    with tempfile.TemporaryDirectory() as lake:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), lake],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert child.stdout is not None
        output = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
    if child.returncode:
        raise SystemExit(f"{path.name}: the conversion failed (exit {child.returncode})")
    return output.split(), wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", choices=sorted(CLASSES), help="run these classes only")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (e.g. 0.1 for a quick look)")
    args = parser.parse_args()
    print(
        f"{'class':24s} {'text MB':>8s} {'gzip MB':>8s} {'lines':>11s} {'rows':>9s} {'quarant.':>11s} "
        f"{'parts':>6s} {'q-file MB':>9s} {'seconds':>8s} {'peak RSS':>9s}"
    )
    worst = 0.0
    for name in args.only or list(CLASSES):
        path, text_bytes = make(name, int(CLASSES[name][1] * args.scale))
        (lines, rows, quarantined, partitions, quarantine_bytes, seconds), _, peak = run(path)
        worst = max(worst, peak)
        print(
            f"{name:24s} {text_bytes / MB:8.1f} {path.stat().st_size / MB:8.2f} {int(lines):11,} {int(rows):9,} "
            f"{int(quarantined):11,} {int(partitions):6,} {int(quarantine_bytes) / MB:9.2f} {float(seconds):8.2f} "
            f"{peak:7.0f} MB"
        )
    print(f"worst peak RSS {worst:.0f} MB; target < {TARGET_MB} MB ({'met' if worst < TARGET_MB else 'NOT met'})")


if __name__ == "__main__":
    main()
