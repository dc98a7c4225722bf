"""A lake in an S3 bucket, opened by its URL (``s3://bucket/prefix``) for the CLI's commands."""

from __future__ import annotations

from urllib.parse import urlsplit

from alblake.aws.s3 import S3Store
from alblake.aws.session import client
from alblake.lake import open_lake
from alblake.ports import Lake


class S3UrlError(ValueError):
    """Not an ``s3://bucket[/prefix]`` URL."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; the prefix may be empty."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise S3UrlError(f"{url}: expected s3://bucket/prefix")
    return parts.netloc, parts.path.lstrip("/")


def open_s3_lake(url: str) -> Lake:
    """The lake under ``s3://bucket/prefix`` (no catalog: the CLI does not register Glue partitions)."""
    bucket, prefix = parse_s3_url(url)
    return open_lake(S3Store(client("s3"), bucket, prefix))


def open_s3_store(url: str) -> S3Store:
    """The object store under ``s3://bucket/prefix`` (what a lake there is made of)."""
    bucket, prefix = parse_s3_url(url)
    return S3Store(client("s3"), bucket, prefix)
