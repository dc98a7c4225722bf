"""Where everything lives in a lake: the one module that knows the layout (pure: no I/O, no AWS).

A lake is a tree of keys under one root (a local directory or ``s3://bucket/prefix/``)::

    alb_logs/elb_name=<lb>/day=YYYY-MM-DD/hour=HH/<stem>.parquet    data, one file per source object and hour
    quarantine/<stem>.jsonl                                          lines of that object that are not rows
    manifests/<stem>.json                                            what the object's last commit wrote

Compacted generations of a partition-hour (``alb_logs/compacted/...``) and the per-partition state that says
which folder readers read: ``alblake.lake.generations`` and docs/COMPACTION.md.

``<stem>`` derives from the source object alone (:func:`object_stem`: an ALB log file's name, wherever it is read
from; another file's path or URL), so converting the same object again produces the same keys: a re-run replaces
its files instead of adding rows. Partition values are
Hive-escaped; ``elb_name`` is the load balancer's name, ``day`` and ``hour`` are the UTC hour of each request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from alblake.keys import AccessLogKey, classify_key
from alblake.schema import PARTITION_KEYS, TABLE_NAME

DATA_PREFIX = f"{TABLE_NAME}/"  # the Glue table's Location, relative to the lake root
QUARANTINE_PREFIX = "quarantine/"
MANIFEST_PREFIX = "manifests/"

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")  # outside this set: escaped in partition values, '_' in names
_STEM_SUFFIXES = (".gz", ".log", ".txt")
_READABLE_STEM_CHARS = 120


@dataclass(frozen=True, order=True)
class Partition:
    """One partition-hour of the table: a load balancer's requests in one UTC hour."""

    elb_name: str
    day: str  # YYYY-MM-DD
    hour: str  # HH

    @classmethod
    def of_hour(cls, elb_name: str, hour_start: datetime) -> Partition:
        """The partition of the hour starting at ``hour_start`` (UTC); years are always four digits."""
        utc = hour_start.astimezone(UTC)
        return cls(elb_name, f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}", f"{utc.hour:02d}")

    @property
    def values(self) -> list[str]:
        """The partition values in ``PARTITION_KEYS`` order (as Glue stores them)."""
        return [self.elb_name, self.day, self.hour]

    @property
    def path(self) -> str:
        """The Hive path ``elb_name=<escaped>/day=YYYY-MM-DD/hour=HH`` below the table's location."""
        escaped = (escape_partition_value(self.elb_name), self.day, self.hour)
        return "/".join(f"{key}={value}" for key, value in zip(PARTITION_KEYS, escaped, strict=True))


def escape_partition_value(value: str) -> str:
    """Hive-style escaping of a partition value (ALB names are [A-Za-z0-9-], so normally a no-op)."""
    return _UNSAFE_CHARS.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), value)


def object_identity(source_id: str) -> str:
    """What makes a source object itself wherever it is read from. An ALB log file's name is unique (account,
    Region, load balancer, node, interval end and a random part): the same object read from S3, from a local copy
    of the bucket or from a renamed folder is one object. Any other file is its source id (its path or URL)."""
    name = source_id.rstrip("/").rsplit("/", 1)[-1]
    return f"alb:{name}" if isinstance(classify_key(name), AccessLogKey) else source_id


def object_stem(source_id: str) -> str:
    """Deterministic, filesystem-safe file stem for a source object: readable name plus a hash of its identity
    (``object_identity``), so it depends on the object alone."""
    return _stem(source_id, object_identity(source_id))


def legacy_stem(source_id: str) -> str:
    """The stem lakes written before object identities gave an object: a hash of its source id (where it was read
    from). A commit of an ALB-named object replaces what a legacy commit from the same source id wrote."""
    return _stem(source_id, source_id)


def _stem(source_id: str, identity: str) -> str:
    base = source_id.rstrip("/").rsplit("/", 1)[-1]
    for suffix in _STEM_SUFFIXES:
        base = base.removesuffix(suffix)
    # never a hidden name: readers (Hive, Athena, DuckDB, pyarrow, this lake's listing) skip names starting with
    # '_' or '.', and an object called '_web.log' or ' a.log' would otherwise be written and never read
    readable = _UNSAFE_CHARS.sub("_", base)[:_READABLE_STEM_CHARS].lstrip("_.") or "log"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return f"{readable}.{digest}"


def partition_location(partition: Partition) -> str:
    """Key prefix of a partition's files (ends with '/')."""
    return f"{DATA_PREFIX}{partition.path}/"


def data_key(partition: Partition, stem: str) -> str:
    return f"{partition_location(partition)}{stem}.parquet"


def quarantine_key(stem: str) -> str:
    return f"{QUARANTINE_PREFIX}{stem}.jsonl"


def manifest_key(stem: str) -> str:
    return f"{MANIFEST_PREFIX}{stem}.json"


def is_own_file(key: str, stem: str) -> bool:
    """Whether ``key`` is a data or quarantine file of the object with this stem (what its manifest may list)."""
    return (
        key.startswith((DATA_PREFIX, QUARANTINE_PREFIX))
        and ".." not in key.split("/")
        and key.rsplit("/", 1)[-1].startswith(f"{stem}.")
    )


def read_manifest(content: bytes | None, stem: str) -> list[str]:
    """Keys an earlier manifest of the object lists; only the object's own lake files count.

    A missing or unreadable manifest lists nothing, so nothing is deleted (fail-safe).
    """
    if content is None:
        return []
    try:
        files = json.loads(content)["files"]
    except (ValueError, KeyError, TypeError):
        return []
    if not isinstance(files, list):
        return []
    return [key for key in files if isinstance(key, str) and is_own_file(key, stem)]


NAME_MAX_BYTES = 255  # one file or directory name on local filesystems (ext4, XFS, APFS)
KEY_MAX_BYTES = 1024  # an S3 object key, UTF-8


def unstorable_reason(partition: Partition, stem: str) -> str | None:
    """Why the data file of ``partition`` cannot be stored in every lake, or None when it can.

    Only a long (or much escaped) ``elb_name`` can be too long: day and hour have a fixed width and stems are
    short. Every name within NAME_MAX_BYTES also keeps a data key far below S3's KEY_MAX_BYTES (under 450
    bytes), which leaves room for the lake's own prefix.
    """
    longest = max(len(name.encode()) for name in data_key(partition, stem).split("/"))
    if longest > NAME_MAX_BYTES:
        return f"elb name too long for a partition path ({longest} bytes escaped; a name holds {NAME_MAX_BYTES})"
    return None
