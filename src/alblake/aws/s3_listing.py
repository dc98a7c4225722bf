"""Log objects in S3 as ingest sources: list a bucket prefix (ListObjectsV2) or read an S3 Inventory.

Only ALB access log objects are taken (``alblake.keys.classify_key``: test files, NLB, connection and
health-check logs are left out), then the date / load-balancer filter (``alblake.ingest.filters``). An object is
read as a stream (``S3ObjectReader``): nothing is downloaded to disk.

S3 Inventory (for buckets with millions of objects, where listing is slow): the ``manifest.json`` of one
inventory run names its data files (CSV, gzip-compressed, or Parquet) and their ``fileSchema``; each row has
``Bucket``, ``Key`` (URL-encoded in CSV inventories) and ``Size``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from alblake.aws.s3 import S3ObjectReader
from alblake.aws.session import client
from alblake.errors import InputError
from alblake.ingest.filters import ObjectFilter
from alblake.ingest.selection import Failure, Selection
from alblake.keys import AccessLogKey, classify_key
from alblake.s3_urls import parse_s3_url, s3_url


@dataclass(frozen=True)
class S3Object:
    """One log object in S3 (an ingest ``LogObject``; opened with this process's client)."""

    bucket: str
    key: str
    size: int

    @property
    def source_id(self) -> str:
        """The same id the Lambda pipeline uses, so the CLI and the Lambda write the same lake keys."""
        return s3_url(self.bucket, self.key)

    @property
    def name(self) -> str:
        return self.source_id

    def open(self) -> BinaryIO:
        return S3ObjectReader(client("s3")).open(self.bucket, self.key)


def list_objects(s3: Any, bucket: str, prefix: str, *, start_after: str = "") -> Iterator[S3Object]:
    """Every object under ``prefix``, in key order (ListObjectsV2, paginated), after ``start_after``."""
    paginator = s3.get_paginator("list_objects_v2")
    params: dict[str, str] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        params["StartAfter"] = start_after
    for page in paginator.paginate(**params):
        for item in page.get("Contents", []):
            yield S3Object(bucket, str(item["Key"]), int(item["Size"]))


_REGION_PREFIX = re.compile(r"^(?:.*/)?AWSLogs/\d{12}/elasticloadbalancing/[a-z0-9-]+/$")
_MAX_DAY_PREFIXES = 3660


def day_prefixes(prefix: str, object_filter: ObjectFilter) -> list[str]:
    """The ``yyyy/mm/dd/`` prefixes to list instead of ``prefix`` when it is an ELB region folder and the filter
    bounds both dates (listing a few days, not years of objects); else ``[prefix]``."""
    since, until = object_filter.since, object_filter.until
    if since is None or until is None or not _REGION_PREFIX.match(prefix):
        return [prefix]
    days = (until - since).days + 1
    if days > _MAX_DAY_PREFIXES:
        return [prefix]
    return [f"{prefix}{since + timedelta(days=n):%Y/%m/%d}/" for n in range(max(days, 0))]


def list_selected(s3: Any, bucket: str, prefix: str, object_filter: ObjectFilter,
                  *, start_after: str = "") -> Iterator[S3Object]:
    """Objects under ``prefix`` in key order, listing only the days the filter allows when the layout tells."""
    for day_prefix in day_prefixes(prefix, object_filter):
        yield from list_objects(s3, bucket, day_prefix, start_after=start_after)


def is_selected(key: str, object_filter: ObjectFilter) -> bool:
    kind = classify_key(key)
    return isinstance(kind, AccessLogKey) and object_filter.accepts_log_key(kind)


def select_s3(url: str, object_filter: ObjectFilter) -> Selection:
    """The ALB access log objects under ``s3://bucket/prefix`` that pass the filter."""
    selection = Selection()
    try:
        bucket, prefix = parse_s3_url(url)
        for item in list_selected(client("s3"), bucket, prefix, object_filter):
            if is_selected(item.key, object_filter):
                selection.objects.append(item)
            else:
                selection.skipped += 1
    except (ClientError, BotoCoreError, ValueError) as exc:
        selection.missing.append(Failure(url, f"cannot list: {exc}"))
        return selection
    if not selection.objects and not selection.skipped:
        selection.missing.append(Failure(url, "no object under this prefix"))
    return selection


class InventoryError(InputError, ValueError):
    """An S3 Inventory manifest this reader does not understand (the message says why)."""


def _get(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _csv_rows(data: bytes, columns: list[str]) -> Iterator[tuple[str, str, int]]:
    index = {name: i for i, name in enumerate(columns)}
    for row in csv.reader(io.StringIO(gzip.decompress(data).decode("utf-8"))):
        size = row[index["Size"]] if "Size" in index else ""
        yield row[index["Bucket"]], unquote(row[index["Key"]]), int(size) if size else 0


def _parquet_rows(data: bytes) -> Iterator[tuple[str, str, int]]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data), columns=["bucket", "key", "size"])
    for bucket, key, size in zip(*(table.column(c).to_pylist() for c in ("bucket", "key", "size")), strict=True):
        yield str(bucket), str(key), int(size or 0)


def inventory_objects(s3: Any, manifest_url: str) -> Iterator[S3Object]:
    """Every object an S3 Inventory run lists (``s3://.../manifest.json``), in the inventory's order."""
    parts = urlsplit(manifest_url)
    if parts.scheme != "s3" or not parts.path.endswith("manifest.json"):
        raise InventoryError(f"{manifest_url}: expected s3://bucket/.../manifest.json of an S3 Inventory")
    manifest = json.loads(_get(s3, parts.netloc, parts.path.lstrip("/")))
    file_format = str(manifest.get("fileFormat", "")).upper()
    if file_format not in ("CSV", "PARQUET"):
        raise InventoryError(f"{manifest_url}: inventory format {file_format or '?'} (CSV and Parquet are read)")
    columns = [c.strip() for c in str(manifest.get("fileSchema", "")).split(",")]
    if file_format == "CSV" and not {"Bucket", "Key"} <= set(columns):
        raise InventoryError(f"{manifest_url}: fileSchema lacks Bucket and Key")
    destination = str(manifest.get("destinationBucket", "")).removeprefix("arn:aws:s3:::") or parts.netloc
    for entry in manifest.get("files", []):
        data = _get(s3, destination, str(entry["key"]))
        rows = _csv_rows(data, columns) if file_format == "CSV" else _parquet_rows(data)
        for bucket, key, size in rows:
            yield S3Object(bucket, key, size)


__all__ = [
    "InventoryError", "S3Object", "day_prefixes", "inventory_objects", "list_objects", "list_selected", "select_s3",
]
