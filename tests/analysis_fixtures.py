"""Test lakes for the analysis tests, built from known rows (the oracle) without the parser.

``make_rows`` draws deterministic, varied rows (IPv6 clients, requests without a target, logged -1 times,
plain HTTP and TLS, error reasons, desync classifications, query strings, a NULL verb); ``write_lake``
writes them as the lake layout of alblake.lake.layout (Hive partitions, partition columns not stored).
Tests compute the expected answers from the same rows in plain Python.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alblake.schema import ARROW_SCHEMA, COLUMN_NAMES

Row = dict[str, Any]

_LBS = ("app/web-prod/50dc6c495c0c9188", "app/api-prod/0123456789abcdef")
_CLIENTS = [f"203.0.113.{i}" for i in range(1, 25)] + ["2001:db8::1", "2001:db8:0:0:1::2", "198.51.100.7"]
_TARGETS = [("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.1.17", 8080), ("fd00::12", 8443), ("10.0.2.5", 9000)]
_URLS = ["/", "/index.html", "/api/v1/users", "/api/v1/orders", "/login", "/static/app.js", "/health",
         "/search", "/a path/with spaces", "/api/v1/slow"]
_STATUS = [200] * 30 + [201, 204, 301, 302, 304] * 2 + [400, 401, 403, 404, 404, 404, 460, 500, 502, 503, 504]
_VERBS = ["GET"] * 10 + ["POST"] * 4 + ["PUT", "DELETE", "PATCH", "OPTIONS", None]
_ERROR_REASONS = ["LambdaInvalidResponse", "TargetConnectionError", "TargetResponseError"]
_CLASSIFICATIONS = [("Ambiguous", "UndefinedContentLengthSemantics"), ("Acceptable", "SpaceInUri"),
                    ("Severe", "BothTeChunkedAndClPresent")]
_START = datetime(2024, 2, 28, 21, 0, 0, tzinfo=UTC)


def make_rows(n: int = 700, seed: int = 20240228) -> list[Row]:
    rnd = random.Random(seed)
    rows: list[Row] = []
    for _ in range(n):
        elb = rnd.choice(_LBS)
        # ~5 hours crossing midnight (and a leap day), microsecond timestamps
        time = _START + timedelta(seconds=rnd.randrange(0, 5 * 3600), microseconds=rnd.randrange(0, 10**6))
        kind = rnd.choice(["http", "https", "https", "h2", "ws", "wss"])
        tls = kind in {"https", "h2", "wss"}
        status = rnd.choice(_STATUS)
        has_target = rnd.random() > 0.12 and status not in {460}
        target = rnd.choice(_TARGETS) if has_target else None
        dispatched = has_target and status not in {503}
        url = "https://example.com:443" if tls else "http://example.com:80"
        url += rnd.choice(_URLS)
        if rnd.random() < 0.3:
            url += f"?q={rnd.randrange(1000)}&page={rnd.randrange(5)}"
        verb = rnd.choice(_VERBS)
        slow = 4.0 if "/slow" in url else 1.0
        error_reason = rnd.choice(_ERROR_REASONS) if status >= 500 and rnd.random() < 0.6 else None
        classification = rnd.choice(_CLASSIFICATIONS) if rnd.random() < 0.05 else (None, None)
        row: Row = dict.fromkeys(COLUMN_NAMES)
        row.update(
            type=kind,
            time=time,
            elb=elb,
            client_ip=rnd.choice(_CLIENTS),
            client_port=rnd.randrange(1024, 65536),
            target_ip=target[0] if target else None,
            target_port=target[1] if target else None,
            request_processing_time=round(rnd.uniform(0, 0.002), 3) if dispatched else -1.0,
            target_processing_time=round(rnd.expovariate(20) * slow, 3) if dispatched else -1.0,
            response_processing_time=round(rnd.uniform(0, 0.001), 3) if dispatched else -1.0,
            elb_status_code=status,
            target_status_code=status if dispatched else None,
            received_bytes=rnd.randrange(0, 4000),
            sent_bytes=rnd.randrange(0, 200_000),
            request_verb=verb,
            request_url=url if verb is not None else None,
            request_proto="HTTP/2.0" if kind == "h2" else "HTTP/1.1",
            user_agent=rnd.choice(["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", None]),
            ssl_cipher="ECDHE-RSA-AES128-GCM-SHA256" if tls else None,
            ssl_protocol=rnd.choice(["TLSv1.2", "TLSv1.3", "TLSv1.3"]) if tls else None,
            trace_id=f"Root=1-{rnd.getrandbits(32):08x}-{rnd.getrandbits(96):024x}",
            matched_rule_priority=rnd.choice([0, 1, 2]),
            request_creation_time=time - timedelta(milliseconds=rnd.randrange(0, 500)),
            actions_executed="forward" if has_target else "fixed-response",
            lambda_error_reason=error_reason,
            target_port_list=f"{target[0]}:{target[1]}" if target else None,
            target_status_code_list=str(status) if dispatched else None,
            classification=classification[0],
            classification_reason=classification[1],
            conn_trace_id=f"TID_{rnd.getrandbits(64):016x}",
        )
        rows.append(row)
    return rows


def partition_of(row: Row) -> tuple[str, str, str]:
    time: datetime = row["time"]
    return row["elb"].split("/")[1], time.strftime("%Y-%m-%d"), time.strftime("%H")


def write_lake(rows: list[Row], lake: Path, files_per_partition: int = 2) -> Path:
    """Write ``rows`` as the Parquet lake under ``lake`` (several files per partition); returns ``lake``."""
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[partition_of(row)].append(row)
    for (elb_name, day, hour), members in sorted(groups.items()):
        directory = lake / "alb_logs" / f"elb_name={elb_name}" / f"day={day}" / f"hour={hour}"
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(files_per_partition):
            chunk = members[i::files_per_partition]
            if chunk:
                table = pa.Table.from_pylist(chunk, schema=ARROW_SCHEMA)
                pq.write_table(table, directory / f"part-{i:03d}.parquet", compression="zstd")
    return lake


@pytest.fixture(scope="session")
def oracle_rows() -> list[Row]:
    return make_rows()


@pytest.fixture(scope="session")
def oracle_lake(oracle_rows: list[Row], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield write_lake(oracle_rows, tmp_path_factory.mktemp("oracle_lake"))
