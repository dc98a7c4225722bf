"""In-memory fakes of the lake's ports, for fast interleaving tests.

- ``MemoryStore``: an ``ObjectStore`` in a dict, with compare-and-swap. Every mutating call first runs the
  ``before_write`` hook (tests use it to crash there, to run another writer in the middle, or to check what
  readers see at that moment), and, once the write is done, the ``after_write`` hook (tests use it to lose the
  acknowledgement: the write happened, the caller is told it failed).
- ``MemoryCatalog``: a ``PartitionRegistrar`` that keeps each partition's Location, like Glue (and the
  partitions of other tables, which expiry drops).
- ``athena_files``: what Athena would read: every object under each registered Location, subfolders included.
- ``EchoTable``: a derived table (``alblake.ports.DerivedTable``) whose rows are the curated rows' request URLs,
  so the same exactly-once checks run on a derived table's views.
- ``FaultyWrites``: the faults a property test's world injects at the store's writes (a crash, another writer in
  the middle, a lost acknowledgement), one implementation for every world.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from alblake.lake.generations import generation_of_location
from alblake.lake.layout import Partition
from alblake.ports import ConditionFailedError, PartitionTarget, Versioned
from alblake.schema import TABLE_NAME

URL_PREFIX = "mem://"


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.before_write: Callable[[str, str], None] = lambda operation, key: None
        self.after_write: Callable[[str, str], None] = lambda operation, key: None
        self._staging = Path(tempfile.mkdtemp(prefix="memstore-"))

    def _write(self, operation: str, key: str) -> None:
        self.before_write(operation, key)

    def staging_dir(self) -> Path:
        return self._staging

    def put_file(self, key: str, local_path: Path) -> None:
        content = local_path.read_bytes()
        self._write("put_file", key)
        self.objects[key] = content
        self.after_write("put_file", key)

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def delete(self, key: str) -> None:
        self._write("delete", key)
        self.objects.pop(key, None)
        self.after_write("delete", key)

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        keys = sorted(k for k in self.objects if k.startswith(prefix) and k > start_after)
        for key in keys:
            if not any(part.startswith((".", "_")) for part in key.split("/")):
                yield key

    def url(self, key: str) -> str:
        return f"{URL_PREFIX}{key}"

    def list_sizes(self, prefix: str) -> Iterator[tuple[str, int]]:
        for key in self.list_keys(prefix):
            yield key, len(self.objects[key])

    def copy(self, source_key: str, key: str) -> None:
        if source_key not in self.objects:
            raise FileNotFoundError(source_key)
        content = self.objects[source_key]
        self._write("copy", key)
        self.objects[key] = content
        self.after_write("copy", key)

    def open(self, key: str) -> BinaryIO:
        if key not in self.objects:
            raise FileNotFoundError(key)
        return io.BytesIO(self.objects[key])

    def download(self, key: str, local_path: Path) -> None:
        if key not in self.objects:
            raise FileNotFoundError(key)
        local_path.write_bytes(self.objects[key])

    def get_versioned(self, key: str) -> Versioned | None:
        content = self.objects.get(key)
        return None if content is None else Versioned(content, hashlib.md5(content).hexdigest())

    def put_bytes_if(self, key: str, content: bytes, expected_tag: str | None) -> None:
        self._write("put_bytes_if", key)
        current = self.get_versioned(key)
        if (None if current is None else current.tag) != expected_tag:
            raise ConditionFailedError(key)
        self.objects[key] = content
        self.after_write("put_bytes_if", key)

    def put_bytes(self, key: str, content: bytes) -> None:
        self._write("put_bytes", key)
        self.objects[key] = content
        self.after_write("put_bytes", key)


class MemoryCatalog:
    """Partition Locations of the curated table (``point``), and of other tables (``others``), which expiry drops
    (``drop``, ``partitions_before``: ``alblake.lake.lifecycle.PartitionCatalog``)."""

    def __init__(self) -> None:
        self.locations: dict[Partition, str] = {}
        self.others: dict[str, dict[Partition, str]] = {}  # table name -> partitions (derived tables)

    def _table(self, table: str) -> dict[Partition, str]:
        return self.locations if table == TABLE_NAME else self.others.setdefault(table, {})

    def drop(self, table: str, partitions: Sequence[Partition]) -> int:
        found = self._table(table)
        return sum(found.pop(partition, None) is not None for partition in partitions)

    def partitions_before(self, table: str, day: str) -> list[Partition]:
        return sorted(p for p in self._table(table) if p.day < day)

    def point(self, targets: Sequence[PartitionTarget]) -> int:
        changed = 0
        for target in targets:
            current = self.locations.get(target.partition)
            if current is None or generation_of_location(current) < target.generation:
                self.locations[target.partition] = target.location
                changed += 1
        return changed


def athena_files(store: MemoryStore, catalog: MemoryCatalog) -> list[str]:
    """Keys Athena reads: everything under each partition's Location (subfolders included)."""
    keys: list[str] = []
    for location in catalog.locations.values():
        prefix = location.removeprefix(URL_PREFIX)
        keys.extend(k for k in store.list_keys(prefix) if k.endswith(".parquet"))
    return sorted(keys)


class EchoTable:
    """A derived table with one row per curated row: its request URL."""

    name = "echo"
    prefix = "echo/"
    schema = pa.schema([pa.field("request_url", pa.string())])
    columns = ("request_url",)

    def derive(self, rows: pa.Table) -> pa.Table:
        return rows.select(["request_url"])


class LostAnswerError(ConnectionError):
    """The answer to a write that happened never arrived (a reset connection, a timeout while reading it) and the
    SDK gave up: the writer's operation fails after its write took effect."""


class SimulatedCrashError(BaseException):
    """A simulated crash of the writer at a store write: a BaseException, so that no ``except Exception`` of the
    code under test can handle it (a real crash leaves nothing to handle it)."""


@dataclass(frozen=True)
class Fired:
    """A fault that fired: ``crash``, ``nested`` or ``lost_ack``, at store write ``write``, and for a lost answer what
    the writer was told (``told``): "condition failed" (the SDK's retry of a conditional write), "no answer" (the
    operation failed with ``LostAnswerError``) or "success" (the SDK's retry of an unconditional write)."""

    fault: str
    write: int
    operation: str
    told: str = ""


@dataclass
class FaultyWrites:
    """Faults at a ``MemoryStore``'s writes, counted from 1 (``writes``): a crash before write ``crash_at``;
    another writer's operation ``nested`` before write ``nested_at``; the answer to write ``lost_ack_at`` lost,
    with ``between`` (another writer's operation) run before the writer learns it, and a conditional write then
    failing as the SDK's retry would (``lost_ack_retried``) or the operation failing with ``LostAnswerError``.
    Each fault fires once, and is then recorded in ``fired``: a test asserts that the fault it set up did fire
    (a fault set past the last write never fires, and a test accepting that cannot fail). A world inherits it and
    ``install``s it on its store (it may extend the hooks)."""

    writes: int = 0
    crash_at: int | None = None
    nested: Callable[[], None] | None = None
    nested_at: int | None = None
    lost_ack_at: int | None = None  # the write whose acknowledgement is lost
    lost_ack_retried: bool = True  # conditional writes: the SDK retried (-> "condition failed"); else it gave up
    between: Callable[[], None] | None = None  # another writer's operation, between the lost write and its answer
    fired: list[Fired] = field(default_factory=list)  # the faults that fired, in order

    def install(self, store: MemoryStore) -> None:
        store.before_write = self.before_write
        store.after_write = self.after_write

    def before_write(self, operation: str, key: str) -> None:
        self.writes += 1
        if self.nested is not None and self.writes == self.nested_at:
            nested, self.nested = self.nested, None
            self.fired.append(Fired("nested", self.writes, operation))
            nested()
        if self.crash_at is not None and self.writes == self.crash_at:
            self.crash_at = None
            self.fired.append(Fired("crash", self.writes, operation))
            raise SimulatedCrashError(f"crash before {operation} {key}")

    def after_write(self, operation: str, key: str) -> None:
        if self.lost_ack_at is None or self.writes != self.lost_ack_at:
            return
        self.lost_ack_at, at = None, self.writes
        if self.between is not None:
            between, self.between = self.between, None
            between()
        if operation == "put_bytes_if" and self.lost_ack_retried:
            self.fired.append(Fired("lost_ack", at, operation, "condition failed"))
            raise ConditionFailedError(f"{key}: the SDK's retry of a write that succeeded")
        if operation != "put_bytes_if" and self.lost_ack_retried:
            self.fired.append(Fired("lost_ack", at, operation, "success"))
            return  # an unconditional write retried by the SDK succeeds again: nothing to see
        self.fired.append(Fired("lost_ack", at, operation, "no answer"))
        raise LostAnswerError(f"no answer to {operation} {key}")

    def fired_at(self, fault: str) -> list[int]:
        """The store writes at which ``fault`` fired."""
        return [fired.write for fired in self.fired if fired.fault == fault]
