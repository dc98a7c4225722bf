"""The dimensions triage compares, each as one SQL expression (the same text on Athena and DuckDB) and, for the
derived ones, a Python twin that tests hold equal to it.

A dimension's value is never NULL: an absent value is ``-`` (a plain-HTTP request has TLS protocol ``-``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alblake.convert.privacy import HASH_PREFIX
from alblake.rollup.routes import OTHER_ROUTE

KEY = "dim_key"  # the column a grouped key is read from when a value is derived from it after grouping


@dataclass(frozen=True)
class Dimension:
    """``curated``: the key grouped per row of ``alb_logs``; ``of_key``: the value derived from that key after
    grouping (an expression over ``dim_key``; None: the key is the value); ``rollup``: the value over
    ``alb_rollup_1m`` (None: not in the rollup). Deriving after grouping evaluates an expensive expression (the
    user-agent family's patterns, the client network's string work) once per distinct key instead of per row."""

    name: str
    curated: str
    rollup: str | None
    label: str
    of_key: str | None = None
    many_values: bool = False  # the curated table keeps only the window's values (alblake.triage.query)
    rollup_columns: tuple[str, ...] = ()  # the rollup columns ``rollup`` reads

    @property
    def curated_value(self) -> str:
        """The value of a curated row, as one expression (the key and ``of_key`` composed)."""
        return self.curated if self.of_key is None else self.of_key.replace(KEY, f"({self.curated})")


# ------------------------------------------------------------------------------------------ client network


def client_network(ip: str | None) -> str:
    """The client's network: ``a.b.c.0/24`` for IPv4 (the address up to its last dot), the first three groups
    ``/48`` for IPv6 (as logged, groups after a ``::`` being zero), ``-`` when absent. A lake that stores
    addresses truncated (``203.0.113.0/24``, ``2001:db8:abcd::/48``: any value with a ``/``) already holds the
    network: kept as it is. A lake that stores them keyed-hashed (``hmac-`` and hex digits) has no network to
    derive: the hashed value is kept as it is, one client per value (``alblake.convert.privacy``).

    Computed in two steps, as the SQL does: a cheap per-row key (:func:`network_key`), then the network of each
    distinct key (:func:`network_of_key`)."""
    return network_of_key(network_key(ip))


def network_key(ip: str | None) -> str:
    """What identifies the network of an address, at the least cost per row: an IPv4 address up to its last dot,
    an IPv6 address up to its first ``::`` and then ``::``, a value with a ``/`` as it is; ``-`` when absent."""
    if ip is None:
        return "-"
    if ":" in ip:
        return ip if "/" in ip else ip.split("::", 1)[0] + "::"
    return ip.rsplit(".", 1)[0]


def network_of_key(key: str) -> str:
    if key == "-" or "/" in key or key.startswith(HASH_PREFIX):
        return key
    if ":" not in key:
        return key + ".0/24"
    head = key.split("::", 1)[0]
    groups = head.split(":") if head else []
    return ":".join(([*groups, "0", "0", "0"])[:3]) + "::/48"


def network_key_sql(ip: str = "client_ip") -> str:
    """``network_key`` in SQL (Trino and DuckDB): a few string functions per row, no repeated subexpression."""
    v6 = f"CASE WHEN strpos({ip}, '/') > 0 THEN {ip} ELSE split_part({ip}, '::', 1) || '::' END"
    v4 = f"substr({ip}, 1, length({ip}) - strpos(reverse({ip}), '.'))"
    return f"CASE WHEN {ip} IS NULL THEN '-' WHEN strpos({ip}, ':') > 0 THEN {v6} ELSE {v4} END"


def network_of_key_sql(key: str) -> str:
    """``network_of_key`` in SQL; NULL stays NULL (the fold of values the window does not have)."""
    head = f"split_part({key}, '::', 1)"
    padded = f"{head} || ':0:0'"  # at least three groups when head has one: the missing ones are zero
    groups = " || ':' || ".join(f"split_part({padded}, ':', {i})" for i in (1, 2, 3))
    kept = f"{key} = '-' OR strpos({key}, '/') > 0 OR starts_with({key}, '{HASH_PREFIX}')"
    return (f"CASE WHEN {key} IS NULL THEN NULL WHEN {kept} THEN {key} WHEN strpos({key}, ':') = 0 THEN {key} || "
            f"'.0/24' WHEN {head} = '' THEN '0:0:0::/48' ELSE {groups} || '::/48' END")


def client_network_sql(ip: str = "client_ip") -> str:
    """``client_network`` in SQL: the network of the key, one expression (the query uses the two steps apart)."""
    return network_of_key_sql(f"({network_key_sql(ip)})")


# ------------------------------------------------------------------------------------- user agent family

# (family, LIKE patterns over the lower-cased user agent): the first family with a matching pattern wins.
UA_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ELB-HealthChecker", ("elb-healthchecker/%",)),
    ("Googlebot", ("%googlebot%",)),
    ("bingbot", ("%bingbot%",)),
    ("other bot", ("%bot%", "%crawler%", "%spider%", "%zgrab%", "%scanner%")),
    ("curl", ("curl/%",)),
    ("Wget", ("wget/%",)),
    ("python-requests", ("python-requests/%",)),
    ("Python", ("python%",)),
    ("Go-http-client", ("go-http-client/%",)),
    ("okhttp", ("okhttp/%",)),
    ("Java", ("java/%", "apache-httpclient/%")),
    ("AWS SDK", ("aws-sdk-%", "boto3/%", "botocore/%")),
    ("axios", ("axios/%",)),
    ("node", ("node-fetch/%", "node/%", "undici%")),
    ("Postman", ("postmanruntime/%",)),
    ("Edge", ("%edg/%",)),
    ("Opera", ("%opr/%",)),
    ("Firefox", ("%firefox/%",)),
    ("Chrome", ("%chrome/%", "%crios/%")),
    ("Safari", ("%safari/%",)),
    ("other browser", ("mozilla/%",)),
)
OTHER_AGENT = "other"


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "%" else re.escape(c) for c in pattern), re.DOTALL)


_UA_REGEXES = tuple((family, tuple(_like(p) for p in patterns)) for family, patterns in UA_FAMILIES)


def user_agent_family(agent: str | None) -> str:
    if agent is None:
        return "-"
    lowered = agent.lower()
    for family, regexes in _UA_REGEXES:
        if any(r.fullmatch(lowered) for r in regexes):
            return family
    return OTHER_AGENT


def user_agent_family_sql(agent: str = "user_agent") -> str:
    lowered = f"lower({agent})"
    cases = []
    for family, patterns in UA_FAMILIES:
        test = " OR ".join(f"{lowered} LIKE '{p}'" for p in patterns)
        cases.append(f"WHEN {test} THEN '{family}'")
    return f"CASE WHEN {agent} IS NULL THEN '-' {' '.join(cases)} ELSE '{OTHER_AGENT}' END"


# ------------------------------------------------------------------------------------------- the list

_TARGET = "CASE WHEN target_ip IS NULL THEN '-' ELSE target_ip || ':' || CAST(target_port AS VARCHAR) END"
_TARGET_GROUP = "coalesce(nullif(split_part(target_group_arn, '/', 2), ''), '-')"

DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("target", _TARGET, _TARGET, "target ip:port", rollup_columns=("target_ip", "target_port")),
    # the curated table's route is the URL's template: alblake.triage.query maps each distinct URL once
    Dimension("route", "request_url", "coalesce(route, '-')", "route template", rollup_columns=("route",)),
    Dimension("verb", "coalesce(request_verb, '-')", "coalesce(request_verb, '-')", "HTTP verb",
              rollup_columns=("request_verb",)),
    Dimension("target_group", "target_group_arn", _TARGET_GROUP, "target group", of_key=_TARGET_GROUP.replace(
        "target_group_arn", KEY), rollup_columns=("target_group_arn",)),
    Dimension("client_network", network_key_sql(), None, "client network (/24, /48)",
              of_key=network_of_key_sql(KEY), many_values=True),
    Dimension("user_agent", "user_agent", None, "user-agent family", of_key=user_agent_family_sql(KEY)),
    Dimension("error_reason", "coalesce(lambda_error_reason, '-')", None, "error_reason"),
    Dimension("classification", "coalesce(classification, '-')", None, "desync classification"),
    Dimension("tls_protocol", "coalesce(ssl_protocol, '-')", None, "TLS protocol"),
    Dimension("domain", "coalesce(domain_name, '-')", None, "domain (SNI)"),
)
ALL = Dimension("all", "'(all)'", "'(all)'", "all requests")
NAMES = tuple(d.name for d in DIMENSIONS)
FOLDED_ROUTE = OTHER_ROUTE
