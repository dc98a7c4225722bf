"""Realistic traffic with injected incidents, as ALB log objects (for triage tests, benchmarks and the README's
walkthrough; deterministic for a seed).

``alblake.sample`` draws every field independently and uniformly, which is what a parser test wants. Real traffic
is skewed, and triage and the rollup depend on the skew, so this generator follows how web traffic is usually
described: route popularity is Zipf-like (a few routes carry most requests), identifiers in paths are drawn from
a Zipf-like population too, each route has its own latency (log-normal around a median) and its own verbs and
error rate, a few clients send most requests, and errors are rare. Times are logged to the millisecond.

Incidents change the lines in a time window: :class:`FailingTarget` (one target answers 502), :class:`SlowRoute`
(one route gets slower), :class:`ClientFlood` (one client sends a share of all requests), :class:`Desync`
(requests classified Ambiguous or Severe by desync mitigation).
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alblake.sample import ACCOUNT, REGION, LoadBalancer, object_key

DELIVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class Route:
    """A route of the service: its verb, path pattern (``{id}``, ``{uuid}``, ``{hex}`` are filled in), relative
    weight, target group, median target time (seconds) and share of 4xx/5xx answers."""

    verb: str
    pattern: str
    weight: float
    group: str
    median: float
    client_errors: float = 0.01
    server_errors: float = 0.001
    query: str = ""


ROUTES: tuple[Route, ...] = (
    Route("GET", "/", 300, "web", 0.012),
    Route("GET", "/health", 120, "web", 0.001, 0.0, 0.0),
    Route("GET", "/static/js/main.{hex}.js", 160, "web", 0.002, 0.0, 0.0),
    Route("GET", "/static/css/app.{hex}.css", 140, "web", 0.002, 0.0, 0.0),
    Route("GET", "/images/products/{id}.jpg", 220, "web", 0.004, 0.02, 0.0),
    Route("GET", "/products/{id}", 180, "web", 0.035, 0.02),
    Route("GET", "/search", 90, "web", 0.090, query="?q={word}&page={page}"),
    Route("POST", "/login", 20, "web", 0.140, 0.08),
    Route("GET", "/api/v1/products", 110, "api", 0.030, query="?page={page}"),
    Route("GET", "/api/v1/products/{id}", 260, "api", 0.018),
    Route("GET", "/api/v1/users/{id}/orders", 70, "api", 0.045),
    Route("GET", "/api/v1/orders/{uuid}", 60, "api", 0.032),
    Route("POST", "/api/v1/orders", 35, "api", 0.160, 0.03),
    Route("POST", "/api/v1/cart/{id}/items", 45, "api", 0.055, 0.02),
    Route("DELETE", "/api/v1/cart/{id}/items/{id}", 12, "api", 0.040),
    Route("GET", "/api/v1/recommendations/{id}", 50, "api", 0.120),
    Route("PUT", "/api/v1/users/{id}/profile", 8, "api", 0.070, 0.05),
)
SCANNER_PATHS = ("/.env", "/wp-login.php", "/.git/config", "/phpmyadmin/index.php", "/cgi-bin/luci", "/admin")
WORDS = ("shoes", "red+dress", "laptop", "caf%C3%A9", "gift", "usb-c+cable", "tent", "coffee")
USER_AGENTS = (
    (45, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
    (20, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
         "Mobile/15E148 Safari/604.1"),
    (12, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
         "Safari/605.1.15"),
    (8, "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (6, "okhttp/4.12.0"),
    (4, "python-requests/2.32.3"),
    (3, "Googlebot/2.1 (+http://www.google.com/bot.html)"),
    (2, "curl/8.5.0"),
)
TLS = ((70, "TLSv1.3", "TLS_AES_128_GCM_SHA256"), (29, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
       (1, "TLSv1", "ECDHE-RSA-AES128-SHA"))


@dataclass(frozen=True)
class FailingTarget:
    """From ``start``, for ``minutes``, the target ``ip:port`` answers every request it gets with ``status``."""

    target: str
    start: datetime
    minutes: int = 20
    status: int = 502


@dataclass(frozen=True)
class SlowRoute:
    """From ``start``, for ``minutes``, requests of the route (its pattern, as in ``ROUTES``) take ``factor``
    times longer."""

    pattern: str
    start: datetime
    minutes: int = 20
    factor: float = 25.0


@dataclass(frozen=True)
class ClientFlood:
    """From ``start``, for ``minutes``, the client ``ip`` sends ``share`` of all requests (on one route)."""

    ip: str
    start: datetime
    minutes: int = 20
    share: float = 0.4
    pattern: str = "/search"


@dataclass(frozen=True)
class Desync:
    """From ``start``, for ``minutes``, ``share`` of requests are classified ``classification``."""

    start: datetime
    minutes: int = 10
    share: float = 0.01
    classification: str = "Ambiguous"
    reason: str = "UndefinedContentLengthSemantics"


Incident = FailingTarget | SlowRoute | ClientFlood | Desync


def _iso(when: datetime) -> str:
    """ALB's time format (microseconds, Z), faster than strftime."""
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _active(incident: Incident, when: datetime) -> bool:
    return incident.start <= when < incident.start + timedelta(minutes=incident.minutes)


@dataclass(frozen=True)
class Service:
    """A load balancer and the targets of its two target groups."""

    lb: LoadBalancer
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    domain: str = "shop.example.com"
    nodes: int = 2


SHOP = Service(
    LoadBalancer("shop-prod", "1f2e3d4c5b6a7980", (), "web"),
    {"web": ("10.0.1.10:8080", "10.0.1.11:8080", "10.0.2.12:8080"),
     "api": ("10.0.3.20:9000", "10.0.3.21:9000", "10.0.4.22:9000", "10.0.4.23:9000")},
)


def _zipf_cdf(n: int, s: float = 1.1) -> list[float]:
    weights = list(itertools.accumulate(1 / (k**s) for k in range(1, n + 1)))
    return [w / weights[-1] for w in weights]


class _Traffic:
    def __init__(self, service: Service, incidents: Sequence[Incident], rng: random.Random) -> None:
        self.service = service
        self.incidents = list(incidents)
        self.rng = rng
        self.route_cdf = list(itertools.accumulate(r.weight for r in ROUTES))
        self.id_cdf = _zipf_cdf(50_000)
        self.routes = {r.pattern: r for r in ROUTES}
        self.clients = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                        for _ in range(2000)] + [f"2600:1700:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
                                                 for _ in range(300)]
        rng.shuffle(self.clients)
        self.client_cdf = _zipf_cdf(len(self.clients), 0.9)
        self.agent_cdf = list(itertools.accumulate(w for w, _ in USER_AGENTS))
        self.tls_cdf = list(itertools.accumulate(w for w, _, _ in TLS))
        self.hex = {pattern: f"{rng.getrandbits(32):08x}" for pattern in ("js", "css")}

    def _pick(self, cdf: Sequence[float]) -> int:
        return bisect.bisect_left(cdf, self.rng.random() * cdf[-1])

    def _path(self, route: Route) -> str:
        rng = self.rng
        path = route.pattern
        while "{id}" in path:
            path = path.replace("{id}", str(self._pick(self.id_cdf) + 1), 1)
        path = path.replace("{uuid}", f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
                                      f"a{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}")
        path = path.replace("main.{hex}", f"main.{self.hex['js']}").replace("app.{hex}", f"app.{self.hex['css']}")
        query = route.query.replace("{word}", rng.choice(WORDS)).replace("{page}", str(rng.randint(1, 5)))
        return path + query

    def line(self, when: datetime) -> str:
        rng = self.rng
        service = self.service
        active = [i for i in self.incidents if _active(i, when)] if self.incidents else []
        flood = next((i for i in active if isinstance(i, ClientFlood) and rng.random() < i.share), None)
        scanner = flood is None and rng.random() < 0.002
        route = self.routes[flood.pattern] if flood else ROUTES[self._pick(self.route_cdf)]
        client = flood.ip if flood else self.clients[self._pick(self.client_cdf)]
        path = rng.choice(SCANNER_PATHS) if scanner else self._path(route)
        verb = "GET" if scanner else route.verb
        target = rng.choice(service.groups[route.group])
        tg_id = hashlib.sha256(route.group.encode()).hexdigest()[:16]
        tg_arn = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{service.lb.name}-{route.group}/{tg_id}"
        agent = "ELB-HealthChecker/2.0" if route.pattern == "/health" else USER_AGENTS[self._pick(self.agent_cdf)][1]
        if scanner:
            agent = "Mozilla/5.0 zgrab/0.x"
        target_time = round(rng.lognormvariate(math.log(route.median), 0.6), 3)
        status = 404 if scanner else 200
        roll = rng.random()
        if not scanner and roll < route.server_errors:
            status = 500
        elif not scanner and roll < route.server_errors + route.client_errors:
            status = rng.choice((400, 401, 403, 404, 409, 429))
        elif verb == "POST" and status == 200:
            status = 201
        target_status, error_reason = str(status), "-"
        target_field = target
        request_time, response_time = 0.0, 0.0
        classification, classification_reason = "-", "-"
        for incident in active:
            if isinstance(incident, FailingTarget) and incident.target == target:
                status, target_status = incident.status, str(incident.status)
                target_time = round(rng.uniform(0, 0.003), 3)
            elif isinstance(incident, SlowRoute) and incident.pattern == route.pattern and not scanner:
                target_time = round(target_time * incident.factor, 3)
            elif isinstance(incident, Desync) and rng.random() < incident.share:
                classification, classification_reason = incident.classification, incident.reason
        if status == 500 and rng.random() < 0.3:  # the load balancer answers: no target response
            status, target_status, target_time, response_time = 502, "-", -1.0, -1.0
            error_reason = "TargetConnectionError"
        tls = TLS[self._pick(self.tls_cdf)]
        created = when - timedelta(seconds=max(target_time, 0) + 0.001)
        trace = f"Root=1-{int(when.timestamp()):08x}-{rng.getrandbits(96):024x}"
        received = 200 + int(rng.random() * 1300) if verb == "GET" else 500 + int(rng.random() * 7500)
        sent = 300 + int(rng.random() * 90_000) if status < 300 else 100 + int(rng.random() * 500)
        cert = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/12345678-1234-1234-1234-123456789012"
        return (
            f"h2 {_iso(when)} {service.lb.elb} {client}:{1024 + int(rng.random() * 64000)} {target_field} "
            f"{request_time:.3f} {target_time:.3f} {response_time:.3f} {status} {target_status} {received} {sent} "
            f'"{verb} https://{service.domain}:443{path} HTTP/2.0" "{agent}" {tls[2]} {tls[1]} {tg_arn} "{trace}" '
            f'"{service.domain}" "{cert}" {2 if route.group == "api" else 1} {_iso(created)} '
            f'"forward" "-" "{error_reason}" "{target_field}" "{target_status}" "{classification}" '
            f'"{classification_reason}" TID_{rng.getrandbits(64):016x} "-" "-" "-"'
        )


def write_traffic(
    out_dir: Path,
    *,
    end: datetime,
    hours: float = 24,
    per_second: float = 5.0,
    incidents: Sequence[Incident] = (),
    service: Service = SHOP,
    seed: int = 42,
) -> list[Path]:
    """Write ``hours`` of traffic ending at ``end`` (UTC) as ALB log objects under ``out_dir``: each node of the
    load balancer delivers one gzip object per 5 minutes, named as ALB names them, ``per_second`` requests a second
    in all. Returns the objects' paths."""
    rng = random.Random(seed)
    traffic = _Traffic(service, incidents, rng)
    last = end.astimezone(UTC).replace(second=0, microsecond=0)
    last -= timedelta(minutes=last.minute % 5)
    intervals = max(1, int(hours * 12))
    written = []
    for index in range(intervals):
        start = last - DELIVERY * (intervals - index)
        per_node = max(1, round(per_second * 300 / service.nodes))
        for node in range(service.nodes):
            offsets = sorted(rng.uniform(0, 300) for _ in range(per_node))
            lines = [traffic.line(start + timedelta(seconds=s)) for s in offsets]
            key = object_key(service.lb, start + DELIVERY, f"10.9.{node}.{20 + node}", f"{rng.getrandbits(40):010x}")
            path = out_dir / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1, mtime=0))
            written.append(path)
    return written
