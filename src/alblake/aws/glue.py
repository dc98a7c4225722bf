"""Register lake partitions in the Glue Data Catalog (idempotent, safe under concurrent invocations).

``GluePartitionRegistrar.point(targets)``, called by ``GenerationalLake`` for every commit and compaction, reads
the partitions from Glue each time (``batch_get_partition``, no cache), creates the missing ones and moves a
Location forward to a newer generation folder (``batch_update_partition``), never backward. A partition dropped
from outside is thus created again by the next commit into it, warm container or not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from botocore.exceptions import ClientError

from alblake.errors import ConfigError, ServiceError
from alblake.lake.generations import generation_of_location
from alblake.ports import DerivedTable, PartitionTarget

BATCH_SIZE = 100  # batch_create_partition and batch_update_partition accept at most 100 entries per call
GET_BATCH_SIZE = 1000  # batch_get_partition accepts at most 1000 partitions per call

# StorageDescriptor members that a partition inherits from its table (the shapes are the same in Glue).
_SD_KEYS = (
    "Columns",
    "InputFormat",
    "OutputFormat",
    "Compressed",
    "NumberOfBuckets",
    "SerdeInfo",
    "BucketColumns",
    "SortColumns",
    "Parameters",
    "SkewedInfo",
    "StoredAsSubDirectories",
)


class PartitionLike(Protocol):
    @property
    def values(self) -> list[str]: ...

    @property
    def path(self) -> str: ...


class GluePartitionError(ServiceError):
    """Glue refused partitions for a reason other than 'already exists' (the invocation should retry)."""


class GlueTableLocationError(ConfigError):
    """The table's Location is not where the lake files are written (a deployment/configuration error)."""


class GluePartitionRegistrar:
    """``alblake.ports.PartitionRegistrar`` on Glue: partitions get the table's StorageDescriptor and their target.

    - The table is read once per container (``get_table``) and cached; the partitions never are.
    - ``AlreadyExistsException`` entries count as success: duplicate events and concurrent invocations that
      race on the same hour partition are harmless (a partition created meanwhile is re-read and moved forward).
    - Any other per-entry error raises ``GluePartitionError``; API errors (throttling, ...) propagate as
      ``botocore`` ``ClientError``. Both fail the invocation so Lambda retries it.
    - With ``expected_location`` (where the lake writes the table's files, e.g. ``s3://bucket/prefix/alb_logs/``),
      the table's Location must equal it, else ``GlueTableLocationError``: partitions would point where no file is
      (``verify()`` checks it up front).
    """

    def __init__(
        self,
        client: Any,
        database: str,
        table: str,
        catalog_id: str | None = None,
        *,
        expected_location: str | None = None,
    ) -> None:
        self._client = client
        self.database = database
        self.table = table
        self.expected_location = expected_location
        self._catalog = {"CatalogId": catalog_id} if catalog_id else {}
        self._sd: dict[str, Any] | None = None

    def _table_sd(self) -> dict[str, Any]:
        if self._sd is None:
            resp = self._client.get_table(DatabaseName=self.database, Name=self.table, **self._catalog)
            sd: dict[str, Any] = resp["Table"]["StorageDescriptor"]
            location = str(sd.get("Location", ""))
            if self.expected_location is not None and _dir(location) != _dir(self.expected_location):
                raise GlueTableLocationError(
                    f"Glue table {self.database}.{self.table} has Location {location!r} but the lake files are "
                    f"written under {self.expected_location!r} (LAKE_BUCKET/LAKE_PREFIX): its partitions would "
                    "point where no data is. Make the table Location and the lake agree."
                )
            self._sd = sd
        return self._sd

    def verify(self) -> None:
        """Read the table now (cached for the container) and check its Location; raises on a mismatch."""
        self._table_sd()

    def partition_input(self, partition: PartitionLike) -> dict[str, Any]:
        table_sd = self._table_sd()
        sd = {k: copy.deepcopy(table_sd[k]) for k in _SD_KEYS if k in table_sd}
        location = str(table_sd["Location"]).rstrip("/")
        sd["Location"] = f"{location}/{partition.path}/"
        return {"Values": list(partition.values), "StorageDescriptor": sd}

    def point(self, targets: Sequence[PartitionTarget]) -> int:
        """Create missing partitions at their target; move existing ones forward (never to an older generation)."""
        by_values = {tuple(t.partition.values): t for t in targets}
        items = list(by_values.values())
        current: dict[tuple[str, ...], str] = {}
        for start in range(0, len(items), GET_BATCH_SIZE):
            current.update(self._locations(items[start : start + GET_BATCH_SIZE]))
        missing = [t for t in items if tuple(t.partition.values) not in current]
        behind = _behind(items, current)
        changed = 0
        for start in range(0, len(missing), BATCH_SIZE):
            batch = missing[start : start + BATCH_SIZE]
            created = self._create_batch_at(batch)
            changed += created
            if created < len(batch):  # created concurrently by another writer: check where it points now
                behind.extend(_behind(batch, self._locations(batch)))
        for start in range(0, len(behind), BATCH_SIZE):
            changed += self._update_batch(behind[start : start + BATCH_SIZE])
        return changed

    def _locations(self, targets: Sequence[PartitionTarget]) -> dict[tuple[str, ...], str]:
        resp = self._client.batch_get_partition(
            DatabaseName=self.database,
            TableName=self.table,
            PartitionsToGet=[{"Values": list(t.partition.values)} for t in targets],
            **self._catalog,
        )
        if resp.get("UnprocessedKeys"):
            raise GluePartitionError(
                f"batch_get_partition on {self.database}.{self.table} left {len(resp['UnprocessedKeys'])} "
                "partition(s) unprocessed"
            )
        return {
            tuple(p["Values"]): str(p.get("StorageDescriptor", {}).get("Location", ""))
            for p in resp.get("Partitions", [])
        }

    def _input_at(self, target: PartitionTarget) -> dict[str, Any]:
        partition_input = self.partition_input(target.partition)
        partition_input["StorageDescriptor"]["Location"] = _dir(target.location)
        return partition_input

    def _create_batch_at(self, batch: Sequence[PartitionTarget]) -> int:
        resp = self._client.batch_create_partition(
            DatabaseName=self.database,
            TableName=self.table,
            PartitionInputList=[self._input_at(t) for t in batch],
            **self._catalog,
        )
        return len(batch) - self._count_already_exists(resp.get("Errors", []), "batch_create_partition")

    def _update_batch(self, batch: Sequence[PartitionTarget]) -> int:
        resp = self._client.batch_update_partition(
            DatabaseName=self.database,
            TableName=self.table,
            Entries=[
                {"PartitionValueList": list(t.partition.values), "PartitionInput": self._input_at(t)} for t in batch
            ],
            **self._catalog,
        )
        errors = resp.get("Errors", [])
        if errors:
            detail = "; ".join(
                f"{e.get('PartitionValueList')}: {e.get('ErrorDetail', {}).get('ErrorCode', '')}: "
                f"{e.get('ErrorDetail', {}).get('ErrorMessage', '')}"
                for e in errors
            )
            raise GluePartitionError(f"batch_update_partition on {self.database}.{self.table} failed: {detail}")
        return len(batch)

    def _count_already_exists(self, errors: Sequence[dict[str, Any]], operation: str) -> int:
        already = 0
        failures: list[str] = []
        for err in errors:
            detail = err.get("ErrorDetail", {})
            code = detail.get("ErrorCode", "")
            if code == "AlreadyExistsException":
                already += 1
            else:
                failures.append(f"{err.get('PartitionValues')}: {code}: {detail.get('ErrorMessage', '')}")
        if failures:
            raise GluePartitionError(
                f"{operation} on {self.database}.{self.table} failed for "
                f"{len(failures)} partition(s): " + "; ".join(failures)
            )
        return already


def _behind(targets: Sequence[PartitionTarget], current: dict[tuple[str, ...], str]) -> list[PartitionTarget]:
    """The targets whose partition exists but points at an older generation than the target's."""
    return [
        t
        for t in targets
        if tuple(t.partition.values) in current
        and _dir(current[tuple(t.partition.values)]) != _dir(t.location)
        and generation_of_location(current[tuple(t.partition.values)]) < t.generation
    ]


def _dir(location: str) -> str:
    return location.rstrip("/") + "/"


def verified_registrar(client: Any, database: str, table: str, lake_location: str) -> GluePartitionRegistrar:
    """The registrar of ``database.table``, whose Location was just checked to be ``lake_location`` (where the
    lake writes the table's files); raises ``GlueTableLocationError`` otherwise, before anything is written."""
    registrar = GluePartitionRegistrar(client, database, table, expected_location=lake_location)
    registrar.verify()
    return registrar


def missing_entity(error: ClientError) -> bool:
    """Whether Glue answered that the database, table or partition asked for does not exist."""
    return str(error.response.get("Error", {}).get("Code")) == "EntityNotFoundException"


def derived_registrars(
    client: Any, database: str, tables: Sequence[DerivedTable], location_of: Callable[[str], str]
) -> dict[str, GluePartitionRegistrar]:
    """A verified registrar for each derived table that exists in ``database`` (``location_of(prefix)``: where the
    lake writes that table's files). A table not created yet (a stack deployed before it existed) gets none: its
    files are still written, and ``alblake catalog sync`` registers its partitions once the table exists."""
    registrars = {}
    for table in tables:
        try:
            registrars[table.name] = verified_registrar(client, database, table.name, location_of(table.prefix))
        except ClientError as error:
            if not missing_entity(error):
                raise
    return registrars
