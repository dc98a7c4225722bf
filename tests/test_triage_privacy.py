"""Triage's client network on a lake that stores client addresses truncated or keyed-hashed (its privacy setting,
``alblake.convert.privacy``): a truncated value is already its network and is kept; a hashed value has no network
and is kept as it is (one client per value). Checked on lakes ingested with each mode, on DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alblake.analysis import connect
from alblake.convert.privacy import PrivacySettings
from alblake.lake.settings import forget_keys
from alblake.triage import make_window, parse_where, run_triage
from alblake.triage.dimensions import client_network, client_network_sql
from alblake.triage.local import local_sql
from tests.lifecycle_helpers import ingest_lines, key_file, line, local_lake, set_policy

BAD = "203.0.113.7"  # the client whose requests the selection picks, in the window
CLIENTS = ["203.0.113.99", "198.51.100.4", "2001:db8:abcd:12::1", "2001:db8::5"]
WINDOW = (datetime(2018, 7, 2, 22, 30, tzinfo=UTC), datetime(2018, 7, 2, 22, 40, tzinfo=UTC))

# the network triage shows for each client's stored value, by the lake's client_ip mode (None: the hashed value)
NETWORKS = {
    "keep": {BAD: "203.0.113.0/24", "203.0.113.99": "203.0.113.0/24", "198.51.100.4": "198.51.100.0/24",
             "2001:db8:abcd:12::1": "2001:db8:abcd::/48", "2001:db8::5": "2001:db8:0::/48"},
    "truncate": {BAD: "203.0.113.0/24", "203.0.113.99": "203.0.113.0/24", "198.51.100.4": "198.51.100.0/24",
                 "2001:db8:abcd:12::1": "2001:db8:abcd::/48", "2001:db8::5": "2001:db8::/48"},
}


@pytest.fixture(autouse=True)
def _fresh_keys() -> None:
    forget_keys()


def _lake(tmp_path: Path, mode: str) -> Path:
    lake = local_lake(tmp_path / "lake")
    set_policy(lake, PrivacySettings(client_ip=mode), key_file(tmp_path) if mode == "hmac" else None)
    baseline = [line(c, minute=m) for m in range(0, 30, 3) for c in [BAD, *CLIENTS]]
    window = [line(c, minute=m) for m in range(30, 40, 2) for c in CLIENTS]
    window += [line(BAD, minute=m, path="/bad") for m in range(30, 40)]
    ingest_lines(lake, baseline + window)
    return tmp_path / "lake"


def _stored_networks(lake: Path) -> dict[str, str]:
    """Each stored client value and its network, by SQL (what triage groups by), checked against Python's."""
    con = connect(lake)
    try:
        pairs = con.sql(f"SELECT DISTINCT client_ip, {client_network_sql()} FROM alb_logs").fetchall()
    finally:
        con.close()
    assert all(network == client_network(stored) for stored, network in pairs)
    return dict(pairs)


@pytest.mark.parametrize("mode", ["keep", "truncate"])
def test_an_address_or_a_truncated_address_gives_its_network(tmp_path: Path, mode: str) -> None:
    lake = _lake(tmp_path, mode)
    assert sorted(set(_stored_networks(lake).values())) == sorted(set(NETWORKS[mode].values()))
    assert _top_network(lake) == NETWORKS[mode][BAD]


def test_a_hashed_address_is_its_own_value_and_no_network(tmp_path: Path) -> None:
    lake = _lake(tmp_path, "hmac")
    networks = _stored_networks(lake)
    assert len(networks) == 1 + len(CLIENTS)  # one value per client, even two of the same /24
    assert all(stored.startswith("hmac-") and network == stored for stored, network in networks.items())
    top = _top_network(lake)
    assert top.startswith("hmac-") and top in networks


def _top_network(lake: Path) -> str:
    """The client network triage names for a selection of one client's requests in the window."""
    window = make_window(start=WINDOW[0], end=WINDOW[1], baseline=WINDOW[0] - datetime(2018, 7, 2, 22, tzinfo=UTC))
    with local_sql(local_lake(lake)) as run:
        result = run_triage(run, window, parse_where("request_url LIKE '%/bad'"), engine="duckdb")
    found = [f for f in result.findings if f.dimension == "client_network"]
    assert found, result.findings
    return found[0].value
