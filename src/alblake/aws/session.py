"""AWS configuration for the CLI: one boto3 session, so every command honours the standard settings.

Profile (``AWS_PROFILE``), region (``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / the profile), credentials (the
default chain) and endpoint (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``..., or ``endpoint_url`` in the
config file, which is how moto_server stands in for AWS) are resolved by botocore, once. pyarrow's S3
filesystem, which DuckDB reads the lake through, gets the same credentials, region and endpoint from that
session instead of resolving them a second way.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from pyarrow import fs as pafs


@cache
def aws_session() -> boto3.Session:
    """The process's session (per process: worker processes build their own)."""
    return boto3.Session()


@cache
def client(service: str) -> Any:
    """A client of ``service`` from :func:`aws_session` (endpoint and region as configured)."""
    return aws_session().client(service)  # type: ignore[call-overload]


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
