"""The lake's tables' partitions rebuilt from the lake's own state: ``GlueCatalog`` (for ``alblake catalog sync``,
``alblake.lake.catalog.PartitionCatalog``), for the curated table and every derived table. An operator's adapter:
the functions never call it (the template's OperatorPolicy grants its calls)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from alblake.aws.glue import (
    BATCH_SIZE,
    GluePartitionError,
    GluePartitionRegistrar,
    PartitionLike,
    _dir,
    missing_entity,
)
from alblake.lake.catalog import Move

DELETE_BATCH_SIZE = 25  # batch_delete_partition accepts at most 25 partitions per call

TableInput = Callable[[str], dict[str, object]]


def table_definitions() -> dict[str, TableInput]:
    """The Glue ``TableInput`` of each table the project declares, by name (a Location gives the input): the same
    builders ``alblake schema --write`` generates the template's CuratedTable and RollupTable blocks from."""
    from alblake.schema import ROLLUP_TABLE_NAME, TABLE_NAME, glue_table_input, rollup_glue_table_input

    return {TABLE_NAME: glue_table_input, ROLLUP_TABLE_NAME: rollup_glue_table_input}


class GlueCatalog:
    """``alblake.lake.catalog.PartitionCatalog`` on Glue: the table's partitions, read whole and changed in
    batches (create and update 100, delete 25 per call); ``ensure_table`` creates the table when it is gone and
    puts its Location back where the lake is. Partition inputs get the table's StorageDescriptor, as
    ``GluePartitionRegistrar`` gives them."""

    def __init__(self, client: Any, database: str, table: str) -> None:
        self._client = client
        self.database = database
        self.table = table
        self._registrar = GluePartitionRegistrar(client, database, table)

    def ensure_table(self, location: str, *, dry_run: bool = False, definition: TableInput | None = None) -> str:
        """'' when the table is there at ``location``; else what was (or, dry run, would be) done. ``definition``
        builds its ``TableInput`` (default: the curated table's, ``alblake.schema.glue_table_input``)."""
        from alblake.schema import glue_table_input  # the one definition of the curated table

        table_input = definition or glue_table_input
        try:
            table = self._client.get_table(DatabaseName=self.database, Name=self.table)["Table"]
        except ClientError as error:
            if not missing_entity(error):
                raise
            if not dry_run:
                self._client.create_table(DatabaseName=self.database, TableInput=table_input(location))
            return f"create table {self.database}.{self.table} at {location}"
        current = str(table.get("StorageDescriptor", {}).get("Location", ""))
        if _dir(current) == _dir(location):
            return ""
        if not dry_run:
            self._client.update_table(DatabaseName=self.database, TableInput=table_input(location))
        return f"move table {self.database}.{self.table} from {current} to {location}"

    def exists(self) -> bool:
        try:
            self._client.get_table(DatabaseName=self.database, Name=self.table)
        except ClientError as error:
            if not missing_entity(error):
                raise
            return False
        return True

    def locations(self) -> dict[tuple[str, ...], str]:
        """Every partition's values and Location (none while the table does not exist)."""
        found: dict[tuple[str, ...], str] = {}
        paginator = self._client.get_paginator("get_partitions")
        pages = paginator.paginate(DatabaseName=self.database, TableName=self.table, ExcludeColumnSchema=True)
        try:
            for page in pages:
                for partition in page.get("Partitions", []):
                    location = str(partition.get("StorageDescriptor", {}).get("Location", ""))
                    found[tuple(partition["Values"])] = location
        except ClientError as error:
            if not missing_entity(error):
                raise
        return found

    def create(self, partitions: Sequence[tuple[PartitionLike, str]]) -> None:
        """Create each partition at its Location; one created meanwhile by a writer ("already exists") is then
        moved there only if it points elsewhere."""
        for start in range(0, len(partitions), BATCH_SIZE):
            batch = partitions[start : start + BATCH_SIZE]
            response = self._client.batch_create_partition(
                DatabaseName=self.database,
                TableName=self.table,
                PartitionInputList=[self._input(partition, location) for partition, location in batch],
            )
            self._registrar._count_already_exists(response.get("Errors", []), "batch_create_partition")

    def move(self, moves: Sequence[Move]) -> None:
        """Point each ``Move``'s partition at ``move.new`` (whatever generation it names)."""
        for start in range(0, len(moves), BATCH_SIZE):
            batch = moves[start : start + BATCH_SIZE]
            response = self._client.batch_update_partition(
                DatabaseName=self.database,
                TableName=self.table,
                Entries=[
                    {"PartitionValueList": list(m.partition.values), "PartitionInput": self._input(m.partition, m.new)}
                    for m in batch
                ],
            )
            errors = response.get("Errors", [])
            if errors:
                raise GluePartitionError(f"batch_update_partition on {self.database}.{self.table} failed: {errors}")

    def delete(self, partitions: Sequence[tuple[str, ...]]) -> None:
        for start in range(0, len(partitions), DELETE_BATCH_SIZE):
            batch = partitions[start : start + DELETE_BATCH_SIZE]
            response = self._client.batch_delete_partition(
                DatabaseName=self.database,
                TableName=self.table,
                PartitionsToDelete=[{"Values": list(values)} for values in batch],
            )
            errors = [
                e for e in response.get("Errors", [])
                if e.get("ErrorDetail", {}).get("ErrorCode") != "EntityNotFoundException"  # gone already: done
            ]
            if errors:
                raise GluePartitionError(f"batch_delete_partition on {self.database}.{self.table} failed: {errors}")

    def _input(self, partition: PartitionLike, location: str) -> dict[str, Any]:
        partition_input = self._registrar.partition_input(partition)
        partition_input["StorageDescriptor"]["Location"] = _dir(location)
        return partition_input
