"""Erasure and expiry never bring back an erased row and never remove another, at every step: hypothesis drives
interleavings of ingest (new and changed versions, re-deliveries), batches, compaction, erasures, settle passes,
expiry runs and time passing, with crashes and lost acknowledgements at every store write (and another writer's
operation between a write and its lost answer). Before every store write and after every operation, the local
reader and Athena (every object under each catalog Location) are checked against the model of
``tests/lifecycle_world.py``; at the end, after the grace period, a settle pass and two expiry runs, every erased
client's rows and hour 10 are gone and every other row of every object's last version is there exactly once.
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
from tests.lifecycle_world import (
    CLIENTS,
    OBJECTS,
    LostAnswerError,
    SimulatedCrashError,
    World,
    version_rows,
)

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


def play(world: World, steps: list[tuple[object, ...]]) -> None:
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
        world.check()


def lose_an_answer(world: World, op: tuple[object, ...], versions: dict[int, int]) -> None:
    inner, at, retried, between = op[1], int(op[2]), bool(op[3]), op[4]  # type: ignore[call-overload]
    assert isinstance(inner, tuple)
    action = run(world, inner, versions)
    if isinstance(between, tuple):
        if objects_of(inner) & objects_of(between):
            between = (*between[:2], False)
        world.between = run(world, between, versions)
    world.lost_ack_at, world.lost_ack_retried = world.writes + at, retried
    try:
        action()
    except (LostAnswerError, BatchCommitError):
        world.check()
        action()  # the retry
    world.lost_ack_at = None
    if world.between is not None:
        between_action, world.between = world.between, None
        between_action()


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
    world.check()
    assert not world.in_flight
    erased = {c for c in world.written if c in CLIENTS}
    expected: Counter[str] = Counter()
    for obj, attempt in world.committed.items():
        for hour, rows in version_rows(obj, attempt.version).items():
            if hour == "10" and expired:
                continue
            expected.update(path for path, client in rows if client not in erased)
    assert world.visible_rows() == expected
    if expired:
        assert not [p for p in lake_partitions(world.lake) if p.hour == "10"]
        assert not [p for p in world.catalog.locations if p.hour == "10"]
        assert not [k for k in world.store.objects if "hour=10" in k]


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
def test_erasure_and_expiry_never_resurrect_and_never_remove_another(steps: list[tuple[object, ...]]) -> None:
    world = World()
    play(world, steps)
    the_end(world)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=6))
@example([("ingest", 0, False), ("erase", 1), ("ingest", 0, True)])
def test_the_same_with_keyed_client_addresses(steps: list[tuple[object, ...]], tmp_path_factory: pytest.TempPathFactory) -> None:
    """Client addresses stored as keyed hashes and erasure digests keyed: the erasure matches the stored form."""
    forget_keys()
    world = World(keyed=True, key_dir=Path(tmp_path_factory.mktemp("key")))
    play(world, steps)
    the_end(world)
