"""Realistic synthetic ALB access logs for demos, tests and benchmarks (deterministic for a seed).

Lines follow the field order and conventions of docs/ALB_LOG_FORMAT.md: several load balancers and
targets, http/https/h2/ws types, IPv6 clients, URLs with spaces and \\xHH escapes, 4xx/5xx with '-' targets
and -1 times, Lambda error reasons, and (optionally) a few malformed lines that the parser must quarantine.
Files are named like the objects ALB delivers to S3.
"""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    lb_id: str
    targets: tuple[str, ...]
    target_group: str

    @property
    def elb(self) -> str:
        return f"app/{self.name}/{self.lb_id}"


LOAD_BALANCERS = (
    LoadBalancer("web-prod", "50dc6c495c0c9188", ("10.0.1.10:80", "10.0.1.11:80", "10.0.2.12:80"), "web"),
    LoadBalancer("api-prod", "7a1b2c3d4e5f6071", ("10.0.3.20:8080", "10.0.4.21:8080"), "api"),
    LoadBalancer("api-v6", "0f1e2d3c4b5a6978", ("2600:1f18:4a3:6b00:8e1f:2d4c:aa01:7b2c:443",), "api6"),
)
VERBS = ("GET",) * 14 + ("POST",) * 4 + ("PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
PATHS = (
    "/",
    "/index.html",
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/orders/123",
    "/static/app.js",
    "/static/style.css",
    "/login",
    "/search?q=load balancer",
    "/search?q=caf\\xC3\\xA9",
    "/health",
    "/api/v1/items?page=2&size=50",
    "/q?\\x22quoted\\x22",
    "/downloads/report 2026.pdf",
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "ELB-HealthChecker/2.0",
    "-",
)
STATUS_CODES = (200,) * 30 + (201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 429, 500, 502, 503, 504)
CIPHERS = (("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2"), ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))
MALFORMED = (
    "this is not an ALB log line",
    'http 2026-11-25T10:00:00.000000Z app/web-prod/50dc6c495c0c9188 "unterminated',
    "http not-a-time app/web-prod/50dc6c495c0c9188 1.2.3.4:5 - 0 0 0 200 200 1 1 "
    '"GET / HTTP/1.1" "-" - - - "-" "-" "-" 0 - "-" "-" "-"',
    "",
)


class _LineMaker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clients_v4 = [
            f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            for _ in range(300)
        ]
        self.clients_v6 = [f"2001:db8:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}" for _ in range(40)]

    def line(self, lb: LoadBalancer, when: datetime) -> str:
        rng = self.rng
        kind = rng.choices(("http", "https", "h2", "ws", "wss"), (30, 50, 15, 3, 2))[0]
        client = rng.choice(self.clients_v6 if rng.random() < 0.1 else self.clients_v4)
        status = rng.choice(STATUS_CODES)
        target = rng.choice(lb.targets)
        verb = rng.choice(VERBS)
        path = rng.choice(PATHS)
        scheme, port = ("http", 80) if kind in ("http", "ws") else ("https", 443)
        host = f"{lb.name}.example.com"
        request_time = rng.uniform(0, 0.002)
        target_time = rng.lognormvariate(-3.5, 1.0)
        response_time = rng.uniform(0, 0.001)
        target_status = str(status)
        error_reason = "-"
        target_field = target
        if status in (502, 503, 504) and rng.random() < 0.5:
            target_field, target_status, target_time, response_time = "-", "-", -1.0, -1.0
            error_reason = rng.choice(("LambdaInvalidResponse", "TargetConnectionError", "-"))
        if kind in ("ws", "wss"):
            verb, status, target_status = "GET", 101, "101"
        cipher, protocol = rng.choice(CIPHERS) if scheme == "https" else ("-", "-")
        created = when - timedelta(seconds=request_time + max(target_time, 0) + response_time)
        trace = f"Root=1-{int(when.timestamp()):08x}-{rng.getrandbits(96):024x}"
        received, sent = rng.randint(0, 2000), rng.randint(0, 200_000)
        tg_arn = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{lb.target_group}/73e2d6bc24d8a067"
        cert = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/12345678-1234-1234-1234-123456789012"
        domain = host if scheme == "https" else "-"
        return (
            f"{kind} {when:%Y-%m-%dT%H:%M:%S.%fZ} {lb.elb} {client}:{rng.randint(1024, 65535)} {target_field} "
            f"{request_time:.3f} {target_time:.3f} {response_time:.3f} {status} {target_status} {received} {sent} "
            f'"{verb} {scheme}://{host}:{port}{path} HTTP/1.1" "{rng.choice(USER_AGENTS)}" {cipher} {protocol} '
            f'{tg_arn} "{trace}" "{domain}" "{cert if scheme == "https" else "-"}" {rng.choice((0, 1, 2))} '
            f'{created:%Y-%m-%dT%H:%M:%S.%fZ} "forward" "-" "{error_reason}" '
            f'"{target_field}" "{target_status}" "-" "-" TID_{rng.getrandbits(64):016x} "-" "-" "-"'
        )


def object_key(lb: LoadBalancer, end: datetime, node_ip: str, suffix: str) -> str:
    """The S3 key ALB would use for a log file of ``lb`` covering the 5 minutes that end at ``end``."""
    return (
        f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{end:%Y/%m/%d}/"
        f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.{lb.name}.{lb.lb_id}_{end:%Y%m%dT%H%MZ}_{node_ip}_{suffix}.log.gz"
    )


def generate_lines(
    count: int,
    *,
    lb: LoadBalancer,
    start: datetime,
    seconds: float,
    rng: random.Random,
    malformed_every: int = 0,
) -> list[str]:
    maker = _LineMaker(rng)
    step = seconds / max(count, 1)
    lines = []
    for index in range(count):
        if malformed_every and index % malformed_every == malformed_every - 1:
            lines.append(rng.choice(MALFORMED))
        else:
            lines.append(maker.line(lb, start + timedelta(seconds=index * step)))
    return lines


def write_sample_logs(
    out_dir: Path,
    *,
    files: int = 12,
    lines_per_file: int = 2000,
    seed: int = 7,
    start: datetime | None = None,
    malformed_every: int = 997,
) -> list[Path]:
    """Write ``files`` gzip log files under ``out_dir``: 5 minutes each, round-robin over the load balancers,
    consecutive rounds 40 minutes apart so a default sample spans several hourly partitions."""
    rng = random.Random(seed)
    begin = start or datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    written = []
    for index in range(files):
        lb = LOAD_BALANCERS[index % len(LOAD_BALANCERS)]
        period_start = begin + timedelta(minutes=40 * (index // len(LOAD_BALANCERS)))
        lines = generate_lines(
            lines_per_file, lb=lb, start=period_start, seconds=300, rng=rng, malformed_every=malformed_every
        )
        key = object_key(
            lb, period_start + timedelta(minutes=5), f"10.0.{index % 4}.{10 + index}", f"{rng.getrandbits(40):010x}"
        )
        path = out_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6, mtime=0))
        written.append(path)
    return written


def write_sample_day(
    out_dir: Path,
    *,
    day: datetime | None = None,
    nodes_per_lb: tuple[int, ...] = (3, 2, 2),
    lines_per_object: int = 500,
    seed: int = 11,
    malformed_every: int = 997,
    intervals: int = 24 * 12,
) -> list[Path]:
    """Write one realistic day of deliveries: every node of every load balancer delivers one gzip object per
    5-minute interval (288 a day, or the first ``intervals``), named as ALB names them. ``nodes_per_lb[i]`` nodes
    for ``LOAD_BALANCERS[i]``; the default writes 7 x 288 = 2,016 objects of 500 lines (about 1M rows)."""
    rng = random.Random(seed)
    midnight = (day or datetime(2026, 11, 24, tzinfo=UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    written = []
    for lb_index, (lb, nodes) in enumerate(zip(LOAD_BALANCERS, nodes_per_lb, strict=False)):
        for node in range(nodes):
            node_ip = f"10.{lb_index}.{node}.{10 + node}"
            for interval in range(intervals):
                start = midnight + timedelta(minutes=5 * interval)
                lines = generate_lines(
                    lines_per_object, lb=lb, start=start, seconds=300, rng=rng, malformed_every=malformed_every
                )
                path = out_dir / object_key(lb, start + timedelta(minutes=5), node_ip, f"{rng.getrandbits(40):010x}")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6, mtime=0))
                written.append(path)
    return written
