"""The catalog a lake needs, from the lake's own state: every partition's Location (pure core: no AWS).

A partition's rows are in exactly one live folder (docs/COMPACTION.md): its state's ``live``, or, without a state,
its generation-0 Hive folder. Compacted generations are not Hive folders, so a crawler or ``MSCK REPAIR TABLE``
cannot find them; the catalog is rebuilt from the states instead:

- ``catalog_targets`` reads the lake (one listing of the data tree, every partition state) and says where each
  partition's Location must point; partitions whose state cannot be read are *protected*: nothing about them is
  known, so a sync leaves their catalog entry alone (``alblake repair`` rebuilds the state first);
- ``plan_sync`` (pure) compares the targets with what the catalog holds: partitions to create, Locations to move,
  partitions to delete (no data in the lake: no state and no generation-0 file);
- ``sync_catalog`` applies that plan through a ``PartitionCatalog`` (Glue: ``alblake.aws.glue.GlueCatalog``).
  Just before it moves or deletes an entry it reads that partition again, so a writer that committed meanwhile
  is not undone: a move whose target changed, or a delete of a partition that has data now, is skipped (the
  writer points the Location itself). Running it twice changes nothing the second time.

A derived table (``alblake.lake.derived``: the rollup) has the curated table's partitions, each at the sibling
of the curated live folder under its own prefix: ``sync_catalog(..., derived=table)`` syncs it from the curated
table's targets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from alblake.lake.derived import derived_key
from alblake.lake.generational import GenerationalLake, owning_folder
from alblake.lake.generations import COMPACTED_PREFIX, PartitionState
from alblake.lake.layout import DATA_PREFIX, Partition, partition_location
from alblake.ports import DerivedTable

Values = tuple[str, ...]


@dataclass(frozen=True)
class CatalogTargets:
    """Where each partition's Location must point (a lake key prefix: the live folder), and the partitions
    whose state cannot be read (left alone)."""

    folders: dict[Partition, str]
    protected: frozenset[Values] = frozenset()


@dataclass(frozen=True)
class Move:
    partition: Partition
    old: str
    new: str


@dataclass
class CatalogDiff:
    create: list[tuple[Partition, str]] = field(default_factory=list)  # (partition, location)
    move: list[Move] = field(default_factory=list)
    delete: list[tuple[Values, str]] = field(default_factory=list)  # (partition values, location)
    unchanged: int = 0
    protected: list[Values] = field(default_factory=list)  # in the catalog, state unreadable: left alone
    skipped: list[str] = field(default_factory=list)  # changed by a writer while syncing (why, per partition)
    table_created: bool = False

    @property
    def changes(self) -> int:
        return len(self.create) + len(self.move) + len(self.delete) + int(self.table_created)

    def lines(self) -> list[str]:
        out = ["create table (it did not exist)"] if self.table_created else []
        out += [f"create  {_name(p.values)} -> {location}" for p, location in self.create]
        out += [f"move    {_name(m.partition.values)}: {m.old} -> {m.new}" for m in self.move]
        out += [f"delete  {_name(values)} (no data in the lake): {location}" for values, location in self.delete]
        out += [f"left    {_name(values)}: its state cannot be read (alblake repair)" for values in self.protected]
        out += [f"skipped {reason}" for reason in self.skipped]
        return out


def _name(values: Sequence[str]) -> str:
    return "/".join(values)


class PartitionCatalog(Protocol):
    """A table's partitions in a catalog (Glue: ``alblake.aws.glue.GlueCatalog``)."""

    def locations(self) -> dict[Values, str]:
        """Every partition's values and Location."""
        ...

    def create(self, partitions: Sequence[tuple[Partition, str]]) -> None:
        """Create these partitions at these Locations (one that exists already is moved there)."""
        ...

    def move(self, moves: Sequence[Move]) -> None: ...

    def delete(self, partitions: Sequence[Values]) -> None: ...


def targets_from(
    generation0: Iterable[Partition], states: Iterable[PartitionState], unreadable: Iterable[Partition]
) -> CatalogTargets:
    """The live folder of every partition (pure): the state's, or the generation-0 folder without a state."""
    folders = {partition: partition_location(partition) for partition in generation0}
    for state in states:
        folders[state.partition] = state.live
    protected = {tuple(p.values) for p in unreadable}
    for partition in unreadable:
        folders.pop(partition, None)
    return CatalogTargets(folders, frozenset(protected))


def catalog_targets(lake: GenerationalLake) -> CatalogTargets:
    """Read the lake: one listing of the data tree (the generation-0 folders that hold files) and every state."""
    generation0 = set()
    for key in lake.store.list_keys(DATA_PREFIX):
        folder = owning_folder(key)
        if folder is not None and key.endswith(".parquet") and not folder[1].startswith(COMPACTED_PREFIX):
            generation0.add(folder[0])
    states = lake.states()
    return targets_from(generation0, states, lake.unreadable_states)


def plan_sync(targets: CatalogTargets, current: Mapping[Values, str], url_of: Mapping[str, str]) -> CatalogDiff:
    """What to change so that the catalog (``current``: values -> Location) holds exactly the targets (pure).
    ``url_of`` maps each target folder (a lake key prefix) to the Location the catalog stores for it."""
    diff = CatalogDiff()
    for partition, folder in sorted(targets.folders.items()):
        location = url_of[folder]
        values = tuple(partition.values)
        if values not in current:
            diff.create.append((partition, location))
        elif _dir(current[values]) != _dir(location):
            diff.move.append(Move(partition, current[values], location))
        else:
            diff.unchanged += 1
    wanted = {tuple(p.values) for p in targets.folders}
    for values, location in sorted(current.items()):
        if values in wanted:
            continue
        if values in targets.protected:
            diff.protected.append(values)
        else:
            diff.delete.append((values, location))
    return diff


def sync_catalog(
    lake: GenerationalLake,
    catalog: PartitionCatalog,
    *,
    dry_run: bool = False,
    derived: DerivedTable | None = None,
) -> CatalogDiff:
    """Make the catalog hold every partition of the lake at its live folder, and nothing else: the curated table's,
    or with ``derived`` that table's (the sibling folders under its prefix). The catalog is read before the lake,
    so every Location it holds is at most as new as the states read after it."""
    current = catalog.locations()
    targets = catalog_targets(lake)
    locate = _locator(lake, derived)
    diff = plan_sync(targets, current, {folder: locate(folder) for folder in targets.folders.values()})
    if dry_run:
        return diff
    diff.move = [m for m in diff.move if _still_moves(lake, m, diff, locate)]
    diff.delete = [d for d in diff.delete if _still_empty(lake, d, diff)]
    catalog.create(diff.create)
    catalog.move(diff.move)
    catalog.delete([values for values, _ in diff.delete])
    return diff


def _locator(lake: GenerationalLake, derived: DerivedTable | None) -> Callable[[str], str]:
    """The Location of a curated live folder in the table being synced: itself, or its derived sibling."""
    if derived is None:
        return lake.store.url
    return lambda folder: lake.store.url(derived_key(derived, folder))


def _still_moves(lake: GenerationalLake, move: Move, diff: CatalogDiff, locate: Callable[[str], str]) -> bool:
    """Whether the partition's live folder is still the target (a writer may have swapped it meanwhile and then
    points the Location itself: a move to the older folder would undo it)."""
    live = locate(lake.read_state(move.partition).state.live)
    if _dir(live) == _dir(move.new):
        return True
    diff.skipped.append(f"{_name(move.partition.values)}: a writer changed it while syncing (run sync again)")
    return False


def _still_empty(lake: GenerationalLake, delete: tuple[Values, str], diff: CatalogDiff) -> bool:
    """Whether the partition still has no data: no state, no file in its generation-0 folder (a commit may have
    written one since the listing; it creates the catalog entry itself). A derived table has data exactly where
    the curated table has."""
    values = delete[0]
    if len(values) != 3:
        return True  # not a partition of this lake's layout
    partition = Partition(*values)
    live = lake.read_state(partition)
    if live.tag is None and not any(key.endswith(".parquet") for key in lake.store.list_keys(live.state.live)):
        return True
    diff.skipped.append(f"{_name(values)}: data arrived while syncing (kept)")
    return False


def _dir(location: str) -> str:
    return location.rstrip("/") + "/"


__all__ = [
    "CatalogDiff",
    "CatalogTargets",
    "Move",
    "PartitionCatalog",
    "catalog_targets",
    "plan_sync",
    "sync_catalog",
    "targets_from",
]
