"""``s3://`` locations: the lake, object store and log objects that an S3 URL names, for the command line.

``alblake.locations`` loads this module (``S3Scheme``) only when a location is an ``s3://`` URL, so local work
needs no AWS library.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from alblake.aws.glue import GlueTableLocationError, derived_registrars, verified_registrar
from alblake.aws.s3 import S3Store
from alblake.aws.s3_listing import S3Object, select_s3
from alblake.aws.session import client
from alblake.ingest.filters import ObjectFilter
from alblake.ingest.selection import Failure, LogObject, Selection
from alblake.lake.derived import default_derived_tables
from alblake.lake.generational import open_lake
from alblake.lake.layout import DATA_PREFIX
from alblake.ports import Lake, ObjectStore
from alblake.s3_urls import S3UrlError, bucket_and_key, parse_s3_url
from alblake.schema import TABLE_NAME


def open_s3_lake(url: str, *, glue_database: str | None = None, glue_table: str = TABLE_NAME) -> Lake:
    """The lake under ``s3://bucket/prefix``; with ``glue_database``, commits register their partitions in
    that Glue table (the deployed lake's catalog), whose Location must be the lake's ``alb_logs/`` prefix."""
    store = open_s3_store(url)
    if glue_database is None:
        return open_lake(store)
    try:
        registrar = verified_registrar(client("glue"), glue_database, glue_table, store.url(DATA_PREFIX))
        derived = derived_registrars(client("glue"), glue_database, default_derived_tables(), store.url)
    except (GlueTableLocationError, ClientError) as exc:
        raise S3UrlError(f"{url}: Glue table {glue_database}.{glue_table}: {exc}") from exc
    return open_lake(store, registrar, derived)


def open_s3_store(url: str) -> S3Store:
    """The object store under ``s3://bucket/prefix`` (what a lake there is made of)."""
    bucket, prefix = parse_s3_url(url)
    return S3Store(client("s3"), bucket, prefix)


class S3Scheme:
    """``alblake.locations.RemoteScheme`` for ``s3://`` URLs, with this process's boto3 clients."""

    def open_lake(self, url: str, *, glue_database: str | None) -> Lake:
        return open_s3_lake(url, glue_database=glue_database)

    def open_store(self, url: str) -> ObjectStore:
        return open_s3_store(url)

    def select_objects(self, url: str, object_filter: ObjectFilter) -> Selection:
        return select_s3(url, object_filter)

    def log_object(self, source_id: str) -> LogObject:
        found = bucket_and_key(source_id)
        if found is None:
            raise S3UrlError(f"{source_id}: expected s3://bucket/key")
        return S3Object(*found, 0)

    def existing_object(self, source_id: str) -> LogObject | Failure:
        found = bucket_and_key(source_id)
        if found is None:
            return Failure(source_id, "not an s3://bucket/key id")
        try:
            size = int(client("s3").head_object(Bucket=found[0], Key=found[1])["ContentLength"])
        except ClientError as exc:
            return Failure(source_id, f"cannot be read ({exc.response.get('Error', {}).get('Code', exc)})")
        except BotoCoreError as exc:
            return Failure(source_id, f"cannot be read ({exc})")
        return S3Object(*found, size)
