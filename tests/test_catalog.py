"""The catalog targets a lake computes from its own state, and the plan that makes a catalog hold them (pure:
a local lake, no AWS; ``tests/integration/test_catalog_sync.py`` applies it to Glue)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from alblake.cli import main
from alblake.lake.catalog import CatalogTargets, Move, catalog_targets, plan_sync, sync_catalog, targets_from
from alblake.lake.generational import open_local_lake
from alblake.lake.generations import PartitionState, state_key
from alblake.lake.layout import Partition, partition_location
from tests.log_objects import write_objects

P20, P21, P22 = (Partition("web", "2018-07-02", h) for h in ("20", "21", "22"))


def url_of(targets: CatalogTargets) -> dict[str, str]:
    return {folder: f"s3://lake/{folder}" for folder in targets.folders.values()}


def test_targets_are_the_live_folders_and_unreadable_states_are_protected() -> None:
    live = "alb_logs/compacted/elb_name=web/day=2018-07-02/hour=21/g000001-ab/"
    compacted = PartitionState(P21, generation=1, live=live)
    targets = targets_from([P20, P21], [compacted], unreadable=[P22])
    assert targets.folders == {P20: partition_location(P20), P21: compacted.live}
    assert targets.protected == {("web", "2018-07-02", "22")}


def test_the_plan_creates_moves_deletes_and_leaves_protected_entries_alone() -> None:
    targets = targets_from([P20, P21], [], unreadable=[P22])
    current: dict[tuple[str, ...], str] = {
        ("web", "2018-07-02", "21"): "s3://lake/alb_logs/somewhere/else/",
        ("web", "2018-07-02", "22"): "s3://lake/x/",  # state unreadable: nothing is known, nothing is done
        ("web", "2018-07-03", "00"): "s3://lake/y/",  # no data at all
    }
    diff = plan_sync(targets, current, url_of(targets))
    assert diff.create == [(P20, f"s3://lake/{partition_location(P20)}")]
    assert diff.move == [Move(P21, "s3://lake/alb_logs/somewhere/else/", f"s3://lake/{partition_location(P21)}")]
    assert diff.delete == [(("web", "2018-07-03", "00"), "s3://lake/y/")]
    assert diff.protected == [("web", "2018-07-02", "22")]
    assert diff.changes == 3
    again = plan_sync(targets, {("web", "2018-07-02", h): f"s3://lake/{partition_location(p)}"
                                for h, p in (("20", P20), ("21", P21))}, url_of(targets))
    assert (again.changes, again.unchanged) == (0, 2)


class ListCatalog:
    """A ``PartitionCatalog`` in a dict (what Glue holds: values -> Location)."""

    def __init__(self, entries: dict[tuple[str, ...], str]) -> None:
        self.entries = entries

    def locations(self) -> dict[tuple[str, ...], str]:
        return dict(self.entries)

    def create(self, partitions: Sequence[tuple[Partition, str]]) -> None:
        self.entries.update((tuple(p.values), location) for p, location in partitions)

    def move(self, moves: Sequence[Move]) -> None:
        self.entries.update((tuple(m.partition.values), m.new) for m in moves)

    def delete(self, partitions: Sequence[tuple[str, ...]]) -> None:
        for values in partitions:
            self.entries.pop(values, None)


def test_a_local_lake_with_compacted_and_late_hours_syncs_to_its_live_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_objects(tmp_path / "logs", range(1, 4), (20, 21), 10)
    lake_dir = tmp_path / "lake"
    assert main(["ingest", str(tmp_path / "logs"), "--lake", str(lake_dir), "--quiet", "--no-batch"]) == 0
    assert main(["compact", "--lake", str(lake_dir), "--older-than", "0"]) == 0
    capsys.readouterr()
    lake = open_local_lake(lake_dir)
    targets = catalog_targets(lake)
    assert {p.hour for p in targets.folders} == {"20", "21"}
    assert all("/compacted/" in folder for folder in targets.folders.values())
    catalog = ListCatalog({("my-loadbalancer", "2018-07-02", "23"): "gone/"})
    diff = sync_catalog(lake, catalog)
    assert (len(diff.create), len(diff.delete)) == (2, 1)
    assert set(catalog.entries.values()) == {lake.store.url(f) for f in targets.folders.values()}
    assert sync_catalog(lake, catalog).changes == 0

    corrupt = next(iter(targets.folders))
    (lake_dir / state_key(corrupt)).write_text("{not json")
    diff = sync_catalog(lake, catalog)
    assert diff.protected == [tuple(corrupt.values)]  # its entry is kept, not deleted
    assert tuple(corrupt.values) in catalog.entries
