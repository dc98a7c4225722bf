"""A real moto_server process on 127.0.0.1 (ephemeral port) as the AWS endpoint of the CLI under test.

The fixture points the standard AWS configuration at it (``AWS_ENDPOINT_URL``, region, dummy credentials,
no profile files), so the code under test resolves it as it would resolve AWS; the state is reset per test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from alblake.aws.session import forget_clients

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _moto_server() -> str:
    local = Path(sys.executable).parent / "moto_server"
    found = str(local) if local.exists() else shutil.which("moto_server")
    if found is None:
        pytest.fail("moto_server is not installed (pip install 'moto[server]')")
    return found


@pytest.fixture(scope="module")
def moto_server_url() -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen(
        [_moto_server(), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def aws_endpoint(moto_server_url: str, tmp_path: Path) -> Iterator[str]:
    """The standard AWS settings pointed at moto_server, with a fresh (reset) state."""
    request = urllib.request.Request(f"{moto_server_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    settings = {
        "AWS_ENDPOINT_URL": moto_server_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        for name, value in settings.items():
            patch.setenv(name, value)
        forget_clients()
        try:
            yield moto_server_url
        finally:
            forget_clients()
