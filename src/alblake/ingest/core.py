"""The one core call: ``ingest_object`` converts one log object and commits it to a lake (convert -> commit ->
discard), with the same result wherever it runs: the ingest function (``alblake.service.ingest``) and the
command line (``alblake.ingest.runner``) both call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from alblake.convert.core import convert_stream
from alblake.convert.decompress import BLOCK_SIZE
from alblake.lake.layout import Partition
from alblake.lake.staged import StagedObject
from alblake.ports import CommitResult, Lake


@dataclass(frozen=True)
class IngestedObject:
    """What ingesting one object did: its counts and what its commit changed in the lake."""

    source_id: str
    lines: int
    rows: int
    quarantined: int
    bytes_in: int
    text_bytes: int
    max_time: datetime | None
    partitions: list[Partition]
    commit: CommitResult

    @classmethod
    def of(cls, staged: StagedObject, commit: CommitResult) -> IngestedObject:
        return cls(
            source_id=staged.source_id,
            lines=staged.lines,
            rows=staged.rows,
            quarantined=staged.quarantined,
            bytes_in=staged.bytes_in,
            text_bytes=staged.text_bytes,
            max_time=staged.max_time,
            partitions=staged.partitions,
            commit=commit,
        )


def ingest_object(
    open_stream: Callable[[], BinaryIO], source_id: str, lake: Lake, *, block_size: int = BLOCK_SIZE
) -> IngestedObject:
    """Convert the object ``open_stream()`` reads and commit it to ``lake``; the staged files are always removed.

    Raises ``InputError`` for an object that can never be converted (nothing of it is committed) and lets
    store/catalog errors through (a retry of the same object is safe: commits replace, never add).
    """
    with open_stream() as stream:
        staged = convert_stream(stream, source_id, lake.staging_dir(), block_size=block_size)
    try:
        commit = lake.commit(staged)
    finally:
        staged.discard()
    return IngestedObject.of(staged, commit)
