"""Generations of a partition-hour and the per-partition state object (pure: no I/O, no AWS).

A partition-hour's rows live in exactly one *live* folder at a time:

- generation 0 is the Hive folder ``alb_logs/<partition path>/`` (``alblake.lake.layout``: one file per
  source object), so a lake that was never compacted is laid out exactly as before;
- generation N >= 1 is ``alb_logs/compacted/<partition path>/g<NNNNNN>-<token>/`` (one folder per attempt, never
  written twice), outside the generation-0 folder, because Athena reads every object under a partition's
  Location, subfolders included.

``compaction/state/<partition path>.json`` says which folder is live and which source object sits in which file;
it is only replaced by compare-and-swap. A partition without a state object is live at generation 0.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from alblake.errors import LakeStateError
from alblake.lake.layout import DATA_PREFIX, Partition, partition_location
from alblake.schema import PARTITION_KEYS

COMPACTED_PREFIX = f"{DATA_PREFIX}compacted/"
STATE_PREFIX = "compaction/state/"
LINEAGE_PREFIX = "compaction/lineage/"
PENDING_PREFIX = "compaction/pending/"
CURSOR_KEY = "compaction/cursor.json"
COMPACTED_FILE_PREFIX = "c-"
STATE_FORMAT = 1

_GEN_FOLDER = re.compile(r"/g(\d{6,})-[0-9a-f]+/?$")
_PARTITION_PATH = re.compile(r"^elb_name=([^/]+)/day=(\d{4}-\d{2}-\d{2})/hour=(\d{2})$")


class StateFormatError(LakeStateError, ValueError):
    """A state object that cannot be read (the message names the key)."""


def generation_folder(partition: Partition, generation: int, token: str | None = None) -> str:
    """Key prefix (ends with '/') of a generation's folder; a fresh random token for every new attempt."""
    if generation == 0:
        return partition_location(partition)
    return f"{COMPACTED_PREFIX}{partition.path}/g{generation:06d}-{token or secrets.token_hex(4)}/"


def generation_of_location(location: str) -> int:
    """The generation a folder or catalog Location names (0 for the Hive folder and anything unrecognised)."""
    match = _GEN_FOLDER.search(location)
    return int(match.group(1)) if match else 0


def state_key(partition: Partition) -> str:
    return f"{STATE_PREFIX}{partition.path}.json"


def pending_key(partition: Partition) -> str:
    return f"{PENDING_PREFIX}{partition.path}"


def lineage_key(data_key: str) -> str:
    """Where the row lineage of a compacted data file lives (outside the table: readers never see it)."""
    return f"{LINEAGE_PREFIX}{data_key.removeprefix(DATA_PREFIX)}"


def partition_of_path(path: str) -> Partition | None:
    """The partition of a Hive path ``elb_name=../day=../hour=..`` (None when it is not one)."""
    match = _PARTITION_PATH.match(path.strip("/"))
    if match is None:
        return None
    try:
        elb = unquote(match.group(1), errors="strict")
    except UnicodeDecodeError:
        return None
    return Partition(elb, match.group(2), match.group(3))


@dataclass
class SourceRecord:
    """Where one source object's rows sit in the live generation."""

    digest: str  # sha256 of the object's per-object Parquet file for this partition (as converted)
    rows: int
    file: str  # file name inside the live folder: '<stem>.parquet' or a compacted 'c-....parquet'
    late: bool = False  # committed after the partition had been compacted

    @property
    def compacted(self) -> bool:
        return self.file.startswith(COMPACTED_FILE_PREFIX)


@dataclass
class RetiredFolder:
    folder: str
    at: str  # ISO time it stopped being live


@dataclass
class PartitionState:
    """What is live for one partition-hour (see the module docstring)."""

    partition: Partition
    generation: int = 0
    live: str = ""
    sources: dict[str, SourceRecord] = field(default_factory=dict)  # by object stem; complete for generation >= 1
    retired: list[RetiredFolder] = field(default_factory=list)
    compacted_at: str | None = None
    revision: int = 0  # bumped by every write, so a compare-and-swap never mistakes a rewrite for no change
    # a fresh random value in every write: a writer whose conditional write was answered "condition failed"
    # re-reads the state and knows by this value whether the write that exists is its own (a lost
    # acknowledgement: the SDK retried a write that had succeeded) or another writer's
    write_token: str = ""

    def __post_init__(self) -> None:
        if not self.live:
            self.live = generation_folder(self.partition, 0)

    def to_json(self) -> bytes:
        body: dict[str, Any] = {
            "format": STATE_FORMAT,
            "partition": dict(zip(PARTITION_KEYS, self.partition.values, strict=True)),
            "generation": self.generation,
            "live": self.live,
            "sources": {
                stem: {"digest": r.digest, "rows": r.rows, "file": r.file, "late": r.late}
                for stem, r in self.sources.items()
            },
            "retired": [{"folder": r.folder, "at": r.at} for r in self.retired],
            "compacted_at": self.compacted_at,
            "revision": self.revision,
            "write_token": self.write_token,
        }
        # one line, keys sorted: json's C encoder (an indented state of a batch-written hour cost ~1 ms a write)
        return (json.dumps(body, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, content: bytes, key: str) -> PartitionState:
        try:
            body = json.loads(content)
            if body.get("format") != STATE_FORMAT:
                raise StateFormatError(f"{key}: unknown state format {body.get('format')!r}")
            p = body["partition"]
            return cls(
                partition=Partition(p["elb_name"], p["day"], p["hour"]),
                generation=int(body["generation"]),
                live=str(body["live"]),
                sources={stem: SourceRecord(**record) for stem, record in body["sources"].items()},
                retired=[RetiredFolder(**r) for r in body["retired"]],
                compacted_at=body.get("compacted_at"),
                revision=int(body.get("revision", 0)),
                write_token=str(body.get("write_token", "")),
            )
        except StateFormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StateFormatError(f"{key}: unreadable partition state ({type(error).__name__}: {error})") from None


def new_write_token() -> str:
    """A value no other write of any state ever carries (16 random hex digits)."""
    return secrets.token_hex(8)


def now_iso(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
