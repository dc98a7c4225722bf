"""Speed and peak RSS of converting hostile objects, one fresh process each; targets: < 400 MB per object (the
ingest function has 1,024 MB, and a hostile object must not take it), >= 20 MB/s of text for any input (a slower
object could exceed the ingest function's 300 s timeout and, in an SQS batch, send the whole batch back), and
< 10 s for the 4 MiB object of newlines. The lake's compaction has the same memory target, < 400 MB for one
partition-hour of any size (its merge is bounded by bytes, whatever the rows' width).

Classes:
  newlines            a 4 KB gzip object that inflates to 4 MiB of newlines, and 1 GB of them
  short-junk          short lines of junk words (4 MiB)
  long-junk-lines     lines of 100 KB of junk words (1 GB)
  overlong-lines      lines of 5 MB each, cut out by the reader (1 GB)
  many-partitions     every line in another hour, over more hours than an object may span (1 GB)
  all-quarantined     well-formed lines whose elb field is not type/name/id (1 GB)
  wide-rows           realistic lines with 8 KB user agents, the most ALB writes (600 MB)
  long-urls           realistic lines with 1.5 KB URLs (1 GB)
  tiny-line-junk      10 M lines of 'x' (a 20 KB gzip object)
  one-char-lines      10 M lines of one printable character each, '"' and ' ' included
  garbage-50-fields   lines of 50 fields of junk words (200 MB)
  realistic-30%-junk  realistic lines, 30% of them replaced by junk of every kind (300 MB)
  realistic-1GB       the realistic log of bench/memory.py, gzip and plain .log
  compact-4-wide      ``alblake compact`` of one partition-hour that ``alblake ingest`` filled from four wide-row
                      objects (300 MB each): the lake's own compaction, measured in its own process

Each class runs in a fresh child process; peak RSS is the child's ru_maxrss (the interpreter and imports
included, ~110 MB), MB/s is text bytes over the child's own conversion time (the interpreter's start left out),
and "cpu s" the CPU time of that conversion: on a shared machine, wall time grows with the other processes and
CPU time much less (a wall MB/s far below text MB / cpu s means the core was busy elsewhere). The rate target
applies to conversions, on wall time; the compaction's rate is shown for information. The bench exits 1 when a
class misses a target, and prints a table. Generated objects are cached in bench/out/ (~3.5 GB).

Usage: python bench/adversarial.py [--only NAME ...] [--scale 1.0]
A full run takes ~4-5 minutes here once the objects are generated (the first run generates them: ~10 minutes
more); ``--scale 0.1`` takes about a tenth (small objects are dominated by fixed costs: 2,000 partition-hours
cost ~10 ms each whatever their rows).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from isal import igzip

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alblake.sample import LOAD_BALANCERS, MALFORMED, generate_lines
from bench.common import log_pool

OUT = Path(__file__).parent / "out"
ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
TARGET_MB = 400
TARGET_MB_PER_S = 20.0

CHILD = """
import resource, sys, time
from pathlib import Path
from bench.common import pin_to_one_core
pin_to_one_core()
from alblake.ingest.core import ingest_object
from alblake.lake.generational import open_local_lake
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
started, cpu_started = time.perf_counter(), cpu()
lake = Path(sys.argv[2])
result = ingest_object(lambda: open(sys.argv[1], "rb"), sys.argv[1], open_local_lake(lake))
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
quarantine = sum(p.stat().st_size for p in (lake / "quarantine").glob("*.jsonl"))
print(result.lines, result.rows, result.quarantined, len(result.partitions), quarantine, seconds, cpu_seconds)
"""


def _valid_lines(count: int, start: datetime, seconds: int, seed: int = 7) -> list[str]:
    return generate_lines(count, lb=LOAD_BALANCERS[0], start=start, seconds=seconds, rng=random.Random(seed))


def _cycle(pool: bytes, size: int) -> Iterator[bytes]:
    for _ in range(0, size, len(pool)):
        yield pool


def newlines(size: int) -> Iterator[bytes]:
    step = 1 << 24
    for offset in range(0, size, step):
        yield b"\n" * min(step, size - offset)


def short_junk(size: int) -> Iterator[bytes]:
    rng = random.Random(1)
    words = [b"GET", b"/", b"x", b"404", b"-", b"junk", b"a=b", b"0.1"]
    pool = b"".join(b" ".join(rng.choices(words, k=rng.randint(1, 4))) + b"\n" for _ in range(100_000))
    return _cycle(pool, size)


def long_junk(size: int) -> Iterator[bytes]:
    rng = random.Random(2)
    words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", b'"quoted', b"x=1", b"\\x00"]
    for _ in range(0, size, 100_000):
        line = bytearray()
        while len(line) < 100_000:
            line += b" ".join(rng.choices(words, k=64)) + b" "
        yield bytes(line) + b"\n"


def overlong_lines(size: int) -> Iterator[bytes]:
    return _cycle(b"GET /" + b"a" * 5_000_000 + b"\n", size)


def many_partitions(size: int) -> Iterator[bytes]:
    """Every line in another hour: 3,000 consecutive hours (more than an object may span), cycled."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [_valid_lines(1, start + timedelta(hours=h), 1)[0].encode() + b"\n" for h in range(3_000)]
    return _cycle(b"".join(hours), size)


def all_quarantined(size: int) -> Iterator[bytes]:
    lines = _valid_lines(50_000, datetime(2026, 11, 24, 9, tzinfo=UTC), 300)
    return _cycle("".join(line.replace(" app/", " not-an-elb-", 1) + "\n" for line in lines).encode(), size)


_USER_AGENT_BYTES = 8192  # ALB truncates user agents at 8 KB
_URL_BYTES = 1536


def _text_source(seed: int, alphabet: str) -> str:
    return "".join(random.Random(seed).choices(alphabet, k=1 << 16))


def _widened(lines: list[str], pattern: str, width: int, alphabet: str) -> bytes:
    """Each line with the first match of ``pattern`` (one group) replaced by ``width`` bytes of varied text."""
    source = _text_source(3, alphabet)
    rng = random.Random(4)
    compiled = re.compile(pattern)
    out = []
    for line in lines:
        offset = rng.randrange(len(source) - width)
        match = compiled.search(line)
        assert match is not None, line
        text = source[offset : offset + width]
        out.append(line[: match.start(1)] + text + line[match.end(1) :] + "\n")
    return "".join(out).encode()


_AGENT_ALPHABET = string.ascii_letters + string.digits + " ;:,./()_-+=[]"
_URL_ALPHABET = string.ascii_letters + string.digits + "/?&=%-._~"


def wide_rows_pool(seed: int = 7, start: datetime = datetime(2026, 11, 24, 9, tzinfo=UTC)) -> bytes:
    """Realistic lines of one hour whose user agents have 8 KB of varied text (every row a distinct value)."""
    lines = _valid_lines(2_000, start, 300, seed)
    return _widened(lines, r'HTTP/1\.1" "([^"]*)"', _USER_AGENT_BYTES, _AGENT_ALPHABET)


def wide_rows(size: int) -> Iterator[bytes]:
    return _cycle(wide_rows_pool(), size)


def long_urls(size: int) -> Iterator[bytes]:
    lines = _valid_lines(10_000, datetime(2026, 11, 24, 9, tzinfo=UTC), 300)
    return _cycle(_widened(lines, r':(?:80|443)(/[^"]*) HTTP/1\.1"', _URL_BYTES, _URL_ALPHABET), size)


def tiny_line_junk(size: int) -> Iterator[bytes]:
    return _cycle(b"x\n" * (1 << 20), size)


def one_char_lines(size: int) -> Iterator[bytes]:
    characters = string.printable.replace("\n", "").replace("\r", "").encode()
    rng = random.Random(5)
    return _cycle(b"".join(bytes([rng.choice(characters)]) + b"\n" for _ in range(1 << 20)), size)


def garbage_fields(size: int) -> Iterator[bytes]:
    rng = random.Random(6)
    words = ["GET", "/", "x", "404", "-", "junk", "a=b", "0.1", "-1", '"q w"', "app/a/b", "1.2.3.4:80", "2026-13-01"]
    pool = "".join(" ".join(rng.choices(words, k=50)) + "\n" for _ in range(20_000))
    return _cycle(pool.encode(), size)


def _junk_line(rng: random.Random, line: str) -> str:
    """One line of junk of some kind: the sample's malformed lines, a cut or damaged log line, words."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(MALFORMED)
    if kind == 1:
        return line[: rng.randrange(len(line))]  # cut anywhere: few fields, an unterminated quote, ...
    if kind == 2:
        position = rng.randrange(len(line))
        return line[:position] + rng.choice(['"', " ", "é", "\x00", "x", "-"]) + line[position + 1 :]
    if kind == 3:
        return line.replace(" app/", " not-an-elb-", 1)
    if kind == 4:
        return " ".join(rng.choices(["junk", "-", "0", "x=1", '"a"'], k=rng.randint(1, 40)))
    return line.replace("HTTP/1.1", "HTTP/1.1" + " " * rng.randint(1, 3), 1)


def realistic_junk(size: int) -> Iterator[bytes]:
    rng = random.Random(8)
    lines = _valid_lines(50_000, datetime(2026, 11, 24, 9, tzinfo=UTC), 300)
    mixed = [_junk_line(rng, line) if rng.random() < 0.3 else line for line in lines]
    return _cycle(("\n".join(mixed) + "\n").encode(), size)


def realistic(size: int) -> Iterator[bytes]:
    return _cycle(log_pool(), size)


@dataclass(frozen=True)
class Case:
    generate: Callable[[int], Iterator[bytes]]
    size: int  # text bytes at scale 1
    plain: bool = False  # a .log object (else .log.gz)


CLASSES: dict[str, Case] = {
    "newlines-4MiB": Case(newlines, 4 << 20),
    "newlines-1GB": Case(newlines, 1000 * MB),
    "short-junk-4MiB": Case(short_junk, 4 << 20),
    "long-junk-lines-1GB": Case(long_junk, 1000 * MB),
    "overlong-lines-1GB": Case(overlong_lines, 1000 * MB),
    "many-partitions-3000h-1GB": Case(many_partitions, 1000 * MB),
    "all-quarantined-1GB": Case(all_quarantined, 1000 * MB),
    "wide-rows-8KB-UA-600MB": Case(wide_rows, 600 * MB),
    "long-urls-1.5KB-1GB": Case(long_urls, 1000 * MB),
    "tiny-line-junk-10M": Case(tiny_line_junk, 20 * MB),
    "one-char-lines-10M": Case(one_char_lines, 20 * MB),
    "garbage-50-fields-200MB": Case(garbage_fields, 200 * MB),
    "realistic-30%-junk-300MB": Case(realistic_junk, 300 * MB),
    "realistic-1GB-gzip": Case(realistic, 1000 * MB),
    "realistic-1GB-plain": Case(realistic, 1000 * MB, plain=True),
}
COMPACTION = "compact-4-wide-300MB"
COMPACTION_OBJECTS = 4
COMPACTION_OBJECT_BYTES = 300 * MB


def _write(path: Path, chunks: Iterator[bytes], size: int, plain: bool) -> int:
    """Write ``size`` bytes of text (whole chunks, at least ``size``) to ``path``; the bytes written."""
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with (
        partial.open("wb") if plain else igzip.open(partial, "wb", compresslevel=3)  # type: ignore[no-untyped-call]
    ) as out:
        for chunk in chunks:
            out.write(chunk)
            written += len(chunk)
            if written >= size:
                break
    partial.rename(path)
    return written


def make(name: str, size: int) -> tuple[Path, int]:
    """The class's object (cached) and its uncompressed size."""
    case = CLASSES[name]
    suffix = ".log" if case.plain else ".log.gz"
    path = OUT / f"adversarial-{name.replace('%', 'pct')}-{size}{suffix}"
    marker = path.with_name(path.name + ".meta")
    if not (path.exists() and marker.exists()):
        marker.write_text(str(_write(path, case.generate(size), size, case.plain)))
    return path, int(marker.read_text())


@dataclass
class Outcome:
    text_bytes: int
    stored_bytes: int
    lines: int
    rows: int
    quarantined: int
    partitions: int
    quarantine_bytes: int
    seconds: float
    cpu_seconds: float
    peak_mb: float

    @property
    def mb_per_s(self) -> float:
        return self.text_bytes / MB / max(self.seconds, 1e-9)


def run_child(arguments: list[str]) -> tuple[str, float, float]:
    """A fresh process's standard output, peak RSS (MB) and CPU seconds; raises SystemExit when it fails."""
    child = subprocess.Popen([sys.executable, *arguments], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(arguments[:3])}: exit {os.waitstatus_to_exitcode(status)}")
    return output, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def convert(name: str, scale: float) -> Outcome:
    path, text_bytes = make(name, int(CLASSES[name].size * scale))
    with tempfile.TemporaryDirectory() as lake:
        output, peak, _ = run_child(["-c", CHILD, str(path), lake])
    lines, rows, quarantined, partitions, quarantine_bytes, seconds, cpu_seconds = output.split()
    return Outcome(
        text_bytes,
        path.stat().st_size,
        int(lines),
        int(rows),
        int(quarantined),
        int(partitions),
        int(quarantine_bytes),
        float(seconds),
        float(cpu_seconds),
        peak,
    )


def compaction(scale: float) -> Outcome:
    """Four wide-row objects of one partition-hour, ingested by ``alblake ingest``; ``alblake compact`` measured."""
    size = int(COMPACTION_OBJECT_BYTES * scale)
    objects: list[Path] = []
    text_bytes = stored = 0
    for index in range(COMPACTION_OBJECTS):
        path = OUT / f"compaction-wide-{size}-{index}.log.gz"
        marker = path.with_name(path.name + ".meta")
        if not (path.exists() and marker.exists()):
            marker.write_text(str(_write(path, _cycle(wide_rows_pool(seed=10 + index), size), size, plain=False)))
        objects.append(path)
        text_bytes += int(marker.read_text())
        stored += path.stat().st_size
    with tempfile.TemporaryDirectory() as lake:
        ingest = ["-m", "alblake", "ingest", *map(str, objects), "--lake", lake, "--jobs", "1", "--quiet"]
        run_child(ingest)
        command = ["-m", "alblake", "compact", "--lake", lake, "--older-than", "0", "--grace", "0"]
        output, peak, cpu_seconds = run_child(command)  # CPU time of the whole command, its start included
    report = dict(re.findall(r"^(\w[\w ]*?)\s{2,}(\S+)", output, flags=re.MULTILINE))
    if report.get("partitions compacted") != "1":
        raise SystemExit(f"{COMPACTION}: expected one partition compacted:\n{output}")
    rows = int(report["rows compacted"].replace(",", ""))
    return Outcome(text_bytes, stored, rows, rows, 0, 1, 0, float(report["time"]), cpu_seconds, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [*CLASSES, COMPACTION]
    parser.add_argument("--only", nargs="*", choices=names, help="run these classes only")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (e.g. 0.1 for a quick look)")
    args = parser.parse_args()
    print(
        f"{'class':26s} {'text MB':>8s} {'object MB':>9s} {'lines':>11s} {'rows':>9s} {'quarant.':>11s} "
        f"{'parts':>6s} {'q-file MB':>9s} {'seconds':>8s} {'cpu s':>7s} {'MB/s':>7s} {'peak RSS':>9s}"
    )
    missed: list[str] = []
    for name in args.only or names:
        outcome = compaction(args.scale) if name == COMPACTION else convert(name, args.scale)
        too_slow = name != COMPACTION and outcome.mb_per_s < TARGET_MB_PER_S
        if outcome.peak_mb >= TARGET_MB or too_slow:
            missed.append(name)
        print(
            f"{name:26s} {outcome.text_bytes / MB:8.1f} {outcome.stored_bytes / MB:9.2f} {outcome.lines:11,} "
            f"{outcome.rows:9,} {outcome.quarantined:11,} {outcome.partitions:6,} "
            f"{outcome.quarantine_bytes / MB:9.2f} {outcome.seconds:8.2f} {outcome.cpu_seconds:7.2f} "
            f"{outcome.mb_per_s:7.1f} {outcome.peak_mb:6.0f} MB{'  <- missed' if name in missed else ''}",
            flush=True,
        )
    print(
        f"targets: peak RSS < {TARGET_MB} MB (conversions and compaction), "
        f"conversion >= {TARGET_MB_PER_S:.0f} MB/s of text: "
        + ("met" if not missed else f"NOT met by {', '.join(missed)}")
    )
    if missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
