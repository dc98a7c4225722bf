"""Batch planning: which objects of a run go together (``plan_tasks``).

Work is planned as tasks: one object, or a batch of small objects of one load balancer's hours
(``alblake.ingest.runner.ingest_batch``: one file per partition-hour for the whole batch). Two inputs with the
same source id (the same ALB object in two directories) are never run at the same time: the later one runs in a
later wave, as it would after the first in a serial run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from alblake.ingest.selection import LogObject
from alblake.keys import AccessLogKey, classify_key


def _waves(objects: Sequence[LogObject]) -> list[list[int]]:
    """Indexes of objects in waves within which every source id is unique (input order kept)."""
    waves: list[list[int]] = []
    seen: dict[str, int] = {}
    for index, source in enumerate(objects):
        wave = seen.get(source.source_id, -1) + 1
        seen[source.source_id] = wave
        if wave == len(waves):
            waves.append([])
        waves[wave].append(index)
    return waves


# Small objects are ingested in batches (``ingest_batch``): one file per partition-hour for a whole batch instead of
# one per object. Measured (bench/small_objects.py): ~10 ms of fixed cost per object alone, ~2 ms in a batch; but
# a batch sorts and merges its rows, which costs more than it saves from a few thousand lines per object on
# (ALB delivery shape: 2,000-line objects of ~150 KB 1.2-1.3x faster in batches, 5,000-line ones 1.4x slower).
BATCH_OBJECT_BYTES = 256 << 10  # objects up to this size (compressed) go into batches
BATCH_MIN_OBJECTS = 32  # fewer small objects than this: each on its own (the layout of a handful stays per object)
BATCH_MAX_OBJECTS = 256
BATCH_MAX_BYTES = 16 << 20  # compressed, per batch


def plan_tasks(objects: Sequence[LogObject], *, batch: bool | None, jobs: int) -> list[list[list[int]]]:
    """Waves (see ``_waves``) of tasks: a task is one object, or a batch of small objects. ``batch``: None batches
    when a wave has at least ``BATCH_MIN_OBJECTS`` small objects.

    A batch writes one file per partition-hour it touches and two batches of one hour would rewrite it in turn
    (and conflict when they run at once), so batches are made of whole hours (``_hour_groups``), closed once they
    hold a fair share of the work, so that every process gets several. An hour with more small objects than one
    batch takes (``BATCH_MAX_OBJECTS``, ``BATCH_MAX_BYTES``) gets one batch; its other objects go alone. Objects
    alone run in a wave after the batches: many single commits into an hour while a batch rewrites it would make
    the batch lose its compare-and-swap again and again.
    """
    planned = []
    for wave in _waves(objects):
        small = [i for i in wave if objects[i].size <= BATCH_OBJECT_BYTES]
        if not batch and not (batch is None and len(small) >= BATCH_MIN_OBJECTS):
            small = []
        taken = set(small)
        alone = [[i] for i in wave if i not in taken]
        batches: list[list[int]] = []
        per_batch = max(1, min(BATCH_MAX_OBJECTS, -(-len(small) // (4 * jobs))))
        current: list[int] = []
        for group in _hour_groups(objects, small):
            head, rest = _one_batch(objects, group)
            together = len(current) + len(head), _size(objects, current) + _size(objects, head)
            if current and (len(current) >= per_batch or not _fits_in_a_batch(*together)):
                batches.append(current)
                current = []
            current += head
            alone += [[i] for i in rest]
        if current:
            batches.append(current)
        planned += [tasks for tasks in (batches, alone) if tasks]
    return planned


def _fits_in_a_batch(count: int, size: int) -> bool:
    """Whether ``count`` objects of ``size`` bytes (compressed) in all make one batch."""
    return count <= BATCH_MAX_OBJECTS and size <= BATCH_MAX_BYTES


def _size(objects: Sequence[LogObject], indexes: list[int]) -> int:
    return sum(objects[i].size for i in indexes)


def _one_batch(objects: Sequence[LogObject], group: list[int]) -> tuple[list[int], list[int]]:
    """The first objects of ``group`` that fit in one batch (at least one), and the others."""
    size = 0
    for count, i in enumerate(group):
        size += objects[i].size
        if not _fits_in_a_batch(count + 1, size):
            return group[: max(count, 1)], group[max(count, 1) :]
    return group, []


def _hour_groups(objects: Sequence[LogObject], indexes: list[int]) -> list[list[int]]:
    """``indexes`` grouped by the load balancer and hour their names give (ALB names: ``alblake.keys``; the
    interval that ends at HH:00 belongs to hour HH-1), each in name order; other names one group each, after them."""
    keyed: dict[tuple[str, ...], list[int]] = {}
    for i in indexes:
        name = _object_name(objects[i])
        kind = classify_key(name)
        if isinstance(kind, AccessLogKey):
            hour = (kind.end_time - timedelta(minutes=1)).strftime("%Y%m%dT%H")
            key: tuple[str, ...] = ("0", kind.account_id, kind.region, kind.lb_name, kind.lb_id, hour)
        else:
            key = ("1", name, f"{i:012d}")
        keyed.setdefault(key, []).append(i)
    return [sorted(group, key=lambda i: (_object_name(objects[i]), i)) for _, group in sorted(keyed.items())]


def _object_name(source: LogObject) -> str:
    return source.source_id.rsplit("/", 1)[-1]
