"""Erasure and expiry never bring back an erased row and never remove another, at every step: hypothesis drives
interleavings of ingest (new and changed versions, re-deliveries), batches, compaction, erasures, settle passes,
expiry runs and time passing, with crashes and lost acknowledgements at every store write (and another writer's
operation between a write and its lost answer). Before every store write and after every operation, the local
reader and Athena (every object under each catalog Location) are checked against the model of
``tests/lifecycle_world.py``, and between operations the rollup's sums against the curated table's (the lake keeps
its derived tables, as ``open_lake`` does); at the end, after the grace period, a settle pass and two expiry runs,
every erased client's rows and hour 10 are gone (the rollup's files and partitions of hour 10 too) and every other
row of every object's last version is there exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alblake.lake.lifecycle import lake_partitions
from alblake.lake.settings import forget_keys
from alblake.ports import BatchCommitError
from tests.lake_fakes import LostAnswerError, SimulatedCrashError
from tests.lifecycle_world import CLIENTS, OBJECTS, World, version_rows

ingest_op = st.tuples(st.just("ingest"), st.integers(0, OBJECTS - 1), st.booleans())  # (obj, new content?)
dying_op = st.tuples(st.just("ingest_dies"), st.integers(0, OBJECTS - 1), st.booleans())
batch_op = st.tuples(
    st.just("batch"), st.lists(st.integers(0, OBJECTS - 1), min_size=2, max_size=OBJECTS, unique=True), st.booleans()
)
erase_op = st.tuples(st.just("erase"), st.integers(0, len(CLIENTS) - 1))
simple_op = st.one_of(
    ingest_op,
    batch_op,
    erase_op,
    st.just(("compact",)),
    st.just(("expire",)),
    st.just(("settle",)),
)
step = st.one_of(
    simple_op,
    dying_op,
    st.just(("wait",)),
    st.tuples(st.just("crash"), simple_op, st.integers(1, 16)),
    st.tuples(st.just("interleave"), simple_op, simple_op, st.integers(1, 16)),
    st.tuples(st.just("lost_ack"), simple_op, st.integers(1, 16), st.booleans(), st.one_of(st.none(), simple_op)),
)


def objects_of(op: tuple[object, ...]) -> set[int]:
    if op[0] in ("ingest", "ingest_dies"):
        return {int(op[1])}  # type: ignore[call-overload]
    if op[0] == "batch":
        assert isinstance(op[1], list)
        return {int(obj) for obj in op[1]}
    return set()


def run(world: World, op: tuple[object, ...], versions: dict[int, int]) -> Callable[[], None]:
    """The operation as a call (versions chosen now, in program order)."""
    if op[0] in ("compact", "expire", "settle", "wait"):
        return getattr(world, str(op[0]))  # type: ignore[no-any-return]
    if op[0] == "erase":
        return lambda: world.erase(int(op[1]))  # type: ignore[call-overload]
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
    if op[0] == "ingest_dies":
        return lambda: world.ingest_dying_after_commit(obj, version)
    return lambda: world.ingest(obj, version)


def play(world: World, steps: list[tuple[object, ...]], versions: dict[int, int] | None = None) -> None:
    """Run the steps (``versions``: each object's version so far, when they go on from earlier steps)."""
    versions = {} if versions is None else versions
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
                action()  # the retry
            world.crash_at = None
        elif op[0] == "interleave":
            first, second = op[1], op[2]
            assert isinstance(first, tuple) and isinstance(second, tuple)
            if objects_of(first) & objects_of(second):
                second = (*second[:2], False)  # one object delivered twice at once: the same content
            first_action = run(world, first, versions)
            world.nested = run(world, second, versions)
            world.nested_at = world.writes + int(op[3])  # type: ignore[call-overload]
            first_action()
            if world.nested is not None:  # the first made fewer writes: the second runs after it
                nested, world.nested = world.nested, None
                nested()
        else:
            run(world, op, versions)()
        world.check(between_operations=True)


def lose_an_answer(world: World, op: tuple[object, ...], versions: dict[int, int]) -> bool:
    """Run ``op[1]`` with the answer to its ``op[2]``-th store write lost (``op[3]``: the SDK retried), another
    writer's operation ``op[4]`` (if any) between that write and the lost answer; retry the operation if it failed.
    Whether it failed."""
    inner, at, retried, between = op[1], int(op[2]), bool(op[3]), op[4]  # type: ignore[call-overload]
    assert isinstance(inner, tuple)
    action = run(world, inner, versions)
    if isinstance(between, tuple):
        if objects_of(inner) & objects_of(between):
            between = (*between[:2], False)
        world.between = run(world, between, versions)
    world.lost_ack_at, world.lost_ack_retried = world.writes + at, retried
    failed = False
    try:
        action()
    except (LostAnswerError, BatchCommitError):
        failed = True
        world.check()
        action()  # the retry
    world.lost_ack_at = None
    if world.between is not None:
        between_action, world.between = world.between, None
        between_action()
    return failed


def the_end(world: World) -> None:
    """After the grace period: a settle pass and two expiry runs (if the run expired hour 10), a compaction. Then
    every erased client's rows are gone everywhere, and every other row of each object's last version is there."""
    world.wait()
    world.settle()
    expired = bool(world.expire_starts)
    if expired:
        world.expire()
        world.wait()
        world.expire()
    world.compact()
    world.check(between_operations=True)
    assert world.stray_keys() == []
    assert not world.in_flight
    erased = {c for c in world.written if c in CLIENTS}
    expected: Counter[str] = Counter()
    for obj, attempt in world.committed.items():
        for hour, rows in version_rows(obj, attempt.version).items():
            if hour == "10" and expired:
                continue
            expected.update(path for path, client in rows if client not in erased)
    abandoned = {f"/o{obj}/" for obj in world.abandoned}  # their rows: as the checker allows (never erased ones)
    visible = Counter({path: n for path, n in world.visible_rows().items() if not path.startswith(tuple(abandoned))})
    assert visible == Counter({p: n for p, n in expected.items() if not p.startswith(tuple(abandoned))})
    if expired:
        assert not [p for p in lake_partitions(world.lake) if p.hour == "10"]
        assert not [p for p in world.catalog.locations if p.hour == "10"]
        assert not [p for p in world.rollup_catalog.locations if p.hour == "10"]
        assert not [k for k in world.store.objects if "hour=10" in k]  # the rollup's files too


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=7))
@example([("ingest", 0, False), ("erase", 1), ("ingest", 0, True), ("ingest", 0, False)])
@example([("ingest", 0, False), ("interleave", ("ingest", 1, False), ("erase", 0), 2)])
@example([("ingest", 1, False), ("crash", ("erase", 1), 3), ("ingest", 1, True)])
@example([("ingest_dies", 0, False), ("erase", 0), ("wait",), ("settle",)])
@example([("ingest", 0, False), ("ingest", 1, True), ("expire",), ("wait",), ("ingest", 0, True), ("expire",)])
@example([("batch", [0, 1], False), ("interleave", ("batch", [1, 2], True), ("erase", 2), 5)])
@example([("ingest", 0, False), ("compact",), ("interleave", ("erase", 0), ("ingest", 0, True), 3)])
@example([("ingest", 2, False), ("expire",), ("wait",), ("interleave", ("expire",), ("ingest", 2, True), 3)])
# found by this test: a re-ingest whose rows of a compacted hour were all erased (its commit of no rows)
@example([("batch", [0, 1, 2], False), ("erase", 1), ("erase", 2), ("ingest", 2, True)])
# found by this test: an ingest that gave up after its rollup file's write (no answer) left that file in an hour
# no data file names; expiry did not know the hour, and Athena's rollup table read the file
@example([("lost_ack", ("ingest", 0, False), 1, False, ("expire",))])
def test_erasure_and_expiry_never_resurrect_and_never_remove_another(steps: list[tuple[object, ...]]) -> None:
    world = World()
    play(world, steps)
    the_end(world)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=6))
@example(steps=[("ingest", 0, False), ("erase", 1), ("ingest", 0, True)])
def test_the_same_with_keyed_client_addresses(
    steps: list[tuple[object, ...]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Client addresses stored as keyed hashes and erasure digests keyed: the erasure matches the stored form."""
    forget_keys()
    world = World(keyed=True, key_dir=Path(tmp_path_factory.mktemp("key")))
    play(world, steps)
    the_end(world)


# ------------------------------------------------------------------------------------- every write, exhaustively
#
# The races the invariants are about, each at every store write of the operation that runs first, and one past
# its last (the second operation then runs after it). The writes of each operation are counted by running it
# (``writes_of``, when the tests are collected), so that the cases keep covering every write when the code
# changes (the rollup's files, written with every data file, are writes too).

Op = tuple[object, ...]
BEFORE: list[Op] = [("ingest", 0, False), ("ingest", 1, False), ("batch", [1, 2], False)]
COMPACTED: list[Op] = [*BEFORE, ("compact",)]

# name: (what the lake holds before, the operation, the operation run at each of its writes)
RACES: dict[str, tuple[list[Op], Op, Op]] = {
    "erase inside an ingest": (BEFORE, ("ingest", 1, True), ("erase", 0)),
    "erase inside an ingest of a compacted hour": (COMPACTED, ("ingest", 1, True), ("erase", 0)),
    "erase inside a batch": (BEFORE, ("batch", [0, 1, 2], True), ("erase", 1)),
    "ingest inside an erase": (BEFORE, ("erase", 0), ("ingest", 1, True)),
    "ingest inside an erase of a compacted hour": (COMPACTED, ("erase", 2), ("ingest", 2, True)),
    "batch inside an erase": (COMPACTED, ("erase", 1), ("batch", [0, 1], True)),
    "compaction inside an erase": (BEFORE, ("erase", 0), ("compact",)),
    "erase inside a compaction": (BEFORE, ("compact",), ("erase", 1)),
    "expire inside an ingest": (BEFORE, ("ingest", 0, True), ("expire",)),
    "ingest inside an expire": (BEFORE, ("expire",), ("ingest", 0, True)),
    "erase inside an expire": (BEFORE, ("expire",), ("erase", 0)),
}
# name: (what the lake holds before, an operation that crashes or loses an answer at each of its writes)
DYING: dict[str, tuple[list[Op], Op]] = {
    "erase": (BEFORE, ("erase", 0)),
    "erase of a compacted hour": (COMPACTED, ("erase", 1)),
    "expire": (BEFORE, ("expire",)),
    "expire's second run": ([*BEFORE, ("expire",), ("wait",)], ("expire",)),
    "settle": ([*BEFORE, ("erase", 0), ("ingest_dies", 0, True), ("wait",)], ("settle",)),
    "ingest after an erasure": ([*BEFORE, ("erase", 0)], ("ingest", 0, True)),
    "batch after an expiry": ([*BEFORE, ("expire",)], ("batch", [0, 1, 2], True)),
}


def writes_of(steps: list[Op], op: Op) -> int:
    """The store writes ``op`` makes after ``steps`` (counted without checking what readers see)."""
    world, versions = World(checking=False), dict[int, int]()
    play(world, steps, versions)
    before = world.writes
    play(world, [op], versions)
    return world.writes - before


RACE_WRITES = {name: writes_of(before, first) for name, (before, first, _) in RACES.items()}
DYING_WRITES = {name: writes_of(before, op) for name, (before, op) in DYING.items()}


def runs_inside(name: str, at: int) -> bool:
    """Whether a second operation set to run at the first's write number ``at`` runs inside it."""
    before, first, _ = RACES[name]
    world, versions = World(checking=False), dict[int, int]()
    play(world, before, versions)
    ran: list[int] = []
    world.nested = lambda: ran.append(world.writes)
    world.nested_at = world.writes + at
    run(world, first, versions)()
    return bool(ran)


@pytest.mark.parametrize("name", sorted(RACES))
def test_the_counted_writes_are_the_whole_operation(name: str) -> None:
    """At its last counted write the second operation runs inside the first; one past it, after the first."""
    assert runs_inside(name, RACE_WRITES[name])
    assert not runs_inside(name, RACE_WRITES[name] + 1)


@pytest.mark.parametrize(("name", "at"), [(n, at) for n in sorted(RACES) for at in range(1, RACE_WRITES[n] + 2)])
def test_a_race_at_every_write(name: str, at: int) -> None:
    before, first, second = RACES[name]
    world, versions = World(), dict[int, int]()
    play(world, before, versions)
    nested_at = world.writes + at
    play(world, [("interleave", first, second, at)], versions)
    inside = at <= RACE_WRITES[name]  # else (one past the last write) the second runs after the first
    assert world.fired_at("nested") == ([nested_at] if inside else [])
    the_end(world)


DYING_CASES = [(name, at) for name in sorted(DYING) for at in range(1, DYING_WRITES[name] + 1)]


@pytest.mark.parametrize(("name", "at"), DYING_CASES)
def test_a_crash_at_every_write_then_the_retry(name: str, at: int) -> None:
    before, op = DYING[name]
    world, versions = World(), dict[int, int]()
    play(world, before, versions)
    action = run(world, op, versions)
    world.crash_at = world.writes + at
    with pytest.raises(SimulatedCrashError):
        action()
    world.check()  # what a crash leaves behind
    action()  # the retry
    world.check(between_operations=True)
    the_end(world)


@pytest.mark.parametrize("retried", [True, False], ids=["sdk-retried", "sdk-gave-up"])
@pytest.mark.parametrize(("name", "at"), DYING_CASES)
def test_a_lost_answer_at_every_write(name: str, at: int, retried: bool) -> None:
    """The write takes effect, another writer ingests in between, and the answer is lost (the SDK's retry of a
    conditional write says "condition failed"; or the operation fails and is retried)."""
    before, op = DYING[name]
    world, versions = World(), dict[int, int]()
    play(world, before, versions)
    lost_at = world.writes + at
    failed = lose_an_answer(world, ("lost_ack", op, at, retried, ("ingest", 1, True)), versions)
    assert world.fired_at("lost_ack") == [lost_at]
    assert failed is not retried  # the SDK gave up: the operation failed (and was retried); else it went on
    world.check(between_operations=True)
    the_end(world)


@pytest.mark.parametrize("at", range(1, writes_of(BEFORE, ("ingest_dies", 1, True)) + 2))
def test_an_ingest_that_dies_after_its_commit_is_settled(at: int) -> None:
    """An ingest that read the policy before an erasure wrote its criteria, committed after the erasure scanned
    its hour, and died before it read the policy again: its rows stay until a settle pass a grace period later."""
    world = World()
    play(world, [*BEFORE, ("interleave", ("ingest_dies", 1, True), ("erase", 0), at)])
    erased = [p for p, c in version_rows(1, 1).get("10", []) if c == CLIENTS[0]]
    world.wait()
    world.settle()
    assert not set(erased) & set(world.visible_rows())
    the_end(world)


def ingest_after_erasure_writes() -> int:
    """The writes of the ingest of the test below, the erasure running before its first (that write counted)."""
    world = World(checking=False)
    play(world, [("ingest", 0, False), ("ingest", 0, True)])
    erased: list[int] = []

    def erasure() -> None:
        world.erase(0)
        erased.append(world.writes)

    world.nested = erasure
    world.nested_at = world.writes + 1
    world.ingest(2, 1)
    return world.writes - erased[0] + 1


INGEST_AFTER_ERASURE_WRITES = ingest_after_erasure_writes()


@pytest.mark.parametrize("crash_at", range(INGEST_AFTER_ERASURE_WRITES))
def test_an_ingest_that_dies_inside_its_commit_is_settled(crash_at: int) -> None:
    """An ingest reads the policy, an erasure runs before its first write (scanning and sealing both hours without
    its rows), then the ingest dies part-way through its commit and is never retried: its files in the live folders
    (a per-object file, maybe without its state write) keep rows of the erased client until a settle pass, which
    rescans every partition whose state changed or whose live folder holds per-object files."""
    world = World()
    play(world, [("ingest", 0, False), ("ingest", 0, True)])  # both hours hold a per-object file of object 0

    def erasure_then_crash() -> None:
        world.erase(0)
        world.crash_at = world.writes + crash_at  # 0: before the ingest's first write, 12: before its last

    world.nested = erasure_then_crash
    world.nested_at = world.writes + 1
    with pytest.raises(SimulatedCrashError):
        world.ingest(2, 1)
    world.abandon()
    world.check()
    world.wait()
    world.settle()
    world.check()
    erased = [path for rows in version_rows(2, 1).values() for path, client in rows if client == CLIENTS[0]]
    assert erased and not set(erased) & set(world.visible_rows())
    the_end(world)


def test_a_retry_replaces_the_rows_its_crashed_attempt_left_in_a_wholly_erased_hour() -> None:
    """Object 0's first version has two rows in hour 10, of clients 1 and 2. Client 2 is erased; an ingest of
    object 0 reads the policy, client 1's erasure runs before its first write, its put lands (the row of client 1,
    unseen by that erasure) and its answer is lost: the retry drops every row of the hour, and still replaces the
    crashed attempt's file there (with an empty one), or the row of client 1 would stay."""
    world = World()
    play(world, [("erase", 2)])

    def erasure_then_lose_the_next_answer() -> None:
        world.erase(1)
        world.lost_ack_at, world.lost_ack_retried = world.writes, False  # the ingest's write that follows

    world.nested = erasure_then_lose_the_next_answer
    world.nested_at = world.writes + 1
    with pytest.raises(LostAnswerError):
        world.ingest(0, 0)
    world.check()
    world.ingest(0, 0)
    world.check()
    assert world.visible_rows() == Counter()
    the_end(world)
