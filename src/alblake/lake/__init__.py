"""The lake: its layout (``layout``), what a conversion hands over (``staged``) and the commit seam.

Every writer goes through ``Lake.commit`` (``alblake.ports``) and every reader through
``Lake.visible_files``; ``open_lake`` picks the implementation for a lake root. Today that is
``GenerationalLake`` (``genlake``: the Hive layout of ``layout`` plus compacted generations, docs/COMPACTION.md)
over a ``LocalStore`` (a directory) or an S3 store with a Glue registrar (``alblake.aws``). A new table format
is one more implementation here.
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

