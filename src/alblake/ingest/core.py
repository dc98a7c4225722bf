"""The one core call: ``ingest_object`` converts one log object and commits it to a lake (convert -> commit ->
discard), with the same result wherever it runs: the ingest function (``alblake.service.ingest``) and the
command line (``alblake.ingest.runner``) both call it.

It follows the lake's lifecycle policy (``alblake.lake.settings``, docs/COMPACTION.md "Retention and erasure"):
the privacy settings apply during conversion; the erasure criteria and the expired hours apply to the converted
rows and quarantined lines before the commit (counted as *erased*: lines = rows + quarantined + erased); after the
commit the policy is read again, and when an erasure or an expiry was written meanwhile the object's rows are
filtered by it and committed again, so an erased row never comes back through an ingest that raced the erasure.
Batches of small objects (``alblake.ingest.runner.ingest_batch``) use the same ``IngestLifecycle``.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alblake.convert.core import convert_stream
from alblake.convert.decompress import BLOCK_SIZE
from alblake.convert.parquet_format import ROW_GROUP_ROWS, parquet_writer
from alblake.convert.privacy import NO_PRIVACY, Privacy
from alblake.errors import ConflictError
from alblake.lake.criteria import Matcher, filter_quarantine, hour_start
from alblake.lake.derived import derived_tables_of
from alblake.lake.layout import Partition
from alblake.lake.settings import POLICY_KEY, LakePolicy, policy_key, read_policy
from alblake.lake.staged import StagedBatch, StagedData, StagedObject, StagedRows
from alblake.ports import CommitResult, Lake, ObjectStore

RECHECKS = 12  # policy changes an ingest follows after its commit before it gives up (a retry succeeds)
FILTER_BATCH_ROWS = ROW_GROUP_ROWS  # rows of a staged file filtered at a time (memory ~ one row group)


class PolicyKeptChangingError(ConflictError, RuntimeError):
    """The lifecycle policy changed after each of an ingest's commits; the object is left to a retry."""


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
    erased: int = 0  # rows and quarantined lines dropped by the lake's lifecycle (lines = rows + quarantined + erased)

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
            erased=staged.erased,
        )


@dataclass
class IngestLifecycle:
    """The lake's policy as one ingest read it: its privacy (for the conversion) and its matcher (for the rows)."""

    store: ObjectStore | None = None
    tag: str | None = None
    privacy: Privacy = NO_PRIVACY
    matcher: Matcher = field(default_factory=Matcher)

    @classmethod
    def of(cls, lake: Lake) -> IngestLifecycle:
        """The policy of ``lake`` now (a lake without an object store has none). Asked of the lake's ``store``, not
        of its class: a lake wrapped by another (the ingest function's log-metrics lake) has the same policy."""
        store = getattr(lake, "store", None)
        return cls() if store is None else cls.read(store)

    @classmethod
    def read(cls, store: ObjectStore) -> IngestLifecycle:
        current = read_policy(store)
        policy = current.policy
        key = policy_key(policy) if policy.needs_key else None
        return cls(store, current.tag, Privacy(policy.privacy, key), _matcher(policy, key))

    def newer(self) -> IngestLifecycle | None:
        """The policy, if it changed since this one was read; else None."""
        if self.store is None:
            return None
        versioned = self.store.get_versioned(POLICY_KEY)
        if (None if versioned is None else versioned.tag) == self.tag:
            return None
        return IngestLifecycle.read(self.store)

    def changed(self) -> bool:
        """Whether the policy changed since this one was read (also when it cannot be read now: the caller then
        ingests again, which reports why)."""
        try:
            return self.newer() is not None
        except Exception:  # any error reading it: fail closed
            return True

    def filter_object(self, staged: StagedObject) -> int:
        """Drop the object's rows and quarantined lines that the policy erases; how many were dropped.

        A partition-hour the lake has expired leaves the object; one whose rows were all erased stays, with an
        empty file: its commit then replaces whatever an earlier attempt of this object left there (a crashed
        attempt that read an older policy), where leaving the partition out would keep it."""
        if self.matcher.empty:
            return 0
        kept: list[StagedData] = []
        rows = 0
        for data in staged.data:
            if self.matcher.expired(data.partition):
                rows += data.rows
                data.path.unlink(missing_ok=True)
                continue
            dropped = filter_file(data.path, self.matcher).dropped
            rows += dropped
            # fewer rows: the derived files the conversion wrote no longer match them, the commit derives again
            kept.append(StagedData(data.partition, data.path, data.rows - dropped) if dropped else data)
        staged.data = kept
        staged.rows -= rows
        lines = _filter_staged_quarantine(staged, self.matcher)
        staged.erased += rows + lines
        return rows + lines

    def filter_batch(self, batch: StagedBatch) -> int:
        """``filter_object`` for the objects of a batch, whose rows are held by partition in ``batch.rows``."""
        if self.matcher.empty:
            return 0
        erased: Counter[int] = Counter()  # by object index
        position = {staged.stem: i for i, staged in enumerate(batch.objects)}
        kept: list[StagedRows] = []
        for rows in batch.rows:
            drop = self.matcher.drop(rows.table)
            if not drop.any():
                kept.append(rows)
                continue
            expired = self.matcher.expired(rows.partition)
            counts = np.bincount(rows.lineage[drop], minlength=len(rows.stems))
            for index in np.flatnonzero(counts).tolist():
                staged = batch.objects[position[rows.stems[index]]]
                erased[position[rows.stems[index]]] += int(counts[index])
                staged.batched_rows[rows.partition] -= int(counts[index])
                if expired:  # the object leaves an expired hour; it keeps an hour whose rows were all erased
                    del staged.batched_rows[rows.partition]
            if not expired:  # its objects' earlier rows there are replaced, also by none
                table, lineage = rows.table.filter(pa.array(~drop)), rows.lineage[~drop]
                kept.append(StagedRows(rows.partition, table, rows.stems, lineage))
        batch.rows = kept
        for index, staged in enumerate(batch.objects):
            staged.rows -= erased[index]
            lines = _filter_staged_quarantine(staged, self.matcher)
            staged.erased += erased[index] + lines
            erased[index] += lines
        return sum(erased.values())


def _matcher(policy: LakePolicy, key: bytes | None) -> Matcher:
    expired = hour_start(policy.expired_before) if policy.expired_before else None
    return Matcher(policy.erasures, key, expired)


@dataclass(frozen=True)
class FileFiltered:
    """What ``filter_file`` did: the rows it dropped, and the batches it read (over both of its passes)."""

    dropped: int
    batches: int


def filter_file(path: Path, matcher: Matcher, *, batch_rows: int = FILTER_BATCH_ROWS) -> FileFiltered:
    """Rewrite a staged Parquet file without the rows the matcher drops (all of them: an empty file), reading it
    ``batch_rows`` rows at a time, so that memory stays bounded whatever the file's size (as the conversion's and
    compaction's). A first pass reads only the columns the matcher needs; a file with rows to drop is then written
    again, batch by batch, with the lake's Parquet settings and the file's own schema, its kept rows in row groups
    of ``ROW_GROUP_ROWS`` (as the conversion writes them), and replaces the staged file."""
    batches = 0
    with pq.ParquetFile(path) as source:
        columns = [c for c in matcher.columns() if c in source.schema_arrow.names]
        dropped = 0
        for batch in source.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False):
            dropped += int(np.count_nonzero(matcher.drop(pa.Table.from_batches([batch]))))
            batches += 1
        if not dropped:
            return FileFiltered(0, batches)
        filtered = path.with_name(f"{path.name}.filtered")
        try:
            with parquet_writer(filtered, source.schema_arrow) as writer:
                batches += _write_kept(source, matcher, writer, batch_rows)
            filtered.replace(path)
        finally:
            filtered.unlink(missing_ok=True)
    return FileFiltered(dropped, batches)


def _write_kept(source: pq.ParquetFile, matcher: Matcher, writer: pq.ParquetWriter, batch_rows: int) -> int:
    """The rows of ``source`` the matcher keeps, written in row groups of ``ROW_GROUP_ROWS``; the batches read."""
    batches = 0
    pending: list[pa.Table] = []
    held = 0
    for batch in source.iter_batches(batch_size=batch_rows, use_threads=False):
        batches += 1
        table = pa.Table.from_batches([batch])
        kept = table.filter(pa.array(~matcher.drop(table)))
        if kept.num_rows:
            pending.append(kept)
            held += kept.num_rows
        if held >= ROW_GROUP_ROWS:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
            pending, held = [], 0
    if pending:
        writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
    return batches


def _filter_staged_quarantine(staged: StagedObject, matcher: Matcher) -> int:
    """Drop the matching lines of the object's staged quarantine file; how many it dropped."""
    path = staged.quarantine_path
    if path is None or not matcher.criteria:
        return 0
    filtered = filter_quarantine(path.read_bytes(), matcher)
    if not filtered.lines:
        return 0
    path.write_bytes(filtered.content)
    staged.quarantined -= filtered.lines
    staged.quarantine_stored -= filtered.lines
    reasons = Counter(staged.quarantine_reasons)
    reasons.subtract(filtered.erased)
    staged.quarantine_reasons = {k: v for k, v in reasons.items() if v > 0}
    if not staged.quarantined:
        staged.quarantine_path = None
    return filtered.lines


def ingest_object(
    open_stream: Callable[[], BinaryIO], source_id: str, lake: Lake, *, block_size: int = BLOCK_SIZE
) -> IngestedObject:
    """Convert the object ``open_stream()`` reads and commit it to ``lake``; the staged files are always removed.

    Raises ``InputError`` for an object that can never be converted (nothing of it is committed) and lets
    store/catalog errors through (a retry of the same object is safe: commits replace, never add).
    """
    lifecycle = IngestLifecycle.of(lake)
    with open_stream() as stream:
        staged = convert_stream(
            stream, source_id, lake.staging_dir(), block_size=block_size, privacy=lifecycle.privacy,
            derived=derived_tables_of(lake),
        )
    try:
        lifecycle.filter_object(staged)
        commit = _commit(lake, staged)
        for _ in range(RECHECKS):  # an erasure or expiry written while this commit ran: filter and commit again
            newer = lifecycle.newer()
            if newer is None:
                return IngestedObject.of(staged, commit)
            lifecycle = newer
            if lifecycle.filter_object(staged):
                commit = _commit(lake, staged)
    finally:
        staged.discard()
    raise PolicyKeptChangingError(f"{source_id}: the lake's lifecycle policy kept changing while it was committed")


def _commit(lake: Lake, staged: StagedObject) -> CommitResult:
    """``lake.commit``, keeping the staged quarantine file (a local store moves the file it puts) so that a newer
    policy can still filter it and commit it again."""
    path = staged.quarantine_path
    if path is None:
        return lake.commit(staged)
    kept = path.with_name(path.name + ".kept")
    try:
        os.link(path, kept)
    except OSError:
        shutil.copyfile(path, kept)
    try:
        return lake.commit(staged)
    finally:
        kept.replace(path)
