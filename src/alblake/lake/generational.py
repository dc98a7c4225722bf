"""``GenerationalLake``: the Hive layout of ``alblake.lake.layout`` plus compacted generations, exactly once
for readers at every step. This module holds the readers' view, the commit path and the rewrite every writer
uses; compaction runs are ``alblake.lake.compaction``, repairs ``alblake.lake.repair``.

Layout and state: ``alblake.lake.generations``; the merge: ``alblake.lake.merge``; invariants and the proof
sketch of every step: ``docs/COMPACTION.md``. In short:

- a reader reads the *live folder* of every partition (the state's ``live``; generation 0 when there is no
  state), and only that folder: locally ``visible_files``; on AWS the Glue Location, which is moved forward to
  the live folder by every writer after its state write (``PartitionRegistrar.point``);
- the state object of a partition is only replaced by compare-and-swap, and every writer re-reads it after
  touching files, so a writer that raced with another redoes its step against the newer state;
- files of a source object are written before the state that records them, and old folders are deleted only a
  grace period after they stopped being live.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from alblake.convert.parquet_format import ROW_GROUP_ROWS, parquet_writer
from alblake.errors import ConflictError, LakeStateError
from alblake.lake.derived import default_derived_tables, derived_key, sibling_keys, write_derived
from alblake.lake.generations import (
    COMPACTED_FILE_PREFIX,
    COMPACTED_PREFIX,
    STATE_PREFIX,
    PartitionState,
    RetiredFolder,
    SourceRecord,
    StateFormatError,
    generation_folder,
    lineage_key,
    new_write_token,
    now_iso,
    partition_of_path,
    pending_key,
    state_key,
)
from alblake.lake.layout import (
    DATA_PREFIX,
    Partition,
    data_key,
    legacy_stem,
    manifest_key,
    quarantine_key,
    read_manifest,
)
from alblake.lake.merge import MAX_FILE_BYTES, MergeInput, RowFilter, UnreadableInputError, merge_sorted, read_lineage
from alblake.lake.staged import StagedBatch, StagedObject, StagedRows
from alblake.ports import (
    BatchCommitError,
    CommitResult,
    ConditionFailedError,
    DerivedTable,
    ObjectStore,
    PartitionRegistrar,
    PartitionTarget,
    Versioned,
)

ATTEMPTS = 12
_PER_OBJECT_FILE = re.compile(r"^(?P<stem>[^/]+\.[0-9a-f]{16})\.parquet$")


class LakeConflictError(ConflictError, RuntimeError):
    """Other writers kept changing a partition; the operation gave up (transient: a retry succeeds)."""


class ForeignFileError(LakeStateError, ValueError):
    """A file in a partition's live folder that this lake did not write (the message names it)."""


# The digest recorded for rows a batch added (``_rewrite``'s ``added``): unknown, no per-object file was written. It
# never equals a per-object file's digest, so a later re-delivery of such an object replaces its rows, never skips.
BATCH_DIGEST = ""


@dataclass(frozen=True)
class Replacement:
    """A source object's new rows for one partition (a local Parquet file), or its removal (``path=None``)."""

    path: Path | None
    digest: str = ""
    rows: int = 0


@dataclass(frozen=True)
class _EarlierCommit:
    """What an object's last commit wrote (its manifest): its own files and the partitions it had rows in; and,
    for an object a lake written before object identities holds under its legacy stem (``layout.legacy_stem``),
    that stem and the partitions its rows are in (this commit replaces them: the object is one object)."""

    files: list[str]
    partitions: list[Partition]
    legacy_stem: str | None = None
    legacy_files: list[str] = field(default_factory=list)
    legacy_partitions: list[Partition] = field(default_factory=list)


@dataclass
class Rewritten:
    """A new generation made live: its state and what the rewrite did."""

    state: PartitionState
    files_after: int
    rows: int
    bytes_written: int
    files_of: dict[str, list[str]] = field(default_factory=dict)  # by source stem: the files holding its rows


@dataclass
class _RewritePlan:
    inputs: list[MergeInput] = field(default_factory=list)  # what the rewrite merges
    digests: dict[str, str] = field(default_factory=dict)  # by stem: its per-object file's digest
    carried: list[str] = field(default_factory=list)  # names of live files copied into the new folder as they are


def _carried_records(old: PartitionState, carried: Iterable[str]) -> dict[str, SourceRecord]:
    """The records of the sources whose files a stepped rewrite copied as they are. A per-object file of a
    generation-0 folder has none yet: its digest is unknown (a re-delivery then replaces its file, never skips)
    and its row count too (0)."""
    names = set(carried)
    records = {stem: record for stem, record in old.sources.items() if record.file in names}
    for name in names:
        match = _PER_OBJECT_FILE.match(name)
        if match is not None and match.group("stem") not in records:
            records[match.group("stem")] = SourceRecord(digest="", rows=0, file=name)
    return records


@dataclass
class _Live:
    """A partition's state as read, with its version tag (None: no state object, generation 0)."""

    state: PartitionState
    tag: str | None


def is_per_object_file(name: str) -> bool:
    """Whether a file name in a live folder is one source object's file (``<stem>.parquet``), not a compacted one."""
    return _PER_OBJECT_FILE.match(name) is not None


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class GenerationalLake:
    def __init__(
        self,
        store: ObjectStore,
        registrar: PartitionRegistrar | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        attempts: int = ATTEMPTS,
        max_file_bytes: int = MAX_FILE_BYTES,
        derived: Sequence[DerivedTable] = (),
        derived_registrars: Mapping[str, PartitionRegistrar] | None = None,
    ) -> None:
        self.store = store
        self.registrar = registrar
        # tables derived from every data file (``alblake.lake.derived``), and the catalog of each (by name) if any
        self.derived = tuple(derived)
        self.derived_registrars = dict(derived_registrars or {})
        self.clock = clock or (lambda: datetime.now(UTC))
        self.attempts = attempts
        self.max_file_bytes = max_file_bytes  # compacted files are split above this size
        # partition -> why its state cannot be read, as the last listing (visible_keys, states) found
        self.unreadable_states: dict[Partition, str] = {}

    # ----------------------------------------------------------------------------------------------- readers

    def staging_dir(self) -> Path:
        return self.store.staging_dir()

    def visible_files(self, table: str | None = None) -> Sequence[str]:
        """The files a reader of the curated table (or of the derived table ``table``) must read, sorted. A data
        file written before its derived table existed has no sibling: ``derived_gaps`` lists those."""
        if table is None:
            return sorted(self.store.url(key) for key, _ in self.visible_keys())
        derived = self.derived_table(table)
        present = set(self.store.list_keys(derived.prefix))
        siblings = (derived_key(derived, key) for key, _ in self.visible_keys())
        return sorted(self.store.url(key) for key in siblings if key in present)

    def derived_gaps(self, table: str) -> list[str]:
        """The visible data files whose sibling in ``table`` is missing (data written before the table existed)."""
        derived = self.derived_table(table)
        present = set(self.store.list_keys(derived.prefix))
        return sorted(key for key, _ in self.visible_keys() if derived_key(derived, key) not in present)

    def derived_table(self, name: str) -> DerivedTable:
        for table in self.derived:
            if table.name == name:
                return table
        raise LakeStateError(f"this lake has no table {name!r} (derived tables: {[t.name for t in self.derived]})")

    def visible_keys(self) -> list[tuple[str, Partition]]:
        """The data files readers see (those in their partition's live folder), each with its partition; one
        listing of the data tree. A partition whose state cannot be read shows nothing (which folder is live is
        unknown): it is named in ``unreadable_states`` and ``alblake repair`` rebuilds its state."""
        keys = [key for key in self.store.list_keys(DATA_PREFIX) if key.endswith(".parquet")]
        live = self._live_from(keys)
        visible = []
        for key in keys:
            folder = owning_folder(key)
            if folder is not None and live.get(folder[0]) == folder[1]:
                visible.append((key, folder[0]))
        return visible

    def _live_from(self, keys: Iterable[str]) -> dict[Partition, str | None]:
        live: dict[Partition, str | None] = {}
        for key in keys:
            folder = owning_folder(key)
            if folder is not None and not folder[1].startswith(COMPACTED_PREFIX):
                live.setdefault(folder[0], folder[1])
        self.unreadable_states = {}
        for key in self.store.list_keys(STATE_PREFIX):  # only each state's live folder: cheaper than states()
            partition = partition_of_path(key[len(STATE_PREFIX) :].removesuffix(".json"))
            versioned = self.store.get_versioned(key)  # not ``get``: "denied" must never read as "no state"
            if partition is None or versioned is None:
                continue
            try:
                folder = json.loads(versioned.content)["live"]
                if not isinstance(folder, str) or not folder.startswith(DATA_PREFIX):
                    raise TypeError(f"live folder {folder!r}")
            except (ValueError, KeyError, TypeError) as error:
                live[partition] = None
                self.unreadable_states[partition] = f"{key}: unreadable partition state ({error})"
                continue
            live[partition] = folder
        return live

    def states(self) -> list[PartitionState]:
        """Every readable partition state; those that cannot be read are named in ``unreadable_states``."""
        found = []
        self.unreadable_states = {}
        for key in self.store.list_keys(STATE_PREFIX):
            versioned = self.store.get_versioned(key)
            if versioned is None:
                continue
            try:
                found.append(PartitionState.from_json(versioned.content, key))
            except StateFormatError as error:
                partition = partition_of_path(key[len(STATE_PREFIX) :].removesuffix(".json"))
                if partition is not None:
                    self.unreadable_states[partition] = str(error)
        return found

    def read_state(self, partition: Partition) -> _Live:
        versioned: Versioned | None = self.store.get_versioned(state_key(partition))
        if versioned is None:
            return _Live(PartitionState(partition), None)
        return _Live(PartitionState.from_json(versioned.content, state_key(partition)), versioned.tag)

    # ------------------------------------------------------------------------------------------ ingest commit

    def commit(self, staged: StagedObject) -> CommitResult:
        earlier = self._earlier_commit(staged)
        result = CommitResult()
        for data in staged.data:
            if earlier.legacy_stem is not None and data.partition in earlier.legacy_partitions:
                key = self._replace_legacy(data.partition, earlier.legacy_stem, staged.stem, data.path, data.rows)
            else:
                key = self._commit_partition(data.partition, staged.stem, data.path, data.rows, data.derived)
            result.written.extend([key] if key else [])
        result.partitions_created = self._point(staged.partitions)
        self._finish_object(staged, result, earlier)
        return result

    def commit_batch(self, batch: StagedBatch) -> list[CommitResult]:
        """Commit small objects converted together: every partition of the batch gets one new generation holding
        the batch's rows (a rewrite that replaces those objects' rows, as a changed re-ingest does), then each
        object gets its quarantine file, stale-partition cleanup and manifest as in ``commit``. One result per
        object, in order; the batch's catalog changes are counted in the first one."""
        earlier = [self._earlier_commit(staged) for staged in batch.objects]
        results = [CommitResult() for _ in batch.objects]
        position = {staged.stem: i for i, staged in enumerate(batch.objects)}
        earlier_stems: dict[Partition, set[str]] = {}  # by partition: the batch's objects an earlier commit wrote there
        for staged, commit in zip(batch.objects, earlier, strict=True):
            for partition in commit.partitions:
                earlier_stems.setdefault(partition, set()).add(staged.stem)
            for partition in commit.legacy_partitions:  # replaced in the same swap as the batch's own rows
                earlier_stems.setdefault(partition, set()).add(str(commit.legacy_stem))
        legacy = {staged.stem: commit for staged, commit in zip(batch.objects, earlier, strict=True)}
        for rows in batch.rows:
            if len(rows.stems) > 1:  # also drops the rows of objects that left the partition: one rewrite, not two
                committed = self._commit_rows(rows, earlier_stems.get(rows.partition, set()))
            else:
                committed = self._commit_rows_of_one(rows, legacy[rows.stems[0]])
            for stem, keys in committed.items():
                results[position[stem]].written.extend(keys)
        if results:
            results[0].partitions_created = self._point(rows.partition for rows in batch.rows)
        for finished, (staged, result, commit) in enumerate(zip(batch.objects, results, earlier, strict=True)):
            try:
                self._finish_object(staged, result, commit)
            except Exception as error:  # the objects before it are complete: say so, not "all failed"
                raise BatchCommitError(dict(enumerate(results[:finished])), error) from error
        return results

    def _earlier_commit(self, staged: StagedObject) -> _EarlierCommit:
        """What the object's last commit wrote, from its manifest (nothing when it has none), and what a commit
        under its legacy stem wrote, if any."""
        content = self.store.get(manifest_key(staged.stem))
        files = read_manifest(content, staged.stem)
        legacy = legacy_stem(staged.source_id)
        legacy_content = None if legacy == staged.stem else self.store.get(manifest_key(legacy))
        if legacy_content is None:
            return _EarlierCommit(files, _manifest_partitions(content, files))
        legacy_files = read_manifest(legacy_content, legacy)
        legacy_partitions = _manifest_partitions(legacy_content, legacy_files)
        return _EarlierCommit(files, _manifest_partitions(content, files), legacy, legacy_files, legacy_partitions)

    def _replace_legacy(self, partition: Partition, legacy: str, stem: str, path: Path, rows: int) -> str:
        """Make ``path`` the rows of ``stem`` in ``partition`` while removing the same object's rows under its
        legacy stem, in one swap (a rewrite: no reader ever sees both); the key its rows now live at."""
        digest = file_digest(path)
        replace = {legacy: Replacement(None), stem: Replacement(path, digest, rows)}
        for _ in range(self.attempts):
            done = self._rewrite(partition, replace, compacting=False)
            if done is not None:  # no record: no new rows (an erasure's criteria dropped every one)
                record = done.state.sources.get(stem)
                return "" if record is None else done.state.live + record.file
        raise LakeConflictError(f"{partition.path}: gave up after {self.attempts} conflicting writes")

    def _finish_object(self, staged: StagedObject, result: CommitResult, earlier: _EarlierCommit) -> None:
        """After an object's rows are live: its quarantine file, the removal of its rows from partitions an earlier
        commit wrote and this one does not, then its manifest (last: a manifest says the commit is complete)."""
        stem = staged.stem
        if staged.quarantine_path is not None:
            key = quarantine_key(stem)
            self.store.put_file(key, staged.quarantine_path)
            result.written.append(key)
        stale = sorted(set(earlier.partitions) - set(staged.partitions))
        for partition in stale:
            result.deleted.extend(self._remove_source(partition, stem))
        legacy_stale = sorted(set(earlier.legacy_partitions) - set(staged.partitions))
        for partition in legacy_stale:  # the legacy stem's rows where the object has none now
            result.deleted.extend(self._remove_source(partition, str(earlier.legacy_stem)))
        self._point([*stale, *legacy_stale])  # also when the removal was done by a run that crashed before pointing
        if staged.quarantine_path is None and quarantine_key(stem) in earlier.files:
            self.store.delete(quarantine_key(stem))
            result.deleted.append(quarantine_key(stem))
        manifest = {
            "source": staged.source_id,
            "files": result.written,
            "partitions": [p.path for p in staged.partitions],
            "lines": staged.lines,
            "rows": staged.rows,
            "quarantined": staged.quarantined,
            "erased": staged.erased,
            "quarantine_stored": staged.quarantine_stored,
            "quarantine_reasons": staged.quarantine_reasons,
        }
        # one line: json's C encoder (an indented manifest costs ~0.1 ms more, per object)
        self.store.put_bytes(manifest_key(stem), (json.dumps(manifest) + "\n").encode())
        if earlier.legacy_stem is not None:  # the object now lives under its stem: its legacy commit is gone
            if quarantine_key(earlier.legacy_stem) in earlier.legacy_files:
                self.store.delete(quarantine_key(earlier.legacy_stem))
            self.store.delete(manifest_key(earlier.legacy_stem))

    def _commit_rows_of_one(self, rows: StagedRows, earlier: _EarlierCommit) -> dict[str, list[str]]:
        """The rows of a single object in a partition: committed as its own file, as ``commit`` does (cheaper than
        a rewrite when objects are spread over many partition-hours)."""
        stem = rows.stems[0]
        with tempfile.TemporaryDirectory(dir=self.store.staging_dir(), prefix="one-") as work:
            path = Path(work) / f"{stem}.parquet"
            with parquet_writer(path) as writer:
                writer.write_table(rows.table, row_group_size=ROW_GROUP_ROWS)
            if earlier.legacy_stem is not None and rows.partition in earlier.legacy_partitions:
                key = self._replace_legacy(rows.partition, earlier.legacy_stem, stem, path, rows.table.num_rows)
            else:
                key = self._commit_partition(rows.partition, stem, path, rows.table.num_rows)
            return {stem: [key]}

    def _commit_rows(self, rows: StagedRows, earlier_writers: Iterable[str] = ()) -> dict[str, list[str]]:
        """Make ``rows`` the rows of their objects in their partition; the keys each object's rows now live at.
        ``earlier_writers``: objects whose earlier commit wrote into the partition; their rows there are replaced
        too, so those that left it have none left (``_finish_object``'s removal then only swaps the state)."""
        batch_input = MergeInput(
            f"{len(rows.stems)} objects (new rows)", None, rows.stems, rows.lineage, table=rows.table
        )
        replaced = {stem: Replacement(None) for stem in [*earlier_writers, *rows.stems]}  # wherever they are
        for _ in range(self.attempts):
            done = self._rewrite(
                rows.partition,
                replaced,
                added=[batch_input],
                compacting=False,
                point=False,
            )
            if done is not None:
                return {stem: [done.state.live + name for name in done.files_of.get(stem, [])] for stem in rows.stems}
        raise LakeConflictError(f"{rows.partition.path}: gave up after {self.attempts} conflicting writes")

    def _commit_partition(
        self, partition: Partition, stem: str, path: Path, rows: int, derived: Mapping[str, Path] | None = None
    ) -> str:
        """Make ``path`` the rows of ``stem`` in ``partition``; the key it now lives at. ``derived``: files of
        derived tables the conversion derived from exactly these rows (by table name; the others are derived now)."""
        digest: str | None = None
        for _ in range(self.attempts):
            live = self.read_state(partition)
            if live.tag is None:  # generation 0 without state: a plain Hive put, then check nobody sealed it
                key = data_key(partition, stem)
                self._put_data(key, path, keep=True, derived=derived)
                if self.store.get_versioned(state_key(partition)) is None:
                    return key
                continue
            digest = digest or file_digest(path)
            state = live.state
            record = state.sources.get(stem)
            if record is not None and record.digest == digest:  # the same rows are live already (duplicate delivery)
                if state.generation > 0 and (not record.compacted or state.retired):
                    self._mark_pending(partition)  # a retry after a crash before the marker: it may be missing
                return state.live + record.file
            if record is not None and record.compacted:
                replacement = {stem: Replacement(path, digest, rows)}
                done = self._rewrite(partition, replacement, expected=live, compacting=False)
                if done is not None:  # no record: no new rows (an erasure's criteria dropped every one)
                    record = done.state.sources.get(stem)
                    return "" if record is None else done.state.live + record.file
                continue
            key = f"{state.live}{stem}.parquet"
            self._put_data(key, path, keep=True, derived=derived)
            state.sources[stem] = SourceRecord(digest, rows, f"{stem}.parquet", late=state.compacted_at is not None)
            if self._swap(live, state):
                self._mark_pending(partition)
                return key
        raise LakeConflictError(f"{partition.path}: gave up after {self.attempts} conflicting writes")

    def _remove_source(self, partition: Partition, stem: str) -> list[str]:
        """Remove every row of ``stem`` from ``partition`` (its re-run has no rows there any more)."""
        for _ in range(self.attempts):
            live = self.read_state(partition)
            state = live.state
            record = state.sources.get(stem)
            if record is not None and record.compacted:
                if self._rewrite(partition, {stem: Replacement(None)}, expected=live, compacting=False) is not None:
                    return []
                continue
            key = f"{state.live}{stem}.parquet"
            self._delete_data(key)
            if live.tag is None:
                if self.store.get_versioned(state_key(partition)) is None:
                    return [key]
                continue
            state.sources.pop(stem, None)
            if self._swap(live, state):
                if state.retired:  # a retry after a rewrite that crashed before its marker: it may be missing
                    self._mark_pending(partition)
                return [key]
        raise LakeConflictError(f"{partition.path}: gave up after {self.attempts} conflicting writes")

    def _named_folders(self, partition: Partition) -> set[str]:
        """The folders the partition's current state names: its live folder and those retired, not yet deleted."""
        state = self.read_state(partition).state
        return {state.live, *(retired.folder for retired in state.retired)}

    def _mark_pending(self, partition: Partition) -> None:
        """Mark the partition for the next compaction run: a per-object file to merge, a retired folder to delete."""
        self.store.put_bytes(pending_key(partition), b"")

    def _put_data(
        self,
        key: str,
        path: Path,
        *,
        lineage: Path | None = None,
        keep: bool = False,
        derived: Mapping[str, Path] | None = None,
    ) -> None:
        """Make a data file visible at ``key``: its derived siblings first, then its lineage (a compacted file),
        then the file itself. ``keep``: put a copy (a store may move the file it puts; a retry needs it again).
        ``derived``: siblings already derived from the file's rows, by table name (copied: a retry needs them
        again); the others are derived from the file now."""
        with tempfile.TemporaryDirectory(dir=self.store.staging_dir(), prefix="put-") as directory:
            for table in self.derived:
                sibling = Path(directory) / f"{len(table.prefix)}-{secrets.token_hex(4)}.parquet"
                prepared = (derived or {}).get(table.name)
                if prepared is None:
                    write_derived(table, path, sibling)
                else:
                    shutil.copyfile(prepared, sibling)
                self.store.put_file(derived_key(table, key), sibling)
            if lineage is not None:
                self.store.put_file(lineage_key(key), lineage)
            if keep:
                copy = Path(directory) / path.name
                shutil.copyfile(path, copy)
                path = copy
            self.store.put_file(key, path)

    def _delete_data(self, key: str) -> None:
        """Delete a data file, then its lineage (a compacted file) and its derived siblings (readers of either
        table see an object's old rows or none, never rows without their file)."""
        self.store.delete(key)
        if key.rsplit("/", 1)[-1].startswith(COMPACTED_FILE_PREFIX):
            self.store.delete(lineage_key(key))
        for sibling in sibling_keys(self.derived, key):
            self.store.delete(sibling)

    def _swap(self, live: _Live, state: PartitionState) -> bool:
        """Compare-and-swap the partition's state; False when another writer changed it first."""
        state.revision = live.state.revision + 1
        return self._write_state(state, live.tag)

    def _write_state(self, state: PartitionState, expected_tag: str | None) -> bool:
        """Write ``state`` if the partition's state is still at ``expected_tag`` (None: if it has none); whether
        this write is the one that exists now.

        "Condition failed" is not trusted alone: when a write succeeds but its answer is lost (a reset connection,
        a timeout while reading the response), the SDK sends it again and the retry fails *because of the write
        itself*. Every state carries a fresh ``write_token``, so the state read back says exactly whose write it is.
        """
        state.write_token = new_write_token()
        content = state.to_json()
        try:
            self.store.put_bytes_if(state_key(state.partition), content, expected_tag)
        except ConditionFailedError:
            current = self.store.get_versioned(state_key(state.partition))
            return current is not None and current.content == content
        return True

    def _point(self, partitions: Iterable[Partition]) -> int:
        """Move the catalog's Location of each partition forward to its live folder (no-op without a catalog).

        Repeats until the state read after the catalog write names the folder just written: a writer that read
        an older state can then never leave the Location behind a newer one (see docs/COMPACTION.md).
        """
        if self.registrar is None and not self.derived_registrars:
            return 0
        todo = sorted(set(partitions))
        changed = 0
        pointed: dict[Partition, str] = {}
        for _ in range(self.attempts):
            states = {p: self.read_state(p).state for p in todo}
            todo = [p for p in todo if pointed.get(p) != states[p].live]
            if not todo:
                return changed
            targets = [PartitionTarget(p, self.store.url(states[p].live), states[p].generation) for p in todo]
            if self.registrar is not None:
                changed += self.registrar.point(targets)
            for table in self.derived:  # the derived tables' partitions follow the curated table's Locations
                registrar = self.derived_registrars.get(table.name)
                if registrar is not None:
                    live = {p: derived_key(table, states[p].live) for p in todo}
                    registrar.point([PartitionTarget(p, self.store.url(live[p]), states[p].generation) for p in todo])
            pointed.update((p, states[p].live) for p in todo)
        raise LakeConflictError("partition locations kept changing while being registered")

    # ------------------------------------------------------------------------------------- rewrite / compact

    def _rewrite(
        self,
        partition: Partition,
        replace: dict[str, Replacement],
        *,
        expected: _Live | None = None,
        added: Sequence[MergeInput] = (),
        compacting: bool = True,
        point: bool = True,
        step_bytes: int | None = None,
        row_filter: RowFilter | None = None,
    ) -> Rewritten | None:
        """One attempt at a new generation of ``partition``: its live rows with ``replace`` applied plus the rows of
        ``added`` (a batch's), merged into time-sorted files in a fresh folder, made live by one compare-and-swap.
        None when another writer won. ``compacting``: a compaction (the partition counts as compacted from now on,
        later objects are late); ``point``: move the catalog's Location now (else the caller does).
        ``step_bytes``: when the live folder holds more than this, merge only per-object files up to about that
        many bytes and copy the other files into the new folder as they are (a compaction in steps: each step is a
        whole new generation, and what it leaves is still pending).

        ``row_filter``: the live rows (and replacements) it keeps; an erasure drops the rows matching its criteria.

        Raises ``ForeignFileError`` / ``UnreadableInputError`` (naming the file) for input it cannot merge.
        """
        added_stems = {stem for item in added for stem in item.stems}
        live = expected or self.read_state(partition)
        if live.tag is None:  # seal generation 0: from now on every writer of the partition swaps the state
            if not self._write_state(PartitionState(partition, revision=1), None):
                return None
            live = self.read_state(partition)
        old = live.state
        with tempfile.TemporaryDirectory(dir=self.store.staging_dir(), prefix="compact-") as work:
            try:
                plan = self._plan(old, replace, Path(work), None if added else step_bytes, row_filter)
            except FileNotFoundError:  # the folder changed while being read (a newer generation replaced it)
                return None
            generation = old.generation + 1
            folder = generation_folder(partition, generation)
            token = folder.rstrip("/").rsplit("-", 1)[-1]
            out = Path(work) / "out"
            out.mkdir()
            merged = merge_sorted([*plan.inputs, *added], out, token, max_file_bytes=self.max_file_bytes)
            bytes_written = sum(f.data_path.stat().st_size for f in merged.files)
            uploaded = []
            for file in merged.files:
                data = f"{folder}{file.data_path.name}"
                uploaded.append(data)
                self._put_data(data, file.data_path, lineage=file.lineage_path)
            for name in plan.carried:
                uploaded.append(folder + name)
                try:
                    self._copy_into(old.live, folder, name)
                except FileNotFoundError:  # the folder was retired and deleted meanwhile: this attempt lost
                    self._delete_uploads(uploaded)
                    return None
            files_of: dict[str, list[str]] = {}
            for file in merged.files:
                for stem in sorted(file.stems):
                    files_of.setdefault(stem, []).append(file.data_path.name)
        now = now_iso(self.clock())
        new = PartitionState(
            partition, generation=generation, live=folder, compacted_at=now if compacting else old.compacted_at
        )
        for stem, rows in sorted(merged.rows_by_stem.items()):
            earlier = old.sources.get(stem)
            kept = plan.digests.get(stem) or (earlier.digest if earlier else "")
            digest = BATCH_DIGEST if stem in added_stems else kept
            late = earlier.late if earlier else (not compacting and old.compacted_at is not None)
            new.sources[stem] = SourceRecord(digest=digest, rows=rows, file=files_of[stem][0], late=late)
        new.sources.update(_carried_records(old, plan.carried))
        new.retired = [*old.retired, RetiredFolder(old.live, now)]
        if not self._swap(live, new) and folder not in self._named_folders(partition):
            # lost to another writer: what this attempt uploaded never went live. A state that names the folder
            # proves the swap happened (its token is fresh, only this swap could name it) and was then followed by
            # another writer's: then the folder is live or retired and must stay.
            self._delete_uploads(uploaded)
            return None
        self._mark_pending(partition)  # a later run deletes the retired folder
        if point:
            self._point([partition])
        return Rewritten(new, len(uploaded), merged.rows, bytes_written, files_of)

    def _delete_uploads(self, uploaded: Iterable[str]) -> None:
        """Delete the data files (lineage, derived siblings) of a rewrite that never went live."""
        for data in uploaded:
            self._delete_data(data)

    def _copy_into(self, old_folder: str, folder: str, name: str) -> None:
        """Copy a file of the live folder, as it is, into a new generation folder (with its derived siblings, where
        they exist, and its lineage if compacted; the file itself last)."""
        for table in self.derived:
            with contextlib.suppress(FileNotFoundError):  # written before the table existed: none to copy
                self.store.copy(derived_key(table, old_folder + name), derived_key(table, folder + name))
        if name.startswith(COMPACTED_FILE_PREFIX):
            self.store.copy(lineage_key(old_folder + name), lineage_key(folder + name))
        self.store.copy(old_folder + name, folder + name)

    def _lineage_of(self, compacted_key: str, work: Path) -> tuple[list[str], np.ndarray]:
        local = work / f"lineage-{secrets.token_hex(4)}.parquet"
        try:
            self.store.download(lineage_key(compacted_key), local)
        except FileNotFoundError:
            raise UnreadableInputError(f"{compacted_key}: compacted file without its lineage file") from None
        stems, indices = read_lineage(local, compacted_key)
        local.unlink(missing_ok=True)
        return stems, indices

    def _plan(
        self,
        state: PartitionState,
        replace: dict[str, Replacement],
        work: Path,
        step_bytes: int | None,
        row_filter: RowFilter | None = None,
    ) -> _RewritePlan:
        """What a rewrite merges (local copies of live files, minus replaced sources, plus the replacements) and
        which live files it copies as they are (a compaction in steps, see ``_rewrite``)."""
        per_object: list[tuple[str, int, str]] = []  # key, size, stem
        compacted: list[tuple[str, int]] = []
        for key, size in self.store.list_sizes(state.live):
            name = key[len(state.live) :]
            match = _PER_OBJECT_FILE.match(name)
            if match is not None:
                if match.group("stem") not in replace:
                    per_object.append((key, size, match.group("stem")))
            elif name.startswith(COMPACTED_FILE_PREFIX) and name.endswith(".parquet") and "/" not in name:
                compacted.append((key, size))
            else:
                raise ForeignFileError(
                    f"{key}: not a file this lake wrote (expected <object stem>.parquet or a compacted c-*.parquet); "
                    "move it out of the partition to compact it"
                )
        plan = _RewritePlan()
        total = sum(size for _, size, _ in per_object) + sum(size for _, size in compacted)
        if step_bytes is not None and not replace and total > step_bytes:
            plan.carried = [key[len(state.live) :] for key, _ in compacted]
            taken = 0
            for index, (_, size, _) in enumerate(per_object):
                if index and taken + size > step_bytes:
                    plan.carried.extend(k[len(state.live) :] for k, _, _ in per_object[index:])
                    per_object = per_object[:index]
                    break
                taken += size
            compacted = []
        for key, _, stem in per_object:
            local = work / f"in-{len(plan.inputs):06d}.parquet"
            self.store.download(key, local)
            plan.digests[stem] = file_digest(local)
            plan.inputs.append(MergeInput(key, local, [stem], disposable=True, row_filter=row_filter))
        for key, _ in compacted:
            local = work / f"in-{len(plan.inputs):06d}.parquet"
            self.store.download(key, local)
            stems, lineage = self._lineage_of(key, work)
            excluded = frozenset(replace)
            plan.inputs.append(MergeInput(key, local, stems, lineage, excluded, disposable=True, row_filter=row_filter))
        for stem, replacement in sorted(replace.items()):
            if replacement.path is not None:
                plan.inputs.append(MergeInput(f"{stem} (new rows)", replacement.path, [stem], row_filter=row_filter))
                plan.digests[stem] = replacement.digest
        return plan

def owning_stem(key: str) -> str:
    """The source stem of a per-object data key (``.../<stem>.parquet``)."""
    return key.rsplit("/", 1)[-1].removesuffix(".parquet")


def owning_folder(key: str) -> tuple[Partition, str] | None:
    """The partition and the folder (a generation) a data key belongs to; None for keys outside partitions."""
    if key.startswith(COMPACTED_PREFIX):
        parts = key[len(COMPACTED_PREFIX) :].split("/")
        if len(parts) < 5:
            return None
        partition = partition_of_path("/".join(parts[:3]))
        folder = f"{COMPACTED_PREFIX}{'/'.join(parts[:4])}/"
    else:
        parts = key[len(DATA_PREFIX) :].split("/")
        if not key.startswith(DATA_PREFIX) or len(parts) < 4:
            return None
        partition = partition_of_path("/".join(parts[:3]))
        folder = f"{DATA_PREFIX}{'/'.join(parts[:3])}/"
    return None if partition is None else (partition, folder)


def _manifest_partitions(content: bytes | None, files: list[str]) -> list[Partition]:
    """Partitions an earlier commit of the object wrote into (its manifest's list, or derived from its files)."""
    partitions: list[Partition] = []
    try:
        listed = json.loads(content)["partitions"] if content is not None else None
    except (ValueError, KeyError, TypeError):
        listed = None
    if isinstance(listed, list):
        partitions = [p for p in (partition_of_path(str(path)) for path in listed) if p is not None]
    else:
        for key in files:
            folder = owning_folder(key)
            if folder is not None:
                partitions.append(folder[0])
    return sorted(set(partitions))


def open_lake(
    store: ObjectStore,
    registrar: PartitionRegistrar | None = None,
    derived_registrars: Mapping[str, PartitionRegistrar] | None = None,
) -> GenerationalLake:
    """The lake in ``store`` with its derived tables (``default_derived_tables``), and ``registrar`` (and
    ``derived_registrars``, by derived table) as its catalog, if any."""
    return GenerationalLake(store, registrar, derived=default_derived_tables(), derived_registrars=derived_registrars)


def open_local_lake(root: Path) -> GenerationalLake:
    """The lake in a local directory (no catalog)."""
    from alblake.lake.local import LocalStore

    return open_lake(LocalStore(root))
