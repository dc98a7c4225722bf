"""Turn whatever invoked the ingest function into the objects to ingest (pure: dictionaries in, records out).

Accepted shapes (anything else is an ``UnsupportedEventError`` naming what was expected):

- an S3 event notification: ``{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}`` (keys URL-encoded,
  spaces as '+': decoded here);
- an EventBridge "Object Created" event from S3: ``{"source": "aws.s3", "detail-type": "Object Created",
  "detail": {"bucket": {"name"}, "object": {"key"}}}`` (the key as it is: AWS documents no encoding for
  EventBridge, unlike S3 notifications);
- the S3 ``s3:TestEvent`` that S3 sends when a notification is configured: nothing to do;
- an SQS batch whose message bodies are any of the above (the backfill queue and the EventBridge -> SQS
  path). Each message is its own *batch item*: a message that fails is reported back to SQS alone
  (``batchItemFailures``), so the others are not retried.

``notification_body`` writes the message the backfill and the replay send to the ingest queue for one object
(the contract with the stack's ``IngestQueue`` consumer, which reads it like a direct S3 event)::

    {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                  "s3": {"bucket": {"name": B}, "object": {"key": K, "size": N}}}]}

``K`` is URL-encoded as S3 encodes keys in notifications (spaces as '+'), so the consumer decodes both alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from alblake.errors import InputError
from alblake.keys import decode_event_key

EXPECTED = (
    "an S3 event notification ({'Records': [{'eventSource': 'aws:s3', ...}]}), an EventBridge 'Object Created' "
    "event from aws.s3, an S3 TestEvent, or an SQS batch carrying any of these"
)


class UnsupportedEventError(InputError, ValueError):
    """The event has none of the accepted shapes; the message says what arrived and what was expected."""


@dataclass(frozen=True)
class S3Record:
    bucket: str
    key: str  # decoded: the object's real key


@dataclass
class BatchItem:
    """The objects of one SQS message (or of the whole event when it did not come through SQS)."""

    item_id: str | None  # the SQS messageId; None outside SQS
    records: list[S3Record] = field(default_factory=list)
    error: str = ""  # set when the message body is not an accepted event (nothing to ingest, report failure)


@dataclass
class ParsedEvent:
    items: list[BatchItem]
    from_sqs: bool

    @property
    def records(self) -> list[S3Record]:
        return [r for item in self.items for r in item.records]


def parse_event(event: object) -> ParsedEvent:
    """The batch items of an invocation event; raises ``UnsupportedEventError`` for an unknown shape."""
    if not isinstance(event, Mapping):
        raise UnsupportedEventError(f"the event is a {type(event).__name__}, expected {EXPECTED}")
    records = event.get("Records")
    if isinstance(records, list) and records and all(_source(r) == "aws:sqs" for r in records):
        return ParsedEvent([_sqs_item(r) for r in records], from_sqs=True)
    return ParsedEvent([BatchItem(None, _records(event))], from_sqs=False)


def _source(record: object) -> object:
    return record.get("eventSource") if isinstance(record, Mapping) else None


def _sqs_item(message: Mapping[str, Any]) -> BatchItem:
    item_id = str(message.get("messageId", ""))
    try:
        body = json.loads(message.get("body") or "")
    except (TypeError, ValueError):
        return BatchItem(item_id, error=f"message body is not JSON; expected {EXPECTED}")
    try:
        return BatchItem(item_id, _records(body))
    except UnsupportedEventError as e:
        return BatchItem(item_id, error=str(e))


def _records(event: object) -> list[S3Record]:
    if not isinstance(event, Mapping):
        raise UnsupportedEventError(f"the event is a {type(event).__name__}, expected {EXPECTED}")
    if event.get("Event") == "s3:TestEvent":
        return []
    if event.get("source") == "aws.s3" and "detail" in event:
        return [_eventbridge_record(event)]
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        keys = ", ".join(sorted(str(k) for k in event)[:8]) or "no keys"
        raise UnsupportedEventError(f"the event has {keys}; expected {EXPECTED}")
    return [_notification_record(r) for r in records]


def _notification_record(record: object) -> S3Record:
    not_s3 = UnsupportedEventError(f"a record is not an S3 notification record; expected {EXPECTED}")
    if not isinstance(record, Mapping) or record.get("eventSource") != "aws:s3":
        raise not_s3
    try:
        s3 = record["s3"]
        return S3Record(str(s3["bucket"]["name"]), decode_event_key(str(s3["object"]["key"])))
    except (KeyError, TypeError):
        raise not_s3 from None


def _eventbridge_record(event: Mapping[str, Any]) -> S3Record:
    if event.get("detail-type") != "Object Created":
        raise UnsupportedEventError(f"EventBridge detail-type {event.get('detail-type')!r}; expected 'Object Created'")
    try:
        detail = event["detail"]
        return S3Record(str(detail["bucket"]["name"]), str(detail["object"]["key"]))
    except (KeyError, TypeError):
        raise UnsupportedEventError("EventBridge 'Object Created' event without detail.bucket.name and "
                                    "detail.object.key") from None


def notification_body(bucket: str, key: str, size: int) -> str:
    """The queue message for one object (see the module docstring)."""
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "size": size}},
    }
    return json.dumps({"Records": [record]}, separators=(",", ":"))
