"""Privacy at ingest (opt-in per lake): what the curated rows and the quarantine keep of client addresses and
query strings (pure: the key is handed in, never read here).

A lake's settings (``alblake.lake.settings``: ``lifecycle/policy.json``) choose:

- ``client_ip``: ``keep``; ``truncate`` (IPv4 to its /24, IPv6 to its /48, written as the network:
  ``203.0.113.0/24``, ``2001:db8:abcd::/48``); or ``hmac`` (HMAC-SHA-256 of the address under the lake's key,
  written as ``hmac-`` and 24 hex digits, 96 bits). The column stays a string in every mode.
- ``query_strings`` of ``request_url``, ``redirect_url`` and ``transformed_uri``: ``keep``; ``drop`` (everything
  from the first ``?`` goes); or ``mask`` (parameter names stay, values become ``*``: ``?user=*&page=*``).
- ``quarantine`` (when either of the above is on): ``mask`` stores quarantined lines with every address and query
  string in them transformed the same way (best effort on lines that did not parse: every IPv4 and IPv6 address
  anywhere in the line, target addresses included, and no exact bytes of a non-UTF-8 line); ``drop`` stores none
  of them. Either way every line is counted, so conservation stays exact.

``Privacy.apply`` is called once per parsed block by the converter (``alblake.convert.core``), before the rows are
split by partition; ``Privacy.mask_line`` and ``mask_text`` by the quarantine writer.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from alblake.errors import ConfigError, InputError

CLIENT_IP_MODES = ("keep", "truncate", "hmac")
QUERY_MODES = ("keep", "drop", "mask")
QUARANTINE_MODES = ("mask", "drop")
URL_COLUMNS = ("request_url", "redirect_url", "transformed_uri")
HASH_PREFIX = "hmac-"
HASH_HEX_DIGITS = 24
MASKED_VALUE = "*"
IPV4_PREFIX = 24
IPV6_PREFIX = 48
_CACHE_LIMIT = 1 << 16  # addresses remembered per conversion (an object has a few thousand clients)

_V6_CANDIDATE = r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*"
_V4_CANDIDATE = r"(?<![0-9])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9])"  # also inside dotted runs: erring on masking
_ADDRESS = re.compile(f"(?P<v6>{_V6_CANDIDATE})|(?P<v4>{_V4_CANDIDATE})")
_IPV4 = re.compile(_V4_CANDIDATE)
_QUERY = re.compile(r"\?[^\s\"]*")
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = f"^({_OCTET}\\.{_OCTET}\\.{_OCTET})\\.{_OCTET}$"  # as ALB writes them: truncated without Python


class PrivacySettingsError(InputError, ValueError):
    """A privacy setting that does not exist (the message names the accepted values)."""


@dataclass(frozen=True)
class PrivacySettings:
    """What a lake keeps (see the module docstring); the default keeps everything."""

    client_ip: str = "keep"
    query_strings: str = "keep"
    quarantine: str = "mask"

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("client_ip", self.client_ip, CLIENT_IP_MODES),
            ("query_strings", self.query_strings, QUERY_MODES),
            ("quarantine", self.quarantine, QUARANTINE_MODES),
        ):
            if value not in allowed:
                raise PrivacySettingsError(f"privacy {name} {value!r}: expected one of {', '.join(allowed)}")

    @property
    def active(self) -> bool:
        """Whether anything is transformed (quarantined lines follow only then)."""
        return self.client_ip != "keep" or self.query_strings != "keep"

    @property
    def needs_key(self) -> bool:
        return self.client_ip == "hmac"

    def as_dict(self) -> dict[str, str]:
        return {"client_ip": self.client_ip, "query_strings": self.query_strings, "quarantine": self.quarantine}

    @classmethod
    def from_dict(cls, body: Any) -> PrivacySettings:
        if not isinstance(body, dict):
            raise PrivacySettingsError(f"privacy settings must be an object, not {type(body).__name__}")
        return cls(**{k: str(body[k]) for k in ("client_ip", "query_strings", "quarantine") if k in body})


def normal_address(text: str) -> str:
    """An address in one spelling (``ipaddress``'s), so that a user's ``2001:DB8::1`` matches the logged
    ``2001:db8::1``; text that is not an address is returned as it is."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return text.strip()


def network_of(text: str) -> str | None:
    """The /24 (IPv4, also IPv4-mapped IPv6) or /48 (IPv6) an address belongs to, as ``net/len``; None for text
    that is not an address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def keyed_address(key: bytes, text: str) -> str:
    """The keyed-hash form of an address: ``hmac-`` + 24 hex digits of HMAC-SHA-256(key, address)."""
    digest = hmac.digest(key, b"client_ip\x00" + normal_address(text).encode(), "sha256").hex()
    return HASH_PREFIX + digest[:HASH_HEX_DIGITS]


def mask_query(query: str) -> str:
    """``a=1&b&c=`` -> ``a=*&*&c=*``: parameter names stay, every value becomes ``*`` (the part after ``?``)."""
    return "&".join(_mask_parameter(part) for part in query.split("&"))


def _mask_parameter(part: str) -> str:
    if "=" in part:
        return part.split("=", 1)[0] + "=" + MASKED_VALUE
    return MASKED_VALUE if part else ""


class Privacy:
    """The transforms of one lake's settings, with its key (``hmac`` only). The key is never printed."""

    def __init__(self, settings: PrivacySettings, key: bytes | None = None) -> None:
        if settings.needs_key and not key:
            raise ConfigError("privacy client_ip 'hmac' needs the lake's key, which was not given")
        self.settings = settings
        self._key = key
        self._addresses: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"Privacy({self.settings!r}, key={'set' if self._key else 'none'})"

    @property
    def active(self) -> bool:
        return self.settings.active

    # ------------------------------------------------------------------------------------------------ rows
    def apply(self, table: pa.Table) -> pa.Table:
        """The rows with the lake's settings applied (the schema is unchanged)."""
        if not self.active:
            return table
        if self.settings.client_ip != "keep" and "client_ip" in table.column_names:
            table = _replace(table, "client_ip", self._addresses_of(table.column("client_ip")))
        if self.settings.query_strings != "keep":
            for name in URL_COLUMNS:
                if name in table.column_names:
                    table = _replace(table, name, self._urls(table.column(name)))
        return table

    def address(self, value: str) -> str | None:
        """The stored form of one client address (None: it is not an address and the mode truncates)."""
        if self.settings.client_ip == "keep":
            return value
        found = self._addresses.get(value, "")
        if found != "":
            return found
        if self.settings.client_ip == "hmac":
            assert self._key is not None
            stored: str | None = keyed_address(self._key, value)
        else:
            stored = network_of(value)
        if len(self._addresses) >= _CACHE_LIMIT:
            self._addresses.clear()
        self._addresses[value] = stored
        return stored

    def _addresses_of(self, column: pa.ChunkedArray) -> pa.Array:
        addresses = column.combine_chunks()
        if self.settings.client_ip == "truncate":  # IPv4 (most clients) by a regular expression, the rest below
            ipv4 = pc.fill_null(pc.match_substring_regex(addresses, _CANONICAL_IPV4), False)
            if pc.all(ipv4).as_py():
                return pc.replace_substring_regex(addresses, _CANONICAL_IPV4, r"\1.0/24")
            others = self._each_address(addresses.filter(pc.invert(ipv4)))
            truncated = pc.replace_substring_regex(addresses, _CANONICAL_IPV4, r"\1.0/24")
            return pc.replace_with_mask(truncated, pc.invert(ipv4), others)
        return self._each_address(addresses)

    def _each_address(self, addresses: pa.Array) -> pa.Array:
        """``address`` of each distinct value."""
        encoded = pc.dictionary_encode(addresses)
        stored = pa.array([self.address(v) for v in encoded.dictionary.to_pylist()], pa.string())
        return stored.take(encoded.indices)

    def _urls(self, column: pa.ChunkedArray) -> pa.Array:
        urls = column.combine_chunks()
        if self.settings.query_strings == "drop":
            return pc.replace_substring_regex(urls, pattern=r"(?s)\?.*$", replacement="")
        with_query = pc.fill_null(pc.match_substring(urls, "?"), False)
        if not pc.any(with_query).as_py():
            return urls
        return pc.replace_with_mask(urls, with_query, self._masked(urls.filter(with_query)))

    def _masked(self, urls: pa.Array) -> pa.Array:
        """URLs with a query string, its values masked."""
        parts = pc.extract_regex(urls, pattern=r"(?s)^(?P<base>[^?]*)(?P<sep>\??)(?P<query>.*)$")
        base, separator, query = (parts.field(name) for name in ("base", "sep", "query"))
        segments = pc.split_pattern(query, pattern="&")
        flat = pc.list_flatten(segments)
        named = pc.replace_substring_regex(flat, pattern=r"(?s)^([^=]*)=.*$", replacement=r"\1=" + MASKED_VALUE)
        bare = pc.if_else(pc.equal(flat, ""), "", MASKED_VALUE)
        masked = pc.if_else(pc.match_substring(flat, "="), named, bare)
        rebuilt = pa.ListArray.from_arrays(segments.offsets, masked)
        joined = pc.binary_join_element_wise(base, pc.binary_join(rebuilt, "&"), "?")
        return pc.if_else(pc.equal(separator, "?"), joined, urls)

    # ------------------------------------------------------------------------------------------ quarantine
    def mask_line(self, raw: bytes) -> bytes | None:
        """What the quarantine stores of a line: the line (privacy off), the line masked, or None (not stored)."""
        if not self.active:
            return raw
        if self.settings.quarantine == "drop":
            return None
        return self.mask_text(raw.decode("latin-1")).encode("latin-1")

    def mask_text(self, text: str) -> str:
        """Text (a quarantined line, a reason quoting it) with its addresses and query strings transformed."""
        if not self.active:
            return text
        if self.settings.query_strings != "keep":
            text = _QUERY.sub(self._masked_query_match, text)
        if self.settings.client_ip != "keep":
            text = _ADDRESS.sub(self._masked_address_match, text)
        return text

    def _masked_query_match(self, match: re.Match[str]) -> str:
        return "" if self.settings.query_strings == "drop" else "?" + mask_query(match.group()[1:])

    def _masked_address_match(self, match: re.Match[str]) -> str:
        text = match.group()
        if match.group("v4") is not None:
            return self.address(text) or text
        address, port = split_address_and_port(text)
        if address is None:  # not an IPv6 address, but it may hold an IPv4 one ("x:1.2.3.4:y")
            return _IPV4.sub(lambda inner: self.address(inner.group()) or inner.group(), text)
        return (self.address(address) or address) + port


def split_address_and_port(text: str) -> tuple[str | None, str]:
    """An IPv6 address as ALB writes ``address:port`` (unbracketed: the port after the last ``:``), or an address
    alone: (the address, ``:port`` or ""); (None, "") when it is neither."""
    stripped = text.strip("[]")
    head, _, tail = text.rpartition(":")
    if tail.isdigit() and len(tail) <= 5 and _is_address(head.strip("[]")):
        return head.strip("[]"), ":" + tail
    if _is_address(stripped):
        return stripped, ""
    return None, ""


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _replace(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    index = table.column_names.index(name)
    return table.set_column(index, table.schema.field(index), column)


NO_PRIVACY = Privacy(PrivacySettings())

LineMask = Callable[[bytes], "bytes | None"]
