"""The rollup stays exactly consistent with the curated table through re-delivery, re-ingest, batches, compaction
(also in steps), replay (the sources the quarantine index names, selected by ``alblake.replay`` and ingested again,
as ``alblake replay`` does) and crashes at any store write followed by a retry: hypothesis drives the sequences, and
after every
operation (and after every crash, for the local reader) the sums of the rollup equal the curated table's per
partition-hour, load balancer and ELB status code, locally (``visible_files``) and on Athena (every object under
each partition's catalog Location, for both tables), and equal those of the latest committed version of every
object. The lake's own property tests (tests/test_compaction_properties.py) check the derived-table mechanism at
every write; this one checks the rollup's numbers."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alblake.convert.core import convert_batch
from alblake.ingest.core import ingest_object
from alblake.ingest.filters import ObjectFilter
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.generational import GenerationalLake
from alblake.lake.generations import partition_of_path
from alblake.replay import quarantine_index, select_for_replay
from alblake.rollup.table import ROLLUP
from tests.lake_fakes import URL_PREFIX, FaultyWrites, MemoryCatalog, MemoryStore, SimulatedCrashError, athena_files

OBJECTS = 3
LINE = (
    "http 2018-07-02T{hour}:{minute:02d}:{second:02d}.000000Z app/my-loadbalancer/50dc6c495c0c9188 "
    "192.168.131.{client}:2817 10.0.0.{target}:80 0.000 0.0{ms:02d} 0.000 {status} {status} 34 {sent} "
    '"GET http://www.example.com:80/users/{user}/orders HTTP/1.1" "curl/7.46.0" - - '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" '
    '"10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"'
)
Key = tuple[str, str, int]  # (partition path, elb, ELB status code)
NOT_A_LOG_LINE = "http this line is not an ALB log entry"  # quarantined: what replay re-reads the sources for


def version_lines(obj: int, version: int) -> list[str]:
    """One version of an object: hours 10 or 10 and 11, statuses and targets varying with the version."""
    hours = ("10",) if version % 2 == 0 else ("10", "11")
    lines = []
    for h, hour in enumerate(hours):
        for i in range(2 + (obj + version + h) % 3):
            status = (200, 200, 502, 404)[(obj + version + i) % 4]
            lines.append(LINE.format(hour=hour, minute=(obj * 7 + i) % 60, second=version % 60, client=obj + 1,
                                     target=1 + i % 2, ms=i, status=status, sent=100 * (version + 1) + i,
                                     user=1000 * obj + i))
    if version % 2 == 1:
        lines.append(NOT_A_LOG_LINE)
    return lines


def expected_sums(versions: dict[int, int]) -> Counter[Key]:
    """Requests by (partition path, elb, status) of the committed versions, counted from the lines."""
    sums: Counter[Key] = Counter()
    for obj, version in versions.items():
        for line in version_lines(obj, version):
            if line == NOT_A_LOG_LINE:
                continue
            hour = line.split("T", 1)[1][:2]
            status = int(line.split(" ")[8])
            sums[(f"elb_name=my-loadbalancer/day=2018-07-02/hour={hour}", "app/my-loadbalancer/50dc6c495c0c9188",
                  status)] += 1
    return sums


def _partition_path(key: str) -> str:
    for start in range(len(key.split("/"))):
        partition = partition_of_path("/".join(key.split("/")[start:start + 3]))
        if partition is not None:
            return partition.path
    raise AssertionError(key)


@dataclass
class World(FaultyWrites):
    store: MemoryStore = field(default_factory=MemoryStore)
    catalog: MemoryCatalog = field(default_factory=MemoryCatalog)
    rollup_catalog: MemoryCatalog = field(default_factory=MemoryCatalog)
    committed: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lake = GenerationalLake(self.store, self.catalog, clock=lambda: datetime(2018, 7, 3, tzinfo=UTC),
                                     derived=[ROLLUP], derived_registrars={ROLLUP.name: self.rollup_catalog})
        self.install(self.store)

    # -------------------------------------------------------------------------------------------- operations
    def ingest(self, obj: int, version: int) -> None:
        text = ("\n".join(version_lines(obj, version)) + "\n").encode()
        ingest_object(lambda: io.BytesIO(text), f"obj-{obj}.log", self.lake)
        self.committed[obj] = version

    def ingest_batch(self, versions: list[tuple[int, int]]) -> None:
        inputs = [(partial(io.BytesIO, ("\n".join(version_lines(o, v)) + "\n").encode()), f"obj-{o}.log")
                  for o, v in versions]
        conversion = convert_batch(inputs, self.lake.staging_dir())
        try:
            self.lake.commit_batch(conversion.batch)
        finally:
            conversion.batch.discard()
        self.committed.update(dict(versions))

    def replay(self) -> None:
        """``alblake replay``: the sources with quarantined lines (the quarantine index), each ingested again from
        its source, which holds the version last committed (a replay re-reads the object, it has no other copy)."""
        chosen = select_for_replay(quarantine_index(self.store), reason=None, object_filter=ObjectFilter())
        assert {s.source_id for s in chosen} == {f"obj-{o}.log" for o, v in self.committed.items() if v % 2 == 1}
        for source in chosen:
            obj = int(source.source_id.removeprefix("obj-").removesuffix(".log"))
            self.ingest(obj, self.committed[obj])

    def compact(self, step_bytes: int = 1 << 30) -> None:
        options = CompactionOptions(now=datetime(2018, 7, 3, tzinfo=UTC), older_than=timedelta(0),
                                    grace=timedelta(0), step_bytes=step_bytes)
        assert compact(self.lake, options).errors == []

    # ---------------------------------------------------------------------------------------------- checking
    def _curated(self, keys: list[str]) -> Counter[Key]:
        sums: Counter[Key] = Counter()
        for key in keys:
            table = pq.read_table(io.BytesIO(self.store.objects[key]), columns=["elb", "elb_status_code"])
            for elb, status in zip(table["elb"].to_pylist(), table["elb_status_code"].to_pylist(), strict=True):
                sums[(_partition_path(key), elb, status)] += 1
        return sums

    def _rollup(self, keys: list[str]) -> Counter[Key]:
        sums: Counter[Key] = Counter()
        for key in keys:
            table = pq.read_table(io.BytesIO(self.store.objects[key]))
            for row in table.select(["elb", "elb_status_code", "requests"]).to_pylist():
                sums[(_partition_path(key), row["elb"], row["elb_status_code"])] += row["requests"]
        return sums

    def check(self, *, athena: bool = True) -> None:
        local = [u.removeprefix(URL_PREFIX) for u in self.lake.visible_files()]
        local_rollup = [u.removeprefix(URL_PREFIX) for u in self.lake.visible_files(ROLLUP.name)]
        curated = self._curated(local)
        assert self._rollup(local_rollup) == curated, "local reader: rollup and curated table differ"
        if athena:
            assert curated == expected_sums(self.committed)
            on_athena = self._curated(athena_files(self.store, self.catalog))
            assert on_athena == curated, "Athena: curated table"
            assert self._rollup(athena_files(self.store, self.rollup_catalog)) == curated, "Athena: rollup"


ingest_op = st.tuples(st.just("ingest"), st.integers(0, OBJECTS - 1), st.booleans())
batch_op = st.tuples(st.just("batch"), st.lists(st.integers(0, OBJECTS - 1), min_size=2, max_size=OBJECTS,
                                                unique=True), st.booleans())
simple_op = st.one_of(ingest_op, batch_op, st.just(("compact",)), st.just(("compact_steps",)), st.just(("replay",)))
step = st.one_of(simple_op, st.tuples(st.just("crash"), simple_op, st.integers(1, 16)))


def action_of(world: World, op: tuple[object, ...], versions: dict[int, int]) -> Callable[[], None]:
    if op[0] == "compact":
        return world.compact
    if op[0] == "compact_steps":
        return lambda: world.compact(step_bytes=1)
    if op[0] == "replay":
        return world.replay
    listed = op[1] if isinstance(op[1], list) else [op[1]]
    objects = [int(str(o)) for o in listed]
    for obj in objects:
        if op[2] or obj not in versions:
            versions[obj] = versions.get(obj, -1) + 1
    pairs = [(obj, versions[obj]) for obj in objects]
    if op[0] == "batch":
        return lambda: world.ingest_batch(pairs)
    return lambda: world.ingest(*pairs[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=6))
def test_rollup_sums_equal_the_curated_table_at_every_step(steps: list[tuple[object, ...]]) -> None:
    world = World()
    versions: dict[int, int] = {}
    for op in steps:
        if op[0] == "crash":
            inner = op[1]
            assert isinstance(inner, tuple)
            action = action_of(world, inner, versions)
            world.crash_at = world.writes + int(op[2])  # type: ignore[call-overload]
            try:
                action()
            except SimulatedCrashError:
                world.check(athena=False)  # what the crash leaves: the local views agree
                action()  # the retry
            world.crash_at = None
        else:
            action_of(world, op, versions)()
        world.check()
    world.compact()
    world.check()
