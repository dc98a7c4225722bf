"""The derived triage dimensions (client network, user-agent family): the SQL text and its Python twin agree."""

from __future__ import annotations

import ipaddress
import random

import duckdb
import pyarrow as pa
import pytest
import sqlglot

from alblake.incidents import USER_AGENTS
from alblake.sample import USER_AGENTS as SAMPLE_AGENTS
from alblake.triage.dimensions import (
    DIMENSIONS,
    client_network,
    client_network_sql,
    user_agent_family,
    user_agent_family_sql,
)

ADDRESSES = [
    "192.168.131.39", "10.0.1.252", "203.0.113.7", "2001:db8::1", "2001:db8:0:0:1::2",
    "2001:db8:85a3:8d3:1319:8a2e:370:7348",
    "2600:1f18:4a3:6b00:8e1f:2d4c:aa01:7b2c", "::1", "::ffff:192.0.2.128", "fe80::", "2001::", "2001:db8:a::", None,
]
AGENTS = [a for _, a in USER_AGENTS] + list(SAMPLE_AGENTS) + [
    "ELB-HealthChecker/2.0", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", "Wget/1.21.4", "Go-http-client/1.1", "aws-sdk-java/2.20.0",
    "Boto3/1.34.0 md/Botocore#1.34.0", "PostmanRuntime/7.36.0", "axios/1.6.2", "Java/17.0.2",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "facebookexternalhit/1.1", "",
    "Mozilla/5.0 zgrab/0.x", "python-urllib3/2.0", "Opera/9.80", "Mozilla/5.0 (X11) OPR/105.0", None,
]


def _sql_values(expression: str, column: str, values: list[str | None]) -> list[str]:
    con = duckdb.connect()
    con.register("t", pa.table({"i": list(range(len(values))), column: pa.array(values, pa.string())}))
    return [row[1] for row in con.sql(f"SELECT i, {expression} FROM t ORDER BY i").fetchall()]


def test_client_network_sql_matches_python() -> None:
    rng = random.Random(4)
    addresses = ADDRESSES + [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.1" for _ in range(50)]
    addresses += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(200)]
    assert _sql_values(client_network_sql(), "client_ip", addresses) == [client_network(a) for a in addresses]


@pytest.mark.parametrize(("address", "network"), [
    ("192.168.131.39", "192.168.131.0/24"), ("2001:db8::1", "2001:db8:0::/48"),
    ("2600:1f18:4a3:6b00:8e1f:2d4c:aa01:7b2c", "2600:1f18:4a3::/48"), ("::1", "0:0:0::/48"), (None, "-"),
])
def test_client_networks(address: str | None, network: str) -> None:
    assert client_network(address) == network


def test_ipv6_networks_are_the_48_bit_prefix() -> None:
    rng = random.Random(9)
    for _ in range(300):
        address = ipaddress.IPv6Address(rng.getrandbits(128) & ~((1 << rng.randrange(0, 100)) - 1))
        network = ipaddress.IPv6Network(f"{address}/48", strict=False)
        groups = client_network(str(address)).removesuffix("::/48").split(":")
        assert ipaddress.IPv6Address(":".join(groups + ["0"] * 5)) == network.network_address


def test_the_two_step_network_is_the_network() -> None:
    """The query groups by a cheap per-row key and derives the network once per key: the composed expression
    (what a curated row's value is) equals the Python twin on every address."""
    client = next(d for d in DIMENSIONS if d.name == "client_network")
    rng = random.Random(5)
    addresses = ADDRESSES + [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(100)]
    addresses += ["203.0.113.0/24", "2001:db8::/48", "hmac-0123456789abcdef01234567"]
    assert _sql_values(client.curated_value, "client_ip", addresses) == [client_network(a) for a in addresses]


def test_user_agent_family_sql_matches_python() -> None:
    assert _sql_values(user_agent_family_sql(), "user_agent", AGENTS) == [user_agent_family(a) for a in AGENTS]
    families = {user_agent_family(a) for a in AGENTS}
    assert {"Chrome", "Safari", "Edge", "curl", "Googlebot", "bingbot", "ELB-HealthChecker", "other", "-"} <= families


def test_dimension_expressions_parse_as_trino_and_duckdb() -> None:
    for dimension in DIMENSIONS:
        for expression in (dimension.curated, dimension.curated_value, dimension.rollup):
            if expression is not None:
                for dialect in ("trino", "duckdb"):
                    sqlglot.parse_one(f"SELECT {expression} FROM t", read=dialect)
