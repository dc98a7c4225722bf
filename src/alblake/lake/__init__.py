"""The lake: its layout (``layout``), what a conversion hands over (``staged``) and the commit seam.

Every writer goes through ``Lake.commit`` (``alblake.ports``) and every reader through
``Lake.visible_files``; ``open_lake`` picks the implementation for a lake root. Today that is
``GenerationalLake`` (``genlake``: HiveLake's layout plus compacted generations, docs/COMPACTION.md) over a
``LocalStore`` (a directory) or an S3 store with a Glue registrar (``alblake.aws``). ``HiveLake`` stays as the
plain one-file-per-object implementation (the generational lake reads and extends its layout).
"""

from __future__ import annotations

from pathlib import Path

from alblake.lake.genlake import GenerationalLake
from alblake.lake.local import LocalStore
from alblake.ports import Lake, ObjectStore, PartitionRegistrar


def open_lake(store: ObjectStore, registrar: PartitionRegistrar | None = None) -> Lake:
    """The lake in ``store`` (with ``registrar`` as its catalog, if any)."""
    return GenerationalLake(store, registrar)


def open_local_lake(root: Path) -> Lake:
    """The lake in a local directory (no catalog)."""
    return open_lake(LocalStore(root))


class LakeLocationError(ValueError):
    """A lake location this build cannot open (the message says why)."""


def open_lake_at(location: str | Path) -> Lake:
    """The lake at a location given by a user: a local directory (``s3://`` lakes: see ``alblake.aws``)."""
    text = str(location)
    if "://" in text:
        raise LakeLocationError(f"{text}: only local lake directories are supported")
    return open_local_lake(Path(text))
