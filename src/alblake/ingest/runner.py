"""Ingest many objects (the command line's use case): local files or ``s3://`` objects -> a lake, across all
cores, each object's failure reported without stopping the others.

Objects are independent (each has its own output keys, derived from its source id), so a process pool ingests
them with the same result as one process. The run follows a plan (``alblake.ingest.planning.plan_tasks``) of
tasks: one object (``ingest_one``), or a batch of small objects (``ingest_batch``). Each worker of the pool
(``alblake.ingest.pool``) opens the lake itself (``open_lake_at``); results come back as tasks finish.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from alblake.convert.core import ConvertedBatch, convert_batch
from alblake.errors import InputError
from alblake.ingest.core import IngestedObject, IngestLifecycle, ingest_object
from alblake.ingest.filters import EVERY_OBJECT, ObjectFilter
from alblake.ingest.planning import plan_tasks
from alblake.ingest.pool import default_jobs, pool_context, worth_a_pool
from alblake.ingest.selection import Failure, LogObject
from alblake.locations import open_lake_at, select_objects
from alblake.ports import BatchCommitError, CommitResult, Lake
from alblake.secrets import install_key_sources

if TYPE_CHECKING:
    from concurrent.futures import Future


@dataclass
class IngestSummary:
    files: int = 0
    lines: int = 0
    rows: int = 0
    quarantined: int = 0
    erased: int = 0  # dropped by the lake's lifecycle (erasures, expired hours): lines = rows + quarantined + erased
    bytes_in: int = 0
    text_bytes: int = 0
    seconds: float = 0.0
    partitions: set[str] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)
    not_alb_logs: list[tuple[str, int]] = field(default_factory=list)  # (name, lines): every line quarantined
    skipped: int = 0  # objects the filter or the name left out (not ALB access logs, outside the dates)

    def add(self, ingested: IngestedObject, name: str) -> None:
        self.files += 1
        self.lines += ingested.lines
        self.rows += ingested.rows
        self.quarantined += ingested.quarantined
        self.erased += ingested.erased
        self.bytes_in += ingested.bytes_in
        self.text_bytes += ingested.text_bytes
        self.partitions.update(p.path for p in ingested.partitions)
        if ingested.lines and ingested.quarantined == ingested.lines:
            self.not_alb_logs.append((name, ingested.lines))


@dataclass(frozen=True)
class Progress:
    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int


ProgressCallback = Callable[[Progress], None]


def ingest_one(source: LogObject, lake: Lake) -> IngestedObject | Failure:
    """Ingest one object; any error of this object is returned as a ``Failure`` (the others go on)."""
    try:
        return ingest_object(source.open, source.source_id, lake)
    except Exception as exc:  # any error of one object (I/O, S3, a bug) must not stop the others
        return failure_of(source, exc)


def failure_of(source: LogObject, exc: Exception) -> Failure:
    if isinstance(exc, FileNotFoundError):
        return Failure(source.name, "no such file")
    if isinstance(exc, IsADirectoryError):
        return Failure(source.name, "is a directory")
    if isinstance(exc, InputError):
        return Failure(source.name, str(exc))
    return Failure(source.name, f"{type(exc).__name__}: {exc}")


def ingest_batch(sources: Sequence[LogObject], lake: Lake) -> list[IngestedObject | Failure]:
    """Ingest small objects together (``convert_batch`` -> ``Lake.commit_batch``); an object the batch does not take
    is ingested on its own. One outcome per object, in order; errors are ``Failure`` s as in ``ingest_one``
    (a failed batch commit fails each of its objects whose commit is not complete: a retry replaces whatever part of
    it is live)."""
    outcomes: dict[int, IngestedObject | Failure] = {}
    try:
        lifecycle = IngestLifecycle.of(lake)  # the lake's privacy, erasures and expired hours (as ingest_object)
        inputs = [(source.open, source.source_id) for source in sources]
        conversion = convert_batch(inputs, lake.staging_dir(), privacy=lifecycle.privacy)
    except Exception:  # not an error of one object (those are in conversion.failed): each one alone says what
        return [ingest_one(source, lake) for source in sources]
    try:
        for position, error in conversion.failed.items():
            outcomes[position] = failure_of(sources[position], error)
        if conversion.batch.objects:
            lifecycle.filter_batch(conversion.batch)
            outcomes.update(_commit_converted(conversion, sources, lake))
    finally:
        conversion.batch.discard()
    redo = conversion.converted if lifecycle.changed() else []  # a policy written meanwhile: each alone again
    for position in [*conversion.alone, *redo]:
        outcomes[position] = ingest_one(sources[position], lake)
    return [outcomes[position] for position in range(len(sources))]


def _commit_converted(
    conversion: ConvertedBatch, sources: Sequence[LogObject], lake: Lake
) -> dict[int, IngestedObject | Failure]:
    """The batch's commit: each converted object is ingested if its commit is complete, else a ``Failure``."""
    commits: dict[int, CommitResult] = {}
    stopped_by: Exception | None = None
    try:
        commits = dict(enumerate(lake.commit_batch(conversion.batch)))
    except BatchCommitError as stopped:
        commits, stopped_by = stopped.completed, stopped.cause
    except Exception as error:
        stopped_by = error
    outcomes: dict[int, IngestedObject | Failure] = {}
    for index, (position, staged) in enumerate(zip(conversion.converted, conversion.batch.objects, strict=True)):
        commit = commits.get(index)
        if commit is not None:
            outcomes[position] = IngestedObject.of(staged, commit)
        else:  # (commit_batch gives a result for every object or raises)
            outcomes[position] = failure_of(sources[position], stopped_by or RuntimeError("no commit result"))
    return outcomes


_worker_lake: Lake | None = None


def _start_worker(lake_location: str, glue_database: str | None, environment: dict[str, str]) -> None:
    """Pool initializer: the caller's environment as it is now (the fork server started with an older one:
    AWS settings), single-threaded Arrow (the pool is the parallelism) and this process's own lake."""
    import pyarrow as pa

    global _worker_lake
    os.environ.clear()
    os.environ.update(environment)
    install_key_sources()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    _worker_lake = open_lake_at(lake_location, glue_database=glue_database)


def _run_task(sources: Sequence[LogObject], lake: Lake) -> list[IngestedObject | Failure]:
    return ingest_batch(sources, lake) if len(sources) > 1 else [ingest_one(sources[0], lake)]


def _ingest_in_worker(sources: list[LogObject]) -> list[IngestedObject | Failure]:
    assert _worker_lake is not None, "the pool initializer opens the lake"
    return _run_task(sources, _worker_lake)


def auto_jobs(objects: Sequence[LogObject]) -> int:
    """One process per core when the work pays for starting a pool (``worth_a_pool``)."""
    return default_jobs() if worth_a_pool(len(objects), sum(o.size for o in objects)) else 1


def _run_parallel(
    objects: Sequence[LogObject], plan: list[list[list[int]]], lake_location: str, glue_database: str | None,
    jobs: int
) -> Iterator[tuple[int, IngestedObject | Failure]]:
    """Results as tasks finish, wave after wave, at most two tasks per worker queued at a time. Every object is
    ingested in a worker, never in this process: when a worker dies (killed, out of memory), every object without
    a result yet is a ``Failure`` (the pool cannot tell which one killed it) and this process reports them."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait  # the Lambda never starts a pool
    from concurrent.futures.process import BrokenProcessPool

    done: set[int] = set()
    try:
        with ProcessPoolExecutor(jobs, mp_context=pool_context(), initializer=_start_worker,
                                 initargs=(lake_location, glue_database, dict(os.environ))) as pool:
            try:
                for tasks in plan:
                    queue = deque(tasks)
                    running: dict[Future[list[IngestedObject | Failure]], list[int]] = {}
                    while queue or running:
                        while queue and len(running) < 2 * jobs:
                            task = queue.popleft()
                            running[pool.submit(_ingest_in_worker, [objects[i] for i in task])] = task
                        ready, _ = wait(running, return_when=FIRST_COMPLETED)
                        for future in ready:
                            for index, outcome in zip(running.pop(future), future.result(), strict=True):
                                done.add(index)
                                yield index, outcome
            finally:  # also when the caller stops early (Ctrl-C): queued tasks are not started
                pool.shutdown(wait=True, cancel_futures=True)
    except BrokenProcessPool as exc:
        reason = f"not ingested: a worker process died ({exc})"
        for index, source in enumerate(objects):
            if index not in done:
                yield index, Failure(source.name, reason)


def _run_serial(
    objects: Sequence[LogObject], plan: list[list[list[int]]], lake: Lake
) -> Iterator[tuple[int, IngestedObject | Failure]]:
    for tasks in plan:
        for task in tasks:
            yield from zip(task, _run_task([objects[i] for i in task], lake), strict=True)


def ingest_objects(
    objects: Sequence[LogObject],
    lake_location: str | Path,
    *,
    jobs: int | None = 1,
    glue_database: str | None = None,
    progress: ProgressCallback | None = None,
    batch: bool | None = None,
) -> IngestSummary:
    """Ingest every object into the lake at ``lake_location`` with ``jobs`` processes (1: this process; None:
    ``auto_jobs``); ``glue_database``: see ``open_lake_at``; ``batch``: small objects in batches (None: when there
    are many, see ``plan_tasks``).

    A failing object is reported in ``failures`` and does not stop the rest.
    """
    summary = IngestSummary()
    started = time.perf_counter()
    install_key_sources()  # a lake whose policy names a key in SSM or Secrets Manager (alblake.secrets)
    location = str(lake_location)
    jobs = max(1, min(auto_jobs(objects) if jobs is None else jobs, len(objects)))
    plan = plan_tasks(objects, batch=batch, jobs=jobs)
    jobs = min(jobs, max((len(tasks) for tasks in plan), default=1))
    outcomes = (
        _run_parallel(objects, plan, location, glue_database, jobs)
        if jobs > 1
        else _run_serial(objects, plan, open_lake_at(location, glue_database=glue_database))
    )
    bytes_total = sum(o.size for o in objects)
    bytes_done = 0
    for done, (index, outcome) in enumerate(outcomes, start=1):
        source = objects[index]
        if isinstance(outcome, Failure):
            summary.failures.append((outcome.name, outcome.reason))
        else:
            summary.add(outcome, source.name)
        bytes_done += source.size
        if progress is not None:
            progress(Progress(done, len(objects), bytes_done, bytes_total))
    summary.seconds = time.perf_counter() - started
    return summary


def ingest_paths(
    paths: Iterable[str],
    lake_location: str | Path,
    *,
    jobs: int | None = 1,
    glue_database: str | None = None,
    object_filter: ObjectFilter = EVERY_OBJECT,
    progress: ProgressCallback | None = None,
    batch: bool | None = None,
) -> IngestSummary:
    """Ingest every object the paths name (files, globs, directories, ``s3://`` prefixes) into the lake."""
    selection = select_objects(paths, object_filter)
    summary = ingest_objects(
        selection.objects, lake_location, jobs=jobs, glue_database=glue_database, progress=progress, batch=batch
    )
    summary.failures[:0] = [(f.name, f.reason) for f in selection.missing]
    summary.skipped = selection.skipped
    return summary
