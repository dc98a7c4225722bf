"""The event shapes the ingest function accepts (pure: no AWS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from alblake.aws.events import S3Record, UnsupportedEventError, parse_event

KEY = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/24/a b+c.log.gz"
ENCODED = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/24/a+b%2Bc.log.gz"


def notification(bucket: str = "logs", key: str = ENCODED) -> dict[str, Any]:
    return {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}


def eventbridge(bucket: str = "logs", key: str = KEY, detail_type: str = "Object Created") -> dict[str, Any]:
    return {
        "version": "0",
        "detail-type": detail_type,
        "source": "aws.s3",
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 10}},
    }


TEST_EVENT = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-24T09:06:12Z", "Bucket": "logs"}


def sqs(*bodies: object) -> dict[str, Any]:
    return {
        "Records": [
            {"eventSource": "aws:sqs", "messageId": f"m{i}", "body": b if isinstance(b, str) else json.dumps(b)}
            for i, b in enumerate(bodies)
        ]
    }


def test_direct_notification_keys_are_url_decoded() -> None:
    parsed = parse_event(notification())
    assert (parsed.from_sqs, parsed.records) == (False, [S3Record("logs", KEY)])


def test_eventbridge_object_created_takes_the_key_as_it_is() -> None:
    assert parse_event(eventbridge()).records == [S3Record("logs", KEY)]


def test_s3_test_event_has_nothing_to_ingest() -> None:
    assert parse_event(TEST_EVENT).records == []


def test_sqs_batch_items_keep_their_message_ids_and_bad_bodies_fail_alone() -> None:
    parsed = parse_event(sqs(notification(), eventbridge(bucket="other"), TEST_EVENT, "not json", {"foo": 1}))
    assert parsed.from_sqs
    assert [(i.item_id, i.records, bool(i.error)) for i in parsed.items] == [
        ("m0", [S3Record("logs", KEY)], False),
        ("m1", [S3Record("other", KEY)], False),
        ("m2", [], False),
        ("m3", [], True),
        ("m4", [], True),
    ]
    assert "not JSON" in parsed.items[3].error and "expected an S3 event notification" in parsed.items[4].error


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": None},
        {"Records": []},
        {"Records": [{"eventSource": "aws:sns"}]},
        {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {}}}]},
        eventbridge(detail_type="Object Deleted"),
        {"source": "aws.s3", "detail": {"bucket": {"name": "b"}}, "detail-type": "Object Created"},
        ["not", "a", "mapping"],
        None,
    ],
    ids=["empty", "records-null", "records-empty", "sns", "s3-without-key", "deleted", "eb-no-key", "list", "none"],
)
def test_anything_else_is_a_clear_error(event: object) -> None:
    with pytest.raises(UnsupportedEventError, match=r"expected|Object Created"):
        parse_event(event)
