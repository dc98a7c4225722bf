"""S3 adapters: read a source object as a stream; publish, read back and delete lake files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from botocore.exceptions import ClientError


class ObjectSource(Protocol):
    def open(self, bucket: str, key: str) -> BinaryIO:
        """Open an object for sequential reading (bounded memory)."""
        ...


class _StreamingBodyReader(io.RawIOBase):
    """A raw binary stream over a botocore ``StreamingBody``.

    Wrapped in ``io.BufferedReader`` so gzip/isal readers get ``readinto``/``peek`` semantics; memory use is
    bounded by the buffer size, never the object size.
    """

    def __init__(self, body: Any) -> None:
        super().__init__()
        self._body = body
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data: bytes = self._body.read(len(view))
        n = len(data)
        view[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


class S3ObjectSource:
    """Opens S3 objects with ``get_object`` and streams the body."""

    def __init__(self, client: Any, buffer_size: int = 1 << 20) -> None:
        self._client = client
        self._buffer_size = buffer_size

    def open(self, bucket: str, key: str) -> BinaryIO:
        response = self._client.get_object(Bucket=bucket, Key=key)
        raw = _StreamingBodyReader(response["Body"])
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=self._buffer_size))


class S3LakeSink:
    """``alblake.sinks.LakeSink`` on S3: each staged file is uploaded to ``s3://bucket/prefix + key``.

    ``upload_file`` switches to multipart above its threshold; either way the object becomes visible under
    the final key only when the upload completes (single PUT or CompleteMultipartUpload are atomic), so a
    reader never sees a partial file. Keys are deterministic, so a repeated publish overwrites identical
    content instead of adding rows.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def url(self, key: str) -> str:
        """Where ``key`` lands: ``s3://bucket/prefix + key``."""
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def publish(self, key: str, local_path: Path) -> None:
        extra = {"ContentType": _content_type(key)}
        self._client.upload_file(str(local_path), self.bucket, self.object_key(key), ExtraArgs=extra)

    def read(self, key: str) -> bytes | None:
        """A small object's content (the source manifests), or None when it does not exist.

        Without s3:ListBucket (not granted: least privilege) S3 answers a missing key with 403 AccessDenied
        rather than 404. Reading it as "no manifest" is fail-safe: that run deletes nothing.
        """
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied", "403"):
                return None
            raise
        return bytes(response["Body"].read())

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.object_key(key))


def normalise_prefix(prefix: str) -> str:
    """'' stays ''; 'a/b' and '/a/b/' become 'a/b/'."""
    p = prefix.strip("/")
    return f"{p}/" if p else ""


def _content_type(key: str) -> str:
    if key.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    if key.endswith(".jsonl"):
        return "application/x-ndjson"
    if key.endswith(".json"):
        return "application/json"
    return "application/octet-stream"
