"""Log lines with chosen clients, trace ids and domains, a local lake's rows, and its policy, for the tests of
privacy, erasure and expiry (not the property tests: ``tests/lifecycle_world.py``)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from alblake.convert.privacy import PrivacySettings
from alblake.ingest.core import IngestedObject, ingest_object
from alblake.lake.generational import GenerationalLake, open_local_lake
from alblake.lake.settings import LakePolicy, key_check, update_policy
from alblake.schema import ARROW_SCHEMA

KEY_NAME = (
    "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2018/07/02/123456789012_elasticloadbalancing_us-east-2_"
    "app.my-loadbalancer.50dc6c495c0c9188_20180702T{end}Z_10.0.0.1_{node}.log.gz"
)
LINE = (
    "https 2018-07-02T{hour}:{minute:02d}:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 {client}:2817 "
    '10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://{domain}:443{path} HTTP/1.1" "curl/7.46.0" '
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"{trace}" "{domain}" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" '
    '1 2018-07-02T{hour}:{minute:02d}:00.186641Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-" '
    'TID_1234abcd5678ef90 "-" "-" "-"'
)


def line(
    client: str,
    *,
    hour: str = "22",
    minute: int = 0,
    path: str = "/",
    trace: str = "Root=1-58337364-23a8c76965a2ef7629b185e3",
    domain: str = "www.example.com",
) -> str:
    return LINE.format(client=client, hour=hour, minute=minute, path=path, trace=trace, domain=domain)


def object_name(end: str = "2225", node: str = "abc") -> str:
    return KEY_NAME.format(end=end, node=node)


def ingest_lines(lake: GenerationalLake, lines: list[str], name: str | None = None) -> IngestedObject:
    data = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    return ingest_object(lambda: io.BytesIO(data), name or object_name(), lake)


def rows(lake: GenerationalLake) -> pa.Table:
    """Every visible row of a local lake (in the lake's schema)."""
    files = list(lake.visible_files())
    if not files:
        return ARROW_SCHEMA.empty_table()
    return ds.dataset(files, format="parquet", schema=ARROW_SCHEMA).to_table()


def column(lake: GenerationalLake, name: str) -> list[object]:
    return sorted(rows(lake).column(name).to_pylist(), key=str)


def local_lake(path: Path) -> GenerationalLake:
    return open_local_lake(path)


def key_file(directory: Path, key: bytes = b"0123456789abcdef0123456789abcdef") -> str:
    path = directory / "lake.key"
    path.write_bytes(key)
    return f"file:{path}"


def set_policy(lake: GenerationalLake, settings: PrivacySettings, key: str | None = None) -> None:
    """Set the lake's privacy settings (and key) as ``alblake privacy`` does, without its checks."""

    def change(policy: LakePolicy) -> bool:
        policy.privacy = settings
        if key is not None:
            policy.key = key
            policy.key_check = key_check(Path(key.removeprefix("file:")).read_bytes().strip())
        return True

    update_policy(lake.store, change)
