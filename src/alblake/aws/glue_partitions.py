"""Glue partitions that expiry drops (``alblake.lake.lifecycle.PartitionCatalog``): ``BatchDeletePartition`` (at most
25 per call) and ``GetPartitions`` with an expression on ``day`` (paginated)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from alblake.aws.glue import GluePartitionError, missing_entity
from alblake.lake.layout import Partition

DELETE_BATCH_SIZE = 25  # batch_delete_partition accepts at most 25 partitions per call


class GluePartitionCatalog:
    """The partitions of the tables of one Glue database."""

    def __init__(self, client: Any, database: str, catalog_id: str | None = None) -> None:
        self._client = client
        self.database = database
        self._catalog = {"CatalogId": catalog_id} if catalog_id else {}

    def drop(self, table: str, partitions: Sequence[Partition]) -> int:
        """Delete the partitions; one that does not exist counts as deleted already, and so do those of a table
        that does not exist (a derived table a stack deployed before it existed never created). How many existed."""
        existed = 0
        for start in range(0, len(partitions), DELETE_BATCH_SIZE):
            batch = partitions[start : start + DELETE_BATCH_SIZE]
            try:
                response = self._client.batch_delete_partition(
                    DatabaseName=self.database,
                    TableName=table,
                    PartitionsToDelete=[{"Values": p.values} for p in batch],
                    **self._catalog,
                )
            except ClientError as error:
                if missing_entity(error):
                    return existed
                raise
            errors = response.get("Errors", [])
            failed = [e for e in errors if e.get("ErrorDetail", {}).get("ErrorCode") != "EntityNotFoundException"]
            if failed:
                detail = "; ".join(
                    f"{e.get('PartitionValues')}: {e.get('ErrorDetail', {}).get('ErrorCode', '')}" for e in failed
                )
                raise GluePartitionError(f"batch_delete_partition on {self.database}.{table} failed: {detail}")
            existed += len(batch) - len(errors)
        return existed

    def partitions_before(self, table: str, day: str) -> list[Partition]:
        """The partitions of ``table`` whose ``day`` is before ``day`` (days are YYYY-MM-DD strings)."""
        found = []
        paginator = self._client.get_paginator("get_partitions")
        pages = paginator.paginate(
            DatabaseName=self.database,
            TableName=table,
            Expression=f"day < '{day}'",
            ExcludeColumnSchema=True,
            **self._catalog,
        )
        try:
            for page in pages:
                for partition in page.get("Partitions", []):
                    values = partition.get("Values", [])
                    if len(values) == 3:
                        found.append(Partition(*values))
        except ClientError as error:
            if not missing_entity(error):
                raise
        return found

