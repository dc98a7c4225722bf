"""Find what the lake's bookkeeping names but its storage lacks, and the source objects that bring it back.

Two records say where rows are: a partition's state (``compaction/state/``: which file of its live folder holds
each source object's rows) and, for a partition without a state, the object manifests (``manifests/``: which
``alb_logs/<partition>/<stem>.parquet`` each object's last commit wrote). A file they name that is not there is
*missing*: deleted from outside, or (before writers checked their own state writes) deleted by a writer that
took its own successful write for another writer's. Readers then silently see fewer rows.

A state that cannot be read at all (a corrupt object) hides its partition from readers; ``alblake repair`` rebuilds
it from the partition's folders (``GenerationalLake.rebuild_state``).

``find_damage`` lists the damaged partitions with the objects whose rows are missing (pure: reads the lake only).
``alblake repair`` makes each state forget the missing files of objects whose source it can read
(``GenerationalLake.forget_missing``) and ingests those objects again, which puts their rows back exactly once.
Objects whose source is gone stay reported until the user accepts the loss (``forget_lost_files``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from alblake.lake.genlake import GenerationalLake, owning_folder
from alblake.lake.layout import DATA_PREFIX, MANIFEST_PREFIX, Partition, manifest_key, read_manifest


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
    lake.forget_missing(damage.partition, lost)
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
