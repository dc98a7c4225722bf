"""S3 adapters: read a log object as a stream (``S3ObjectSource``); a lake in a bucket (``S3Store``)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from botocore.exceptions import ClientError

from alblake.errors import ObjectMissingError


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
        """Raises ``ObjectMissingError`` when the object does not exist (S3 says NoSuchKey)."""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchKey":
                raise ObjectMissingError(f"s3://{bucket}/{key} does not exist (deleted after its event?)") from None
            raise
        raw = _StreamingBodyReader(response["Body"])
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=self._buffer_size))


class S3Store:
    """``alblake.ports.ObjectStore`` on S3: key ``k`` is the object ``s3://bucket/prefix + k``.

    ``upload_file`` switches to multipart above its threshold; either way the object becomes visible under
    the final key only when the upload completes (single PUT or CompleteMultipartUpload are atomic), so a
    reader never sees a partial file. Files are staged under ``staging_root`` (Lambda: /tmp).
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, staging_root: Path | None = None) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        self._staging_root = staging_root

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def url(self, key: str) -> str:
        """Where ``key`` lands: ``s3://bucket/prefix + key``."""
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def staging_dir(self) -> Path:
        root = Path(self._staging_root or tempfile.gettempdir())
        root.mkdir(parents=True, exist_ok=True)
        return root

    def put_file(self, key: str, local_path: Path) -> None:
        extra = {"ContentType": _content_type(key)}
        self._client.upload_file(str(local_path), self.bucket, self.object_key(key), ExtraArgs=extra)

    def get(self, key: str) -> bytes | None:
        """A small object's content (the manifests), or None when it does not exist.

        Without s3:ListBucket (the ingest function is not granted it: least privilege) S3 answers a missing key
        with 403 AccessDenied rather than 404. Reading it as "no manifest" is fail-safe: that run deletes nothing.
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

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Keys (relative to the lake root) under ``prefix``; names starting with '.' or '_' are skipped."""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix)):
            for item in page.get("Contents", []):
                key = str(item["Key"]).removeprefix(self.prefix)
                if not any(part.startswith((".", "_")) for part in key.split("/")):
                    yield key


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
