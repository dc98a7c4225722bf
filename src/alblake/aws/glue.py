"""Register lake partitions in the Glue Data Catalog (idempotent, safe under concurrent invocations)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

BATCH_SIZE = 100  # batch_create_partition accepts at most 100 partitions per call

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


class GluePartitionError(Exception):
    """Glue refused partitions for a reason other than 'already exists' (the invocation should retry)."""


class GlueTableLocationError(Exception):
    """The table's Location is not where the lake files are written (a deployment/configuration error)."""


class GluePartitionRegistrar:
    """``alblake.ports.PartitionRegistrar`` on Glue: ``batch_create_partition`` with the table's StorageDescriptor.

    - The table is read once per container (``get_table``) and cached.
    - ``AlreadyExistsException`` entries count as success: duplicate events and concurrent invocations that
      race on the same hour partition are harmless.
    - Any other per-entry error raises ``GluePartitionError``; API errors (throttling, ...) propagate as
      ``botocore`` ``ClientError``. Both fail the invocation so Lambda retries it.
    - Partitions confirmed by this container are remembered, so the 12+ objects per hour and LB do not each
      call Glue again.
    - A partition's Location is the table's Location + the partition path. With ``expected_location`` (where
      the sink writes the table's files, e.g. ``s3://bucket/prefix/alb_logs/``), the table's Location must
      equal it, else ``GlueTableLocationError``: partitions would point where no file is (``verify()`` checks
      it up front).
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
        self._known: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    def _table_sd(self) -> dict[str, Any]:
        if self._sd is None:
            resp = self._client.get_table(DatabaseName=self.database, Name=self.table, **self._catalog)
            sd: dict[str, Any] = resp["Table"]["StorageDescriptor"]
            location = str(sd.get("Location", ""))
            if self.expected_location is not None and _dir(location) != _dir(self.expected_location):
                raise GlueTableLocationError(
                    f"Glue table {self.database}.{self.table} has Location {location!r} but the lake files are "
                    f"written under {self.expected_location!r} (LAKE_BUCKET/LAKE_PREFIX): its partitions would "
                    "point where no data is. Make the table Location and the lake sink agree."
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

    def register(self, partitions: Iterable[PartitionLike]) -> int:
        todo: dict[tuple[str, ...], PartitionLike] = {}
        for p in partitions:
            k = tuple(p.values)
            with self._lock:
                known = k in self._known
            if not known:
                todo[k] = p
        created = 0
        items = list(todo.values())
        for start in range(0, len(items), BATCH_SIZE):
            created += self._create_batch(items[start : start + BATCH_SIZE])
        with self._lock:
            self._known.update(todo)
        return created

    def _create_batch(self, batch: Sequence[PartitionLike]) -> int:
        resp = self._client.batch_create_partition(
            DatabaseName=self.database,
            TableName=self.table,
            PartitionInputList=[self.partition_input(p) for p in batch],
            **self._catalog,
        )
        errors = resp.get("Errors", [])
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
                f"batch_create_partition on {self.database}.{self.table} failed for "
                f"{len(failures)} partition(s): " + "; ".join(failures)
            )
        return len(batch) - already


def _dir(location: str) -> str:
    return location.rstrip("/") + "/"
