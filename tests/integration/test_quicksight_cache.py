"""ListIngestions is limited to 5 requests per second per user: a warm container asks QuickSight at most once per
debounce interval (botocore Stubber, since moto has no ListIngestions: every call the refresher makes must be
one the test expects, so a call too many fails the test)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from alblake.aws.quicksight import SpiceRefresher
from alblake.service.refresh import RefreshStatus

ACCOUNT, DATASET = "123456789012", "ds"
LIST = {"AwsAccountId": ACCOUNT, "DataSetId": DATASET, "MaxResults": 100}
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def quicksight() -> Iterator[tuple[Any, Stubber, Clock, SpiceRefresher]]:
    client = boto3.client("quicksight", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub, clock = Stubber(client), Clock()
    refresher = SpiceRefresher(client, DATASET, min_interval=timedelta(minutes=60), clock=clock)
    with stub:
        yield client, stub, clock, refresher
        stub.assert_no_pending_responses()


def created(at: datetime, status: str = "COMPLETED") -> dict[str, Any]:
    return {"Arn": "arn", "IngestionId": "i", "IngestionStatus": status, "CreatedTime": at,
            "RequestType": "FULL_REFRESH"}


def test_within_the_interval_after_a_recent_ingestion_quicksight_is_not_asked_again(quicksight: Any) -> None:
    _, stub, clock, refresher = quicksight
    stub.add_response("list_ingestions", {"Ingestions": [created(START - timedelta(minutes=20))]}, LIST)
    statuses = []
    for minutes in (0, 1, 10, 39):  # four batches of one warm container within the interval: one request
        clock.now = START + timedelta(minutes=minutes)
        statuses.append(refresher.request_refresh(ACCOUNT).status)
    assert statuses == [RefreshStatus.SKIPPED_RECENT] * 4
    clock.now = START + timedelta(minutes=41)  # the interval after that ingestion is over: ask again
    stub.add_response("list_ingestions", {"Ingestions": [created(START - timedelta(minutes=20))]}, LIST)
    stub.add_response("create_ingestion", {"Status": 201, "IngestionId": "x"},
                      {"AwsAccountId": ACCOUNT, "DataSetId": DATASET, "IngestionId": "alblake-20261124T090000Z",
                       "IngestionType": "INCREMENTAL_REFRESH"})
    assert refresher.request_refresh(ACCOUNT).status is RefreshStatus.REQUESTED
    clock.now += timedelta(minutes=59)
    assert refresher.request_refresh(ACCOUNT).status is RefreshStatus.SKIPPED_RECENT  # no call: it just requested


def test_a_running_ingestion_and_throttling_pause_the_questions(quicksight: Any) -> None:
    _, stub, clock, refresher = quicksight
    stub.add_response("list_ingestions", {"Ingestions": [created(START - timedelta(minutes=5), "RUNNING")]}, LIST)
    assert refresher.request_refresh(ACCOUNT).status is RefreshStatus.SKIPPED_IN_PROGRESS
    clock.now = START + timedelta(minutes=30)
    assert refresher.request_refresh(ACCOUNT).status is RefreshStatus.SKIPPED_RECENT  # not asked
    clock.now = START + timedelta(minutes=56)
    stub.add_client_error("list_ingestions", "ThrottlingException", "Rate exceeded", expected_params=LIST)
    assert refresher.request_refresh(ACCOUNT).status is RefreshStatus.THROTTLED
    clock.now += timedelta(seconds=30)
    assert refresher.request_refresh(ACCOUNT).status is RefreshStatus.SKIPPED_RECENT  # a minute's pause
