"""A lake in an S3 bucket, opened by its URL (``s3://bucket/prefix``) for the CLI's commands."""

from __future__ import annotations

from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from alblake.aws.glue import GlueTableLocationError, verified_registrar
from alblake.aws.s3 import S3Store
from alblake.aws.session import client
from alblake.errors import LocationError
from alblake.lake import open_lake
from alblake.lake.layout import DATA_PREFIX
from alblake.ports import Lake
from alblake.schema import TABLE_NAME


class S3UrlError(LocationError, ValueError):
    """Not an ``s3://bucket[/prefix]`` URL, or its catalog cannot be used (the message says why)."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; the prefix may be empty."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise S3UrlError(f"{url}: expected s3://bucket/prefix")
    return parts.netloc, parts.path.lstrip("/")


def open_s3_lake(url: str, *, glue_database: str | None = None, glue_table: str = TABLE_NAME) -> Lake:
    """The lake under ``s3://bucket/prefix``; with ``glue_database``, commits register their partitions in
    that Glue table (the deployed lake's catalog), whose Location must be the lake's ``alb_logs/`` prefix."""
    store = open_s3_store(url)
    if glue_database is None:
        return open_lake(store)
    try:
        registrar = verified_registrar(client("glue"), glue_database, glue_table, store.url(DATA_PREFIX))
    except (GlueTableLocationError, ClientError) as exc:
        raise S3UrlError(f"{url}: Glue table {glue_database}.{glue_table}: {exc}") from exc
    return open_lake(store, registrar)


def open_s3_store(url: str) -> S3Store:
    """The object store under ``s3://bucket/prefix`` (what a lake there is made of)."""
    bucket, prefix = parse_s3_url(url)
    return S3Store(client("s3"), bucket, prefix)
