"""A converted object waiting to be committed: its staged local files and counts (pure)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

from alblake.lake.layout import Partition, object_stem


@dataclass(frozen=True)
class StagedData:
    """One partition's rows of the object, in a local Parquet file, and the file of each of the lake's derived
    tables (by name) for exactly those rows when the conversion derived them (else the commit derives them)."""

    partition: Partition
    path: Path
    rows: int
    derived: dict[str, Path] = field(default_factory=dict)


@dataclass
class StagedObject:
    """Everything one conversion produced; nothing of it is in the lake until ``Lake.commit``.

    Counts: ``lines == rows + quarantined + erased`` (every line is a row, a quarantined line, or dropped by the
    lake's lifecycle: an erasure's criteria, an expired hour; ``alblake.ingest.core``). The quarantine file
    stores the first ``quarantine_stored`` of the quarantined lines verbatim and ends with a summary record;
    ``quarantine_reasons`` counts all of them by kind of reason.
    """

    source_id: str
    stage_dir: Path
    data: list[StagedData] = field(default_factory=list)
    quarantine_path: Path | None = None
    lines: int = 0
    rows: int = 0
    quarantined: int = 0
    bytes_in: int = 0  # bytes read from the object (compressed)
    text_bytes: int = 0  # bytes of log text after decompression
    max_time: datetime | None = None
    quarantine_stored: int = 0  # quarantined lines stored verbatim in the quarantine file
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # every quarantined line, by kind of reason
    batched_rows: dict[Partition, int] = field(default_factory=dict)  # rows held in its batch's ``StagedRows``
    erased: int = 0  # rows and quarantined lines the lake's lifecycle dropped before the commit

    @cached_property
    def stem(self) -> str:
        return object_stem(self.source_id)

    @property
    def partitions(self) -> list[Partition]:
        return sorted({d.partition for d in self.data} | set(self.batched_rows))

    def discard(self) -> None:
        """Remove the staged files (after a commit, or when giving up on the object). Idempotent."""
        shutil.rmtree(self.stage_dir, ignore_errors=True)


@dataclass(frozen=True)
class StagedRows:
    """One partition's rows of several objects of a batch, in memory, with the source of every row."""

    partition: Partition
    table: pa.Table
    stems: list[str]
    lineage: np.ndarray  # int32, one per row: the index of its object's stem in ``stems``


@dataclass
class StagedBatch:
    """Small objects converted together (``alblake.convert.core.convert_batch``): their rows by partition, each row
    with its source, and each object's counts and quarantine file (``StagedObject`` with ``batched_rows``).
    Committed by ``Lake.commit_batch``: one new file per partition for all of them, instead of one per object
    and partition."""

    stage_dir: Path
    objects: list[StagedObject] = field(default_factory=list)
    rows: list[StagedRows] = field(default_factory=list)

    def discard(self) -> None:
        shutil.rmtree(self.stage_dir, ignore_errors=True)
