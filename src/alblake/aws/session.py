"""AWS configuration for the CLI: one boto3 session, so every command honours the standard settings.

Profile (``AWS_PROFILE``), region (``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then the profile's: the order the
AWS CLI documents; botocore alone reads only the last two), credentials (the default chain) and endpoint
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``..., or ``endpoint_url`` in the config file, which is how moto_server
stands in for AWS) are resolved by botocore, once. pyarrow's S3 filesystem, which DuckDB reads the lake through,
gets the same credentials, region and endpoint from that session instead of resolving them a second way.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import NoRegionError
from pyarrow import fs as pafs

from alblake.errors import ConfigError

NO_REGION = (
    "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), a region in your AWS profile, or region = \"...\" in "
    "alblake.toml"
)


@cache
def _session_of(pid: int) -> boto3.Session:
    return boto3.Session(region_name=os.environ.get("AWS_REGION") or None)


@cache
def _client_of(pid: int, service: str) -> Any:
    try:
        return _session_of(pid).client(service)  # type: ignore[call-overload]
    except NoRegionError:
        raise ConfigError(f"{NO_REGION} (needed by {service})") from None


def aws_session() -> boto3.Session:
    """This process's session. Keyed by process id: a forked worker builds its own (boto3 objects and their
    connection pools must not be shared across processes)."""
    return _session_of(os.getpid())


def client(service: str) -> Any:
    """This process's client of ``service`` (endpoint and region as configured)."""
    return _client_of(os.getpid(), service)


def arrow_s3_filesystem() -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem with the session's credentials, region and S3 endpoint."""
    s3 = client("s3")
    options: dict[str, Any] = {"region": s3.meta.region_name or "us-east-1"}
    credentials = aws_session().get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
    else:
        options["anonymous"] = True
    endpoint = str(s3.meta.endpoint_url)
    if not endpoint.startswith("https://s3.") or not endpoint.endswith(".amazonaws.com"):
        options["endpoint_override"] = endpoint  # a custom endpoint (moto_server, MinIO, a VPC endpoint)
    return pafs.S3FileSystem(**options)


def forget_clients() -> None:
    """Drop the cached sessions and clients (after the AWS configuration of this process changed)."""
    _session_of.cache_clear()
    _client_of.cache_clear()
