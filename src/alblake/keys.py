"""Classify S3 object keys in an ELB log bucket (pure: no AWS imports).

ALB access logs are named::

    [prefix/]AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/
        <account>_elasticloadbalancing_<region>_app.<lb-name>.<lb-id>_<end YYYYMMDDTHHMMZ>_
        <node-ip>_<random>.log.gz   (one name, wrapped here)

Everything else that ELB writes under the same prefix must be skipped, not failed: the
``ELBAccessLogTestFile`` written when logging is enabled, NLB logs (``_net.``), ALB connection logs
(``conn_log_...``; AWS documents ``conn_log.`` but real objects use ``_``) and ALB health-check logs
(``health_check_log_...``), and anything that is not a ``.log.gz``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import unquote_plus


class SkipReason(StrEnum):
    TEST_FILE = "test-file"
    NLB_LOG = "nlb-log"
    CONNECTION_LOG = "connection-log"
    HEALTH_CHECK_LOG = "health-check-log"
    NOT_LOG_GZ = "not-log-gz"
    UNRECOGNISED = "unrecognised-name"


@dataclass(frozen=True)
class AccessLogKey:
    """A key that names an ALB access log object."""

    key: str
    account_id: str
    region: str
    lb_name: str
    lb_id: str
    end_time: datetime
    node_ip: str

    @property
    def elb(self) -> str:
        """The ``elb`` field as logged: ``app/<name>/<id>``."""
        return f"app/{self.lb_name}/{self.lb_id}"


@dataclass(frozen=True)
class SkippedKey:
    key: str
    reason: SkipReason


LOG_SUFFIXES = (".log", ".log.gz")  # what a local file must end with to be taken from a directory

# <account>_elasticloadbalancing_<region>_<kind>.<lb-name>.<lb-id>_<end>_<node-ip>_<random>.log.gz
# LB names are 1-32 alphanumerics and hyphens (no dots or underscores); the id is hex.
_NAME_RE = re.compile(
    r"^(?P<account>\d{12})_elasticloadbalancing_(?P<region>[a-z0-9-]+)_"
    r"(?P<kind>[a-z]+)\.(?P<lb_name>[A-Za-z0-9-]{1,32})\.(?P<lb_id>[0-9a-f]+)_"
    r"(?P<end>\d{8}T\d{4}Z)_(?P<ip>[0-9A-Fa-f.:]+)_(?P<random>[A-Za-z0-9]+)\.log\.gz$"
)


def decode_event_key(raw: str) -> str:
    """Decode a key as it appears in an S3 event notification (URL-encoded, spaces as '+')."""
    return unquote_plus(raw)


def classify_key(key: str) -> AccessLogKey | SkippedKey:
    """Classify an (already URL-decoded) object key."""
    name = key.rsplit("/", 1)[-1]
    if name == "ELBAccessLogTestFile":
        return SkippedKey(key, SkipReason.TEST_FILE)
    if not name.endswith(".log.gz"):
        return SkippedKey(key, SkipReason.NOT_LOG_GZ)
    if name.startswith("conn_log"):
        return SkippedKey(key, SkipReason.CONNECTION_LOG)
    if name.startswith("health_check_log"):
        return SkippedKey(key, SkipReason.HEALTH_CHECK_LOG)
    m = _NAME_RE.match(name)
    if m is None:
        return SkippedKey(key, SkipReason.UNRECOGNISED)
    if m["kind"] == "net":
        return SkippedKey(key, SkipReason.NLB_LOG)
    if m["kind"] != "app":
        return SkippedKey(key, SkipReason.UNRECOGNISED)
    try:
        end = datetime.strptime(m["end"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    except ValueError:
        return SkippedKey(key, SkipReason.UNRECOGNISED)
    return AccessLogKey(
        key=key,
        account_id=m["account"],
        region=m["region"],
        lb_name=m["lb_name"],
        lb_id=m["lb_id"],
        end_time=end,
        node_ip=m["ip"],
    )
