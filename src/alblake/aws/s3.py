"""S3 adapters: read a log object as a stream (``S3ObjectReader``); a lake in a bucket (``S3Store``)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from botocore.exceptions import ClientError

from alblake.errors import ObjectMissingError
from alblake.ports import ConditionFailedError, Versioned
from alblake.s3_urls import normalise_prefix, s3_url

# S3 answers a failed If-Match / If-None-Match with 412 PreconditionFailed, and a conditional write that raced
# with another one on the same key with 409 ConditionalRequestConflict: both mean "someone else wrote first".
_CONDITION_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


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


class _RangeReader(io.RawIOBase):
    """A seekable raw stream over one S3 object: each read is a ranged GetObject (for a Parquet footer, a file's
    last bytes, without the rest). Wrapped in ``io.BufferedReader`` so small reads share one request."""

    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        super().__init__()
        self._client, self._bucket, self._key, self._size = client, bucket, key, size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        end = min(self._position + len(view), self._size)
        if end <= self._position:
            return 0
        byte_range = f"bytes={self._position}-{end - 1}"
        response = self._client.get_object(Bucket=self._bucket, Key=self._key, Range=byte_range)
        data: bytes = response["Body"].read()
        view[: len(data)] = data
        self._position += len(data)
        return len(data)


class S3ObjectReader:
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
                raise ObjectMissingError(f"{s3_url(bucket, key)} does not exist (deleted after its event?)") from None
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
        return s3_url(self.bucket, self.object_key(key))

    def staging_dir(self) -> Path:
        root = Path(self._staging_root or tempfile.gettempdir())
        root.mkdir(parents=True, exist_ok=True)
        return root

    def put_file(self, key: str, local_path: Path) -> None:
        extra = {"ContentType": _content_type(key)}
        self._client.upload_file(str(local_path), self.bucket, self.object_key(key), ExtraArgs=extra)

    def get(self, key: str) -> bytes | None:
        """A small object's content, or None when it does not exist.

        Where the caller lacks s3:ListBucket, S3 answers a missing key with 403 AccessDenied rather than 404; for
        the object manifests that is read as "no manifest", which is fail-safe (that run deletes nothing).
        """
        try:
            versioned = self.get_versioned(key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("AccessDenied", "403"):
                return None
            raise
        return None if versioned is None else versioned.content

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def list_keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Keys (relative to the lake root) under ``prefix`` in key order, after ``start_after`` when given;
        names starting with '.' or '_' are skipped."""
        paginator = self._client.get_paginator("list_objects_v2")
        after = {"StartAfter": self.object_key(start_after)} if start_after else {}
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix), **after):
            for item in page.get("Contents", []):
                key = str(item["Key"]).removeprefix(self.prefix)
                if not any(part.startswith((".", "_")) for part in key.split("/")):
                    yield key

    def list_sizes(self, prefix: str) -> Iterator[tuple[str, int]]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.object_key(prefix)):
            for item in page.get("Contents", []):
                key = str(item["Key"]).removeprefix(self.prefix)
                if not any(part.startswith((".", "_")) for part in key.split("/")):
                    yield key, int(item["Size"])

    def copy(self, source_key: str, key: str) -> None:
        """A server-side copy (the managed ``copy`` switches to a multipart copy above 5 GB)."""
        source = {"Bucket": self.bucket, "Key": self.object_key(source_key)}
        try:
            self._client.copy(source, self.bucket, self.object_key(key), ExtraArgs={"ContentType": _content_type(key)})
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(self.url(source_key)) from None
            raise

    def open(self, key: str) -> BinaryIO:
        """A seekable file over the object, read in ranges through this store's client (its session's endpoint,
        region and credentials: no second way of reaching S3)."""
        try:
            size = int(self._client.head_object(Bucket=self.bucket, Key=self.object_key(key))["ContentLength"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(self.url(key)) from None
            raise
        raw = _RangeReader(self._client, self.bucket, self.object_key(key), size)
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=1 << 16))

    def download(self, key: str, local_path: Path) -> None:
        try:
            self._client.download_file(self.bucket, self.object_key(key), str(local_path))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(self.url(key)) from None
            raise

    def get_versioned(self, key: str) -> Versioned | None:
        """Content and ETag, or None when the key does not exist (404). A 403 raises: for a partition state,
        "denied" must never read as "missing" (the functions have s3:ListBucket on the lake bucket, so S3 answers
        a missing key with 404)."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return Versioned(bytes(response["Body"].read()), str(response["ETag"]))

    def put_bytes_if(self, key: str, content: bytes, expected_tag: str | None) -> None:
        """PutObject with If-Match (the expected ETag) or If-None-Match '*' (must not exist)."""
        condition = {"IfMatch": expected_tag} if expected_tag is not None else {"IfNoneMatch": "*"}
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self.object_key(key), Body=content, ContentType=_content_type(key), **condition
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _CONDITION_CODES or status in ("412", "409") or code == "NoSuchKey":
                raise ConditionFailedError(f"{self.url(key)}: {code or status}") from None
            raise

    def put_bytes(self, key: str, content: bytes) -> None:
        self._client.put_object(
            Bucket=self.bucket, Key=self.object_key(key), Body=content, ContentType=_content_type(key)
        )


def _content_type(key: str) -> str:
    if key.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    if key.endswith(".jsonl"):
        return "application/x-ndjson"
    if key.endswith(".json"):
        return "application/json"
    return "application/octet-stream"
