"""The cost of the lake's lifecycle: privacy at ingest, erasure criteria at commit, and an erasure per partition-hour.

1. Ingest of one large sample object (``--lines``, one process) with each privacy setting, as a ratio of the
   lines/s without any (the same object, the same run, the settings alternating; best of ``--repeat``).
2. The same ingest with ``--criteria`` erasures in the lake's policy (client addresses, digests keyed), against
   none: what every commit pays to drop their rows.
3. An erasure from a compacted lake of ``--hours`` partition-hours (``--lines`` rows in all): the time and store
   requests per partition-hour scanned (every one in the range, match or not), and what rewriting one with matching
   rows adds; requests counted on the local store (on S3 each is a request: LIST, GET, PUT, DELETE).

Prints ratios and per-partition figures; never asserts on time.
Usage: python bench/lifecycle.py [--lines 150000 --repeat 3 --criteria 100 --hours 24]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import io
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from alblake.convert.privacy import PrivacySettings
from alblake.ingest.core import ingest_object
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.generational import GenerationalLake, open_lake
from alblake.lake.lifecycle import ErasureRequest, criterion_for, erase
from alblake.lake.local import LocalStore
from alblake.lake.settings import LakePolicy, forget_keys, key_check, update_policy
from alblake.sample import write_sample_logs

KEY = b"0123456789abcdef0123456789abcdef"
SETTINGS = {
    "none": None,
    "truncate": PrivacySettings(client_ip="truncate"),
    "hmac": PrivacySettings(client_ip="hmac"),
    "hmac + mask": PrivacySettings(client_ip="hmac", query_strings="mask"),
    "drop queries": PrivacySettings(query_strings="drop"),
}


class CountingStore(LocalStore):
    """A local store that counts its calls (each one a request on S3)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: collections.Counter[str] = collections.Counter()

    def count(self, name: str) -> None:
        self.calls[name] += 1

    def list_keys(self, prefix: str, start_after: str = "") -> Any:
        self.count("list")
        return super().list_keys(prefix, start_after)

    def list_sizes(self, prefix: str) -> Any:
        self.count("list")
        return super().list_sizes(prefix)

    def download(self, key: str, local_path: Path) -> None:
        self.count("get")
        super().download(key, local_path)

    def get_versioned(self, key: str) -> Any:
        self.count("get")
        return super().get_versioned(key)

    def put_file(self, key: str, local_path: Path) -> None:
        self.count("put")
        super().put_file(key, local_path)

    def put_bytes(self, key: str, content: bytes) -> None:
        self.count("put")
        super().put_bytes(key, content)

    def put_bytes_if(self, key: str, content: bytes, expected_tag: str | None) -> None:
        self.count("put")
        super().put_bytes_if(key, content, expected_tag)

    def delete(self, key: str) -> None:
        self.count("delete")
        super().delete(key)

    def copy(self, source_key: str, key: str) -> None:
        self.count("put")
        super().copy(source_key, key)


def with_policy(lake: GenerationalLake, settings: PrivacySettings | None, criteria: int, key_path: Path) -> None:
    def change(policy: LakePolicy) -> bool:
        policy.key, policy.key_check = f"file:{key_path}", key_check(KEY)
        if settings is not None:
            policy.privacy = settings
        for index in range(criteria):
            request = ErasureRequest(client_ip=f"198.18.{index // 250}.{index % 250 + 1}")
            policy.erasures.append(criterion_for(request, policy, KEY, datetime.now(UTC))[0])
        return True

    update_policy(lake.store, change)


def ingest_ratios(work: Path, text: bytes, args: argparse.Namespace) -> None:
    data = gzip.compress(text, mtime=0)
    lines = text.count(b"\n")
    key_path = work / "key"
    key_path.write_bytes(KEY)
    cases: dict[str, tuple[PrivacySettings | None, int]] = {name: (s, 0) for name, s in SETTINGS.items()}
    cases[f"{args.criteria} erasures"] = (None, args.criteria)
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(args.repeat):
        for name, (settings, criteria) in cases.items():
            lake = open_lake(LocalStore(work / f"lake-{round_}-{len(timings[name])}-{abs(hash(name))}"))
            if settings is not None or criteria:
                with_policy(lake, settings, criteria, key_path)
            forget_keys()
            started = time.perf_counter()
            ingest_object(lambda: io.BytesIO(data), "big.log.gz", lake)
            timings[name].append(time.perf_counter() - started)
    base = min(timings["none"])
    print(f"ingest of one object, {lines:,} lines: {lines / base:,.0f} lines/s without privacy (best of {args.repeat})")
    for name, values in timings.items():
        print(f"  {name:<16} {base / min(values):.2f}x the lines/s without privacy")


def erase_cost(work: Path, text: bytes, args: argparse.Namespace) -> None:
    store = CountingStore(work / "erase-lake")
    lake = open_lake(store)
    chunk = text.splitlines(keepends=True)
    per_hour = max(len(chunk) // args.hours, 1)
    for index in range(args.hours):
        part = b"".join(chunk[index * per_hour : (index + 1) * per_hour])
        ingest_object(lambda: io.BytesIO(part), f"part-{index}.log", lake)  # noqa: B023 - called at once
    compact(lake, CompactionOptions(now=datetime.now(UTC) + timedelta(days=365), older_than=timedelta(0)))
    partitions = len({p for _, p in lake.visible_keys()})
    missing = ErasureRequest(client_ip="198.18.255.254")  # in no row: every partition scanned, none rewritten
    store.calls.clear()
    started = time.perf_counter()
    erase(lake, missing, by="bench", now=datetime.now(UTC))
    scan = time.perf_counter() - started
    scan_calls = dict(store.calls)
    clients: collections.Counter[tuple[str, datetime]] = collections.Counter()
    for url in lake.visible_files():
        table = pq.read_table(url, columns=["client_ip", "time"])
        hours = [t.replace(minute=0, second=0, microsecond=0) for t in table.column("time").to_pylist()]
        clients.update(zip(table.column("client_ip").to_pylist(), hours, strict=True))
    (victim, hour), _ = clients.most_common(1)[0]  # the busiest client of one hour
    start, end = hour, hour + timedelta(hours=1)
    timings: dict[str, list[float]] = {"scan": [], "rewrite": []}
    rewrite_calls: dict[str, int] = {}
    erased = 0
    for round_ in range(args.repeat):  # an hour's scan, then its rewrite (the second finds nothing: scan again)
        for name, client in (("scan", "198.18.255.254"), ("rewrite", victim if round_ == 0 else "198.18.255.253")):
            store.calls.clear()
            started = time.perf_counter()
            request = ErasureRequest(client_ip=client, start=start, end=end)
            report = erase(lake, request, by="bench", now=datetime.now(UTC))
            timings[name].append(time.perf_counter() - started)
            if name == "rewrite" and round_ == 0:
                rewrite_calls, erased = dict(store.calls), report.rows
    size = sum(size for _, size in store.list_sizes("alb_logs/compacted/")) / partitions
    print(f"erasure on a compacted lake of {partitions} partition-hours, {len(chunk):,} rows "
          f"({len(chunk) // max(partitions, 1):,} rows per hour, ~{size / 1e6:.2f} MB of files per hour):")
    each = ", ".join(f"{k} {v / partitions:.1f}" for k, v in sorted(scan_calls.items()))
    print(f"  every partition-hour in the range is scanned: {scan / partitions * 1000:.0f} ms each (all of them: "
          f"{scan:.2f} s); requests each: {each}")
    print(f"  one hour with {erased} matching rows, scanned and rewritten: {timings['rewrite'][0] * 1000:.0f} ms "
          f"(scanned only: {min(timings['scan']) * 1000:.0f} ms); requests: "
          + ", ".join(f"{k} {v}" for k, v in sorted(rewrite_calls.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--criteria", type=int, default=100)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alblake-lifecycle-") as directory:
        work = Path(directory)
        files = write_sample_logs(work / "logs", files=max(args.lines // 5000, 1), lines_per_file=min(args.lines, 5000))
        text = b"".join(gzip.decompress(path.read_bytes()) for path in files)
        ingest_ratios(work, text, args)
        erase_cost(work, text, args)


if __name__ == "__main__":
    main()
