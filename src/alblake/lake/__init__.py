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


class LakeLocationError(ValueError):
    """A lake location this build cannot open (the message says why)."""


def open_lake_at(location: str | Path, *, glue_database: str | None = None) -> Lake:
    """The lake at a location given by a user: a local directory or ``s3://bucket/prefix``.

    An S3 lake is opened by ``alblake.aws`` (imported only then: the local path needs no AWS libraries) with
    the standard AWS configuration (profile, region, ``AWS_ENDPOINT_URL``); with ``glue_database`` its commits
    register partitions in that database's ``alb_logs`` table.
    """
    text = str(location)
    if glue_database is not None and not text.startswith("s3://"):
        raise LakeLocationError(f"{text}: a Glue catalog goes with an s3:// lake only")
    if text.startswith("s3://"):
        try:
            from alblake.aws.s3_lake import S3UrlError, open_s3_lake
        except ImportError as exc:  # the aws extras (boto3) are not installed
            raise LakeLocationError(f"{text}: s3:// lakes need the aws extras (pip install 'alblake[aws]')") from exc
        try:
            return open_s3_lake(text, glue_database=glue_database)
        except S3UrlError as exc:
            raise LakeLocationError(str(exc)) from exc
    if "://" in text:
        raise LakeLocationError(f"{text}: a lake is a local directory or s3://bucket/prefix")
    return open_local_lake(Path(text))
