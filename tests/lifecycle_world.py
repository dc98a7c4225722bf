"""A lake in memory, driven by ingest, batches, compaction, erasure, settle passes and expiry, with crashes and lost
acknowledgements at any store write, and a checker of what both readers see (for the lifecycle property tests).

The rows: objects 0-2, each version with rows in hours 10 and/or 11 of 2018-07-02, every row with a request path
naming (object, version, hour, line) and a client address out of three. An erasure removes one client's rows; an
expiry removes hour 10.

The lake keeps its derived tables (``default_derived_tables``: the rollup), as ``open_lake`` does, each with its
own catalog. The checker (``check``), before every store write and after every operation, on the local reader and
on Athena (every object under each catalog Location): the rollup's sums (requests and bytes sent, by partition-hour
and ELB status code) equal the curated table's, every visible data file having its rollup file; and for every
object and hour, the rows shown are exactly the rows of one
version that may show (the last committed one, or one in flight) minus the rows of the criteria applied to it,
where the criteria applied lie between those that must be (below) and those written so far. A criterion (a
client's erasure, the expiry of hour 10) must be applied to an ingest attempt's rows when:

- it was in the lake's policy when the attempt read it first, or when the attempt read it again after its commit
  (an attempt that died between its commit and that second look has not);
- or a sweep started after the attempt completed: the erasure of that client (it scans every partition after it
  wrote the criterion), a settle pass at least a grace period after the criterion was written, an expiry run.

A crashed attempt that was retried may leave rows in an expired hour (the retry drops that hour, so its commit
does not replace them) until an expiry run starts after it: they are allowed until then.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain, combinations
from pathlib import Path
from typing import BinaryIO
from unittest import mock

import pyarrow.parquet as pq

from alblake.convert.privacy import PrivacySettings
from alblake.ingest.core import IngestLifecycle, ingest_object
from alblake.ingest.runner import ingest_batch
from alblake.ingest.selection import Failure
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.derived import default_derived_tables
from alblake.lake.generational import GenerationalLake, owning_folder
from alblake.lake.generations import COMPACTED_PREFIX, LINEAGE_PREFIX
from alblake.lake.layout import DATA_PREFIX, Partition
from alblake.lake.lifecycle import ErasureRequest, ExpiryOptions, criterion_for, erase, expire, settle
from alblake.lake.settings import POLICY_KEY, LakePolicy, key_check, read_policy, update_policy
from alblake.rollup.table import ROLLUP
from tests.lake_fakes import (
    URL_PREFIX,
    FaultyWrites,
    LostAnswerError,
    MemoryCatalog,
    MemoryStore,
    athena_files,
)

OBJECTS = 3
CLIENTS = ("192.0.2.1", "192.0.2.2", "198.51.100.7")
HOURS = ("10", "11")
EXPIRED = "h10"  # the criterion "hour 10 expired"
GRACE = timedelta(minutes=60)
START = datetime(2018, 7, 3, tzinfo=UTC)
TEMPLATE = (
    "http {time} app/my-loadbalancer/50dc6c495c0c9188 {client}:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 "
    '34 366 "GET http://www.example.com:80{path} HTTP/1.1" "curl/7.46.0" - - '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" '
    '"10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"'
)


Sums = Counter[tuple[str, int, str]]  # (partition path, ELB status code, "requests" or "sent_bytes") -> total


class Catalogs:
    """The Glue database as expiry sees it (``alblake.lake.lifecycle.PartitionCatalog``): the curated table's
    partitions and each derived table's, in their own catalogs (as the lake's registrars keep them)."""

    def __init__(self, curated: MemoryCatalog, derived: dict[str, MemoryCatalog]) -> None:
        self.curated = curated
        self.derived = derived

    def drop(self, table: str, partitions: Sequence[Partition]) -> int:
        if table not in self.derived:
            return self.curated.drop(table, partitions)
        found = self.derived[table].locations  # a derived table's registrar keeps its Locations there
        return sum(found.pop(partition, None) is not None for partition in partitions)

    def partitions_before(self, table: str, day: str) -> list[Partition]:
        if table not in self.derived:
            return self.curated.partitions_before(table, day)
        return sorted(p for p in self.derived[table].locations if p.day < day)


def version_rows(obj: int, version: int) -> dict[str, list[tuple[str, str]]]:
    """(request path, client) of each row of a version of an object, by hour; versions move between hours."""
    hours = ["10"] if version % 2 == 0 else ["10", "11"]
    if version % 5 == 4:
        hours = ["11"]
    rows: dict[str, list[tuple[str, str]]] = {}
    for hour in hours:
        count = 2 + (version + obj) % 3
        rows[hour] = [
            (f"/o{obj}/v{version}/h{hour}/l{i}", CLIENTS[(obj + version + i + int(hour)) % len(CLIENTS)])
            for i in range(count)
        ]
    return rows


def version_text(obj: int, version: int) -> bytes:
    lines = []
    for hour, rows in version_rows(obj, version).items():
        for i, (path, client) in enumerate(rows):
            time = f"2018-07-02T{hour}:{10 + i:02d}:{obj:02d}.000000Z"
            lines.append(TEMPLATE.format(time=time, path=path, client=client))
    return ("\n".join(lines) + "\n").encode()


def shown(obj: int, version: int, hour: str, applied: frozenset[str]) -> Counter[str]:
    """The rows of a version in an hour once the criteria ``applied`` are."""
    if hour == "10" and EXPIRED in applied:
        return Counter()
    rows = version_rows(obj, version).get(hour, [])
    return Counter(path for path, client in rows if client not in applied)


@dataclass(frozen=True)
class TestObject:
    """A log object for ``ingest_batch`` (the runner's ``LogObject``)."""

    obj: int
    version: int

    @property
    def source_id(self) -> str:
        return f"obj-{self.obj}.log"

    @property
    def name(self) -> str:
        return self.source_id

    @property
    def size(self) -> int:
        return len(version_text(self.obj, self.version))

    def open(self) -> BinaryIO:
        return io.BytesIO(version_text(self.obj, self.version))


@dataclass
class Attempt:
    obj: int
    version: int
    start: int  # store writes before it read the policy
    finish: int | None = None  # store writes when it completed
    rechecked: bool = True  # it read the policy again after its commit
    superseded: int | None = None  # crashed: store writes when its retry completed


@dataclass
class Sweep:
    """A completed operation that removes a criterion's rows from every ingest attempt completed before ``start``."""

    criterion: str
    start: int


@dataclass
class World(FaultyWrites):
    keyed: bool = False  # the lake has a key (file:): keyed digests (else plain SHA-256)
    checking: bool = True  # check what readers see (False: only count writes)
    key_dir: Path | None = None
    store: MemoryStore = field(default_factory=MemoryStore)
    catalog: MemoryCatalog = field(default_factory=MemoryCatalog)
    rollup_catalog: MemoryCatalog = field(default_factory=MemoryCatalog)  # the rollup table's Glue partitions
    now: datetime = START
    checks: int = 0
    committed: dict[int, Attempt] = field(default_factory=dict)
    in_flight: dict[int, list[Attempt]] = field(default_factory=dict)
    leftovers: dict[int, list[Attempt]] = field(default_factory=dict)  # crashed, retried: rows may stay in hour 10
    abandoned: dict[int, list[Attempt]] = field(default_factory=dict)  # crashed and never retried
    written: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # criterion -> (write number, time)
    sweeps: list[Sweep] = field(default_factory=list)
    expire_starts: list[int] = field(default_factory=list)  # completed expiry runs, by start

    def __post_init__(self) -> None:
        self.lake = GenerationalLake(
            self.store, self.catalog, clock=lambda: self.now, derived=default_derived_tables(),
            derived_registrars={ROLLUP.name: self.rollup_catalog},
        )
        assert [table.name for table in self.lake.derived] == [ROLLUP.name]  # the sums below are the rollup's
        self.catalogs = Catalogs(self.catalog, {ROLLUP.name: self.rollup_catalog})
        self.ids: dict[str, str] = {}  # criterion id in the policy -> client
        if self.keyed:  # client addresses stored as keyed hashes; erasure digests keyed too
            assert self.key_dir is not None
            path = self.key_dir / "lake.key"
            path.write_bytes(b"k" * 32)
            reference = f"file:{path}"

            def with_key(policy: LakePolicy) -> bool:
                policy.key, policy.key_check = reference, key_check(b"k" * 32)
                policy.privacy = PrivacySettings(client_ip="hmac")
                return True

            update_policy(self.store, with_key)
        policy = read_policy(self.store).policy
        key = b"k" * 32 if self.keyed else None
        for client in CLIENTS:
            criterion, _ = criterion_for(ErasureRequest(client_ip=client), policy, key, self.now)
            self.ids[criterion.id] = client
        self.install(self.store)

    # ------------------------------------------------------------------------------------------------ hooks
    def before_write(self, operation: str, key: str) -> None:
        self.check()  # what readers see at every write
        super().before_write(operation, key)

    def after_write(self, operation: str, key: str) -> None:
        if key == POLICY_KEY:
            self._note_policy()
        super().after_write(operation, key)

    def _note_policy(self) -> None:
        policy = LakePolicy.from_json(self.store.objects[POLICY_KEY])
        present = [self.ids[c.id] for c in policy.erasures]
        if policy.expired_before is not None:
            present.append(EXPIRED)
        for criterion in present:
            self.written.setdefault(criterion, (self.writes, self.now))

    # ------------------------------------------------------------------------------------------- operations
    @contextmanager
    def _attempts(self, versions: list[tuple[int, int]], *, rechecked: bool = True) -> Iterator[list[Attempt]]:
        attempts = [Attempt(obj, version, self.writes, rechecked=rechecked) for obj, version in versions]
        for attempt in attempts:
            self.in_flight.setdefault(attempt.obj, []).append(attempt)
        yield attempts  # an exception leaves them in flight: the retry completes another attempt
        for attempt in attempts:
            attempt.finish = self.writes
            flying = self.in_flight.get(attempt.obj, [])
            stale = [a for a in flying if a is not attempt and a.version == attempt.version]
            self.in_flight[attempt.obj] = [a for a in flying if a is not attempt and a not in stale]
            for crashed in stale:  # crashed attempts this one retried
                crashed.superseded = self.writes
                self.leftovers.setdefault(attempt.obj, []).append(crashed)
            if not self.in_flight[attempt.obj]:
                del self.in_flight[attempt.obj]
            self.committed[attempt.obj] = attempt

    def ingest(self, obj: int, version: int) -> None:
        with self._attempts([(obj, version)]):
            text = version_text(obj, version)
            ingest_object(lambda: io.BytesIO(text), f"obj-{obj}.log", self.lake)

    def ingest_dying_after_commit(self, obj: int, version: int) -> None:
        """An ingest that dies right after its commit, before it reads the policy again, and is never retried."""
        with self._attempts([(obj, version)], rechecked=False), mock.patch.object(
            IngestLifecycle, "newer", lambda self: None
        ):
            text = version_text(obj, version)
            ingest_object(lambda: io.BytesIO(text), f"obj-{obj}.log", self.lake)

    def ingest_batch(self, versions: list[tuple[int, int]]) -> None:
        with self._attempts(versions):
            outcomes = ingest_batch([TestObject(obj, version) for obj, version in versions], self.lake)
            failures = [o for o in outcomes if isinstance(o, Failure)]
            if failures:
                raise LostAnswerError(failures[0].reason)

    def compact(self, step_bytes: int = 1 << 30) -> None:
        options = CompactionOptions(now=self.now, older_than=timedelta(0), grace=timedelta(0), step_bytes=step_bytes)
        report = compact(self.lake, options)
        lost = [message for _, message in report.errors if message.startswith(f"{LostAnswerError.__name__}:")]
        if lost:
            raise LostAnswerError(lost[0])
        assert report.errors == []

    def erase(self, client: int) -> None:
        start = self.writes
        report = erase(self.lake, ErasureRequest(client_ip=CLIENTS[client]), by="test", now=self.now)
        lost = [message for _, message in report.errors if LostAnswerError.__name__ in message]
        if lost:
            raise LostAnswerError(lost[0])
        assert report.errors == [], report.errors
        self.sweeps.append(Sweep(CLIENTS[client], start))

    def settle(self) -> None:
        start = self.writes
        reports = settle(self.lake, now=self.now, grace=GRACE)
        errors = [message for report in reports for _, message in report.errors]
        if errors:
            raise LostAnswerError(errors[0])
        for criterion, (_, at) in self.written.items():
            if criterion != EXPIRED and self.now - at >= GRACE:
                self.sweeps.append(Sweep(criterion, start))

    def expire(self) -> None:
        start = self.writes
        options = ExpiryOptions(now=self.now, older_than=self.now - datetime(2018, 7, 2, 11, tzinfo=UTC), grace=GRACE)
        report = expire(self.lake, options, self.catalogs)
        if report.errors:
            raise LostAnswerError(report.errors[0][1])
        self.sweeps.append(Sweep(EXPIRED, start))
        self.expire_starts.append(start)

    def abandon(self) -> None:
        """The attempts in flight crashed and are never retried: their rows may stay (each hour: its version, or
        the object's previous one), without the criteria written after they read the policy, until a sweep
        (an erasure, a settle pass, an expiry run) starts after they crashed."""
        for obj, attempts in self.in_flight.items():
            for attempt in attempts:
                attempt.finish, attempt.rechecked = self.writes, False
                self.abandoned.setdefault(obj, []).append(attempt)
        self.in_flight.clear()

    def wait(self) -> None:
        """Time passes: longer than the grace period (and than any operation in flight)."""
        self.now += GRACE + timedelta(minutes=1)

    # --------------------------------------------------------------------------------------------- checking
    def check(self, *, between_operations: bool = False) -> None:
        """What readers see now. The rollup only between operations with no ingest in flight or abandoned: a
        commit puts a per-object file's rollup file first and its data file next (both replacing the object's
        earlier files of the same names), so in between the two disagree on both readers."""
        if not self.checking:
            return
        self.checks += 1
        local = [url.removeprefix(URL_PREFIX) for url in self.lake.visible_files()]
        self._check_view("local reader", local)
        athena = athena_files(self.store, self.catalog)
        self._check_view("Athena", athena)
        if between_operations and not self.in_flight and not self.abandoned:
            assert self.lake.derived_gaps(ROLLUP.name) == [], "visible data files without their rollup file"
            local_rollup = [url.removeprefix(URL_PREFIX) for url in self.lake.visible_files(ROLLUP.name)]
            self._check_rollup("local reader", local, local_rollup)
            self._check_rollup("Athena", athena, athena_files(self.store, self.rollup_catalog))

    def _check_rollup(self, view: str, data_keys: list[str], rollup_keys: list[str]) -> None:
        curated, rollup = self.curated_sums(data_keys), self.rollup_sums(rollup_keys)
        assert rollup == curated, f"{view}: the rollup's sums {dict(rollup)} differ from the curated table's {curated}"

    def curated_sums(self, keys: list[str]) -> Sums:
        sums: Sums = Counter()
        for key in keys:
            table = pq.read_table(io.BytesIO(self.store.objects[key]), columns=["elb_status_code", "sent_bytes"])
            path = _partition_path(key)
            for status, sent in zip(table["elb_status_code"].to_pylist(), table["sent_bytes"].to_pylist(), strict=True):
                sums[(path, status, "requests")] += 1
                sums[(path, status, "sent_bytes")] += sent
        return +sums

    def rollup_sums(self, keys: list[str]) -> Sums:
        sums: Sums = Counter()
        for key in keys:
            columns = ["elb_status_code", "requests", "sent_bytes"]
            table = pq.read_table(io.BytesIO(self.store.objects[key]), columns=columns)
            path = _partition_path(DATA_PREFIX + key.removeprefix(ROLLUP.prefix))
            for row in table.to_pylist():
                sums[(path, row["elb_status_code"], "requests")] += row["requests"]
                sums[(path, row["elb_status_code"], "sent_bytes")] += row["sent_bytes"]
        return +sums

    def _must(self, attempt: Attempt) -> set[str]:
        must = set()
        for criterion, (at, _) in self.written.items():
            if at < attempt.start or (attempt.rechecked and attempt.finish is not None and at < attempt.finish):
                must.add(criterion)
        if attempt.finish is not None:
            must |= {s.criterion for s in self.sweeps if s.start > attempt.finish}
        return must

    def _allowed(self, obj: int, hour: str) -> list[Counter[str]]:
        written = frozenset(self.written)
        options: list[Counter[str]] = []
        candidates = [*self.in_flight.get(obj, []), *self.abandoned.get(obj, [])]
        if obj in self.committed:
            candidates.append(self.committed[obj])
        else:
            options.append(Counter())  # never committed: absent is a valid previous state
        if hour == "10":  # until an expiry run starts after its retry
            candidates += [
                a for a in self.leftovers.get(obj, []) if not any(s > (a.superseded or 0) for s in self.expire_starts)
            ]
        for attempt in candidates:
            must = self._must(attempt) if attempt.finish is not None else self._read_at_start(attempt)
            optional = sorted(written - must)
            for extra in chain.from_iterable(combinations(optional, n) for n in range(len(optional) + 1)):
                options.append(shown(obj, attempt.version, hour, frozenset(must) | frozenset(extra)))
        return options

    def _read_at_start(self, attempt: Attempt) -> set[str]:
        return {criterion for criterion, (at, _) in self.written.items() if at < attempt.start}

    def _check_view(self, view: str, keys: list[str]) -> None:
        seen: dict[tuple[int, str], Counter[str]] = {}
        for key in keys:
            table = pq.read_table(io.BytesIO(self.store.objects[key]), columns=["request_url"])
            for url in table.column("request_url").to_pylist():
                path = url.removeprefix("http://www.example.com:80")
                obj, hour = int(path.split("/")[1][1:]), path.split("/")[3][1:]
                seen.setdefault((obj, hour), Counter())[path] += 1
        objects = set(self.committed) | set(self.in_flight) | {obj for obj, _ in seen}
        for obj in objects:
            for hour in HOURS:
                rows = seen.get((obj, hour), Counter())
                allowed = self._allowed(obj, hour)
                assert rows in allowed, (
                    f"{view}: object {obj} hour {hour} shows {sorted(rows.elements())}; criteria written "
                    f"{sorted(self.written)}, committed {self.committed.get(obj)}, in flight {self.in_flight.get(obj)}"
                )

    def stray_keys(self) -> list[str]:
        """Files of generation folders (data or lineage) that are not live: after a compaction with no grace
        period, there are none (retired folders deleted, orphans of crashed rewrites swept)."""
        live = {state.live for state in self.lake.states()}
        strays = []
        for key in self.store.objects:
            if key.startswith(LINEAGE_PREFIX):
                owner = owning_folder(DATA_PREFIX + key.removeprefix(LINEAGE_PREFIX))
            elif key.startswith(COMPACTED_PREFIX):
                owner = owning_folder(key)
            else:
                continue
            if owner is None or owner[1] not in live:
                strays.append(key)
        return sorted(strays)

    def visible_rows(self) -> Counter[str]:
        rows: Counter[str] = Counter()
        for url in self.lake.visible_files():
            table = pq.read_table(io.BytesIO(self.store.objects[url.removeprefix(URL_PREFIX)]), columns=["request_url"])
            rows.update(u.removeprefix("http://www.example.com:80") for u in table.column("request_url").to_pylist())
        return rows


def _partition_path(data_key: str) -> str:
    owner = owning_folder(data_key)
    assert owner is not None, data_key
    return owner[0].path
