"""Find what the lake's bookkeeping names but its storage lacks, and the source objects that bring it back.

Two records say where rows are: a partition's state (``compaction/state/``: which file of its live folder holds
each source object's rows) and, for a partition without a state, the object manifests (``manifests/``: which
``alb_logs/<partition>/<stem>.parquet`` each object's last commit wrote). A file they name that is not there is
*missing*: deleted from outside, or (before writers checked their own state writes) deleted by a writer that
took its own successful write for another writer's. Readers then silently see fewer rows.

A state that cannot be read at all (a corrupt object) hides its partition from readers; ``alblake repair`` rebuilds
it from the partition's folders (``rebuild_state``).

``find_damage`` lists the damaged partitions with the objects whose rows are missing (pure: reads the lake only).
``alblake repair`` makes each state forget the missing files of objects whose source it can read
(``forget_missing``) and ingests those objects again, which puts their rows back exactly once.
Objects whose source is gone stay reported until the user accepts the loss (``forget_lost_files``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alblake.lake.derived import derived_key, sibling_keys, write_derived
from alblake.lake.generational import (
    GenerationalLake,
    LakeConflictError,
    is_per_object_file,
    owning_folder,
    owning_stem,
)
from alblake.lake.generations import (
    COMPACTED_FILE_PREFIX,
    COMPACTED_PREFIX,
    PartitionState,
    RetiredFolder,
    SourceRecord,
    StateFormatError,
    generation_folder,
    generation_of_location,
    now_iso,
    partition_of_path,
    state_key,
)
from alblake.lake.layout import (
    DATA_PREFIX,
    MANIFEST_PREFIX,
    Partition,
    manifest_key,
    object_identity,
    object_stem,
    partition_location,
    quarantine_key,
    read_manifest,
)
from alblake.lake.merge import MergeInput, merge_sorted


@dataclass
class Damage:
    """A partition whose bookkeeping names files that do not exist, or whose state cannot be read."""

    partition: Partition
    missing: list[str] = field(default_factory=list)  # lake keys
    stems: list[str] = field(default_factory=list)  # the objects whose rows were in them
    state_error: str | None = None  # why its state cannot be read (readers show none of its rows)

    def as_dict(self) -> dict[str, object]:
        return {
            "partition": self.partition.path,
            "missing_files": self.missing,
            "objects": self.stems,
            "unreadable_state": self.state_error,
        }

    def describe(self) -> str:
        if self.state_error is not None:
            return f"{self.partition.path}: {self.state_error}; its rows are not shown until its state is rebuilt"
        return (
            f"{self.partition.path}: {len(self.missing)} file(s) the lake names are missing, with the rows of "
            f"{len(self.stems)} object(s)"
        )


@dataclass(frozen=True)
class Manifest:
    """What an object's last commit wrote (``manifests/<stem>.json``)."""

    stem: str
    source: str
    files: list[str]  # its own lake files
    partitions: list[str]  # partition paths it has rows in


def read_manifests(lake: GenerationalLake) -> list[Manifest]:
    """Every readable object manifest of the lake (one GET each on S3: read them once per command)."""
    found = []
    for key in lake.store.list_keys(MANIFEST_PREFIX):
        stem = key[len(MANIFEST_PREFIX) :].removesuffix(".json")
        content = lake.store.get(key)
        try:
            body = json.loads(content or b"{}")
            source = str(body["source"])
            files = read_manifest(content, stem)
            partitions = [str(p) for p in body.get("partitions", [])] or [
                f.split("/")[1] for f in files if f.startswith(DATA_PREFIX) and f.count("/") >= 2
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        found.append(Manifest(stem, source, files, partitions))
    return found


def find_damage(lake: GenerationalLake, manifests: Iterable[Manifest] | None = None) -> list[Damage]:
    """The damaged partitions, sorted (``manifests``: as ``read_manifests`` gave them, when the caller has them)."""
    present = set(lake.store.list_keys(DATA_PREFIX))
    damage: dict[Partition, Damage] = {}
    with_state: set[Partition] = set()
    states = lake.states()
    for partition, error in lake.unreadable_states.items():
        with_state.add(partition)
        damage[partition] = Damage(partition, state_error=error)
    for state in states:
        with_state.add(state.partition)
        missing_files: defaultdict[str, list[str]] = defaultdict(list)
        for stem, record in state.sources.items():
            if state.live + record.file not in present:
                missing_files[state.live + record.file].append(stem)
        if missing_files:
            found = damage.setdefault(state.partition, Damage(state.partition))
            found.missing.extend(sorted(missing_files))
            found.stems.extend(sorted(stem for stems in missing_files.values() for stem in stems))
    for manifest in read_manifests(lake) if manifests is None else manifests:
        for key in manifest.files:
            folder = owning_folder(key)
            if folder is None or folder[0] in with_state or not key.endswith(".parquet") or key in present:
                continue
            found = damage.setdefault(folder[0], Damage(folder[0]))
            found.missing.append(key)
            found.stems.append(manifest.stem)
    return [damage[partition] for partition in sorted(damage)]


def sources_of(lake: GenerationalLake, stems: Iterable[str]) -> dict[str, str]:
    """The source id of each object stem, from its manifest (stems without a readable manifest are left out)."""
    wanted = set(stems)
    return {m.stem: m.source for m in read_manifests(lake) if m.stem in wanted}


def forget_lost_files(lake: GenerationalLake, damage: Damage, stems: Iterable[str]) -> None:
    """Accept that the rows of ``stems`` in the damaged partition are lost for good (their sources are gone): the
    state stops naming their missing files, and so do their manifests (a partition without a state)."""
    lost = set(stems)
    forget_missing(lake, damage.partition, lost)
    missing = set(damage.missing)
    for stem in sorted(lost):
        content = lake.store.get(manifest_key(stem))
        if content is None:
            continue
        body = json.loads(content)
        kept = [key for key in body.get("files", []) if key not in missing]
        if kept != body.get("files", []):
            body["files"] = kept
            body["partitions"] = [p for p in body.get("partitions", []) if p != damage.partition.path]
            lake.store.put_bytes(manifest_key(stem), (json.dumps(body) + "\n").encode())


def forget_missing(lake: GenerationalLake, partition: Partition, stems: Iterable[str]) -> list[str]:
    """Make the partition's state stop naming missing files for ``stems``: drop the records of those source
    objects whose file is gone (deleted from outside, or by a writer that took its own state write for
    another's). Returns the stems dropped, sorted: re-ingesting those objects brings their rows back, exactly
    once (no record says their rows are live any more). A partition without a state has nothing to forget."""
    wanted = set(stems)
    for _ in range(lake.attempts):
        live = lake.read_state(partition)
        if live.tag is None:
            return []
        names = {key[len(live.state.live) :] for key in lake.store.list_keys(live.state.live)}
        gone = sorted(
            stem for stem, record in live.state.sources.items() if stem in wanted and record.file not in names
        )
        if not gone:
            return []
        for stem in gone:
            del live.state.sources[stem]
        if lake._swap(live, live.state):
            return gone
    raise LakeConflictError(f"{partition.path}: gave up after {lake.attempts} conflicting writes")

def rebuild_state(lake: GenerationalLake, partition: Partition) -> PartitionState:
    """Replace the partition's unreadable state by one rebuilt from its folders: each source object's rows are
    taken from the newest folder that holds them (by generation; a crashed rewrite's folder holds a complete
    set too), merged into a new generation, and every other folder is retired. Digests are unknown afterwards
    (a re-delivery replaces rows instead of skipping them)."""
    current = lake.store.get_versioned(state_key(partition))
    with contextlib.suppress(StateFormatError):
        if current is not None:  # readable after all (repaired meanwhile): nothing to rebuild
            return PartitionState.from_json(current.content, state_key(partition))
    folders = _folders_of(lake, partition)
    taken: dict[str, str] = {}  # stem -> the data key its rows are taken from
    lineages: dict[str, tuple[list[str], np.ndarray]] = {}
    with tempfile.TemporaryDirectory(dir=lake.store.staging_dir(), prefix="rebuild-") as work:
        for _, folder in folders:
            for key in lake.store.list_keys(folder):
                name = key[len(folder) :]
                if is_per_object_file(name):
                    taken.setdefault(owning_stem(key), key)
                elif name.startswith(COMPACTED_FILE_PREFIX) and name.endswith(".parquet") and "/" not in name:
                    lineages[key] = lake._lineage_of(key, Path(work))
                    for stem in lineages[key][0]:
                        taken.setdefault(stem, key)
        inputs: list[MergeInput] = []
        for key in sorted(set(taken.values())):
            local = Path(work) / f"in-{len(inputs):06d}.parquet"
            lake.store.download(key, local)
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
        merged = merge_sorted(inputs, out, token, max_file_bytes=lake.max_file_bytes)
        files_of: dict[str, str] = {}
        for file in merged.files:
            lake._put_data(f"{folder}{file.data_path.name}", file.data_path, lineage=file.lineage_path)
            files_of.update((stem, file.data_path.name) for stem in file.stems)
    now = now_iso(lake.clock())
    state = PartitionState(partition, generation=generation, live=folder, revision=1, compacted_at=now)
    state.sources = {stem: SourceRecord("", rows, files_of[stem]) for stem, rows in merged.rows_by_stem.items()}
    state.retired = [RetiredFolder(old, now) for _, old in folders]
    if not lake._write_state(state, None if current is None else current.tag):
        raise LakeConflictError(f"{partition.path}: its state changed while being rebuilt; run repair again")
    lake._mark_pending(partition)
    lake._point([partition])
    return state

def _folders_of(lake: GenerationalLake, partition: Partition) -> list[tuple[int, str]]:
    """Every folder holding data files of the partition, newest generation first (ties: more files first)."""
    counts: Counter[str] = Counter()
    for prefix in (partition_location(partition), f"{COMPACTED_PREFIX}{partition.path}/"):
        for key in lake.store.list_keys(prefix):
            folder = owning_folder(key)
            if folder is not None and folder[0] == partition and key.endswith(".parquet"):
                counts[folder[1]] += 1
    return sorted(((generation_of_location(f), f) for f in counts), key=lambda g: (-g[0], -counts[g[1]], g[1]))


@dataclass
class DuplicateObject:
    """One object (by identity: an ALB log file's name) committed under several stems: read from two places by a
    lake written before object identities, its rows are in the lake twice."""

    identity: str
    stems: list[str]  # the first is kept

    def as_dict(self) -> dict[str, object]:
        return {"object": self.identity, "kept": self.stems[0], "removed": self.stems[1:]}


def find_duplicates(manifests: Iterable[Manifest]) -> list[DuplicateObject]:
    """Objects with a manifest under more than one stem. The stem kept is the object's own (``object_stem``)
    when it has one, else the first in order; a later ingest of the object moves it to its own stem."""
    by_identity: defaultdict[str, list[Manifest]] = defaultdict(list)
    for manifest in manifests:
        by_identity[object_identity(manifest.source)].append(manifest)
    found = []
    for identity, group in sorted(by_identity.items()):
        stems = sorted({m.stem for m in group})
        if len(stems) > 1:
            own = object_stem(group[0].source)
            found.append(DuplicateObject(identity, sorted(stems, key=lambda stem: (stem != own, stem))))
    return found


def remove_duplicate(lake: GenerationalLake, duplicate: DuplicateObject, manifests: Iterable[Manifest]) -> int:
    """Remove the rows of every stem but the kept one (partition by partition, each removal one swap: readers
    never see the object's rows missing or twice once it is done), then their quarantine files and manifests.
    Returns the partitions changed."""
    changed = 0
    for manifest in manifests:
        if manifest.stem not in duplicate.stems[1:]:
            continue
        partitions = [p for p in (partition_of_path(path) for path in manifest.partitions) if p is not None]
        for partition in partitions:
            lake._remove_source(partition, manifest.stem)
            changed += 1
        lake._point(partitions)
        if quarantine_key(manifest.stem) in manifest.files:
            lake.store.delete(quarantine_key(manifest.stem))
        lake.store.delete(manifest_key(manifest.stem))
    return changed


def rederive_siblings(lake: GenerationalLake, partitions: Iterable[Partition]) -> dict[Partition, int]:
    """Write again the derived siblings (the rollup files) of every visible data file of ``partitions``, from the
    data file, as the lake's own write path does (``write_derived``, then one PUT per sibling); the data files
    re-derived, per partition.

    Safe while readers and writers run: a data file's rows do not change while it is visible, so its sibling is
    a function of it; one PUT replaces a wrong or missing sibling whole (a reader of the derived table sees the
    old sibling or the new one, never both). A data file that stopped being visible meanwhile (a compaction
    retired and deleted it) gets its sibling deleted again, so no sibling outlives its data file."""
    wanted = set(partitions)
    done: Counter[Partition] = Counter()
    keys = [(key, partition) for key, partition in lake.visible_keys() if partition in wanted]
    with tempfile.TemporaryDirectory(dir=lake.store.staging_dir(), prefix="rederive-") as work:
        for index, (key, partition) in enumerate(keys):
            local = Path(work) / f"{index}.parquet"
            lake.store.download(key, local)
            for table in lake.derived:
                sibling = Path(work) / f"{index}-{len(table.prefix)}.parquet"
                write_derived(table, local, sibling)
                lake.store.put_file(derived_key(table, key), sibling)
            if key not in set(lake.store.list_keys(key)):  # retired and deleted while we wrote: no orphan sibling
                for sibling_key in sibling_keys(lake.derived, key):
                    lake.store.delete(sibling_key)
                continue
            local.unlink(missing_ok=True)
            done[partition] += 1
    return dict(done)
