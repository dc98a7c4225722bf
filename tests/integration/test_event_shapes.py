"""The real handler with every event shape a deployment sends (moto in-process, real gzip objects)."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from alblake.aws.events import UnsupportedEventError
from tests.integration.conftest import ALB_KEY, AWS_EXAMPLE_LINES, LOG_BUCKET, Aws, FakeContext, gz, s3_event

BAD_KEY = ALB_KEY.replace("_5v4k2s0a.", "_corrupt0.")


def _sqs(*bodies: object) -> dict[str, object]:
    records = [
        {"eventSource": "aws:sqs", "messageId": f"msg-{i}", "body": b if isinstance(b, str) else json.dumps(b)}
        for i, b in enumerate(bodies)
    ]
    return {"Records": records}


def _eventbridge(key: str) -> dict[str, object]:
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": LOG_BUCKET}, "object": {"key": key}},
    }


def test_sqs_batch_reports_only_the_failed_messages(app: ModuleType, aws: Aws) -> None:
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    aws.put_log(BAD_KEY, b"\x1f\x8bnot really gzip")
    event = _sqs(s3_event(ALB_KEY), s3_event(BAD_KEY), "{not json", _eventbridge(ALB_KEY))
    response = app.handler(event, FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-2"}]}
    assert aws.lake_table().num_rows == len(AWS_EXAMPLE_LINES)  # msg-0 and msg-3 name the same object: once


def test_eventbridge_object_created(app: ModuleType, aws: Aws) -> None:
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    [rec] = app.handler(_eventbridge(ALB_KEY), FakeContext())["records"]
    assert (rec["status"], rec["rows"]) == ("processed", len(AWS_EXAMPLE_LINES))
    assert {p["Values"][0] for p in aws.partitions()} == {"my-loadbalancer"}


def test_s3_test_event_is_a_no_op(app: ModuleType, aws: Aws) -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": LOG_BUCKET}
    assert app.handler(test_event, FakeContext())["records"] == []
    assert app.handler(_sqs(test_event), FakeContext()) == {"batchItemFailures": []}
    assert aws.lake_keys() == []


@pytest.mark.parametrize("event", [{}, {"Records": None}, {"detail-type": "Scheduled Event", "source": "aws.events"}])
def test_an_unknown_event_is_a_clear_error(app: ModuleType, aws: Aws, event: dict[str, object]) -> None:
    with pytest.raises(UnsupportedEventError, match="expected an S3 event notification"):
        app.handler(event, FakeContext())
