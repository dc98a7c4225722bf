"""Exactly-once for readers, at every step: hypothesis drives interleavings of ingest, re-ingest (same object,
changed content), duplicate delivery, batches of objects ingested together, compaction, two compactions at once,
crashes at every store write and lost acknowledgements at every store write (the write happened, the writer is
told it failed: an SDK retry of a conditional write that had succeeded answers "condition failed"; a timeout
while reading the answer fails the whole operation, which is retried).

Before every store write and after every operation both readers are checked: the local reader
(``visible_files``) and an Athena model (every object under each partition's catalog Location). Each must show
exactly the rows of the latest committed version of every object; an object whose commit is in flight (or
crashed) may show, per partition-hour, its previous version or its new one, never both and never twice.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alblake.convert.core import convert_batch
from alblake.ingest.core import ingest_object
from alblake.lake.compaction import CompactionOptions, compact
from alblake.lake.generational import GenerationalLake, owning_folder
from alblake.lake.generations import COMPACTED_PREFIX, LINEAGE_PREFIX
from alblake.lake.layout import DATA_PREFIX, object_stem
from alblake.ports import BatchCommitError
from tests.lake_fakes import (
    URL_PREFIX,
    EchoTable,
    FaultyWrites,
    LostAnswerError,
    MemoryCatalog,
    MemoryStore,
    SimulatedCrashError,
    athena_files,
)

OBJECTS = 3
TEMPLATE = (
    "http {time} app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 "
    '34 366 "GET http://www.example.com:80{path} HTTP/1.1" "curl/7.46.0" - - '
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" '
    '"10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-"'
)


def version_rows(obj: int, version: int) -> dict[str, Counter[str]]:
    """The rows (request paths) of one version of an object, by hour: versions move between hours 10 and 11."""
    hours = ["10"] if version % 2 == 0 else ["10", "11"]
    if version % 5 == 4:
        hours = ["11"]
    rows: dict[str, Counter[str]] = {}
    for hour in hours:
        count = 1 + (version + obj) % 3
        rows[hour] = Counter(f"/o{obj}/v{version}/h{hour}/l{i}" for i in range(count))
    return rows


def version_text(obj: int, version: int) -> bytes:
    lines = []
    for hour, paths in version_rows(obj, version).items():
        for i, path in enumerate(sorted(paths)):
            lines.append(TEMPLATE.format(time=f"2018-07-02T{hour}:{10 + i:02d}:{obj:02d}.000000Z", path=path))
    return ("\n".join(lines) + "\n").encode()


@dataclass
class World(FaultyWrites):
    store: MemoryStore = field(default_factory=MemoryStore)
    catalog: MemoryCatalog = field(default_factory=MemoryCatalog)
    committed: dict[int, int] = field(default_factory=dict)  # object -> committed version
    in_flight: dict[int, Counter[int]] = field(default_factory=dict)  # object -> versions that may show
    checks: int = 0

    def __post_init__(self) -> None:
        self.echo_catalog = MemoryCatalog()  # the derived table's Glue partitions
        self.lake = GenerationalLake(
            self.store,
            self.catalog,
            clock=lambda: datetime(2018, 7, 3, tzinfo=UTC),
            derived=[EchoTable()],
            derived_registrars={EchoTable.name: self.echo_catalog},
        )
        self.install(self.store)

    def before_write(self, operation: str, key: str) -> None:
        self.check()  # what readers see at every write
        super().before_write(operation, key)

    # --------------------------------------------------------------------------------------------- operations
    def ingest(self, obj: int, version: int) -> None:
        self.in_flight.setdefault(obj, Counter())[version] += 1
        text = version_text(obj, version)
        ingest_object(lambda: io.BytesIO(text), f"obj-{obj}.log", self.lake)
        self.committed[obj] = version
        flying = self.in_flight.get(obj, Counter())
        flying[version] = 0  # every attempt at this version has now committed it
        if not +flying:
            self.in_flight.pop(obj, None)

    def ingest_batch(self, versions: list[tuple[int, int]]) -> None:
        """Objects converted and committed together (``convert_batch`` -> ``commit_batch``), as the CLI does."""
        for obj, version in versions:
            self.in_flight.setdefault(obj, Counter())[version] += 1
        inputs = [(partial(io.BytesIO, version_text(obj, version)), f"obj-{obj}.log") for obj, version in versions]
        conversion = convert_batch(inputs, self.lake.staging_dir())
        assert conversion.converted == list(range(len(versions))), "every test object is small"
        try:
            self.lake.commit_batch(conversion.batch)
        finally:
            conversion.batch.discard()
        for obj, version in versions:
            self.committed[obj] = version
            flying = self.in_flight.get(obj, Counter())
            flying[version] = 0
            if not +flying:
                self.in_flight.pop(obj, None)

    def compact(self, step_bytes: int = 1 << 30) -> None:
        now = datetime(2018, 7, 3, tzinfo=UTC)
        options = CompactionOptions(now=now, older_than=timedelta(0), grace=timedelta(0), step_bytes=step_bytes)
        report = compact(self.lake, options)
        lost = [message for _, message in report.errors if message.startswith(f"{LostAnswerError.__name__}:")]
        if lost:  # the run kept the error with its partition and went on; the next run retries the partition
            raise LostAnswerError(lost[0])
        assert report.errors == []

    def compact_to_the_end(self) -> None:
        """A last compaction with no grace period: both views still show every row once, and every file under the
        generation trees is in a live folder."""
        self.compact()
        self.check()
        assert self.stray_keys() == []

    def stray_keys(self) -> list[str]:
        """Files of generation folders (data, lineage or derived) that are not live, and derived files whose data
        file is gone: after a compaction with no grace period, there are none (retired folders are deleted, orphans
        of crashed rewrites swept, siblings deleted with their data)."""
        live = {state.live for state in self.lake.states()}
        strays = []
        for key in self.store.objects:
            if key.startswith(LINEAGE_PREFIX):
                owner = owning_folder(DATA_PREFIX + key.removeprefix(LINEAGE_PREFIX))
            elif key.startswith(COMPACTED_PREFIX):
                owner = owning_folder(key)
            elif key.startswith(EchoTable.prefix):
                data = DATA_PREFIX + key.removeprefix(EchoTable.prefix)
                if data not in self.store.objects:
                    strays.append(key)
                continue
            else:
                continue
            if owner is None or owner[1] not in live:
                strays.append(key)
        return sorted(strays)

    # ------------------------------------------------------------------------------------------------ checking
    def check(self) -> None:
        self.checks += 1
        local = [url.removeprefix(URL_PREFIX) for url in self.lake.visible_files()]
        self._check_view("local reader", local)
        self._check_view("Athena", athena_files(self.store, self.catalog))
        echo = [url.removeprefix(URL_PREFIX) for url in self.lake.visible_files(EchoTable.name)]
        self._check_view("local reader of a derived table", echo)
        self._check_view("Athena on a derived table", athena_files(self.store, self.echo_catalog))

    def _check_view(self, view: str, keys: list[str]) -> None:
        seen: dict[tuple[int, str], Counter[str]] = {}
        for key in keys:
            table = pq.read_table(io.BytesIO(self.store.objects[key]), columns=["request_url"])
            for url in table.column("request_url").to_pylist():
                path = url.removeprefix("http://www.example.com:80")
                obj = int(path.split("/")[1][1:])
                hour = path.split("/")[3][1:]
                seen.setdefault((obj, hour), Counter())[path] += 1
        objects = set(self.committed) | set(self.in_flight) | {obj for obj, _ in seen}
        for obj in objects:
            allowed = set((+self.in_flight.get(obj, Counter())).keys())
            if obj in self.committed:
                allowed.add(self.committed[obj])
            for hour in ("10", "11"):
                shown = seen.get((obj, hour), Counter())
                options = [version_rows(obj, v).get(hour, Counter()) for v in allowed]
                if obj not in self.committed:
                    options.append(Counter())  # never committed: absent is a valid previous version
                assert shown in options, (
                    f"{view}: object {obj} hour {hour} shows {sorted(shown.elements())}, "
                    f"allowed versions {sorted(allowed)} (committed {self.committed.get(obj)})"
                )


ingest_op = st.tuples(st.just("ingest"), st.integers(0, OBJECTS - 1), st.booleans())  # (obj, new content?)
batch_op = st.tuples(  # (objects, new content?)
    st.just("batch"), st.lists(st.integers(0, OBJECTS - 1), min_size=2, max_size=OBJECTS, unique=True), st.booleans()
)
compact_op = st.just(("compact",))
steps_op = st.just(("compact_steps",))  # one file per step: files carried into each new generation as they are
simple_op = st.one_of(ingest_op, batch_op, compact_op, steps_op)
step = st.one_of(
    simple_op,
    st.tuples(st.just("crash"), simple_op, st.integers(1, 14)),
    st.tuples(st.just("interleave"), simple_op, simple_op, st.integers(1, 14)),
    # (operation, at write, SDK retried?, another writer's operation between the write and its lost answer)
    st.tuples(st.just("lost_ack"), simple_op, st.integers(1, 14), st.booleans(), st.one_of(st.none(), simple_op)),
)


def objects_of(op: tuple[object, ...]) -> set[int]:
    if op[0] == "ingest":
        return {int(op[1])}  # type: ignore[call-overload]
    if op[0] == "batch":
        assert isinstance(op[1], list)
        return {int(obj) for obj in op[1]}
    return set()


def run(world: World, op: tuple[object, ...], versions: dict[int, int]) -> Callable[[], None]:
    if op[0] == "compact":
        return world.compact
    if op[0] == "compact_steps":
        return lambda: world.compact(step_bytes=1)
    if op[0] == "batch":
        batch = []
        for obj in op[1]:  # type: ignore[attr-defined]
            if op[2] or obj not in versions:
                versions[obj] = versions.get(obj, -1) + 1
            batch.append((obj, versions[obj]))
        return lambda: world.ingest_batch(batch)
    obj = int(op[1])  # type: ignore[call-overload]
    if op[2] or obj not in versions:
        versions[obj] = versions.get(obj, -1) + 1
    version = versions[obj]
    return lambda: world.ingest(obj, version)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=7))
# found by this test: a retry after a crash before the pending marker; a removal retried after a crash before
# its Location move; two ingests of one object at once resolved out of program order
@example([("ingest", 0, False), ("compact",), ("crash", ("ingest", 1, False), 3)])
@example([("ingest", 2, False), ("ingest", 2, True), ("compact",), ("crash", ("ingest", 2, True), 6)])
@example([("interleave", ("ingest", 0, True), ("ingest", 0, False), 2)])
@example([("ingest", 0, False), ("crash", ("batch", [0, 1], True), 3), ("compact",)])
@example([("batch", [0, 1], False), ("interleave", ("ingest", 1, True), ("batch", [1, 2], False), 4)])
# a compaction in steps copying a file of a folder that another compaction retired and deleted meanwhile
@example(
    [("ingest", 0, False), ("compact",), ("ingest", 1, False), ("interleave", ("compact_steps",), ("compact",), 1)]
)
# a compaction whose state swap succeeded but whose answer was lost deleted the folder it had made live
@example(
    [
        ("ingest", 0, False),
        ("ingest", 1, False),
        ("ingest", 2, False),
        ("compact",),
        ("ingest", 0, True),
        ("ingest", 1, True),
        ("lost_ack", ("compact",), 13, True, None),
    ]
)
def test_readers_see_every_row_exactly_once(steps: list[tuple[object, ...]]) -> None:
    world = World()
    versions: dict[int, int] = {}
    for op in steps:
        if op[0] == "lost_ack":
            lose_an_answer(world, op, versions)
        elif op[0] == "crash":
            inner = op[1]
            assert isinstance(inner, tuple)
            action = run(world, inner, versions)
            world.crash_at = world.writes + int(op[2])  # type: ignore[call-overload]
            try:
                action()
            except SimulatedCrashError:
                world.check()  # what a crash leaves behind
                action()  # the retry (Lambda retries; the CLI is run again)
            world.crash_at = None
        elif op[0] == "interleave":
            first, second = op[1], op[2]
            assert isinstance(first, tuple) and isinstance(second, tuple)
            if objects_of(first) & objects_of(second):
                second = (*second[:2], False)  # one object is delivered twice at once with the same content
            first_action = run(world, first, versions)  # versions in program order: the second may reuse it
            world.nested = run(world, second, versions)
            world.nested_at = world.writes + int(op[3])  # type: ignore[call-overload]
            first_action()
            if world.nested is not None:  # the first finished before that many writes: run the second after it
                nested, world.nested = world.nested, None
                nested()
        else:
            run(world, op, versions)()
        world.check()
    # in the end, compaction leaves the same rows, no folder that is not live, only compacted files, and one file
    # per partition unless compactions in steps (of one file each, here) made several
    world.compact_to_the_end()
    assert not world.in_flight
    visible = [url.removeprefix(URL_PREFIX) for url in world.lake.visible_files()]
    assert all(key.rsplit("/", 1)[-1].startswith("c-") for key in visible)
    if "compact_steps" not in repr(steps):
        assert all(count == 1 for count in Counter(owning_folder(key) for key in visible).values())


def lose_an_answer(world: World, op: tuple[object, ...], versions: dict[int, int]) -> None:
    """Run ``op[1]`` with the answer to its ``op[2]``-th store write lost, another writer's operation ``op[4]``
    (if any) taking effect between that write and the lost answer; retry the operation if it failed."""
    inner, at, retried, between = op[1], int(op[2]), bool(op[3]), op[4]  # type: ignore[call-overload]
    assert isinstance(inner, tuple)
    action = run(world, inner, versions)
    if isinstance(between, tuple):
        if objects_of(inner) & objects_of(between):
            between = (*between[:2], False)  # one object delivered twice at once: the same content
        world.between = run(world, between, versions)
    world.lost_ack_at, world.lost_ack_retried = world.writes + at, retried
    try:
        action()
    except (LostAnswerError, BatchCommitError) as error:
        assert isinstance(error, LostAnswerError) or isinstance(error.cause, LostAnswerError), error
        world.check()  # what the failed operation leaves behind
        action()  # the retry
    world.lost_ack_at = None
    if world.between is not None:  # the operation made fewer writes: the other writer runs after it
        between_action, world.between = world.between, None
        between_action()


def test_two_compactions_of_one_partition_at_once_one_wins() -> None:
    world = World()
    world.ingest(0, 0)
    world.ingest(1, 0)
    world.nested = world.compact
    world.nested_at = world.writes + 3
    world.compact()
    world.check()
    states = world.lake.states()
    assert [s.generation for s in states] == [1]
    assert len(world.lake.visible_files()) == 1


def test_re_ingest_of_a_compacted_object_replaces_its_rows() -> None:
    world = World()
    for obj in range(OBJECTS):
        world.ingest(obj, 0)
    world.compact()
    assert len(world.lake.visible_files()) == 1
    world.ingest(1, 1)  # changed content: hours 10 and 11
    world.check()
    world.ingest(1, 1)  # duplicate delivery: nothing changes
    world.check()
    world.compact()
    world.check()
    assert len(world.lake.visible_files()) == 2


@pytest.mark.parametrize("crash_at", range(1, 16))
def test_crash_at_every_write_of_a_compaction_then_retry(crash_at: int) -> None:
    world = World()
    for obj in range(OBJECTS):
        world.ingest(obj, 1)
    world.crash_at = world.writes + crash_at  # a write of hour 10 or the first of hour 11: the crash fires
    with pytest.raises(SimulatedCrashError):
        world.compact()
    world.check()
    world.compact_to_the_end()  # what the crash uploaded and never made live is swept
    assert len(world.lake.visible_files()) == 2  # hours 10 and 11, one file each


RACING_INGEST_WRITES = 3  # store writes of the ingest of object 1 after object 0 (derived file, data file, manifest)
REMOVAL_WRITES = 5  # store writes of the ingest of object 0's version 4 after version 0 and object 1


def test_the_race_cases_cover_every_write_of_the_ingest() -> None:
    """The compaction set to run at each write of the ingests below runs inside them: none runs after them."""
    world = World()
    world.ingest(0, 0)
    before = world.writes
    world.ingest(1, 0)
    assert world.writes - before == RACING_INGEST_WRITES
    world = World()
    world.ingest(0, 0)
    world.ingest(1, 0)
    before = world.writes
    world.ingest(0, 4)
    assert world.writes - before == REMOVAL_WRITES


@pytest.mark.parametrize("at_write", range(1, RACING_INGEST_WRITES + 1))
def test_ingest_racing_the_first_compaction_of_its_hour_is_not_lost(at_write: int) -> None:
    """A commit that read 'no state' while a compaction sealed and replaced generation 0 redoes its commit."""
    world = World()
    world.ingest(0, 0)
    world.nested = world.compact
    world.nested_at = world.writes + at_write
    world.ingest(1, 0)
    assert world.fired_at("nested") == [world.nested_at]  # the compaction ran inside the ingest
    world.check()
    world.compact()
    world.check()


@pytest.mark.parametrize("at_write", range(1, REMOVAL_WRITES + 1))
def test_removal_of_an_hour_racing_a_compaction(at_write: int) -> None:
    """Version 4 of an object has no rows in hour 10 any more; a compaction of hour 10 runs in the middle."""
    world = World()
    world.ingest(0, 0)
    world.ingest(1, 0)
    world.nested = world.compact
    world.nested_at = world.writes + at_write
    world.ingest(0, 4)
    assert world.fired_at("nested") == [world.nested_at]  # the compaction ran inside the ingest
    world.check()
    world.compact()
    world.check()


THE_BATCH = [(0, 1), (1, 4), (2, 2)]  # (object, version): one of them compacted before, one moving between hours
BATCH_WRITES = 18  # store writes of THE_BATCH after world_before_the_batch; the cases crash at each of them


def world_before_the_batch() -> World:
    world = World()
    world.ingest(0, 0)
    world.ingest(1, 0)
    world.compact()
    world.ingest(2, 0)
    return world


def batch_with_nested(world: World, nested: Callable[[], None], at_write: int) -> None:
    """THE_BATCH with ``nested`` run just before its ``at_write``-th store write."""
    world.nested = nested
    world.nested_at = world.writes + at_write
    world.ingest_batch(THE_BATCH)
    assert world.fired_at("nested") == [world.nested_at]  # it ran inside the batch
    world.check()


def test_the_batch_crash_cases_cover_every_write() -> None:
    world = world_before_the_batch()
    before = world.writes
    world.ingest_batch(THE_BATCH)
    assert world.writes - before == BATCH_WRITES


@pytest.mark.parametrize("crash_at", range(1, BATCH_WRITES + 1))
def test_crash_at_every_write_of_a_batch_then_retry(crash_at: int) -> None:
    """A batch re-ingesting changed objects (one of them compacted, one moving between hours) crashes at any write;
    the retry leaves exactly the new rows."""
    world = world_before_the_batch()
    world.crash_at = world.writes + crash_at
    with pytest.raises(SimulatedCrashError):
        world.ingest_batch(THE_BATCH)
    world.check()
    world.ingest_batch(THE_BATCH)
    world.crash_at = None
    world.check()
    world.compact_to_the_end()
    world.ingest(1, 4)  # a duplicate delivery of one of them, alone: nothing changes
    world.check()
    world.compact()
    world.check()


@pytest.mark.parametrize("at_write", range(1, 13))  # a batch of two objects into two hours: 12 writes
def test_ingest_racing_a_batch_of_its_hour_is_not_lost(at_write: int) -> None:
    """An object committed alone while a batch rewrites its hours (sealing generation 0 first) ends up once."""
    world = World()
    world.ingest(0, 0)
    world.nested = lambda: world.ingest(2, 1)
    world.nested_at = world.writes + at_write
    world.ingest_batch([(0, 1), (1, 1)])
    world.check()
    assert world.nested is None and world.committed == {0: 1, 1: 1, 2: 1}


def test_late_objects_are_those_committed_after_the_hour_was_compacted() -> None:
    """Batches and the rewrites they cause are not compactions: only a compaction of the closed hour makes later
    objects late."""
    world = World()
    world.ingest_batch([(0, 0), (1, 0)])
    world.ingest(0, 2)  # changed, alone: a rewrite of the batch's hour
    world.ingest(2, 0)
    assert all(state.compacted_at is None for state in world.lake.states())
    assert not any(record.late for state in world.lake.states() for record in state.sources.values())
    world.compact()
    assert all(state.compacted_at is not None for state in world.lake.states())
    world.ingest(2, 1)
    world.check()
    late = {stem for state in world.lake.states() for stem, record in state.sources.items() if record.late}
    assert late == set()  # object 2 was there before the compaction: a re-delivery is not late
    world.ingest_batch([(0, 3), (3, 0)])  # object 3 is new: late, whether it comes alone or in a batch
    world.check()
    late = {stem for state in world.lake.states() for stem, record in state.sources.items() if record.late}
    assert late == {object_stem("obj-3.log")}


@pytest.mark.parametrize("at_write", range(1, BATCH_WRITES + 1))
def test_a_sweep_racing_a_batch_never_deletes_what_goes_live(at_write: int) -> None:
    """A compaction (retired folders deleted, orphans swept) runs at each write of a batch: files the batch has
    uploaded but not yet made live look like a crashed rewrite's. The sweep's state swap makes the batch lose
    its swap and redo its rewrite, so nothing goes live on deleted files."""
    world = world_before_the_batch()
    world.crash_at = world.writes + 3  # a crashed batch leaves an orphan folder for the sweep to find
    with pytest.raises(SimulatedCrashError):
        world.ingest_batch(THE_BATCH)
    batch_with_nested(world, world.compact, at_write)
    world.compact_to_the_end()


@pytest.mark.parametrize("at_write", range(1, BATCH_WRITES + 1))
def test_a_sweep_never_deletes_the_folder_of_a_rewrite_in_flight(at_write: int) -> None:
    """A compaction run that finds nothing else to do in an hour (open: nothing to merge; retired folders not due)
    still sweeps it, at each write of a batch that rewrites that hour. Files the batch has uploaded but not yet
    made live look exactly like a crashed rewrite's: the sweep deletes them, and its state swap makes the batch
    lose its own swap and redo the rewrite instead of going live on deleted files."""
    world = world_before_the_batch()  # hour 10 is marked pending (object 2 came after its compaction)
    now = datetime(2018, 7, 3, tzinfo=UTC)
    options = CompactionOptions(now=now, older_than=timedelta(days=3650), grace=timedelta(days=3650))
    swept: list[int] = []
    batch_with_nested(world, lambda: swept.append(compact(world.lake, options).orphans_deleted), at_write)
    world.compact_to_the_end()
    assert swept == [1 if at_write in IN_FLIGHT_UPLOADS else 0]


IN_FLIGHT_UPLOADS = {2, 3, 4}  # before these writes of the batch, its rewrite of hour 10 has uploaded (its derived
# sibling, then its lineage, then its data too) and not swapped yet


COMPACTION_WRITES = 22  # store writes of the compaction in the cases below (a test checks the count)


def world_before_a_late_compaction() -> World:
    """Three objects compacted, then a changed version of two of them: hour 10 is rewritten, hour 11 compacted."""
    world = World()
    for obj in range(OBJECTS):
        world.ingest(obj, 0)
    world.compact()
    world.ingest(0, 1)
    world.ingest(1, 1)
    return world


def test_the_lost_answer_cases_cover_every_write_of_the_compaction() -> None:
    world = world_before_a_late_compaction()
    before = world.writes
    world.compact()
    assert world.writes - before == COMPACTION_WRITES


@pytest.mark.parametrize("retried", [True, False], ids=["sdk-retried", "sdk-gave-up"])
@pytest.mark.parametrize("at_write", range(1, COMPACTION_WRITES + 1))
def test_a_lost_answer_at_every_write_of_a_compaction(at_write: int, retried: bool) -> None:
    """The write takes effect but its answer is lost. A compaction that took its own state swap for another
    writer's used to delete the folder it had just made live: every row of the partition vanished."""
    world = world_before_a_late_compaction()
    lost_at = world.writes + at_write
    world.lost_ack_at, world.lost_ack_retried = lost_at, retried
    if retried:  # the SDK's retry answers "condition failed" (a conditional write) or succeeds again
        world.compact()
    else:  # the run fails
        with pytest.raises(LostAnswerError):
            world.compact()
        world.check()
        world.compact()  # the next run
    assert world.fired_at("lost_ack") == [lost_at]
    world.check()
    world.compact_to_the_end()
    assert len(world.lake.visible_files()) == 2


@pytest.mark.parametrize("at_write", range(1, COMPACTION_WRITES + 1))
def test_a_lost_answer_followed_by_another_writer_before_the_retry(at_write: int) -> None:
    """The write takes effect, another writer changes the partition on top of it, then the SDK's retry answers
    "condition failed": the state no longer carries this writer's token, yet names its folder (live or retired),
    which therefore must not be deleted."""
    world = world_before_a_late_compaction()
    world.between = lambda: world.ingest(2, 1)
    lost_at = world.lost_ack_at = world.writes + at_write
    world.compact()
    assert world.fired_at("lost_ack") == [lost_at]
    assert world.committed[2] == 1  # the other writer ran between the write and its answer
    world.check()
    world.compact_to_the_end()
