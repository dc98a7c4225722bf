"""The moto set-up shared by the integration tests and ``scripts/local_invoke.py``: the ingest function's
environment, a fake Lambda context, a ``moto_server`` on 127.0.0.1, and the buckets + Glue table the stack
creates. One place, so the tests and the local invoke cannot drift apart.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alblake.schema import glue_table_input

REGION = "us-east-1"
ACCOUNT = "123456789012"
DATABASE = "alblake"
TABLE = "alb_logs"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:alblake-ingest"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def ingest_environment(lake_bucket: str, *, dataset_id: str = "", lake_prefix: str = "") -> dict[str, str]:
    """What template.yaml gives the ingest function (plus fake credentials and no tracing)."""
    return {
        **FAKE_CREDENTIALS,
        "LAKE_BUCKET": lake_bucket,
        "LAKE_PREFIX": lake_prefix,
        "GLUE_DATABASE": DATABASE,
        "GLUE_TABLE": TABLE,
        "QUICKSIGHT_DATASET_ID": dataset_id,
        "QUICKSIGHT_MIN_REFRESH_MINUTES": "60",
        "POWERTOOLS_SERVICE_NAME": "alblake-ingest",
        "POWERTOOLS_METRICS_NAMESPACE": "AlbLake",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


@dataclass
class FakeContext:
    """The attributes of a Lambda context that Powertools and the handlers read."""

    function_name: str = "alblake-ingest"
    function_version: str = "$LATEST"
    invoked_function_arn: str = FUNCTION_ARN
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "6f1c1f4e-0000-4000-8000-000000000001"
    log_group_name: str = "/aws/lambda/alblake-ingest"
    log_stream_name: str = "2026/11/24/[$LATEST]0123456789abcdef"
    remaining_millis: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def create_lake_resources(s3: Any, glue: Any, lake_location: str, buckets: Iterable[str]) -> None:
    """Buckets, the Glue database and the Parquet table (as template.yaml declares it)."""
    for bucket in sorted(set(buckets)):
        s3.create_bucket(Bucket=bucket)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    glue.create_table(DatabaseName=DATABASE, TableInput=glue_table_input(lake_location))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """A ``moto_server`` on a free port of 127.0.0.1 for the duration of the block; yields its URL."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if exe is None:
        raise RuntimeError("moto_server not found (pip install 'moto[server]')")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_until_up(proc: subprocess.Popen[bytes], url: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("moto_server exited early") from None
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")
