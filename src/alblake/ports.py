"""The interfaces the use cases depend on, in one place (pure: adapters implement them elsewhere).

- ``ObjectStore``: keys -> bytes under a lake root (local directory: ``alblake.lake.local``; S3:
  ``alblake.aws.s3``). Each ``put_file`` is atomic: readers see the old content or the new, never a part.
  Small objects (partition state) are also read with their version tag and replaced by compare-and-swap
  (``get_versioned`` / ``put_bytes_if``: S3 conditional writes; locally a lock file and a rename).
- ``PartitionRegistrar``: makes partitions known to a catalog (Glue: ``alblake.aws.glue``); ``point`` moves a
  partition's Location forward to a newer generation folder and never trusts a cache.
- ``Lake``: the commit seam. ``commit`` makes one converted object visible (files and catalog);
  ``visible_files`` is what a reader must read, nothing more and nothing less. Implementation:
  ``alblake.lake.generational.GenerationalLake`` (one file per object and partition-hour, plus compacted
  generations: ``docs/COMPACTION.md``).
- ``ObjectReader``: opens a log object for streaming (S3: ``alblake.aws.s3``; local files need none).
- ``Refresher``: asks a dashboard to refresh (QuickSight SPICE: ``alblake.aws.quicksight``); never raises.
- ``MetricsSink``, ``LoggerLike``: the parts of Powertools' Metrics and Logger the use cases call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from alblake.errors import ConflictError, PartialFailureError
from alblake.lake.layout import Partition
from alblake.lake.staged import StagedBatch, StagedObject

if TYPE_CHECKING:  # annotations only: the ports module stays free of heavy imports
    import pyarrow as pa


class ConditionFailedError(ConflictError):
    """A compare-and-swap write found another version than expected (someone else wrote first)."""


@dataclass(frozen=True)
class Versioned:
    """A small object's content and its version tag (S3: the ETag)."""

    content: bytes
    tag: str


@dataclass(frozen=True)
class PartitionTarget:
    """Where a partition's Location must point: a generation folder (``ObjectStore.url`` of the key prefix)."""

    partition: Partition
    location: str
    generation: int


class ObjectStore(Protocol):
    def put_file(self, key: str, local_path: Path) -> None:
        """Make ``local_path``'s content visible at ``key`` in one atomic step."""
        ...

    def get(self, key: str) -> bytes | None:
        """The content at ``key``, or None when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens when it does not exist."""
        ...

    def list_keys(self, prefix: str, start_after: str = "") -> Iterable[str]:
        """Every key under ``prefix`` in key order, after ``start_after`` if given (files only; names starting
        with '.' or '_' are not listed)."""
        ...

    def list_sizes(self, prefix: str) -> Iterable[tuple[str, int]]:
        """``list_keys(prefix)`` with each key's size in bytes."""
        ...

    def download(self, key: str, local_path: Path) -> None:
        """Copy ``key``'s content into ``local_path`` (streamed; for data files). FileNotFoundError if none."""
        ...

    def open(self, key: str) -> BinaryIO:
        """``key``'s content as a seekable binary file, read in ranges as needed (a Parquet footer without the
        rest of the file). FileNotFoundError if none."""
        ...

    def copy(self, source_key: str, key: str) -> None:
        """Make ``key`` a copy of ``source_key`` in one atomic step, without the content passing through this
        process where the store can avoid it (S3: a server-side copy). FileNotFoundError if there is no source."""
        ...

    def get_versioned(self, key: str) -> Versioned | None:
        """A small object's content with its version tag, or None when there is none."""
        ...

    def put_bytes_if(self, key: str, content: bytes, expected_tag: str | None) -> None:
        """Write ``content`` only if ``key`` is still at ``expected_tag`` (None: only if ``key`` does not exist);
        raises ``ConditionFailedError`` otherwise. Atomic against every other ``put_bytes_if`` of the key."""
        ...

    def put_bytes(self, key: str, content: bytes) -> None:
        """Write a small object unconditionally."""
        ...

    def url(self, key: str) -> str:
        """Where ``key`` is, for a reader or a catalog (a local path or ``s3://bucket/prefix/key``)."""
        ...

    def staging_dir(self) -> Path:
        """A local directory for staged files (on the lake's filesystem when there is one)."""
        ...


class PartitionRegistrar(Protocol):
    def point(self, targets: Sequence[PartitionTarget]) -> int:
        """Make every partition exist and point at its target, unless the catalog already points it at a newer
        generation; reads the catalog every time (no cache). Returns how many were created or moved."""
        ...


@dataclass
class CommitResult:
    """What one commit changed in the lake (keys are relative to the lake root)."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # files an earlier commit of the object wrote, now stale
    partitions_created: int = 0


class BatchCommitError(PartialFailureError):
    """A batch commit that stopped part-way. ``completed``: the results of the objects whose commit is complete
    (manifest written), by position in the batch; every other object is not committed (a retry replaces whatever
    part of it is live). ``__cause__`` is the error that stopped it."""

    def __init__(self, completed: dict[int, CommitResult], cause: Exception) -> None:
        super().__init__(completed, cause)  # both in args: it pickles (a worker may hand it to its caller)
        self.completed = completed
        self.cause = cause

    def __str__(self) -> str:
        return str(self.cause)


class Lake(Protocol):
    def commit(self, staged: StagedObject) -> CommitResult:
        """Make the staged object visible (replacing what an earlier commit of the same object made visible)."""
        ...

    def commit_batch(self, batch: StagedBatch) -> list[CommitResult]:
        """``commit`` for each object of a batch (one result each, in order), their rows written together. Raises
        ``BatchCommitError`` when it stops after some objects' commits are complete."""
        ...

    def visible_files(self) -> Sequence[str]:
        """Every data file a reader must read now (URLs, as ``ObjectStore.url`` gives them), sorted."""
        ...

    def staging_dir(self) -> Path:
        """Where a conversion stages files for ``commit``."""
        ...


class DerivedTable(Protocol):
    """A table the lake derives from its data files: every data file ``alb_logs/<rest>`` gets a sibling
    ``<prefix><rest>`` holding ``derive`` of its rows, written before the data file becomes visible and deleted
    with it, so the derived table is exactly once whenever the curated table is (``alblake.lake.generational``).
    ``derive`` is pure and may be given any part of a file's rows (the lake derives a large file batch by batch):
    the derived table's sums over its files then equal the curated table's."""

    @property
    def name(self) -> str:
        """The table's name (Glue, SQL views)."""
        ...

    @property
    def prefix(self) -> str:
        """Where its files are under the lake root (ends with '/', e.g. ``alb_rollup_1m/``)."""
        ...

    @property
    def schema(self) -> pa.Schema: ...

    @property
    def columns(self) -> Sequence[str]:
        """The curated columns ``derive`` reads (the lake reads only those: a file's other columns, such as
        8 KB user agents, never enter memory); ``derive`` gets NULL for any a file lacks."""
        ...

    def derive(self, rows: pa.Table) -> pa.Table:
        """The derived rows of some curated rows (``ARROW_SCHEMA``), in ``schema``."""
        ...


class ObjectReader(Protocol):
    def open(self, bucket: str, key: str) -> BinaryIO:
        """Open an object for sequential reading (bounded memory)."""
        ...


class RefreshResult(Protocol):
    @property
    def status(self) -> str: ...


class Refresher(Protocol):
    def request_refresh(self, account_id: str | None = None) -> RefreshResult:
        """Ask for a refresh if one is due; report what happened; never raise."""
        ...


class MetricsSink(Protocol):
    """The part of ``aws_lambda_powertools.Metrics`` the use cases use."""

    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class LoggerLike(Protocol):
    """The part of ``aws_lambda_powertools.Logger`` the use cases use."""

    def info(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def warning(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def error(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def exception(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def append_keys(self, **additional_keys: object) -> None: ...
    def remove_keys(self, keys: Iterable[str]) -> None: ...
