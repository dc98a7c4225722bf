from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alblake.keys import AccessLogKey, SkippedKey, SkipReason, classify_key, decode_event_key

BASE = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2025/11/21"
ALB = (
    f"{BASE}/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_"
    "20251121T2325Z_10.0.1.23_2lf1yh9x.log.gz"
)


def test_alb_access_log_key() -> None:
    c = classify_key(ALB)
    assert isinstance(c, AccessLogKey)
    assert c.account_id == "123456789012"
    assert c.region == "us-east-2"
    assert c.lb_name == "my-loadbalancer"
    assert c.lb_id == "50dc6c495c0c9188"
    assert c.end_time == datetime(2025, 11, 21, 23, 25, tzinfo=UTC)
    assert c.node_ip == "10.0.1.23"
    assert c.elb == "app/my-loadbalancer/50dc6c495c0c9188"


def test_with_prefix_and_space_after_decoding() -> None:
    raw = "my+logs/prod%3Aalb/" + ALB
    key = decode_event_key(raw)
    assert key.startswith("my logs/prod:alb/AWSLogs/")
    c = classify_key(key)
    assert isinstance(c, AccessLogKey)
    assert c.key == key


def test_ipv6_node_and_gov_region() -> None:
    key = (
        "AWSLogs/123456789012/elasticloadbalancing/us-gov-west-1/2025/01/02/"
        "123456789012_elasticloadbalancing_us-gov-west-1_app.a.0123456789abcdef_"
        "20250102T0005Z_2600:1f18:abcd::1_abcdefgh.log.gz"
    )
    c = classify_key(key)
    assert isinstance(c, AccessLogKey)
    assert c.region == "us-gov-west-1"
    assert c.node_ip == "2600:1f18:abcd::1"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("AWSLogs/123456789012/ELBAccessLogTestFile", SkipReason.TEST_FILE),
        ("prefix/AWSLogs/123456789012/ELBAccessLogTestFile", SkipReason.TEST_FILE),
        (
            f"{BASE}/123456789012_elasticloadbalancing_us-east-2_net.my-nlb.1234567890abcdef_"
            "20251121T2325Z_10.0.1.23_abcdefgh.log.gz",
            SkipReason.NLB_LOG,
        ),
        (
            f"{BASE}/conn_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer."
            "50dc6c495c0c9188_20251121T2325Z_10.0.1.23_b38hdhc6.log.gz",
            SkipReason.CONNECTION_LOG,
        ),
        (
            f"{BASE}/conn_log.123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer."
            "50dc6c495c0c9188_20251121T2325Z_10.0.1.23_b38hdhc6.log.gz",
            SkipReason.CONNECTION_LOG,
        ),
        (
            f"{BASE}/health_check_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer."
            "50dc6c495c0c9188_20251121T2325Z_10.0.1.23_b38hdhc6.log.gz",
            SkipReason.HEALTH_CHECK_LOG,
        ),
        (ALB[: -len(".gz")], SkipReason.NOT_LOG_GZ),
        (f"{BASE}/", SkipReason.NOT_LOG_GZ),
        (
            # Classic ELB: no kind/id part, not gzip
            f"{BASE}/123456789012_elasticloadbalancing_us-east-2_my-clb_20251121T2325Z_10.0.1.23_x.log",
            SkipReason.NOT_LOG_GZ,
        ),
        (f"{BASE}/something-else.log.gz", SkipReason.UNRECOGNISED),
        (ALB.replace("20251121T2325Z", "20251399T2325Z"), SkipReason.UNRECOGNISED),
    ],
)
def test_skipped(key: str, reason: SkipReason) -> None:
    c = classify_key(key)
    assert isinstance(c, SkippedKey)
    assert c.reason is reason
