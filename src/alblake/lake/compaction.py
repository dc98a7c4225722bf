"""Compaction of a ``GenerationalLake``: closed partition-hours rewritten into time-sorted files, retired folders
deleted after the grace period, orphaned folders of crashed rewrites swept (steps C1-C7, G1-G3 and O1-O3 of
docs/COMPACTION.md). Every rewrite goes through the lake's own commit protocol (``GenerationalLake._rewrite``).

``compact(lake, options)`` visits the partitions that may have work (pending markers first, then generation-0
folders in key order); an error in one partition stays with it; hours larger than a step are compacted in steps;
partitions inside which earlier runs died come last and are left to an operator after ``MAX_DEATHS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alblake.lake.derived import derived_key, sibling_keys
from alblake.lake.generational import GenerationalLake, is_per_object_file, owning_folder
from alblake.lake.generations import (
    COMPACTED_PREFIX,
    PENDING_PREFIX,
    PartitionState,
    lineage_key,
    now_iso,
    parse_iso,
    partition_of_path,
    pending_key,
)
from alblake.lake.layout import DATA_PREFIX, Partition

_LINEAGE_SUFFIX = ".lineage.parquet"
_GENERATION_NAME = re.compile(r"^g\d{6,}-[0-9a-f]+$")  # a generation folder's name (``generation_folder``)
STEP_BYTES = 1 << 30  # a compaction merges at most about this many bytes of files per step (see ``_rewrite``)
MAX_DEATHS = 5  # runs that died inside one partition before it is left for an operator


@dataclass
class CompactionOptions:
    now: datetime
    older_than: timedelta = timedelta(minutes=120)
    grace: timedelta = timedelta(minutes=60)
    should_stop: Callable[[], bool] = lambda: False
    start_after: str = ""  # listing cursor (a lake key) of a previous run that stopped early
    step_bytes: int = STEP_BYTES
    # by partition path: how many runs in a row died inside it (killed for time, memory or disk). Those are
    # visited after every other partition, in smaller steps (halved per death), and left alone after MAX_DEATHS.
    deaths: Mapping[str, int] = field(default_factory=dict)
    # called before each partition with the partition and the listing cursor that resumes at it (the caller
    # saves it: a run that dies there is then known to the next run)
    on_partition: Callable[[Partition, str], None] = lambda partition, cursor: None


@dataclass
class CompactionReport:
    partitions_compacted: int = 0
    files_removed: int = 0  # visible files before minus after, over the compacted partitions
    rows_compacted: int = 0
    bytes_written: int = 0
    folders_deleted: int = 0
    orphans_deleted: int = 0  # folders of rewrites that crashed before going live
    conflicts: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (partition path, message)
    finished: list[str] = field(default_factory=list)  # partition paths visited to the end, error or not
    stopped_early: bool = False
    next_cursor: str = ""  # where the next run continues ("" = from the start)


def _needs_merge(files: Sequence[tuple[str, int]], max_file_bytes: int, step_bytes: int) -> bool:
    """Whether a live folder (keys and sizes of its data files) has rows to merge: files of single source objects,
    or compacted files that would fit in half as many (a compaction in steps leaves several; one split above
    ``max_file_bytes`` is done), as long as they fit in one step. A folder of compacted files only is done."""
    if any(is_per_object_file(key.rsplit("/", 1)[-1]) for key, _ in files):
        return True
    total = sum(size for _, size in files)
    return len(files) > 1 and total <= step_bytes and total < len(files) * max_file_bytes // 2


def compact(lake: GenerationalLake, options: CompactionOptions) -> CompactionReport:
    """Compact the lake's closed partition-hours and delete what the grace period allows (``Compactor.run``)."""
    return Compactor(lake).run(options)


class Compactor:
    """One compaction run over a lake."""

    def __init__(self, lake: GenerationalLake) -> None:
        self.lake = lake

    def run(self, options: CompactionOptions) -> CompactionReport:
        """Compact every closed partition-hour with more than one visible file, and delete folders retired longer
        than the grace period. Any error in one partition (a foreign or corrupt file, an S3 or disk error) is
        reported and skips only that partition. Partitions inside which earlier runs died (``options.deaths``) come
        last, in smaller steps. Stops between two partitions (or two steps) when ``options.should_stop()`` says so;
        ``next_cursor`` says where to go on."""
        report = CompactionReport()
        troubled: list[tuple[Partition, str]] = []
        for partition, cursor in self._candidates(options.start_after):
            if options.should_stop():
                report.stopped_early = True
                report.next_cursor = cursor
                return report
            if partition.path in options.deaths:
                troubled.append((partition, cursor))
                continue
            self._visit(partition, cursor, options, report, options.step_bytes)
        for partition, cursor in troubled:
            deaths = options.deaths[partition.path]
            if deaths >= MAX_DEATHS:
                report.errors.append((partition.path, _stuck_message(deaths, options.step_bytes >> (deaths - 1))))
                continue
            if options.should_stop():
                report.stopped_early = True
                return report
            self._visit(partition, cursor, options, report, max(options.step_bytes >> deaths, 1))
        return report

    def _visit(
        self, partition: Partition, cursor: str, options: CompactionOptions, report: CompactionReport, step: int
    ) -> None:
        options.on_partition(partition, cursor)
        try:
            self._compact_one(partition, options, report, step)
        except Exception as error:  # any error stays with its partition: the others are compacted
            report.errors.append((partition.path, f"{type(error).__name__}: {error}"))
        report.finished.append(partition.path)

    def _candidates(self, start_after: str) -> Iterable[tuple[Partition, str]]:
        """Partitions that may have work, each with the listing cursor that resumes *at* it: first those marked
        pending (a commit into a compacted hour, a folder retired by a rewrite), then every partition that still
        has generation-0 files (not compacted yet, or compacted and its old files not deleted yet), in key order
        after ``start_after``. Compacted partitions without a marker are not visited: a run's cost follows the
        pending work, not the lake's age."""
        seen: set[Partition] = set()
        for key in self.lake.store.list_keys(PENDING_PREFIX):
            partition = partition_of_path(key[len(PENDING_PREFIX) :])
            if partition is not None and partition not in seen:
                seen.add(partition)
                yield partition, start_after
        previous = start_after
        for key in self.lake.store.list_keys(f"{DATA_PREFIX}elb_name=", start_after):
            folder = owning_folder(key)
            if folder is not None and folder[0] not in seen:
                seen.add(folder[0])
                yield folder[0], previous
            previous = key

    def _compact_one(
        self, partition: Partition, options: CompactionOptions, report: CompactionReport, step: int
    ) -> None:
        live = self.lake.read_state(partition)
        closed = _hour_closed(partition, options)
        files = self._live_files(live.state)
        while closed and _needs_merge(files, self.lake.max_file_bytes, step):
            done = self.lake._rewrite(partition, {}, expected=live, step_bytes=step)
            if done is None:
                report.conflicts += 1
                return
            report.partitions_compacted += 1
            report.files_removed += len(files) - done.files_after
            report.rows_compacted += done.rows
            report.bytes_written += done.bytes_written
            live = self.lake.read_state(partition)
            files = self._live_files(live.state)
            if _needs_merge(files, self.lake.max_file_bytes, step) and options.should_stop():
                break  # the next run takes the next step (the partition is still pending)
        if closed and live.tag is not None and live.state.compacted_at is None:
            # written as compacted files by batches: nothing to merge, but the hour is compacted from now on (an
            # object committed later is late)
            live.state.compacted_at = now_iso(self.lake.clock())
            if not self.lake._swap(live, live.state):
                report.conflicts += 1
        report.folders_deleted += self._delete_retired(partition, options)
        report.orphans_deleted += self._delete_orphans(partition)
        if closed:  # forget the marker, then look again: a commit that raced with this check marks it again
            self.lake.store.delete(pending_key(partition))
            state = self.lake.read_state(partition).state
            if state.retired or _needs_merge(self._live_files(state), self.lake.max_file_bytes, step):
                self.lake._mark_pending(partition)

    def _live_files(self, state: PartitionState) -> list[tuple[str, int]]:
        """The live folder's data files and their sizes."""
        return [(k, size) for k, size in self.lake.store.list_sizes(state.live) if k.endswith(".parquet")]

    def _delete_retired(self, partition: Partition, options: CompactionOptions) -> int:
        """Delete folders that stopped being live at least ``grace`` ago (after checking the catalog points at
        the live folder), then forget them in the state."""
        live = self.lake.read_state(partition)
        due = [r for r in live.state.retired if options.now - parse_iso(r.at) >= options.grace]
        if not due:
            return 0
        self.lake._point([partition])
        for retired in due:
            if retired.folder == live.state.live:
                continue
            for key in list(self.lake.store.list_keys(retired.folder)):
                self.lake.store.delete(key)
                if key.endswith(".parquet") and not key.endswith(_LINEAGE_SUFFIX):
                    self.lake.store.delete(lineage_key(key))
            for table in self.lake.derived:  # the folder's derived siblings, including any without a data file
                for key in list(self.lake.store.list_keys(derived_key(table, retired.folder))):
                    self.lake.store.delete(key)
        state = live.state
        state.retired = [r for r in state.retired if r not in due]
        return len(due) if self.lake._swap(live, state) else 0

    def _delete_orphans(self, partition: Partition) -> int:
        """Delete the generation folders of ``partition`` that were never live: what a rewrite left that crashed
        between its uploads (C4) and its swap (C5), its lineage and its derived siblings. The state is
        compare-and-swapped first (same content, next revision), so a rewrite still in flight, which read the state
        before, loses its swap rather than going live on deleted files; a rewrite that reads the state after it
        uploads into a folder this listing did not see."""
        live = self.lake.read_state(partition)
        if live.tag is None:  # never sealed: no rewrite ever started here
            return 0
        known = {live.state.live, *(retired.folder for retired in live.state.retired)}
        folders = f"{COMPACTED_PREFIX}{partition.path}/"
        orphans: dict[str, list[str]] = {}
        for prefix in (folders, lineage_key(folders), *sibling_keys(self.lake.derived, folders)):
            for key in self.lake.store.list_keys(prefix):
                name = key[len(prefix) :].split("/", 1)[0]
                folder = f"{folders}{name}/"
                if _GENERATION_NAME.match(name) and "/" in key[len(prefix) :] and folder not in known:
                    orphans.setdefault(folder, []).append(key)
        if not orphans or not self.lake._swap(live, live.state):
            return 0
        for keys in orphans.values():
            for key in keys:
                self.lake.store.delete(key)
        return len(orphans)


def _hour_closed(partition: Partition, options: CompactionOptions) -> bool:
    """Whether the partition's hour ended at least ``older_than`` ago (computed from its start: the end of the
    last hour of year 9999 is not a datetime)."""
    start = datetime.fromisoformat(f"{partition.day}T{partition.hour}:00:00+00:00")
    return options.now - start >= options.older_than + timedelta(hours=1)


def _stuck_message(deaths: int, step: int) -> str:
    return (
        f"{deaths} compaction runs in a row died inside this partition (last with steps of {step:,} bytes: killed "
        "for time, memory or disk); it is left alone. Compact it where there is no time limit: alblake compact "
        "--lake s3://BUCKET[/PREFIX] --glue-database DB (the cursor forgets it once a run finishes it)"
    )
