"""``s3://`` URLs, built and parsed in one place (pure: no AWS imports).

An S3 object's source id is its URL, ``s3://bucket/key`` (``s3_url``): the ingest function and the command
line build it alike, so both write the same lake keys for the same object. A lake, or a prefix to list, is
named by ``s3://bucket/prefix`` (``parse_s3_url``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from alblake.errors import LocationError

S3_URL_START = "s3://"


class S3UrlError(LocationError, ValueError):
    """Not an ``s3://bucket[/prefix]`` URL, or its catalog cannot be used (the message says why)."""


def is_s3_url(text: str) -> bool:
    return text.startswith(S3_URL_START)


def s3_url(bucket: str, key: str) -> str:
    """``s3://bucket/key``: where an object is, and an S3 object's source id."""
    return f"{S3_URL_START}{bucket}/{key}"


def bucket_and_key(source_id: str) -> tuple[str, str] | None:
    """The bucket and key of an ``s3_url`` (the key exactly as it is, whatever characters it holds), or None
    when ``source_id`` is not an ``s3://`` URL."""
    if not is_s3_url(source_id):
        return None
    bucket, _, key = source_id.removeprefix(S3_URL_START).partition("/")
    return bucket, key


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; the prefix may be empty."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise S3UrlError(f"{url}: expected s3://bucket/prefix")
    return parts.netloc, parts.path.lstrip("/")


def normalise_prefix(prefix: str) -> str:
    """A key prefix as the lake uses it: '' stays ''; 'a/b' and '/a/b/' become 'a/b/'."""
    p = prefix.strip("/")
    return f"{p}/" if p else ""
