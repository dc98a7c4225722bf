"""``GenerationalLake``: the Hive layout of ``alblake.lake.layout`` plus compacted generations, exactly once
for readers at every step.

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
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from alblake.convert.parquet_format import ROW_GROUP_ROWS, parquet_writer
from alblake.lake.generations import (
    COMPACTED_FILE_PREFIX,
    COMPACTED_PREFIX,
    PENDING_PREFIX,
    STATE_PREFIX,
    PartitionState,
    RetiredFolder,
    SourceRecord,
    StateFormatError,
    generation_folder,
    generation_of_location,
    lineage_key,
    new_write_token,
    now_iso,
    parse_iso,
    partition_of_path,
    pending_key,
    state_key,
)
from alblake.lake.layout import (
    DATA_PREFIX,
    Partition,
    data_key,
    manifest_key,
    partition_location,
    quarantine_key,
    read_manifest,
)
from alblake.lake.merge import MAX_FILE_BYTES, MergeInput, UnreadableInputError, merge_sorted, read_lineage
from alblake.lake.staged import StagedBatch, StagedObject, StagedRows
from alblake.ports import (
    BatchCommitError,
    CommitResult,
    ConditionFailedError,
    ObjectStore,
    PartitionRegistrar,
    PartitionTarget,
    Versioned,
)

ATTEMPTS = 12
_PER_OBJECT_FILE = re.compile(r"^(?P<stem>[^/]+\.[0-9a-f]{16})\.parquet$")
_LINEAGE_SUFFIX = ".lineage.parquet"
_GENERATION_NAME = re.compile(r"^g\d{6,}-[0-9a-f]+$")  # a generation folder's name (``generation_folder``)


class LakeConflictError(RuntimeError):
    """Other writers kept changing a partition; the operation gave up (transient: a retry succeeds)."""


class ForeignFileError(ValueError):
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


@dataclass(frozen=True)
class _EarlierCommit:
    """What an object's last commit wrote (its manifest): its own files and the partitions it had rows in."""

    files: list[str]
    partitions: list[Partition]


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


def _needs_merge(files: Sequence[tuple[str, int]], max_file_bytes: int, step_bytes: int) -> bool:
    """Whether a live folder (keys and sizes of its data files) has rows to merge: files of single source objects,
    or compacted files that would fit in half as many (a compaction in steps leaves several; one split above
    ``max_file_bytes`` is done), as long as they fit in one step. A folder of compacted files only is done."""
    if any(_PER_OBJECT_FILE.match(key.rsplit("/", 1)[-1]) for key, _ in files):
        return True
    total = sum(size for _, size in files)
    return len(files) > 1 and total <= step_bytes and total < len(files) * max_file_bytes // 2


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
    ) -> None:
        self.store = store
        self.registrar = registrar
        self.clock = clock or (lambda: datetime.now(UTC))
        self.attempts = attempts
        self.max_file_bytes = max_file_bytes  # compacted files are split above this size
        # partition -> why its state cannot be read, as the last listing (visible_keys, states) found
        self.unreadable_states: dict[Partition, str] = {}

    # ----------------------------------------------------------------------------------------------- readers

    def staging_dir(self) -> Path:
        return self.store.staging_dir()

    def visible_files(self) -> Sequence[str]:
        return sorted(self.store.url(key) for key, _ in self.visible_keys())

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
        earlier = self._earlier_commit(staged.stem)
        result = CommitResult()
        for data in staged.data:
            result.written.append(self._commit_partition(data.partition, staged.stem, data.path, data.rows))
        result.partitions_created = self._point(staged.partitions)
        self._finish_object(staged, result, earlier)
        return result

    def commit_batch(self, batch: StagedBatch) -> list[CommitResult]:
        """Commit small objects converted together: every partition of the batch gets one new generation holding
        the batch's rows (a rewrite that replaces those objects' rows, as a changed re-ingest does), then each
        object gets its quarantine file, stale-partition cleanup and manifest as in ``commit``. One result per
        object, in order; the batch's catalog changes are counted in the first one."""
        earlier = [self._earlier_commit(staged.stem) for staged in batch.objects]
        results = [CommitResult() for _ in batch.objects]
        position = {staged.stem: i for i, staged in enumerate(batch.objects)}
        earlier_stems: dict[Partition, set[str]] = {}  # by partition: the batch's objects an earlier commit wrote there
        for staged, commit in zip(batch.objects, earlier, strict=True):
            for partition in commit.partitions:
                earlier_stems.setdefault(partition, set()).add(staged.stem)
        for rows in batch.rows:
            if len(rows.stems) > 1:  # also drops the rows of objects that left the partition: one rewrite, not two
                committed = self._commit_rows(rows, earlier_stems.get(rows.partition, set()))
            else:
                committed = self._commit_rows_of_one(rows)
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

    def _earlier_commit(self, stem: str) -> _EarlierCommit:
        """What the object's last commit wrote, from its manifest (nothing when it has none)."""
        content = self.store.get(manifest_key(stem))
        files = read_manifest(content, stem)
        return _EarlierCommit(files, _manifest_partitions(content, files))

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
        self._point(stale)  # also when the removal was done by a run that crashed before pointing
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
            "quarantine_stored": staged.quarantine_stored,
            "quarantine_reasons": staged.quarantine_reasons,
        }
        # one line: json's C encoder (an indented manifest costs ~0.1 ms more, per object)
        self.store.put_bytes(manifest_key(stem), (json.dumps(manifest) + "\n").encode())

    def _commit_rows_of_one(self, rows: StagedRows) -> dict[str, list[str]]:
        """The rows of a single object in a partition: committed as its own file, as ``commit`` does (cheaper than
        a rewrite when objects are spread over many partition-hours)."""
        stem = rows.stems[0]
        with tempfile.TemporaryDirectory(dir=self.store.staging_dir(), prefix="one-") as work:
            path = Path(work) / f"{stem}.parquet"
            with parquet_writer(path) as writer:
                writer.write_table(rows.table, row_group_size=ROW_GROUP_ROWS)
            return {stem: [self._commit_partition(rows.partition, stem, path, rows.table.num_rows)]}

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

    def _commit_partition(self, partition: Partition, stem: str, path: Path, rows: int) -> str:
        """Make ``path`` the rows of ``stem`` in ``partition``; the key it now lives at."""
        digest: str | None = None
        for _ in range(self.attempts):
            live = self.read_state(partition)
            if live.tag is None:  # generation 0 without state: a plain Hive put, then check nobody sealed it
                key = data_key(partition, stem)
                self._put_copy(key, path)
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
                if done is not None:
                    return done.state.live + done.state.sources[stem].file
                continue
            key = f"{state.live}{stem}.parquet"
            self._put_copy(key, path)
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
            self.store.delete(key)
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

    def forget_missing(self, partition: Partition, stems: Iterable[str]) -> list[str]:
        """Make the partition's state stop naming missing files for ``stems``: drop the records of those source
        objects whose file is gone (deleted from outside, or by a writer that took its own state write for
        another's). Returns the stems dropped, sorted: re-ingesting those objects brings their rows back, exactly
        once (no record says their rows are live any more). A partition without a state has nothing to forget."""
        wanted = set(stems)
        for _ in range(self.attempts):
            live = self.read_state(partition)
            if live.tag is None:
                return []
            names = {key[len(live.state.live) :] for key in self.store.list_keys(live.state.live)}
            gone = sorted(
                stem for stem, record in live.state.sources.items() if stem in wanted and record.file not in names
            )
            if not gone:
                return []
            for stem in gone:
                del live.state.sources[stem]
            if self._swap(live, live.state):
                return gone
        raise LakeConflictError(f"{partition.path}: gave up after {self.attempts} conflicting writes")

    def rebuild_state(self, partition: Partition) -> PartitionState:
        """Replace the partition's unreadable state by one rebuilt from its folders: each source object's rows are
        taken from the newest folder that holds them (by generation; a crashed rewrite's folder holds a complete
        set too), merged into a new generation, and every other folder is retired. Digests are unknown afterwards
        (a re-delivery replaces rows instead of skipping them)."""
        current = self.store.get_versioned(state_key(partition))
        with contextlib.suppress(StateFormatError):
            if current is not None:  # readable after all (repaired meanwhile): nothing to rebuild
                return PartitionState.from_json(current.content, state_key(partition))
        folders = self._folders_of(partition)
        taken: dict[str, str] = {}  # stem -> the data key its rows are taken from
        lineages: dict[str, tuple[list[str], np.ndarray]] = {}
        with tempfile.TemporaryDirectory(dir=self.store.staging_dir(), prefix="rebuild-") as work:
            for _, folder in folders:
                for key in self.store.list_keys(folder):
                    name = key[len(folder) :]
                    per_object = _PER_OBJECT_FILE.match(name)
                    if per_object is not None:
                        taken.setdefault(per_object.group("stem"), key)
                    elif name.startswith(COMPACTED_FILE_PREFIX) and name.endswith(".parquet") and "/" not in name:
                        lineages[key] = self._lineage_of(key, Path(work))
                        for stem in lineages[key][0]:
                            taken.setdefault(stem, key)
            inputs: list[MergeInput] = []
            for key in sorted(set(taken.values())):
                local = Path(work) / f"in-{len(inputs):06d}.parquet"
                self.store.download(key, local)
                if key in lineages:
                    stems, lineage = lineages[key]
                    exclude = frozenset(stem for stem in stems if taken[stem] != key)
                    inputs.append(MergeInput(key, local, stems, lineage, exclude=exclude, disposable=True))
                else:
                    inputs.append(MergeInput(key, local, [owning_stem(key)], disposable=True))
            generation = max((g for g, _ in folders), default=0) + 1
            folder = generation_folder(partition, generation)
            out = Path(work) / "out"
            out.mkdir()
            token = folder.rstrip("/").rsplit("-", 1)[-1]
            merged = merge_sorted(inputs, out, token, max_file_bytes=self.max_file_bytes)
            files_of: dict[str, str] = {}
            for file in merged.files:
                data = f"{folder}{file.data_path.name}"
                self.store.put_file(lineage_key(data), file.lineage_path)
                self.store.put_file(data, file.data_path)
                files_of.update((stem, file.data_path.name) for stem in file.stems)
        now = now_iso(self.clock())
        state = PartitionState(partition, generation=generation, live=folder, revision=1, compacted_at=now)
        state.sources = {stem: SourceRecord("", rows, files_of[stem]) for stem, rows in merged.rows_by_stem.items()}
        state.retired = [RetiredFolder(old, now) for _, old in folders]
        if not self._write_state(state, None if current is None else current.tag):
            raise LakeConflictError(f"{partition.path}: its state changed while being rebuilt; run repair again")
        self._mark_pending(partition)
        self._point([partition])
        return state

    def _folders_of(self, partition: Partition) -> list[tuple[int, str]]:
        """Every folder holding data files of the partition, newest generation first (ties: more files first)."""
        counts: Counter[str] = Counter()
        for prefix in (partition_location(partition), f"{COMPACTED_PREFIX}{partition.path}/"):
            for key in self.store.list_keys(prefix):
                folder = owning_folder(key)
                if folder is not None and folder[0] == partition and key.endswith(".parquet"):
                    counts[folder[1]] += 1
        return sorted(((generation_of_location(f), f) for f in counts), key=lambda g: (-g[0], -counts[g[1]], g[1]))

    def _named_folders(self, partition: Partition) -> set[str]:
        """The folders the partition's current state names: its live folder and those retired, not yet deleted."""
        state = self.read_state(partition).state
        return {state.live, *(retired.folder for retired in state.retired)}

    def _mark_pending(self, partition: Partition) -> None:
        """Mark the partition for the next compaction run: a per-object file to merge, a retired folder to delete."""
        self.store.put_bytes(pending_key(partition), b"")

    def _put_copy(self, key: str, path: Path) -> None:
        """Put a copy of ``path`` (a store may move the file it puts; a retry needs it again)."""
        with tempfile.TemporaryDirectory(dir=self.store.staging_dir(), prefix="put-") as directory:
            copy = Path(directory) / path.name
            shutil.copyfile(path, copy)
            self.store.put_file(key, copy)

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
        if self.registrar is None:
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
            changed += self.registrar.point(targets)
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
    ) -> Rewritten | None:
        """One attempt at a new generation of ``partition``: its live rows with ``replace`` applied plus the rows of
        ``added`` (a batch's), merged into time-sorted files in a fresh folder, made live by one compare-and-swap.
        None when another writer won. ``compacting``: a compaction (the partition counts as compacted from now on,
        later objects are late); ``point``: move the catalog's Location now (else the caller does).
        ``step_bytes``: when the live folder holds more than this, merge only per-object files up to about that
        many bytes and copy the other files into the new folder as they are (a compaction in steps: each step is a
        whole new generation, and what it leaves is still pending).

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
                plan = self._plan(old, replace, Path(work), None if added else step_bytes)
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
                self.store.put_file(lineage_key(data), file.lineage_path)
                self.store.put_file(data, file.data_path)
                uploaded.append(data)
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
        """Delete the data files (and lineage) of a rewrite that never went live."""
        for data in uploaded:
            self.store.delete(data)
            self.store.delete(lineage_key(data))

    def _copy_into(self, old_folder: str, folder: str, name: str) -> None:
        """Copy a file of the live folder, as it is, into a new generation folder (with its lineage if compacted)."""
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
        self, state: PartitionState, replace: dict[str, Replacement], work: Path, step_bytes: int | None
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
            plan.inputs.append(MergeInput(key, local, [stem], disposable=True))
        for key, _ in compacted:
            local = work / f"in-{len(plan.inputs):06d}.parquet"
            self.store.download(key, local)
            stems, lineage = self._lineage_of(key, work)
            plan.inputs.append(MergeInput(key, local, stems, lineage, exclude=frozenset(replace), disposable=True))
        for stem, replacement in sorted(replace.items()):
            if replacement.path is not None:
                plan.inputs.append(MergeInput(f"{stem} (new rows)", replacement.path, [stem]))
                plan.digests[stem] = replacement.digest
        return plan

    def compact(self, options: CompactionOptions) -> CompactionReport:
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
        for key in self.store.list_keys(PENDING_PREFIX):
            partition = partition_of_path(key[len(PENDING_PREFIX) :])
            if partition is not None and partition not in seen:
                seen.add(partition)
                yield partition, start_after
        previous = start_after
        for key in self.store.list_keys(f"{DATA_PREFIX}elb_name=", start_after):
            folder = owning_folder(key)
            if folder is not None and folder[0] not in seen:
                seen.add(folder[0])
                yield folder[0], previous
            previous = key

    def _compact_one(
        self, partition: Partition, options: CompactionOptions, report: CompactionReport, step: int
    ) -> None:
        live = self.read_state(partition)
        closed = _hour_closed(partition, options)
        files = self._live_files(live.state)
        while closed and _needs_merge(files, self.max_file_bytes, step):
            done = self._rewrite(partition, {}, expected=live, step_bytes=step)
            if done is None:
                report.conflicts += 1
                return
            report.partitions_compacted += 1
            report.files_removed += len(files) - done.files_after
            report.rows_compacted += done.rows
            report.bytes_written += done.bytes_written
            live = self.read_state(partition)
            files = self._live_files(live.state)
            if _needs_merge(files, self.max_file_bytes, step) and options.should_stop():
                break  # the next run takes the next step (the partition is still pending)
        if closed and live.tag is not None and live.state.compacted_at is None:
            # written as compacted files by batches: nothing to merge, but the hour is compacted from now on (an
            # object committed later is late)
            live.state.compacted_at = now_iso(self.clock())
            if not self._swap(live, live.state):
                report.conflicts += 1
        report.folders_deleted += self._delete_retired(partition, options)
        report.orphans_deleted += self._delete_orphans(partition)
        if closed:  # forget the marker, then look again: a commit that raced with this check marks it again
            self.store.delete(pending_key(partition))
            state = self.read_state(partition).state
            if state.retired or _needs_merge(self._live_files(state), self.max_file_bytes, step):
                self._mark_pending(partition)

    def _live_files(self, state: PartitionState) -> list[tuple[str, int]]:
        """The live folder's data files and their sizes."""
        return [(k, size) for k, size in self.store.list_sizes(state.live) if k.endswith(".parquet")]

    def _delete_retired(self, partition: Partition, options: CompactionOptions) -> int:
        """Delete folders that stopped being live at least ``grace`` ago (after checking the catalog points at
        the live folder), then forget them in the state."""
        live = self.read_state(partition)
        due = [r for r in live.state.retired if options.now - parse_iso(r.at) >= options.grace]
        if not due:
            return 0
        self._point([partition])
        for retired in due:
            if retired.folder == live.state.live:
                continue
            for key in list(self.store.list_keys(retired.folder)):
                self.store.delete(key)
                if key.endswith(".parquet") and not key.endswith(_LINEAGE_SUFFIX):
                    self.store.delete(lineage_key(key))
        state = live.state
        state.retired = [r for r in state.retired if r not in due]
        return len(due) if self._swap(live, state) else 0

    def _delete_orphans(self, partition: Partition) -> int:
        """Delete the generation folders of ``partition`` that were never live: what a rewrite left that crashed
        between its uploads (C4) and its swap (C5), and its lineage. The state is compare-and-swapped first (same
        content, next revision), so a rewrite still in flight, which read the state before, loses its swap rather
        than going live on deleted files; a rewrite that reads the state after it uploads into a folder this
        listing did not see."""
        live = self.read_state(partition)
        if live.tag is None:  # never sealed: no rewrite ever started here
            return 0
        known = {live.state.live, *(retired.folder for retired in live.state.retired)}
        folders = f"{COMPACTED_PREFIX}{partition.path}/"
        orphans: dict[str, list[str]] = {}
        for prefix in (folders, lineage_key(folders)):
            for key in self.store.list_keys(prefix):
                name = key[len(prefix) :].split("/", 1)[0]
                folder = f"{folders}{name}/"
                if _GENERATION_NAME.match(name) and "/" in key[len(prefix) :] and folder not in known:
                    orphans.setdefault(folder, []).append(key)
        if not orphans or not self._swap(live, live.state):
            return 0
        for keys in orphans.values():
            for key in keys:
                self.store.delete(key)
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
