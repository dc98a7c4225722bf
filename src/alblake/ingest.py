"""Ingestion: the one core call (``ingest_object``: convert -> commit -> discard) and the CLI use case
(log objects, local files or ``s3://`` objects, -> a lake, across all cores). The Lambda use case
(``alblake.service.ingest``) calls ``ingest_object`` too.

Parallel ingest: objects are independent (each has its own output keys, derived from its source id), so a
process pool ingests them with the same result as one process. Work is planned as tasks (``plan_tasks``): one
object, or a batch of small objects of one load balancer's hours (``ingest_batch``: one file per partition-hour
for the whole batch). Each worker opens the lake itself (``open_lake_at``); results come back as tasks finish.
Two inputs with the same source id (the same ALB object in two directories) are never run at the same time: the
later one runs in a later wave, as it would after the first in a serial run.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from alblake.convert.core import ConvertedBatch, convert_batch, convert_stream
from alblake.convert.decompress import BLOCK_SIZE
from alblake.display import human_bytes, printable
from alblake.errors import InputError
from alblake.keys import LOG_SUFFIXES, AccessLogKey, classify_key
from alblake.lake import open_lake_at
from alblake.lake.layout import Partition
from alblake.lake.staged import StagedObject
from alblake.pool import default_jobs, pool_context, worth_a_pool
from alblake.ports import BatchCommitError, CommitResult, Lake
from alblake.selection import EVERY_OBJECT, ObjectFilter

if TYPE_CHECKING:
    from concurrent.futures import Future


@dataclass(frozen=True)
class IngestedObject:
    """What ingesting one object did: its counts and what its commit changed in the lake."""

    source_id: str
    lines: int
    rows: int
    quarantined: int
    bytes_in: int
    text_bytes: int
    max_time: datetime | None
    partitions: list[Partition]
    commit: CommitResult

    @classmethod
    def of(cls, staged: StagedObject, commit: CommitResult) -> IngestedObject:
        return cls(
            source_id=staged.source_id,
            lines=staged.lines,
            rows=staged.rows,
            quarantined=staged.quarantined,
            bytes_in=staged.bytes_in,
            text_bytes=staged.text_bytes,
            max_time=staged.max_time,
            partitions=staged.partitions,
            commit=commit,
        )


def ingest_object(
    open_stream: Callable[[], BinaryIO], source_id: str, lake: Lake, *, block_size: int = BLOCK_SIZE
) -> IngestedObject:
    """Convert the object ``open_stream()`` reads and commit it to ``lake``; the staged files are always removed.

    Raises ``InputError`` for an object that can never be converted (nothing of it is committed) and lets
    store/catalog errors through (a retry of the same object is safe: commits replace, never add).
    """
    with open_stream() as stream:
        staged = convert_stream(stream, source_id, lake.staging_dir(), block_size=block_size)
    try:
        commit = lake.commit(staged)
    finally:
        staged.discard()
    return IngestedObject.of(staged, commit)


class SourceObject(Protocol):
    """A log object to ingest (picklable: it is sent to worker processes)."""

    @property
    def source_id(self) -> str:
        """Identity for output naming (``alblake.lake.layout.object_stem``)."""
        ...

    @property
    def name(self) -> str:
        """How messages name it."""
        ...

    @property
    def size(self) -> int:
        """Bytes (compressed), for progress."""
        ...

    def open(self) -> BinaryIO: ...


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    source_id: str

    @classmethod
    def at(cls, path: Path, resolved_folders: dict[Path, Path] | None = None) -> LocalFile:
        return cls(path, path.stat().st_size, local_source_id(path, resolved_folders))

    @property
    def name(self) -> str:
        return str(self.path)

    def open(self) -> BinaryIO:
        return self.path.open("rb")


@dataclass(frozen=True)
class Failure:
    """An object that was not ingested, and why (nothing of it is in the lake)."""

    name: str
    reason: str


@dataclass
class IngestSummary:
    files: int = 0
    lines: int = 0
    rows: int = 0
    quarantined: int = 0
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
        self.bytes_in += ingested.bytes_in
        self.text_bytes += ingested.text_bytes
        self.partitions.update(p.path for p in ingested.partitions)
        if ingested.lines and not ingested.rows:
            self.not_alb_logs.append((name, ingested.lines))


@dataclass(frozen=True)
class Progress:
    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int


ProgressCallback = Callable[[Progress], None]


@dataclass
class Selection:
    """What the paths named: objects to ingest, names that could not be found, objects left out."""

    objects: list[SourceObject] = field(default_factory=list)
    missing: list[Failure] = field(default_factory=list)
    skipped: int = 0


def _is_pattern(text: str) -> bool:
    return any(char in text for char in "*?[")


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Files named directly, matched by a glob, or found (``*.log``, ``*.log.gz``) under a directory."""
    found: list[Path] = []
    for pattern in patterns:
        matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]  # noqa: PTH207
        if not matches:  # reported by select_sources: "no such file" or "no file matches"
            matches = [Path(pattern)]
        for path in matches:
            if path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES)))
            else:
                found.append(path)
    return list(dict.fromkeys(found))


def select_local(patterns: Iterable[str], object_filter: ObjectFilter = EVERY_OBJECT) -> Selection:
    selection = Selection()
    resolved_folders: dict[Path, Path] = {}
    for path in expand_paths(patterns):
        if not object_filter.accepts_name(path.name):
            selection.skipped += 1
            continue
        try:
            selection.objects.append(LocalFile.at(path, resolved_folders))
        except FileNotFoundError:
            reason = "no file matches this pattern" if _is_pattern(str(path)) else "no such file"
            selection.missing.append(Failure(str(path), reason))
        except OSError as exc:
            selection.missing.append(Failure(str(path), exc.strerror or str(exc)))
    return selection


def select_sources(paths: Iterable[str], object_filter: ObjectFilter = EVERY_OBJECT) -> Selection:
    """The objects that local paths/globs/directories and ``s3://bucket/prefix`` URLs name, filtered."""
    paths = list(paths)
    s3_urls = [p for p in paths if p.startswith("s3://")]
    selection = select_local([p for p in paths if not p.startswith("s3://")], object_filter)
    if s3_urls:
        try:
            from alblake.aws.s3_listing import select_s3  # the AWS adapter, only when an s3:// path is given
        except ImportError:
            selection.missing += [Failure(u, "s3:// paths need the aws extras (pip install 'alblake[aws]')")
                                  for u in s3_urls]
            return selection
        for url in s3_urls:
            found = select_s3(url, object_filter)
            selection.objects.extend(found.objects)
            selection.missing.extend(found.missing)
            selection.skipped += found.skipped
    return selection


def local_source_id(path: Path, resolved_folders: dict[Path, Path] | None = None) -> str:
    """Identity of a local log file for output naming: from 'AWSLogs/' on when the path has it (a copy of the
    bucket layout, so the same ALB object ingested from two directories replaces itself), else the full path.
    ``resolved_folders`` caches resolved folders across the files of one folder (resolving is most of the cost)."""
    if resolved_folders is None or path.is_symlink():
        resolved = path.resolve().as_posix()
    else:
        folder = resolved_folders.get(path.parent)
        if folder is None:
            folder = resolved_folders[path.parent] = path.parent.resolve()
        resolved = (folder / path.name).as_posix()
    marker = resolved.find("/AWSLogs/")
    return resolved[marker + 1 :] if marker >= 0 else resolved


def ingest_one(source: SourceObject, lake: Lake) -> IngestedObject | Failure:
    """Ingest one object; any error of this object is returned as a ``Failure`` (the others go on)."""
    try:
        return ingest_object(source.open, source.source_id, lake)
    except Exception as exc:  # any error of one object (I/O, S3, a bug) must not stop the others
        return failure_of(source, exc)


def failure_of(source: SourceObject, exc: Exception) -> Failure:
    if isinstance(exc, FileNotFoundError):
        return Failure(source.name, "no such file")
    if isinstance(exc, IsADirectoryError):
        return Failure(source.name, "is a directory")
    if isinstance(exc, InputError):
        return Failure(source.name, str(exc))
    return Failure(source.name, f"{type(exc).__name__}: {exc}")


def ingest_batch(sources: Sequence[SourceObject], lake: Lake) -> list[IngestedObject | Failure]:
    """Ingest small objects together (``convert_batch`` -> ``Lake.commit_batch``); an object the batch does not take
    is ingested on its own. One outcome per object, in order; errors are ``Failure`` s as in ``ingest_one``
    (a failed batch commit fails each of its objects whose commit is not complete: a retry replaces whatever part of
    it is live)."""
    outcomes: dict[int, IngestedObject | Failure] = {}
    try:
        conversion = convert_batch([(source.open, source.source_id) for source in sources], lake.staging_dir())
    except Exception:  # not an error of one object (those are in conversion.failed): each one alone says what
        return [ingest_one(source, lake) for source in sources]
    try:
        for position, error in conversion.failed.items():
            outcomes[position] = failure_of(sources[position], error)
        if conversion.batch.objects:
            outcomes.update(_commit_converted(conversion, sources, lake))
    finally:
        conversion.batch.discard()
    for position in conversion.alone:
        outcomes[position] = ingest_one(sources[position], lake)
    return [outcomes[position] for position in range(len(sources))]


def _commit_converted(
    conversion: ConvertedBatch, sources: Sequence[SourceObject], lake: Lake
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
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    _worker_lake = open_lake_at(lake_location, glue_database=glue_database)


def _run_task(sources: Sequence[SourceObject], lake: Lake) -> list[IngestedObject | Failure]:
    return ingest_batch(sources, lake) if len(sources) > 1 else [ingest_one(sources[0], lake)]


def _ingest_in_worker(sources: list[SourceObject]) -> list[IngestedObject | Failure]:
    assert _worker_lake is not None, "the pool initializer opens the lake"
    return _run_task(sources, _worker_lake)


def auto_jobs(objects: Sequence[SourceObject]) -> int:
    """One process per core when the work pays for starting a pool (``worth_a_pool``)."""
    return default_jobs() if worth_a_pool(len(objects), sum(o.size for o in objects)) else 1


def _waves(objects: Sequence[SourceObject]) -> list[list[int]]:
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


def plan_tasks(objects: Sequence[SourceObject], *, batch: bool | None, jobs: int) -> list[list[list[int]]]:
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


def _size(objects: Sequence[SourceObject], indexes: list[int]) -> int:
    return sum(objects[i].size for i in indexes)


def _one_batch(objects: Sequence[SourceObject], group: list[int]) -> tuple[list[int], list[int]]:
    """The first objects of ``group`` that fit in one batch (at least one), and the others."""
    size = 0
    for count, i in enumerate(group):
        size += objects[i].size
        if not _fits_in_a_batch(count + 1, size):
            return group[: max(count, 1)], group[max(count, 1) :]
    return group, []


def _hour_groups(objects: Sequence[SourceObject], indexes: list[int]) -> list[list[int]]:
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


def _object_name(source: SourceObject) -> str:
    return source.source_id.rsplit("/", 1)[-1]


def _run_parallel(
    objects: Sequence[SourceObject], plan: list[list[list[int]]], lake_location: str, glue_database: str | None,
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
    objects: Sequence[SourceObject], plan: list[list[list[int]]], lake: Lake
) -> Iterator[tuple[int, IngestedObject | Failure]]:
    for tasks in plan:
        for task in tasks:
            yield from zip(task, _run_task([objects[i] for i in task], lake), strict=True)


def ingest_sources(
    objects: Sequence[SourceObject],
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
    selection = select_sources(paths, object_filter)
    summary = ingest_sources(
        selection.objects, lake_location, jobs=jobs, glue_database=glue_database, progress=progress, batch=batch
    )
    summary.failures[:0] = [(f.name, f.reason) for f in selection.missing]
    summary.skipped = selection.skipped
    return summary


def progress_bar(state: Progress) -> None:
    width = 30
    filled = width * state.objects_done // max(state.objects_total, 1)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {state.objects_done}/{state.objects_total} objects, "
        f"{human_bytes(state.bytes_done)} of {human_bytes(state.bytes_total)}"
    )
    if state.objects_done == state.objects_total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def describe_failure(name: str, reason: str) -> str:
    """One line for stderr; the name is terminal-safe (file names can hold control characters)."""
    return f"error: {printable(name)}: {printable(reason)}"
