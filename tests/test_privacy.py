"""Privacy at ingest: what the curated rows and the quarantine keep of client addresses and query strings, in each
mode; the schema's types never change; conservation stays exact; the key never lands in the lake."""

from __future__ import annotations

import gzip
import ipaddress
import json
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alblake.convert.privacy import (
    NO_PRIVACY,
    Privacy,
    PrivacySettings,
    PrivacySettingsError,
    keyed_address,
    mask_query,
    network_of,
)
from alblake.errors import ConfigError
from alblake.ingest.runner import ingest_paths
from alblake.lake.settings import forget_keys
from alblake.sample import write_sample_logs
from alblake.schema import ARROW_SCHEMA
from tests.convert_helpers import quarantine_file
from tests.lifecycle_helpers import column, ingest_lines, key_file, line, local_lake, rows, set_policy

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_keys() -> None:
    forget_keys()


def test_truncation_keeps_the_network() -> None:
    assert network_of("203.0.113.7") == "203.0.113.0/24"
    assert network_of("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::/48"
    assert network_of("::ffff:203.0.113.7") == "203.0.113.0/24"  # an IPv4 client seen through IPv6
    assert network_of("not an address") is None


def test_a_keyed_hash_is_recognisable_deterministic_and_depends_on_the_key() -> None:
    hashed = keyed_address(KEY, "203.0.113.7")
    assert hashed.startswith("hmac-") and len(hashed) == 5 + 24
    assert keyed_address(KEY, "203.0.113.7") == hashed
    assert keyed_address(KEY, "203.0.113.8") != hashed
    assert keyed_address(b"another key of 32 bytes.........", "203.0.113.7") != hashed
    assert keyed_address(KEY, "2001:DB8::1") == keyed_address(KEY, "2001:db8:0:0::1")  # one spelling


@pytest.mark.parametrize(
    ("url", "dropped", "masked"),
    [
        ("http://a/p?user=bob&page=2", "http://a/p", "http://a/p?user=*&page=*"),
        ("http://a/p?token", "http://a/p", "http://a/p?*"),
        ("http://a/p?a=b=c&&d=", "http://a/p", "http://a/p?a=*&&d=*"),
        ("http://a/p?", "http://a/p", "http://a/p?"),
        ("http://a/p", "http://a/p", "http://a/p"),
        (None, None, None),
    ],
)
def test_query_strings_dropped_or_masked(url: str | None, dropped: str | None, masked: str | None) -> None:
    table = pa.table({"request_url": pa.array([url], pa.string())})
    assert Privacy(PrivacySettings(query_strings="drop")).apply(table).column(0).to_pylist() == [dropped]
    assert Privacy(PrivacySettings(query_strings="mask")).apply(table).column(0).to_pylist() == [masked]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab=&?/x%"), max_size=30))
def test_a_column_is_masked_as_a_line_is(url: str) -> None:
    """The vectorised mask of a column and the scalar one of quarantined lines agree."""
    privacy = Privacy(PrivacySettings(query_strings="mask"))
    masked = privacy.apply(pa.table({"request_url": [url]})).column(0)[0].as_py()
    base, separator, query = url.partition("?")
    assert masked == (base + "?" + mask_query(query) if separator else url)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.ip_addresses(), min_size=1, max_size=5))
def test_a_column_is_truncated_as_one_address_is(addresses: list[object]) -> None:
    """IPv4 addresses are truncated by a regular expression, others one by one: the same result."""
    privacy = Privacy(PrivacySettings(client_ip="truncate"))
    texts = [str(a) for a in addresses]
    stored = privacy.apply(pa.table({"client_ip": texts})).column(0).to_pylist()
    assert stored == [network_of(text) for text in texts]


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(), st.text(alphabet=st.sampled_from('xyz "-=?/'), max_size=12), st.booleans())
def test_no_client_address_survives_in_a_masked_line(address: object, noise: str, with_port: bool) -> None:
    """Any address next to any text that is not part of an address' spelling is transformed (hex digits, ':' and
    '.' next to an IPv6 address make another, unreadable one)."""
    text = str(address) + (":443" if with_port else "")
    privacy = Privacy(PrivacySettings(client_ip="hmac"), KEY)
    masked = privacy.mask_text(f"junk {noise}{text} {noise} 10.0.0.1:80 tail")
    assert str(address) not in masked.replace(noise, " ")
    assert "10.0.0.1" not in masked  # every address in a junk line goes, target addresses too


def test_an_ipv4_address_inside_dotted_junk_is_masked() -> None:
    privacy = Privacy(PrivacySettings(client_ip="truncate"))
    assert privacy.mask_text("x.203.0.113.7.y :.198.51.100.9") == "x.203.0.113.0/24.y :.198.51.100.0/24"


def test_settings_are_checked_and_hmac_needs_a_key() -> None:
    with pytest.raises(PrivacySettingsError, match="expected one of keep, truncate, hmac"):
        PrivacySettings(client_ip="hash")
    with pytest.raises(ConfigError, match="needs the lake's key"):
        Privacy(PrivacySettings(client_ip="hmac"))
    assert "key=set" in repr(Privacy(PrivacySettings(client_ip="hmac"), KEY))
    assert KEY.decode() not in repr(Privacy(PrivacySettings(client_ip="hmac"), KEY))
    assert NO_PRIVACY.apply(pa.table({"client_ip": ["1.2.3.4"]})).column(0).to_pylist() == ["1.2.3.4"]


LINES = [
    line("203.0.113.7", path="/a?user=bob&session=s3cr3t"),
    line("203.0.113.8", minute=1, path="/b"),
    line("2001:db8:abcd:12::1", minute=2, path="/c?x=1"),
]
JUNK = 'junk 203.0.113.7:2817 "GET http://x/?user=bob HTTP/1.1"'


@pytest.mark.parametrize(
    ("client_ip", "stored"),
    [
        ("keep", ["2001:db8:abcd:12::1", "203.0.113.7", "203.0.113.8"]),
        ("truncate", ["2001:db8:abcd::/48", "203.0.113.0/24", "203.0.113.0/24"]),
    ],
)
def test_ingest_stores_what_the_lake_keeps(tmp_path: Path, client_ip: str, stored: list[str]) -> None:
    lake = local_lake(tmp_path / "lake")
    set_policy(lake, PrivacySettings(client_ip=client_ip, query_strings="mask"))
    result = ingest_lines(lake, [*LINES, JUNK])
    assert column(lake, "client_ip") == stored
    assert column(lake, "request_url") == sorted(
        ["https://www.example.com:443/a?user=*&session=*", "https://www.example.com:443/b",
         "https://www.example.com:443/c?x=*"]
    )
    assert rows(lake).schema.equals(ARROW_SCHEMA)  # the curated table's types stay the same
    assert (result.lines, result.rows, result.quarantined, result.erased) == (4, 3, 1, 0)
    records, summary = quarantine_file(tmp_path / "lake" / "quarantine" / f"{_stem(lake)}.jsonl")
    assert summary["quarantined"] == 1 and summary["stored"] == 1
    raw = str(records[0]["raw"])
    assert "user=bob" not in raw
    assert ("203.0.113.7:2817" in raw) == (client_ip == "keep")


def test_keyed_addresses_join_within_the_lake_and_the_key_stays_out_of_it(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    reference = key_file(tmp_path)
    set_policy(lake, PrivacySettings(client_ip="hmac"), reference)
    ingest_lines(lake, LINES)
    ingest_lines(lake, [line("203.0.113.7", minute=9)], name="other.log")
    addresses = column(lake, "client_ip")
    assert all(str(a).startswith("hmac-") for a in addresses)
    assert addresses.count(keyed_address(KEY, "203.0.113.7")) == 2  # the same client in two objects: one value
    for path in (tmp_path / "lake").rglob("*"):
        if path.is_file():
            assert KEY not in path.read_bytes(), path


def test_quarantined_lines_not_stored_are_still_counted(tmp_path: Path) -> None:
    lake = local_lake(tmp_path / "lake")
    set_policy(lake, PrivacySettings(client_ip="truncate", quarantine="drop"))
    result = ingest_lines(lake, [*LINES, JUNK, JUNK, ""])  # the blank line: never stored, in any mode
    assert (result.lines, result.rows, result.quarantined) == (6, 3, 3)
    records, summary = quarantine_file(tmp_path / "lake" / "quarantine" / f"{_stem(lake)}.jsonl")
    assert records == [] and summary == {"quarantined": 3, "stored": 0, "reasons": summary["reasons"]}
    reasons = summary["reasons"]
    assert isinstance(reasons, dict) and sum(reasons.values()) == 3


def test_batches_apply_the_same_settings_as_objects_alone(tmp_path: Path) -> None:
    """``alblake ingest`` of many small objects (batches) and of each alone give the same rows and quarantine."""
    logs = tmp_path / "logs"
    write_sample_logs(logs, files=40, lines_per_file=30, malformed_every=7)
    results = {}
    for batch in (True, False):
        lake = local_lake(tmp_path / f"lake-{batch}")
        set_policy(lake, PrivacySettings(client_ip="truncate", query_strings="drop", quarantine="mask"))
        summary = ingest_paths([str(logs)], tmp_path / f"lake-{batch}", batch=batch, jobs=1)
        assert summary.lines == summary.rows + summary.quarantined and summary.quarantined
        table = rows(lake).sort_by([("time", "ascending"), ("request_url", "ascending")])
        quarantine = sorted(
            record["raw"]
            for path in (tmp_path / f"lake-{batch}" / "quarantine").glob("*.jsonl")
            for record in map(json.loads, path.read_text().splitlines())
            if "raw" in record
        )
        results[batch] = (table, quarantine)
    assert results[True][0].equals(results[False][0]) and results[True][1] == results[False][1]
    table = results[True][0]
    assert not any("?" in url for url in table.column("request_url").to_pylist())
    assert all(ipaddress.ip_network(a).prefixlen in (24, 48) for a in table.column("client_ip").to_pylist())


def test_every_quarantined_line_of_the_sample_is_masked(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    paths = write_sample_logs(logs, files=2, lines_per_file=400, malformed_every=5)
    lake = local_lake(tmp_path / "lake")
    set_policy(lake, PrivacySettings(client_ip="hmac", query_strings="mask"), key_file(tmp_path))
    ingest_paths([str(logs)], tmp_path / "lake", jobs=1)
    clients = {
        text.split(" ")[3].rsplit(":", 1)[0]
        for path in paths
        for text in gzip.decompress(path.read_bytes()).decode().splitlines()
        if text.count(" ") > 3
    }
    stored = "".join(p.read_text() for p in (tmp_path / "lake" / "quarantine").glob("*.jsonl"))
    assert stored and not [c for c in clients if len(c) > 6 and f"{c}:" in stored]


def _stem(lake: object) -> str:
    manifests = list((Path(str(lake.store.root)) / "manifests").glob("*.json"))  # type: ignore[attr-defined]
    assert len(manifests) == 1
    return manifests[0].stem
